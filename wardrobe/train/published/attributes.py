"""Multi-label garment attributes after Ren, Song, Yuan and Tian, "JD AI Fashion Competition".

A backbone with global average pooling, dropout 0.5 and one sigmoid output per attribute value
(binary cross-entropy, Adam). With pretrained weights (a local file) the paper's two phases run:
convolutions frozen at lr 1e-4 for `--frozen-epochs`, then the last part of them unfrozen at
lr 1e-5. Test-time augmentation averages the probabilities over flips and shifts. The metric is
mean average precision; a value is "on" when its probability exceeds 0.5.

Targets come from the product photos' `usage`, `season` and `gender`. Pass the same `--data` as
the classifier: the split is then the classifier's, so its test photos stay unseen by a backbone
taken from the default model.

    wardrobe train attributes --data clothing-photos=DIR --data product-photos=DIR \\
        --model alexnet-slim --weights runs/default/best.pt --output-dir runs/attributes/alexnet-slim
    wardrobe train attributes --compare runs/attributes
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from wardrobe.errors import TrainingError
from wardrobe.nets import AlexNetSlim
from wardrobe.preprocess import Preprocess
from wardrobe.taxonomy import Taxonomy
from wardrobe.train import distributed, engine, report
from wardrobe.train.data import build_splits
from wardrobe.train.engine import augment_batch, normalise, start_run
from wardrobe.train.models import load_fitting

log = logging.getLogger(__name__)

ATTRIBUTES = [
    ("usage", "casual"), ("usage", "formal"), ("usage", "sports"), ("usage", "ethnic"),
    ("season", "summer"), ("season", "fall"), ("season", "winter"), ("season", "spring"),
    ("gender", "men"), ("gender", "women"), ("gender", "kids"),
]
"""The multi-label target: one sigmoid output per (attribute, value)."""
LABELS = [f"{a}:{v}" for a, v in ATTRIBUTES]
SHOP_VALUES = {
    # The shop's value -> our values (several for the mixed ones); values not listed have none.
    "usage": {"Casual": {"casual"}, "Formal": {"formal"}, "Smart Casual": {"casual", "formal"},
              "Sports": {"sports"}, "Ethnic": {"ethnic"}},
    "season": {"Summer": {"summer"}, "Fall": {"fall"}, "Winter": {"winter"}, "Spring": {"spring"}},
    "gender": {"Men": {"men"}, "Women": {"women"}, "Unisex": {"men", "women"}, "Boys": {"men", "kids"},
               "Girls": {"women", "kids"}},
}
SPEAKABLE = ("usage:formal", "usage:sports", "usage:ethnic", "usage:casual")
"""Values the appliance could add to a long press ("casual", "formal", "sportswear", "ethnic wear")."""
TIMM_BACKBONES = ("inception_resnet_v2", "legacy_xception", "inception_v4")
MODELS = ("alexnet-slim", *TIMM_BACKBONES)


def attribute_targets(rows: list[dict]) -> np.ndarray:
    """(N, len(LABELS)) float32 0/1 targets from styles.csv rows."""
    out = np.zeros((len(rows), len(LABELS)), np.float32)
    for i, row in enumerate(rows):
        for attr, values in SHOP_VALUES.items():
            for v in values.get(row.get(attr, ""), ()):
                out[i, ATTRIBUTES.index((attr, v))] = 1
    return out


def read_styles(specs: list[str]) -> dict[str, dict]:
    """styles.csv rows of every product-photos source, keyed by the image path the readers use."""
    rows = {}
    for spec in specs:
        kind, _, path = spec.partition("=")
        if kind == "product-photos":
            with open(Path(path) / "styles.csv", newline="") as f:
                rows.update({str(Path(path) / r["image"]): r for r in csv.DictReader(f)})
    if not rows:
        raise TrainingError("attributes need --data product-photos=DIR (its styles.csv has usage, season, gender)")
    return rows


# ---------------------------------------------------------------- models

def build_attribute_model(arch: str, weights: Path | None) -> nn.Module:
    """Global average pooling, dropout 0.5 and len(LABELS) sigmoid outputs on the named backbone.

    `weights`: a local state dict or training checkpoint; tensors that fit are loaded (so the
    classifier's own head is left out and the attribute head starts fresh).
    """
    n = len(LABELS)
    if arch == "alexnet-slim":
        model: nn.Module = AlexNetSlim(n, dropout=0.5)
    elif arch in TIMM_BACKBONES:
        import timm

        model = timm.create_model(arch, pretrained=False, num_classes=n, drop_rate=0.5, global_pool="avg")
    else:
        raise TrainingError(f"unknown --model {arch!r}; choose from {', '.join(MODELS)}")
    if weights is not None:
        loaded = load_fitting(model, weights, arch)
        log.info("loaded %d of %d tensors from %s", loaded, len(model.state_dict()), weights)
    return model


def head_linear(model: nn.Module) -> nn.Linear:
    """The attribute head: the last linear layer, after pooling and dropout."""
    return model.get_classifier() if hasattr(model, "get_classifier") else model.classifier[-1]


def head_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The attribute head's parameters."""
    return list(head_linear(model).parameters())


def set_phase(model: nn.Module, frozen: bool, unfreeze: float) -> None:
    """Frozen: only the head trains. Otherwise the head and the last `unfreeze` share of the backbone's tensors."""
    head = {id(p) for p in head_parameters(model)}
    backbone = [p for p in model.parameters() if id(p) not in head]
    keep = 0 if frozen else math.ceil(unfreeze * len(backbone))
    for i, p in enumerate(backbone):
        p.requires_grad = i >= len(backbone) - keep
    for p in head_parameters(model):
        p.requires_grad = True


# ---------------------------------------------------------------- test-time augmentation

def views(x: torch.Tensor, crop: int, tta: bool) -> list[torch.Tensor]:
    """The centre crop, and with tta its mirror and four crops shifted by a quarter of the margin each way."""
    _, _, h, w = x.shape
    top, left = (h - crop) // 2, (w - crop) // 2

    def at(t: int, lft: int) -> torch.Tensor:
        return x[:, :, t : t + crop, lft : lft + crop]

    centre = at(top, left)
    if not tta:
        return [centre]
    return [centre, centre.flip(-1), at(0, left), at(h - crop, left), at(top, 0), at(top, w - crop)]


@torch.no_grad()
def predict_probs(model, images: np.ndarray, pre: Preprocess, size: int, device: str, tta: bool,
                  batch: int = 128) -> np.ndarray:
    """Sigmoid probabilities (N, len(LABELS)), averaged over the TTA views when tta is on."""
    model.eval()
    outs = []
    for i in range(0, len(images), batch):
        x = torch.from_numpy(np.asarray(images[i : i + batch])).permute(0, 3, 1, 2).float().div_(255)
        probs = [torch.sigmoid(model(prepare(v, pre, size).to(device))).cpu() for v in views(x, pre.crop, tta)]
        outs.append(torch.stack(probs).mean(0).numpy())
    return np.concatenate(outs) if outs else np.zeros((0, len(LABELS)), np.float32)


def prepare(x: torch.Tensor, pre: Preprocess, size: int) -> torch.Tensor:
    """A 0..1 NCHW crop resized to the backbone's input side and normalised."""
    if x.shape[-1] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return normalise(x, pre)


# ---------------------------------------------------------------- metrics

def average_precision(probs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """AP per label (NaN where a label has no positive)."""
    from sklearn.metrics import average_precision_score

    return np.array([average_precision_score(targets[:, j], probs[:, j]) if targets[:, j].any() else np.nan
                     for j in range(targets.shape[1])])


def bce(probs: np.ndarray, targets: np.ndarray) -> float:
    """Mean binary cross-entropy of probabilities against 0/1 targets."""
    p = np.clip(probs.astype(np.float64), 1e-7, 1 - 1e-7)
    return float(-(targets * np.log(p) + (1 - targets) * np.log(1 - p)).mean()) if len(p) else float("nan")


def summary(probs: np.ndarray, targets: np.ndarray) -> dict:
    """mAP, mAP per attribute, and per-label AP, precision and recall at the paper's 0.5 threshold."""
    ap = average_precision(probs, targets)
    on = probs > 0.5
    per_label = {}
    for j, name in enumerate(LABELS):
        tp, pos = int((on[:, j] & (targets[:, j] > 0)).sum()), int(targets[:, j].sum())
        per_label[name] = {"ap": float(ap[j]), "support": pos,
                          "precision@0.5": tp / max(int(on[:, j].sum()), 1), "recall@0.5": tp / max(pos, 1)}
    groups = {a: float(np.nanmean([ap[j] for j, (g, _) in enumerate(ATTRIBUTES) if g == a])) for a in SHOP_VALUES}
    return {"mAP": float(np.nanmean(ap)), "mAP_by_attribute": groups, "per_label": per_label}


def speakable(val_probs, val_t, test_probs, test_t, precision: float = 0.9) -> dict:
    """For each usage value: the lowest threshold with `precision` on validation, and what it gives on test.

    The appliance may only speak a value that clears such a threshold; coverage is the share of
    test photos of that value it would name.
    """
    out = {}
    val_probs, test_probs = val_probs.astype(float), test_probs.astype(float)
    for name in SPEAKABLE:
        j = LABELS.index(name)
        order = np.argsort(-val_probs[:, j])
        hits = np.cumsum(val_t[order, j] > 0)
        prec = hits / np.arange(1, len(order) + 1)
        ok = np.flatnonzero((prec >= precision) & (np.arange(1, len(order) + 1) >= 20))
        if not len(ok):
            out[name] = {"threshold": None}
            continue
        thr = float(val_probs[order[ok[-1]], j])
        said = test_probs[:, j] >= thr
        pos = test_t[:, j] > 0
        out[name] = {"threshold": thr, "test_precision": float((said & pos).sum() / max(said.sum(), 1)),
                     "test_coverage": float((said & pos).sum() / max(pos.sum(), 1)), "test_said": int(said.sum())}
    return out


# ---------------------------------------------------------------- train

def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="wardrobe train attributes", add_help=add_help, formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Multi-label usage/season/gender heads with test-time augmentation (Ren et al.).",
    )
    engine.add_flags(p, "data", "epochs", "epoch_size", "batch_size", "limit", "seed", "threads", "device",
                     "cache_dir", "output_dir", "resume", "max_minutes",
                     data={"help": "datasets as for the classifier (product-photos carries the attributes); repeatable"},
                     epochs=20, batch_size=64, output_dir=Path("runs/attributes"))
    p.add_argument("--model", choices=MODELS, default="alexnet-slim")
    p.add_argument("--weights", type=Path, help="local pretrained weights (e.g. runs/default/best.pt); none: scratch")
    p.add_argument("--input-size", type=int, help="side the backbone sees (default: the 112 px crop)")
    p.add_argument("--frozen-epochs", type=int, default=10, help="with --weights: epochs with the backbone frozen")
    p.add_argument("--lr", type=float, default=1e-4, help="Adam rate while frozen (and from scratch: x10)")
    p.add_argument("--finetune-lr", type=float, default=1e-5, help="Adam rate once part of the backbone trains")
    p.add_argument("--unfreeze", type=float, default=0.3, help="share of the backbone's tensors unfrozen after that")
    p.add_argument("--eval-limit", type=int, help="evaluate on a fixed random subset of this many val/test photos "
                   "(for backbones too slow for the whole split on a CPU)")
    p.add_argument("--head-only", action="store_true",
                   help="the frozen phase alone, fast: pooled features computed once (centre and mirror), only "
                        "the head trained on them (needs --weights; the backbone stays exactly the classifier's)")
    p.add_argument("--compare", type=Path, metavar="DIR", help="instead of training: tabulate every run below DIR")
    p.add_argument("--attach", type=Path, nargs=2, metavar=("HEAD_RUN", "CLASSIFIER_RUN"),
                   help="instead of training: add a --head-only run's confident occasion outputs to a classifier "
                        "run, writing a new run to --output-dir for `wardrobe train export`")
    return p


def phase_of(args, epoch: int) -> tuple[bool, float]:
    """(backbone frozen, learning rate) for an epoch of the paper's schedule; from scratch all layers train."""
    if args.weights is None:
        return False, args.lr * 10
    if epoch < args.frozen_epochs:
        return True, args.lr
    return False, args.finetune_lr


def main(args: argparse.Namespace) -> dict:
    """Train, keep the best epoch by validation mAP, report test mAP with and without TTA."""
    if args.compare:
        return compare(args.compare)
    if args.attach:
        return attach(*args.attach, args.output_dir)
    if not args.data:
        raise TrainingError("--data is required (or --compare DIR)")
    dist = start_run(args)
    out: Path = args.output_dir
    pre = Preprocess()  # the default bundle's 128 -> 112 squash, so the classifier's image cache is reused
    size = args.input_size or pre.crop
    styles = read_styles(args.data)
    _, all_splits = build_splits(args.data, Taxonomy.load(), pre, args.seed, args.cache_dir, args.limit)
    splits = {}
    for name, s in all_splits.items():
        keep = np.flatnonzero(s.sources == "product-photos")
        if name != "train" and args.eval_limit and len(keep) > args.eval_limit:
            keep = np.sort(np.random.default_rng(0).choice(keep, args.eval_limit, replace=False))
        splits[name] = (s.images[keep] if len(keep) else s.images[:0],
                        attribute_targets([styles[s.records[i].path] for i in keep]))
        log.info("%s: %d product photos", name, len(keep))
    model = build_attribute_model(args.model, args.weights).to(args.device)
    model = model.to(memory_format=torch.channels_last)
    if args.head_only:
        if args.weights is None:
            raise TrainingError("--head-only trains a head on a pretrained backbone: give --weights")
        return head_only(model, splits, pre, size, args, out)
    checkpoint = engine.Checkpoint(out / "checkpoint.pt")
    progress, state = engine.Progress(), None
    if args.resume and checkpoint.path.exists():  # the optimizer is restored below, once its phase is known
        state = engine.load_checkpoint(checkpoint.path)
        model.load_state_dict(state["model"])
        progress = engine.Progress(state["epoch"] + 1, state["best"], 0, list(state["history"]))
        log.info("resumed from %s at epoch %d", checkpoint.path, progress.epoch)
    gen = torch.Generator().manual_seed(args.seed + progress.epoch)
    images, targets = splits["train"]
    epoch_size = min(args.epoch_size or len(targets), len(targets))
    current = {"optimizer": None, "phase": None, "ddp": None}

    def one_epoch(epoch: int) -> tuple[float, dict]:
        frozen, lr = phase_of(args, epoch)
        if (frozen, lr) != current["phase"]:  # a new phase: new trainable set, new Adam
            set_phase(model, frozen, args.unfreeze)
            current["ddp"] = dist.wrap(model, args.device)  # DDP follows the parameters trainable when it is built
            current["optimizer"] = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
            if state is not None and state.get("phase") == [frozen, lr]:
                current["optimizer"].load_state_dict(state["optimizer"])
            current["phase"] = (frozen, lr)
        t0 = time.monotonic()
        loss = train_one_epoch(current["ddp"], current["optimizer"], images, targets, epoch_size, pre, size, args,
                               gen, epoch, frozen, dist)
        dist.sync_buffers(model)
        val_probs = predict_probs(model, splits["val"][0], pre, size, args.device, tta=False)
        val = summary(val_probs, splits["val"][1])
        log.info("epoch %d (%s, lr %.0e): train loss %.4f, val mAP %.4f (%.0f s)", epoch,
                 "backbone frozen" if frozen else "training", lr, loss, val["mAP"], time.monotonic() - t0)
        return val["mAP"], {"train_loss": loss, "val_loss": bce(val_probs, splits["val"][1]), "frozen": frozen,
                            "lr": lr}

    def on_epoch(progress: engine.Progress, improved: bool) -> None:
        if not dist.main:
            return
        if improved:
            torch.save({"model": model.state_dict(), "epoch": progress.epoch, "arch": args.model, "labels": LABELS},
                       out / "best.pt")
        checkpoint.save(progress, model, current["optimizer"], None, phase=list(current["phase"]))
        report.plot_history(progress.history, out / "loss.png")

    # No early stop: the two phases are the paper's schedule.
    history = engine.fit(progress, one_epoch, args.epochs, args.epochs + 1, args.max_minutes, on_epoch,
                         stop_all=dist.any).history
    distributed.finish(dist)
    return finish(model, args, splits, pre, size, history, out) if dist.main else {}


def train_one_epoch(model, optimizer, images, targets, epoch_size, pre, size, args, gen, epoch, frozen,
                    dist=distributed.SINGLE) -> float:
    """One pass over a random epoch_size sample (this rank's shard) with the classifier's light augmentation."""
    from tqdm import tqdm

    model.train()
    if frozen:  # a frozen backbone keeps its batch-norm statistics
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eval()
    order = torch.randperm(len(targets), generator=gen)[:epoch_size]
    total, count = 0.0, 0
    bar = tqdm(dist.shard(order, args.batch_size), desc=f"epoch {epoch}", unit="batch", leave=False,
               disable=not dist.main)
    for idx in bar:
        idx = np.sort(idx.numpy())
        x = augment_batch(torch.from_numpy(np.asarray(images[idx])), pre.crop, "light", gen)
        x, y = prepare(x, pre, size).to(args.device), torch.from_numpy(targets[idx]).to(args.device)
        loss = F.binary_cross_entropy_with_logits(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(idx)
        count += len(idx)
        bar.set_postfix(loss=f"{total / count:.4f}")
    return dist.mean(total / max(count, 1))


@torch.no_grad()
def head_inputs(model, images: np.ndarray, pre: Preprocess, size: int, device: str, mirror: bool,
                batch: int = 256) -> torch.Tensor:
    """What the head sees (pooled features), (N, views, D): the centre crop, and its mirror with mirror."""
    model.eval()
    seen: list[torch.Tensor] = []
    hook = head_linear(model).register_forward_hook(lambda _m, inp, _o: seen.append(inp[0].detach().cpu()))
    try:
        out = []
        for i in range(0, len(images), batch):
            x = torch.from_numpy(np.asarray(images[i : i + batch])).permute(0, 3, 1, 2).float().div_(255)
            vs = views(x, pre.crop, tta=True)[:2] if mirror else views(x, pre.crop, tta=False)
            seen.clear()
            for v in vs:
                model(prepare(v, pre, size).to(device))
            out.append(torch.stack(seen, 1))
    finally:
        hook.remove()
    return torch.cat(out) if out else torch.zeros(0, 1, head_linear(model).in_features)


def head_only(model, splits, pre, size, args, out: Path) -> dict:
    """The paper's frozen phase on cached features: Adam on the head alone, a random view per photo per epoch."""
    from tqdm import tqdm

    feats = {"train": head_inputs(model, splits["train"][0], pre, size, args.device, mirror=True),
             "val": head_inputs(model, splits["val"][0], pre, size, args.device, mirror=False)[:, 0]}
    y = torch.from_numpy(splits["train"][1])
    head = head_linear(model)
    drop = nn.Dropout(0.5)
    opt = torch.optim.Adam(head.parameters(), lr=args.lr * 10)  # cached features: more steps are cheap
    gen = torch.Generator().manual_seed(args.seed)
    best, best_state, history = -1.0, None, []
    for epoch in tqdm(range(args.epochs), desc="head", unit="epoch"):
        t0 = time.monotonic()
        order = torch.randperm(len(y), generator=gen)
        view = torch.randint(0, feats["train"].shape[1], (len(y),), generator=gen)
        total = 0.0
        for idx in order.split(args.batch_size):
            loss = F.binary_cross_entropy_with_logits(head(drop(feats["train"][idx, view[idx]])), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        with torch.no_grad():
            val_probs = torch.sigmoid(head(feats["val"])).numpy()
        val = summary(val_probs, splits["val"][1])
        history.append({"epoch": epoch, "train_loss": total / max(len(y), 1), "val_loss": bce(val_probs, splits["val"][1]),
                        "val_score": val["mAP"], "frozen": True, "lr": args.lr * 10, "seconds": time.monotonic() - t0})
        if val["mAP"] > best:
            best, best_state = val["mAP"], {k: v.clone() for k, v in head.state_dict().items()}
    head.load_state_dict(best_state)
    torch.save({"model": model.state_dict(), "epoch": int(np.argmax([h["val_score"] for h in history])),
                "arch": args.model, "labels": LABELS}, out / "best.pt")
    report.plot_history(history, out / "loss.png")
    log.info("head trained on frozen features: best val mAP %.4f", best)
    return finish(model, args, splits, pre, size, history, out)


def finish(model, args, splits, pre, size, history, out: Path) -> dict:
    """Test the best epoch with and without TTA; write metrics.json, attributes.md and ap.png."""
    best = engine.load_checkpoint(out / "best.pt")
    model.load_state_dict(best["model"])
    probs = {(name, tta): predict_probs(model, splits[name][0], pre, size, args.device, tta)
             for name, tta in (("test", False), ("test", True), ("val", True))}
    test_t = splits["test"][1]
    results = {
        "model": args.model, "weights": str(args.weights) if args.weights else None, "input_size": size,
        "test_photos": len(test_t),
        "epochs": len(history), "best_epoch": best["epoch"], "train_seconds": sum(h["seconds"] for h in history),
        "params": sum(p.numel() for p in model.parameters()),
        "test": summary(probs["test", False], test_t), "test_tta": summary(probs["test", True], test_t),
        "speakable": speakable(probs["val", True], splits["val"][1], probs["test", True], test_t),
    }
    report.save_json(results, out / "metrics.json")
    rows = [{"label": n, "support": results["test"]["per_label"][n]["support"],
             "AP": results["test"]["per_label"][n]["ap"], "AP with TTA": results["test_tta"]["per_label"][n]["ap"],
             "precision@0.5": results["test_tta"]["per_label"][n]["precision@0.5"],
             "recall@0.5": results["test_tta"]["per_label"][n]["recall@0.5"]} for n in LABELS]
    (out / "attributes.md").write_text(report.markdown_table(rows))
    plot_ap(rows, out / "ap.png", args.model)
    log.info("test mAP %.4f, with TTA %.4f (%s)", results["test"]["mAP"], results["test_tta"]["mAP"],
             ", ".join(f"{a} {v:.3f}" for a, v in results["test_tta"]["mAP_by_attribute"].items()))
    return results


def attach(head_run: Path, classifier_run: Path, out: Path) -> dict:
    """The classifier run with the occasion values that reached 90 % precision on validation appended
    as extra outputs (rows of its last linear layer), each with its threshold.

    Only a head trained on the classifier's own frozen backbone fits: the garment and colour
    outputs then stay exactly what they were.
    """
    clf = torch.load(classifier_run / "best.pt", map_location="cpu", weights_only=True)
    head = torch.load(head_run / "best.pt", map_location="cpu", weights_only=True)
    metrics = json.loads((head_run / "metrics.json").read_text())
    w_key, b_key = "classifier.2.weight", "classifier.2.bias"
    if clf.get("arch") != "alexnet-slim" or head.get("arch") != "alexnet-slim":
        raise TrainingError("--attach works on alexnet-slim runs (the appliance's model)")
    body = [k for k in clf["model"] if k not in (w_key, b_key)]
    if any(k not in head["model"] or not torch.equal(clf["model"][k], head["model"][k]) for k in body):
        raise TrainingError(f"{head_run} was not trained on {classifier_run}'s frozen backbone (use --head-only "
                         f"--weights {classifier_run / 'best.pt'})")
    speak = {n: v["threshold"] for n, v in metrics["speakable"].items() if v.get("threshold") is not None}
    if not speak:
        raise TrainingError("no occasion reaches 90 % precision on validation: nothing worth saying, nothing attached")
    rows = [LABELS.index(n) for n in speak]
    state = dict(clf["model"])
    state[w_key] = torch.cat([clf["model"][w_key], head["model"][w_key][rows]])
    state[b_key] = torch.cat([clf["model"][b_key], head["model"][b_key][rows]])
    out.mkdir(parents=True, exist_ok=True)
    torch.save({**clf, "model": state, "occasions": speak,
                "occasion_metrics": {n: metrics["speakable"][n] for n in speak}}, out / "best.pt")
    log.info("attached %s to %s in %s", ", ".join(f"{n} (>= {t:.2f})" for n, t in speak.items()), classifier_run, out)
    return {"occasions": speak}


def plot_ap(rows: list[dict], path: Path, title: str) -> None:
    """Per-label test AP with and without TTA."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(10, 4))
    ax.bar(x - 0.2, [r["AP"] for r in rows], 0.4, label="centre crop")
    ax.bar(x + 0.2, [r["AP with TTA"] for r in rows], 0.4, label="TTA (flip + 4 shifts)")
    ax.set_xticks(x, [r["label"] for r in rows], rotation=45, ha="right")
    ax.set_ylabel("test average precision"), ax.set_title(title), ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def compare(root: Path) -> dict:
    """mAP and per-attribute AP, with and without TTA, for every run below root, to root/attributes.md."""
    runs = {p.parent.name: json.loads(p.read_text()) for p in sorted(root.glob("*/metrics.json"))}
    runs = {k: v for k, v in runs.items() if "test_tta" in v}
    if not runs:
        raise TrainingError(f"no attribute runs (*/metrics.json) below {root}")
    names = list(runs)
    lines = ["| | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]

    def row(label: str, get) -> None:
        lines.append(f"| {label} | " + " | ".join(get(runs[n]) for n in names) + " |")

    row("**mAP** (centre / TTA)", lambda r: f"**{r['test']['mAP']:.3f} / {r['test_tta']['mAP']:.3f}**")
    for a in SHOP_VALUES:
        row(f"{a} mAP", lambda r, a=a: f"{r['test']['mAP_by_attribute'][a]:.3f} / {r['test_tta']['mAP_by_attribute'][a]:.3f}")
    for lab in LABELS:
        row(f"AP {lab}", lambda r, lab=lab: f"{r['test']['per_label'][lab]['ap']:.3f} / "
                                            f"{r['test_tta']['per_label'][lab]['ap']:.3f}")
    row("parameters", lambda r: f"{r['params']:,}")
    row("input side", lambda r: str(r["input_size"]))
    row("test photos", lambda r: str(r.get("test_photos", "")))
    row("weights", lambda r: Path(r["weights"]).name if r["weights"] else "none (scratch)")
    row("epochs (best)", lambda r: f"{r['epochs']} ({r['best_epoch'] + 1})")
    row("training minutes", lambda r: f"{r['train_seconds'] / 60:.0f}")
    text = "\n".join(lines) + "\n"
    (root / "attributes.md").write_text(text)
    print(text)
    return runs
