"""Metrics, tables and plots written to a training run folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def topk_correct(logits: np.ndarray, targets: np.ndarray, k: int) -> np.ndarray:
    """Boolean per sample: the target is among the k highest logits."""
    top = np.argsort(-logits, axis=1)[:, :k]
    return (top == targets[:, None]).any(axis=1)


def accuracy_by_source(logits: np.ndarray, targets: np.ndarray, sources: np.ndarray) -> dict:
    """top-1 and top-2 accuracy overall ("all") and for each source."""
    out = {}
    for name in ["all", *sorted(set(sources.tolist()))]:
        m = np.ones(len(targets), bool) if name == "all" else sources == name
        if m.any():
            out[name] = {
                "n": int(m.sum()),
                "top1": float(topk_correct(logits[m], targets[m], 1).mean()),
                "top2": float(topk_correct(logits[m], targets[m], 2).mean()),
            }
    return out


def set_accuracy(logits: np.ndarray, sets: np.ndarray) -> float:
    """Share of labelled rows whose arg-max falls inside the acceptable set."""
    known = sets.any(1)
    if not known.any():
        return float("nan")
    pred = logits[known].argmax(1)
    return float(sets[known][np.arange(len(pred)), pred].mean())


def per_class(pred: np.ndarray, targets: np.ndarray, classes: list[str]) -> list[dict]:
    """Precision, recall, F1 and support per class."""
    rows = []
    for i, c in enumerate(classes):
        tp = int(((pred == i) & (targets == i)).sum())
        fp = int(((pred == i) & (targets != i)).sum())
        fn = int(((pred != i) & (targets == i)).sum())
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn) if tp + fn else 0.0
        f = 2 * p * r / (p + r) if p + r else 0.0
        rows.append({"class": c, "precision": p, "recall": r, "f1": f, "support": tp + fn})
    return rows


def markdown_table(rows: list[dict]) -> str:
    """Rows of dicts as a Markdown table (floats to three places)."""
    if not rows:
        return ""
    cols = list(rows[0])
    fmt = [lambda v: f"{v:.3f}" if isinstance(v, float) else str(v)] * len(cols)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(f(r[c]) for f, c in zip(fmt, cols, strict=True)) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def full_report(logits, targets, sources, classes, out: Path, name: str) -> dict:
    """Accuracy per source, per-class table per source and a confusion matrix plot."""
    acc = accuracy_by_source(logits, targets, sources)
    pred = logits.argmax(1)
    tables = {}
    for src in sorted(set(sources.tolist())):
        m = sources == src
        rows = [r for r in per_class(pred[m], targets[m], classes) if r["support"]]
        tables[src] = rows
        (out / f"{name}-{src}-per-class.md").write_text(markdown_table(rows))
        plot_confusion(pred[m], targets[m], classes, out / f"{name}-{src}-confusion.png", f"{name}: {src}")
    return {**acc, "per_class": tables}


def plot_history(history: list[dict], path: Path) -> None:
    """Training and validation loss, and validation score, per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = [h["epoch"] for h in history]
    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    ax[0].plot(ep, [h["train_loss"] for h in history], label="train")
    ax[0].plot(ep, [h["val_loss"] for h in history], label="validation")
    ax[0].set_xlabel("epoch"), ax[0].set_ylabel("loss"), ax[0].legend()
    ax[1].plot(ep, [h["val_score"] for h in history])
    ax[1].set_xlabel("epoch"), ax[1].set_ylabel("validation score (mean top-1 over sources)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_confusion(pred, targets, classes, path: Path, title: str) -> None:
    """Row-normalised confusion matrix over the classes present."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    present = sorted(set(targets.tolist()) | set(pred.tolist()))
    idx = {c: i for i, c in enumerate(present)}
    cm = np.zeros((len(present), len(present)))
    for t, p in zip(targets, pred, strict=True):
        cm[idx[t], idx[p]] += 1
    cm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    names = [classes[i] for i in present]
    fig, ax = plt.subplots(figsize=(0.35 * len(names) + 3, 0.35 * len(names) + 2.5))
    ax.imshow(cm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.set_xlabel("predicted"), ax.set_ylabel("true"), ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_bars(values: dict[str, dict[str, float]], path: Path, ylabel: str) -> None:
    """Grouped bars: one group per inner key, one bar per outer key (e.g. {method: {group: accuracy}})."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = list(values)
    groups = list(dict.fromkeys(g for v in values.values() for g in v))
    width = 0.8 / max(1, len(series))
    fig, ax = plt.subplots(figsize=(1.2 * len(groups) + 3, 4))
    for k, name in enumerate(series):
        ax.bar(np.arange(len(groups)) + k * width, [values[name].get(g, np.nan) for g in groups], width, label=name)
    ax.set_xticks(np.arange(len(groups)) + 0.4 - width / 2, groups, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel(ylabel), ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def save_json(obj, path: Path) -> None:
    """Write JSON via a temp file and rename."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2))
    tmp.replace(path)
