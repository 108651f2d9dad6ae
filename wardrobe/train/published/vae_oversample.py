"""VAE latent oversampling for rare classes, after Park, "Improving Fashion Style Classification
Accuracy using VAE in Class Imbalance Problem".

Three stages, as in the paper:
1. a backbone gives global-average-pooled features (here AlexNet-slim, trained on product photos
   of *other* article types than the 14 studied, so it has never seen the rare classes: the
   paper's ImageNet pretraining, scaled down);
2. a beta-VAE learns those frozen features (z of 128 dimensions, beta raised each epoch up to
   epoch 90 of 100, Adam);
3. the final classifier learns [feature, z] with z drawn from the encoder, drawing more samples for
   the minority classes (x30, x50). At test time z is the encoder's mean.

The protocol: 14 classes, 5 of them made minority with n_f = 5, 10, 30, 50 training photos, 9
majority classes kept whole; `acc` (all test photos) and `acc_h` (harmonic mean of the majority
and minority classes' mean per-class accuracy), for the backbone alone, plain oversampling x30
and x50, and VAE sampling x30 and x50, over several seeds.

    wardrobe train vae-oversample --data clothing-photos=DIR --data product-photos=DIR \\
        --output-dir runs/vae-oversample --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from wardrobe.nets import AlexNetSlim
from wardrobe.preprocess import Preprocess
from wardrobe.taxonomy import Taxonomy
from wardrobe.train import engine, report
from wardrobe.train.data import build_splits
from wardrobe.train.engine import augment_batch, normalise, start

log = logging.getLogger(__name__)

MAJORITY = ["Flip Flops", "Briefs", "Belts", "Socks", "Formal Shoes", "Shorts", "Trousers", "Bra", "Sarees"]
MINORITY = ["Sandals", "Jeans", "Flats", "Dresses", "Track Pants"]
"""The 14 article types studied; each minority class has a close majority neighbour (sandals and
flip-flops, jeans and trousers, flats and formal shoes, dresses and sarees, track pants and shorts)."""
METHODS = ("backbone", "oversample-x30", "oversample-x50", "vae-x30", "vae-x50")
PAPER_ACC_H_NF10 = {"backbone": 3.44, "oversample-x30": 12.83, "vae-x50": 37.24}
"""The paper's acc_h (%) at n_f = 10 that the issue quotes."""


# ---------------------------------------------------------------- stage 1: backbone and features

def train_backbone(images, targets, n_classes, args, out: Path) -> AlexNetSlim:
    """AlexNet-slim trained from scratch on the other article types (cached in the run folder)."""
    path = out / "backbone.pt"
    model = AlexNetSlim(n_classes)
    if path.exists():
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        log.info("backbone from %s", path)
        return model
    from tqdm import tqdm

    pre = Preprocess()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
    steps = args.backbone_epochs * math.ceil(args.backbone_epoch_size / 128)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.05, total_steps=steps, pct_start=0.15)
    gen = torch.Generator().manual_seed(1234)
    rng = np.random.default_rng(1234)
    for epoch in range(args.backbone_epochs):
        model.train()
        order = rng.choice(len(targets), size=min(args.backbone_epoch_size, len(targets)), replace=False)
        bar = tqdm(np.array_split(order, math.ceil(len(order) / 128)), desc=f"backbone {epoch}", leave=False)
        for idx in bar:
            idx = np.sort(idx)
            x = normalise(augment_batch(torch.from_numpy(np.asarray(images[idx])), pre.crop, "light", gen), pre)
            loss = F.cross_entropy(model(x), torch.from_numpy(targets[idx]), label_smoothing=0.1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            bar.set_postfix(loss=f"{loss.item():.3f}")
        log.info("backbone epoch %d: last loss %.3f", epoch, loss.item())
    torch.save(model.state_dict(), path)
    return model


@torch.no_grad()
def pooled_features(model: AlexNetSlim, images: np.ndarray, pre: Preprocess, augment: str = "none",
                    gen: torch.Generator | None = None, batch: int = 256) -> np.ndarray:
    """Global-average-pooled features (N, 256), the backbone frozen: centre crops, or one
    augmented view per photo (augment as in training)."""
    model.eval()
    gen = gen or torch.Generator()
    out = []
    for i in range(0, len(images), batch):
        x = augment_batch(torch.from_numpy(np.array(images[i : i + batch])), pre.crop, augment, gen)
        out.append(model.pool(model.features(normalise(x, pre))).flatten(1).numpy())
    return np.concatenate(out) if out else np.zeros((0, 256), np.float32)


# ---------------------------------------------------------------- stage 2: the beta-VAE

class FeatureVAE(nn.Module):
    """A beta-VAE over backbone features: MLP encoder to (mu, log variance) of z, MLP decoder back."""

    def __init__(self, dim: int, z: int = 128, hidden: int = 512) -> None:
        super().__init__()
        self.enc = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, 2 * z))
        self.dec = nn.Sequential(nn.Linear(z, hidden), nn.ReLU(), nn.Linear(hidden, dim))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.enc(x).chunk(2, dim=1)
        return mu, logvar.clamp(-10, 10)

    def sample(self, x: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
        mu, logvar = self.encode(x)
        return mu + torch.randn(mu.shape, generator=gen) * (0.5 * logvar).exp()

    def loss(self, x: torch.Tensor, beta: float, gen: torch.Generator) -> torch.Tensor:
        mu, logvar = self.encode(x)
        z = mu + torch.randn(mu.shape, generator=gen) * (0.5 * logvar).exp()
        recon = F.mse_loss(self.dec(z), x, reduction="none").sum(1).mean()
        kl = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)).mean()
        return recon + beta * kl


def beta_at(epoch: int, beta_max: float, warm_epochs: int = 90) -> float:
    """The paper's schedule: beta rises each epoch, reaching beta_max at epoch 90, then stays."""
    return beta_max * min(1.0, (epoch + 1) / warm_epochs)


def train_vae(x: np.ndarray, args, seed: int) -> FeatureVAE:
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    vae = FeatureVAE(x.shape[1], args.z_dim)
    opt = torch.optim.Adam(vae.parameters(), lr=1e-3)
    xt = torch.from_numpy(x)
    for epoch in range(args.vae_epochs):
        beta = beta_at(epoch, args.beta)
        for idx in torch.randperm(len(xt), generator=gen).split(128):
            loss = vae.loss(xt[idx], beta, gen)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return vae.eval()


# ---------------------------------------------------------------- stage 3: the final classifier

def mlp_head(width: int, n_classes: int) -> nn.Module:
    """The final classifier: one hidden layer of 256 with dropout."""
    return nn.Sequential(nn.Linear(width, 256), nn.ReLU(), nn.Dropout(0.3), nn.Linear(256, n_classes))


def fit_classifier(x: np.ndarray, y: np.ndarray, n_classes: int, seed: int, epochs: int = 60) -> nn.Module:
    """A one-hidden-layer classifier on the given inputs (Adam, cross-entropy)."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    clf = mlp_head(x.shape[1], n_classes)
    opt = torch.optim.Adam(clf.parameters(), lr=1e-3, weight_decay=1e-4)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(epochs):
        clf.train()
        for idx in torch.randperm(len(xt), generator=gen).split(128):
            loss = F.cross_entropy(clf(xt[idx]), yt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return clf.eval()


def scores(pred: np.ndarray, y: np.ndarray, minority: set[int], n_classes: int) -> dict:
    """acc over all test photos, mean per-class accuracy of each group, and their harmonic mean acc_h."""
    per_class = np.array([(pred[y == c] == c).mean() if (y == c).any() else np.nan for c in range(n_classes)])
    maj = float(np.nanmean([per_class[c] for c in range(n_classes) if c not in minority]))
    mino = float(np.nanmean([per_class[c] for c in minority]))
    acc_h = 2 * maj * mino / (maj + mino) if maj + mino else 0.0
    return {"acc": float((pred == y).mean()), "acc_majority": maj, "acc_minority": mino, "acc_h": acc_h}


def imbalanced(y: np.ndarray, minority: set[int], n_f: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of a training set with every majority photo and n_f photos of each minority class."""
    keep = [np.flatnonzero(y == c) if c not in minority else rng.permutation(np.flatnonzero(y == c))[:n_f]
            for c in np.unique(y)]
    return np.sort(np.concatenate(keep))


def run_method(method: str, fx, fy, tx, ty, minority, n_classes, args, seed) -> dict:
    """Train one method on the imbalanced features (fx, fy) and score it on the test features (tx, ty)."""
    if method == "backbone":
        clf = fit_classifier(fx, fy, n_classes, seed, args.clf_epochs)
        pred = clf(torch.from_numpy(tx)).argmax(1).numpy()
        return scores(pred, ty, minority, n_classes)
    times = int(method.rsplit("x", 1)[1])
    copies = np.where(np.isin(fy, list(minority)), times, 1)
    rep = np.repeat(np.arange(len(fy)), copies)
    if method.startswith("oversample"):
        clf = fit_classifier(fx[rep], fy[rep], n_classes, seed, max(3, args.clf_epochs * len(fy) // len(rep)))
        pred = clf(torch.from_numpy(tx)).argmax(1).numpy()
        return scores(pred, ty, minority, n_classes)
    vae = train_vae(fx, args, seed)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        z = vae.sample(torch.from_numpy(fx[rep]), gen).numpy()  # a fresh z for every copy
        tz = vae.encode(torch.from_numpy(tx))[0].numpy()
    clf = fit_classifier(np.hstack([fx[rep], z]), fy[rep], n_classes, seed,
                         max(3, args.clf_epochs * len(fy) // len(rep)))
    pred = clf(torch.from_numpy(np.hstack([tx, tz]))).argmax(1).numpy()
    return scores(pred, ty, minority, n_classes)


# ---------------------------------------------------------------- command line

def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="wardrobe train vae-oversample", add_help=add_help, formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="VAE latent oversampling for minority classes (Park): the paper's protocol on product photos.",
    )
    engine.add_flags(p, "data", "limit", "threads", "cache_dir", "output_dir", required=("data",),
                     data={"help": "datasets as for the classifier (the split is the classifier's); product-photos needed"},
                     output_dir=Path("runs/vae-oversample"))
    p.add_argument("--n-f", type=int, nargs="+", default=[5, 10, 30, 50], help="minority training photos per class")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    p.add_argument("--backbone-epochs", type=int, default=6)
    p.add_argument("--backbone-epoch-size", type=int, default=12000)
    p.add_argument("--z-dim", type=int, default=128)
    p.add_argument("--beta", type=float, default=1.0, help="beta reached at epoch 90")
    p.add_argument("--vae-epochs", type=int, default=100)
    p.add_argument("--clf-epochs", type=int, default=60, help="final classifier epochs over the un-repeated set")
    p.add_argument("--resume", action="store_true", help="keep the rows results.json already has")
    return p


def main(args: argparse.Namespace) -> dict:
    """Backbone once, features once, then every n_f x seed x method; writes results.json, table.md, acc_h.png."""
    start(0, args.threads, args.output_dir)
    out: Path = args.output_dir
    _, splits = build_splits(args.data, Taxonomy.load(), Preprocess(), 0, args.cache_dir, args.limit)
    studied = MAJORITY + MINORITY
    index = {c: i for i, c in enumerate(studied)}
    minority = {index[c] for c in MINORITY}
    feats_path = out / "features.npz"
    if feats_path.exists():
        feats = dict(np.load(feats_path))
        log.info("features from %s", feats_path)
    else:
        tr = splits["train"]
        labels = np.array([r.label if r.source == "product-photos" else "" for r in tr.records])
        other = np.flatnonzero((labels != "") & ~np.isin(labels, studied))
        other_classes = sorted(set(labels[other]))
        log.info("backbone: %d photos of %d other article types", len(other), len(other_classes))
        backbone = train_backbone(tr.images[other], np.array([other_classes.index(v) for v in labels[other]]),
                                  len(other_classes), args, out)
        feats = {}
        for name, s in splits.items():
            keep = np.array([i for i, r in enumerate(s.records) if r.source == "product-photos" and r.label in index],
                            dtype=np.int64)
            feats[f"{name}_x"] = pooled_features(backbone, s.images[keep] if len(keep) else s.images[:0], Preprocess())
            feats[f"{name}_y"] = np.array([index[s.records[i].label] for i in keep], dtype=np.int64)
        np.savez(feats_path, **feats)
    for name in ("train", "test"):
        log.info("%s: %s", name, ", ".join(f"{c} {int((feats[f'{name}_y'] == i).sum())}" for c, i in index.items()))
    mean, std = feats["train_x"].mean(0), feats["train_x"].std(0) + 1e-6
    x = {k: ((feats[f"{k}_x"] - mean) / std).astype(np.float32) for k in ("train", "test")}
    rows: list[dict] = []
    if args.resume and (out / "results.json").exists():
        rows = json.loads((out / "results.json").read_text())["rows"]
        log.info("resuming: %d rows already measured", len(rows))
    for n_f in args.n_f:
        for seed in args.seeds:
            sel = imbalanced(feats["train_y"], minority, n_f, np.random.default_rng(seed))
            for method in args.methods:
                if any(r["n_f"] == n_f and r["seed"] == seed and r["method"] == method for r in rows):
                    continue
                t0 = time.monotonic()
                r = run_method(method, x["train"][sel], feats["train_y"][sel], x["test"], feats["test_y"], minority,
                               len(studied), args, seed)
                rows.append({"n_f": n_f, "seed": seed, "method": method, **r, "seconds": time.monotonic() - t0})
                log.info("n_f %d seed %d %-15s acc %.3f acc_h %.3f (majority %.3f, minority %.3f)", n_f, seed,
                         method, r["acc"], r["acc_h"], r["acc_majority"], r["acc_minority"])
                # Saved after every row, so a stopped run keeps what it measured (and --resume skips it).
                report.save_json({"classes": studied, "minority": MINORITY, "rows": rows}, out / "results.json")
    rows = [r for r in rows if r["n_f"] in args.n_f and r["seed"] in args.seeds and r["method"] in args.methods]
    table = summarise(rows, args.n_f, args.methods)
    (out / "table.md").write_text(table)
    plot(rows, args.n_f, args.methods, out / "acc_h.png")
    print(table)
    return {"rows": rows}


def summarise(rows: list[dict], n_fs: list[int], methods: list[str]) -> str:
    """Mean +- std over seeds of acc and acc_h (%), one row per method, one column pair per n_f."""
    head = "| method | " + " | ".join(f"n_f={n} acc | n_f={n} acc_h" for n in n_fs) + " | paper acc_h, n_f=10 |"
    lines = [head, "|---|" + "---|---|" * len(n_fs) + "---|"]
    for m in methods:
        cells = []
        for n in n_fs:
            sel = [r for r in rows if r["method"] == m and r["n_f"] == n]
            for key in ("acc", "acc_h"):
                v = 100 * np.array([r[key] for r in sel])
                cells.append(f"{v.mean():.1f} ± {v.std():.1f}" if len(v) else "")
        paper = PAPER_ACC_H_NF10.get(m)
        lines.append(f"| {m} | " + " | ".join(cells) + f" | {paper if paper is not None else ''} |")
    return "\n".join(lines) + "\n"


def plot(rows, n_fs, methods, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for m in methods:
        ys = [np.mean([r["acc_h"] for r in rows if r["method"] == m and r["n_f"] == n]) for n in n_fs]
        ax.plot(n_fs, [100 * y for y in ys], marker="o", label=m)
    ax.set_xlabel("minority training photos per class (n_f)"), ax.set_ylabel("acc_h (%)"), ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)

