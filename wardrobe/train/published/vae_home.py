"""Park's winner (VAE latent sampling) on the real imbalance of the home photos.

The product-photo study (`vae_oversample`) makes classes rare by hand; the home photos are rare
by nature: 17 blouses and 24 tops against 573 T-shirts in the training split. This takes a trained
classifier run (the default recipe), freezes its backbone, and retrains only the garment outputs
of its last layer from the pooled features, four ways:

- `head`: a fresh head drawn with the recipe's own sampler (class counts to the -0.5, half the
  draws from home photos): the control, so that retraining alone is not mistaken for a gain;
- `oversample-xK`: the same, with the rare classes' home photos drawn K times as often;
- `vae-xK`: the same draws, each input [feature, z] with a fresh z from a beta-VAE trained on the
  frozen features (Park's stage 2 and 3); at test time z is the encoder's mean.

The shipped layer itself is the first row. Rare classes are fixed before measuring: home labels
with fewer than --rare-below home training photos. Training features are taken from augmented
views (the backbone has memorised the centre crops of its own training photos). Scores are on the
home and product validation photos, with the test split reported beside them, never used to choose.

    wardrobe train vae-home --run runs/default --data clothing-photos=DIR --data product-photos=DIR \\
        --output-dir runs/vae-home
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from wardrobe.errors import TrainingError
from wardrobe.preprocess import Preprocess
from wardrobe.taxonomy import Taxonomy
from wardrobe.train import engine, report
from wardrobe.train.data import build_splits
from wardrobe.train.engine import sample_weights, start
from wardrobe.train.models import build_model
from wardrobe.train.published.vae_oversample import FeatureVAE, mlp_head, pooled_features, train_vae

log = logging.getLogger(__name__)

HOME = "clothing-photos"


def fit_head(x: np.ndarray, y: np.ndarray, draws: np.ndarray, n_classes: int, seed: int,
             z_of=None) -> nn.Module:
    """The final classifier of vae_oversample trained on the given draws (rows of x), one pass
    in batches of 256; z_of(rows, gen), when given, appends a fresh latent sample to every input."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    width = x.shape[1] + (0 if z_of is None else z_of(np.zeros(1, np.int64), gen).shape[1])
    head = mlp_head(width, n_classes)
    opt = torch.optim.Adam(head.parameters(), lr=1e-3, weight_decay=1e-4)
    steps = np.array_split(draws, max(1, len(draws) // 256))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, len(steps))
    head.train()
    for rows in steps:
        inp = torch.from_numpy(x[rows])
        if z_of is not None:
            inp = torch.cat([inp, z_of(rows, gen)], 1)
        loss = F.cross_entropy(head(inp), torch.from_numpy(y[rows]), label_smoothing=0.1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return head.eval()


def _mean(values) -> float:
    """The mean, or nan for no values (a split without photos of some class)."""
    values = np.asarray(values, dtype=float)
    return float(values[~np.isnan(values)].mean()) if (~np.isnan(values)).any() else float("nan")


def recalls(pred: np.ndarray, y: np.ndarray, classes: list[str]) -> dict[str, float]:
    return {c: float((pred[y == i] == i).mean()) for i, c in enumerate(classes) if (y == i).any()}


def score(pred: np.ndarray, feats: dict, split: str, classes: list[str], rare: list[str]) -> dict:
    """Home top-1, mean recall of the rare and the other home classes, product top-1, per-class recall."""
    home = feats[f"{split}_src"] == HOME
    y = feats[f"{split}_y"]
    rec = recalls(pred[home], y[home], classes)
    rare_idx = np.isin(y[home], [classes.index(c) for c in rare])
    return {
        "home_top1": _mean(pred[home] == y[home]),
        "product_top1": _mean(pred[~home] == y[~home]),
        "rare_recall": _mean([v for c, v in rec.items() if c in rare]),
        "rare_photos_right": _mean(pred[home][rare_idx] == y[home][rare_idx]),
        "other_recall": _mean([v for c, v in rec.items() if c not in rare]),
        "per_class": rec,
    }


def feature_vae(x: np.ndarray, args, seed: int, out: Path) -> FeatureVAE:
    """Park's stage 2 on the frozen features, one per seed, kept in the output folder."""
    path = out / f"vae-seed{seed}.pt"
    if path.exists():
        vae = FeatureVAE(x.shape[1], args.z_dim)
        vae.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return vae.eval()
    vae = train_vae(x, args, seed)
    torch.save(vae.state_dict(), path)
    return vae


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="wardrobe train vae-home", add_help=add_help, formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="VAE latent sampling against plain oversampling for the home photos' rare garments.",
    )
    p.add_argument("--run", type=Path, required=True, help="a classifier run folder (its best.pt)")
    engine.add_flags(p, "data", "limit", "threads", "cache_dir", "output_dir", required=("data",),
                     data={"help": "the run's datasets"}, output_dir=Path("runs/vae-home"))
    p.add_argument("--times", type=int, nargs="+", default=[2, 5, 50], help="how much more often rare photos are drawn")
    p.add_argument("--rare-below", type=int, default=100, help="rare: fewer home training photos than this")
    p.add_argument("--views", type=int, default=4, help="augmented views per training photo")
    p.add_argument("--draws", type=int, default=150_000, help="training draws per head")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--z-dim", type=int, default=128)
    p.add_argument("--beta", type=float, default=1.0)
    p.add_argument("--vae-epochs", type=int, default=100)
    return p


def run_key(ckpt: dict) -> str:
    """Names the trained weights, so that an output folder's cache is only reused for the same run."""
    return hashlib.sha256(ckpt["model"]["classifier.2.weight"].numpy().tobytes()).hexdigest()[:16]


def extract(args, ckpt: dict, out: Path) -> dict:
    """Features of every split from the run's frozen backbone (cached in the output folder)."""
    path = out / "features.npz"
    if path.exists():
        feats = dict(np.load(path))
        if str(feats.get("run_key")) == run_key(ckpt):
            log.info("features from %s", path)
            return feats
        log.info("%s holds another run's features and results: starting afresh", out)
        for old in [path, out / "results.json", *out.glob("vae-seed*.pt")]:
            old.unlink(missing_ok=True)
    pre = Preprocess.from_dict(ckpt["preprocess"])
    classes, splits = build_splits(args.data, Taxonomy.load(), pre, ckpt["args"]["seed"], args.cache_dir, args.limit)
    if classes != ckpt["classes"]:
        raise TrainingError(f"--data gives other classes than {args.run} was trained on: pass the run's own datasets")
    model = build_model(ckpt["arch"], ckpt["model"]["classifier.2.weight"].shape[0])
    model.load_state_dict(ckpt["model"])
    feats: dict[str, np.ndarray] = {}
    gen = torch.Generator().manual_seed(0)
    for name, s in splits.items():
        feats[f"{name}_y"], feats[f"{name}_src"] = s.targets, s.sources.astype(str)
        feats[f"{name}_x"] = pooled_features(model, s.images, pre)
        log.info("%s: %d photos", name, len(s.targets))
    tr = splits["train"]
    feats["train_views"] = np.stack([pooled_features(model, tr.images, pre, "light", gen) for _ in range(args.views)])
    feats["train_weights"] = sample_weights(tr, float(ckpt["args"]["balance"]), float(ckpt["args"]["home_share"]))
    feats["run_key"] = np.array(run_key(ckpt))
    np.savez(path, **feats)
    return feats


def main(args: argparse.Namespace) -> dict:
    start(0, args.threads, args.output_dir)
    out: Path = args.output_dir
    ckpt = engine.load_checkpoint(args.run / "best.pt")
    if ckpt.get("arch") != "alexnet-slim":
        raise TrainingError(f"{args.run}: vae-home works on alexnet-slim runs (the appliance's model)")
    classes = ckpt["classes"]
    feats = extract(args, ckpt, out)
    n, (v, m, d) = len(classes), feats["train_views"].shape
    home = feats["train_src"] == HOME
    counts = np.bincount(feats["train_y"][home], minlength=n)
    rare = [c for i, c in enumerate(classes) if 0 < counts[i] < args.rare_below]
    log.info("rare home classes (< %d training photos): %s", args.rare_below,
             ", ".join(f"{c} {counts[classes.index(c)]}" for c in rare))
    # Every training row is one augmented view of one photo; a draw picks a photo, then a view.
    x_train = feats["train_views"].reshape(v * m, d)
    y_train = np.tile(feats["train_y"], v)
    mean, std = x_train.mean(0), x_train.std(0) + 1e-6
    norm = lambda a: ((a - mean) / std).astype(np.float32)  # noqa: E731
    x_train = norm(x_train)
    evals = {s: norm(feats[f"{s}_x"]) for s in ("val", "test")}
    rare_photo = home & np.isin(feats["train_y"], [classes.index(c) for c in rare])

    shipped_w = ckpt["model"]["classifier.2.weight"][:n].numpy()
    shipped_b = ckpt["model"]["classifier.2.bias"][:n].numpy()
    rows: list[dict] = []
    if (out / "results.json").exists():  # rows already measured are kept (a stopped run continues)
        kept = json.loads((out / "results.json").read_text())
        if kept["rare"] == rare:  # the same rare classes (--rare-below), else their scores mean something else
            rows = [r for r in kept["rows"] if r["method"] != "shipped"]
    for s in ("val", "test"):
        pred = (feats[f"{s}_x"] @ shipped_w.T + shipped_b).argmax(1)
        rows.append({"method": "shipped", "seed": 0, "split": s, **score(pred, feats, s, classes, rare)})
    methods = ["head"] + [f"{kind}-x{k}" for k in args.times for kind in ("oversample", "vae")]
    vaes: dict[int, FeatureVAE] = {}
    for seed in args.seeds:
        for method in methods:
            if any(r["method"] == method and r["seed"] == seed for r in rows):
                continue
            t0 = time.monotonic()
            times = int(method.rsplit("x", 1)[1]) if "-x" in method else 1
            rng = np.random.default_rng([seed, times])  # the same draws for oversample-xK and vae-xK
            p = feats["train_weights"] * np.where(rare_photo, times, 1)
            draws = rng.choice(m, size=args.draws, p=p / p.sum()) + m * rng.integers(0, v, size=args.draws)
            if method.startswith("vae") and seed not in vaes:
                vaes[seed] = feature_vae(x_train, args, seed, out)
            vae = vaes[seed] if method.startswith("vae") else None
            z_of = None if vae is None else (lambda rows, gen, vae=vae: vae.sample(torch.from_numpy(x_train[rows]), gen))
            head = fit_head(x_train, y_train, draws, n, seed, z_of)
            for s in ("val", "test"):
                inp = torch.from_numpy(evals[s])
                with torch.no_grad():
                    if vae is not None:
                        inp = torch.cat([inp, vae.encode(inp)[0]], 1)
                    pred = head(inp).argmax(1).numpy()
                rows.append({"method": method, "seed": seed, "split": s, **score(pred, feats, s, classes, rare),
                             "seconds": time.monotonic() - t0})
            r = rows[-2]
            log.info("seed %d %-15s val: home %.3f, rare %.3f, other %.3f, product %.3f (%.0f s)", seed, method,
                     r["home_top1"], r["rare_recall"], r["other_recall"], r["product_top1"], time.monotonic() - t0)
            report.save_json({"rare": rare, "rows": rows}, out / "results.json")
    rows = [r for r in rows if r["method"] == "shipped" or (r["method"] in methods and r["seed"] in args.seeds)]
    table = summarise(rows, ["shipped", *methods], rare, counts, classes)
    (out / "table.md").write_text(table)
    plot_tradeoff(rows, ["shipped", *methods], out / "tradeoff.png")
    print(table)
    return {"rare": rare, "rows": rows}


def summarise(rows: list[dict], methods: list[str], rare: list[str], counts: np.ndarray, classes: list[str]) -> str:
    """Mean over seeds, validation then test: the headline table and the rare classes' recall."""
    keys = ("home_top1", "rare_recall", "rare_photos_right", "other_recall", "product_top1")
    lines = ["| method | " + " | ".join(f"val {k}" for k in keys) + " | " + " | ".join(f"test {k}" for k in keys) + " |",
             "|---|" + "---|" * (2 * len(keys))]
    for m in methods:
        cells = []
        for s in ("val", "test"):
            sel = [r for r in rows if r["method"] == m and r["split"] == s]
            cells += [f"{100 * _mean([r[k] for r in sel]):.1f}" for k in keys]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    lines += ["", "Rare classes' recall on validation (home training photos in brackets):", "",
              "| method | " + " | ".join(f"{c} ({counts[classes.index(c)]})" for c in rare) + " |",
              "|---|" + "---|" * len(rare)]
    for m in methods:
        sel = [r for r in rows if r["method"] == m and r["split"] == "val"]
        lines.append(f"| {m} | " + " | ".join(f"{100 * _mean([r['per_class'].get(c, np.nan) for r in sel]):.0f}"
                                             for c in rare) + " |")
    return "\n".join(lines) + "\n"


def plot_tradeoff(rows: list[dict], methods: list[str], path: Path) -> None:
    """Validation recall of the rare against the other home classes, one point per method (seed mean)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for kind, marker in (("oversample", "o"), ("vae", "s")):
        ms = [m for m in methods if m.startswith(kind)]
        pts = [[100 * _mean([r[k] for r in rows if r["method"] == m and r["split"] == "val"])
                for k in ("rare_recall", "other_recall")] for m in ms]
        if pts:
            ax.plot(*zip(*pts, strict=True), marker=marker, label=kind)
            for m, (x, y) in zip(ms, pts, strict=True):
                ax.annotate(m.rsplit("-", 1)[1], (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    for m, marker in (("shipped", "*"), ("head", "^")):
        sel = [r for r in rows if r["method"] == m and r["split"] == "val"]
        if sel:
            ax.scatter(100 * _mean([r["rare_recall"] for r in sel]), 100 * _mean([r["other_recall"] for r in sel]),
                       marker=marker, s=80, label=m, zorder=3)
    ax.set_xlabel("rare home classes: mean recall (%)"), ax.set_ylabel("other home classes: mean recall (%)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
