"""Train the garment classifier: get_args_parser, main, train_one_epoch, evaluate (torchvision style)."""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from wardrobe.colours import FAMILIES
from wardrobe.preprocess import Preprocess
from wardrobe.taxonomy import Taxonomy
from wardrobe.train import distributed, report
from wardrobe.train.data import Split, build_splits
from wardrobe.train.models import ARCHITECTURES, build_model, set_trainable

log = logging.getLogger(__name__)

PRESETS = {
    # The original system: torchvision AlexNet, Resize 227 -> CenterCrop 224, Adam 1e-3, batch 256.
    "original": dict(model="alexnet", resize=227, crop=224, resize_mode="short-side", opt="adam", lr=1e-3,
                     batch_size=256, augment="none", label_smoothing=0.0, balance=0.0, home_share=0.0),
    # The shipped default: an AlexNet-family net small enough to train on a CPU and run on a Pi.
    "default": dict(model="alexnet-slim", resize=128, crop=112, resize_mode="squash", opt="sgd", lr=0.05,
                    batch_size=128, augment="light", label_smoothing=0.1, balance=0.5, home_share=0.5),
}


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    """Command-line flags, kebab-case, defaults shown in --help."""
    p = argparse.ArgumentParser(
        prog="wardrobe train classifier", description="Train the garment classifier.", add_help=add_help,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--data", action="append", required=True, metavar="KIND=PATH",
                   help="a dataset: clothing-photos=DIR, product-photos=DIR or folder=DIR (repeatable)")
    p.add_argument("--preset", choices=sorted(PRESETS), default="default", help="recipe to start from")
    p.add_argument("--model", choices=ARCHITECTURES, help="architecture (overrides the preset)")
    p.add_argument("--weights", type=Path, help="local pretrained weights file (state dict); none: from scratch")
    p.add_argument("--stage", default="all", help="trainable layers: last, last2, last3, fc or all")
    p.add_argument("--taxonomy", type=Path, help="taxonomy CSV (default: the packaged one)")
    p.add_argument("--resize", type=int, help="resize side in pixels")
    p.add_argument("--crop", type=int, help="crop side in pixels")
    p.add_argument("--epochs", type=int, default=24)
    p.add_argument("--epoch-size", type=int, default=0, help="samples per epoch (0: the training split's size)")
    p.add_argument("--batch-size", "-b", type=int)
    p.add_argument("--opt", choices=("sgd", "adam", "adamw"))
    p.add_argument("--lr", type=float)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--warmup-epochs", type=float, default=1.0)
    p.add_argument("--label-smoothing", type=float)
    p.add_argument("--balance", type=float, help="0: natural class frequencies, 1: classes sampled equally")
    p.add_argument("--home-share", type=float, help="share of each batch from home photos (0: natural)")
    p.add_argument("--colour-weight", type=float, default=0.5,
                   help="weight of the colour-family head's loss (0: no colour head)")
    p.add_argument("--patience", type=int, default=8, help="stop after this many epochs without a better val score")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: all cores)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--limit", type=int, help="use at most this many photos per split (smoke tests)")
    p.add_argument("--cache-dir", type=Path, default=Path("cache"), help="decoded-image cache")
    p.add_argument("--output-dir", type=Path, default=Path("runs/classifier"), help="run folder")
    p.add_argument("--resume", action="store_true", help="continue from the run folder's checkpoint.pt")
    p.add_argument("--max-minutes", type=float, default=0, help="stop after this many minutes (0: no limit)")
    return p


def resolve(args: argparse.Namespace) -> argparse.Namespace:
    """Fill flags left unset from the preset."""
    preset = PRESETS[args.preset]
    for k, v in preset.items():
        if getattr(args, k, None) is None:
            setattr(args, k, v)
    for k in ("resize_mode", "augment"):
        setattr(args, k, preset[k])
    return args


def seed_everything(seed: int) -> None:
    """Same seed, same run (on the same hardware and thread count)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def start(seed: int, threads: int, output_dir: Path) -> None:
    """What every training preset does first: seed, CPU threads (0: all), make the run folder."""
    seed_everything(seed)
    if threads:
        torch.set_num_threads(threads)
    output_dir.mkdir(parents=True, exist_ok=True)


def start_run(args: argparse.Namespace) -> distributed.Dist:
    """start(), then join torchrun's job (args.device becomes this rank's device)."""
    start(args.seed, args.threads, args.output_dir)
    dist = distributed.init(args.device)
    args.device = distributed.device_for(dist, args.device)
    return dist


def sample_weights(split: Split, balance: float, home_share: float) -> np.ndarray:
    """Per-photo sampling weights: class counts raised to -balance, then sources rescaled to home_share."""
    w = np.ones(len(split.targets))
    for src in np.unique(split.sources):
        in_src = split.sources == src
        counts = np.bincount(split.targets[in_src], minlength=split.targets.max() + 1).astype(float)
        w[in_src] = counts[split.targets[in_src]] ** -balance
        w[in_src] /= w[in_src].sum()
    home = split.sources == "clothing-photos"
    if home_share > 0 and home.any() and (~home).any():
        w[home] *= home_share / w[home].sum()
        w[~home] *= (1 - home_share) / w[~home].sum()
    return w / w.sum()


def augment_batch(x: torch.Tensor, crop: int, mode: str, gen: torch.Generator) -> torch.Tensor:
    """Random resized crop, flip, and brightness/contrast/saturation jitter that keeps hue (uint8 NHWC in)."""
    n, h, w, _ = x.shape
    x = x.permute(0, 3, 1, 2).float().div_(255)
    if mode == "none":
        top, left = (h - crop) // 2, (w - crop) // 2
        return x[:, :, top : top + crop, left : left + crop]
    out = torch.empty(n, 3, crop, crop)
    r = torch.rand(n, 6, generator=gen)
    for i in range(n):
        area = 0.45 + 0.55 * r[i, 0].item()
        aspect = math.exp((r[i, 1].item() - 0.5) * 0.6)
        ch = min(h, round(h * math.sqrt(area / aspect)))
        cw = min(w, round(w * math.sqrt(area * aspect)))
        top = int(r[i, 2].item() * (h - ch + 1))
        left = int(r[i, 3].item() * (w - cw + 1))
        patch = x[i : i + 1, :, top : top + ch, left : left + cw]
        out[i] = F.interpolate(patch, size=(crop, crop), mode="bilinear", align_corners=False, antialias=True)[0]
    flip = r[:, 4] < 0.5
    out[flip] = out[flip].flip(-1)
    jitter = torch.rand(n, 3, 1, 1, 1, generator=gen)
    # Mild: the colour head must still see true lightness (grey versus black cloth).
    bright = 0.85 + 0.3 * jitter[:, 0]
    contrast = 0.85 + 0.3 * jitter[:, 1]
    sat = 0.85 + 0.3 * jitter[:, 2]
    gray = out.mean(1, keepdim=True)
    out = gray + (out - gray) * sat  # saturation only scales chroma: hue is kept
    mean = out.mean((1, 2, 3), keepdim=True)
    out = (out - mean) * contrast + mean
    return (out * bright).clamp_(0, 1)


def normalise(x: torch.Tensor, pre: Preprocess) -> torch.Tensor:
    """Apply the bundle's mean/std to a 0..1 NCHW batch."""
    mean = torch.tensor(pre.mean).view(1, 3, 1, 1)
    std = torch.tensor(pre.std).view(1, 3, 1, 1)
    return ((x - mean) / std).contiguous(memory_format=torch.channels_last)


def colour_set_loss(colour_logits: torch.Tensor, sets: torch.Tensor) -> torch.Tensor:
    """-log of the probability given to any acceptable family, over photos that have a colour label."""
    known = sets.any(1)
    if not known.any():
        return colour_logits.sum() * 0.0
    logp = F.log_softmax(colour_logits[known], dim=1)
    return -torch.logsumexp(logp.masked_fill(~sets[known], -torch.inf), dim=1).mean()


class MultiHeadLoss(nn.Module):
    """Cross-entropy on the garment logits plus the weighted colour-set loss on the rest."""

    def __init__(self, num_classes: int, colour_weight: float, label_smoothing: float) -> None:
        super().__init__()
        self.n, self.w = num_classes, colour_weight
        self.ce = nn.CrossEntropyLoss(label_smoothing=label_smoothing)

    def forward(self, logits: torch.Tensor, y: torch.Tensor, sets: torch.Tensor | None = None) -> torch.Tensor:
        loss = self.ce(logits[:, : self.n], y)
        if self.w and sets is not None and logits.shape[1] > self.n:
            loss = loss + self.w * colour_set_loss(logits[:, self.n :], sets)
        return loss


def train_one_epoch(model, criterion, optimizer, scheduler, split, indices, args, pre, gen, epoch,
                    dist=distributed.SINGLE) -> float:
    """One pass over the sampled indices (this rank's shard of them); returns the mean training loss."""
    from tqdm import tqdm

    model.train()
    total, count = 0.0, 0
    batches = [b.numpy() for b in dist.shard(torch.from_numpy(np.asarray(indices)), args.batch_size)]
    bar = tqdm(batches, desc=f"epoch {epoch}", unit="batch", leave=False, disable=not dist.main)
    for idx in bar:
        x = augment_batch(torch.from_numpy(np.asarray(split.images[np.sort(idx)])), args.crop, args.augment, gen)
        y = torch.from_numpy(split.targets[np.sort(idx)])
        sets = torch.from_numpy(split.colour_sets[np.sort(idx)]).to(args.device)
        x, y = normalise(x, pre).to(args.device), y.to(args.device)
        loss = criterion(model(x), y, sets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        total += loss.item() * len(idx)
        count += len(idx)
        bar.set_postfix(loss=f"{total / count:.3f}", lr=f"{optimizer.param_groups[0]['lr']:.4f}")
    return dist.mean(total / max(count, 1))


@torch.no_grad()
def predict_logits(model: nn.Module, images: np.ndarray, pre: Preprocess, device: str, batch: int = 256) -> np.ndarray:
    """Logits for cached images (N, resize, resize, 3), centre-cropped as at inference."""
    model.eval()
    outs = []
    for i in range(0, len(images), batch):
        x = torch.from_numpy(np.asarray(images[i : i + batch]))
        x = augment_batch(x, pre.crop, "none", torch.Generator())
        outs.append(model(normalise(x, pre).to(device)).float().cpu().numpy())
    if not outs:  # an empty split (tiny data sets)
        with torch.no_grad():
            width = model(torch.zeros(1, 3, pre.crop, pre.crop, device=device)).shape[1]
        return np.zeros((0, width), np.float32)
    return np.concatenate(outs)


def evaluate(model, criterion, split: Split, pre: Preprocess, device: str) -> dict:
    """Loss, top-1/top-2 garment accuracy overall and per source, and colour-family accuracy."""
    logits = predict_logits(model, split.images, pre, device)
    n = criterion.n
    loss = criterion(torch.from_numpy(logits), torch.from_numpy(split.targets), torch.from_numpy(split.colour_sets)).item()
    out = {"loss": loss, **report.accuracy_by_source(logits[:, :n], split.targets, split.sources)}
    if logits.shape[1] > n:
        out["colour_family_acc"] = report.set_accuracy(logits[:, n:], split.colour_sets)
    return out


def val_score(metrics: dict) -> float:
    """Model selection: the mean of each source's top-1, so the small home set counts as much as the shop."""
    per = [v["top1"] for k, v in metrics.items() if isinstance(v, dict) and "top1" in v and k != "all"]
    return float(np.mean(per)) if per else 0.0


def make_optimizer(args, model):
    """The optimizer the flags ask for, over the trainable parameters only."""
    params = [p for p in model.parameters() if p.requires_grad]
    if args.opt == "sgd":
        return torch.optim.SGD(params, lr=args.lr, momentum=0.9, nesterov=True, weight_decay=args.weight_decay)
    if args.opt == "adam":
        return torch.optim.Adam(params, lr=args.lr)
    return torch.optim.AdamW(params, lr=args.lr, weight_decay=args.weight_decay)


def main(args: argparse.Namespace) -> dict:
    """Train, keep the best checkpoint by validation score, evaluate it on the test split."""
    args = resolve(args)
    dist = start_run(args)
    out: Path = args.output_dir
    taxonomy = Taxonomy.load(args.taxonomy)
    pre = Preprocess(resize=args.resize, crop=args.crop, mode=args.resize_mode)
    classes, splits = build_splits(args.data, taxonomy, pre, args.seed, args.cache_dir, args.limit)
    for name, s in splits.items():
        log.info("%s: %d photos (%s)", name, len(s.targets),
                 ", ".join(f"{src} {n}" for src, n in zip(*np.unique(s.sources, return_counts=True), strict=True)))
    colour_head = args.colour_weight > 0 and bool(splits["train"].colour_sets.any())
    families = list(FAMILIES) if colour_head else []
    model = build_model(args.model, len(classes) + len(families), args.weights).to(args.device)
    model = model.to(memory_format=torch.channels_last)
    set_trainable(model, args.stage)
    ddp = dist.wrap(model, args.device)
    criterion = MultiHeadLoss(len(classes), args.colour_weight if colour_head else 0.0, args.label_smoothing)
    optimizer = make_optimizer(args, model)
    epoch_size = args.epoch_size or len(splits["train"].targets)
    steps = math.ceil(epoch_size / args.batch_size)
    warmup = max(1, int(args.warmup_epochs * steps))
    total_steps = steps * args.epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s, total_steps) / total_steps))
    )
    history: list[dict] = []
    start_epoch, best, stale = 0, -1.0, 0
    ckpt_path = out / "checkpoint.pt"
    if args.resume and ckpt_path.exists():
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        start_epoch, best, stale, history = ckpt["epoch"] + 1, ckpt["best"], ckpt["stale"], ckpt["history"]
        torch.set_rng_state(ckpt["rng"])
        log.info("resumed from %s at epoch %d", ckpt_path, start_epoch)
    weights = sample_weights(splits["train"], args.balance, args.home_share)
    gen = torch.Generator().manual_seed(args.seed)
    began = time.monotonic()
    meta = {"classes": classes, "colour_families": families, "preprocess": pre.to_dict(), "arch": args.model,
            "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}}
    for epoch in range(start_epoch, args.epochs):
        rng = np.random.default_rng(args.seed * 1000 + epoch)
        indices = rng.choice(len(weights), size=epoch_size, replace=True, p=weights)
        t0 = time.monotonic()
        train_loss = train_one_epoch(ddp, criterion, optimizer, scheduler, splits["train"], indices, args, pre, gen,
                                     epoch, dist)
        dist.sync_buffers(model)
        val = evaluate(model, criterion, splits["val"], pre, args.device)
        score = val_score(val)
        history.append({"epoch": epoch, "train_loss": train_loss, "val_loss": val["loss"], "val_score": score,
                        "val": val, "seconds": time.monotonic() - t0})
        log.info("epoch %d: train loss %.3f, val loss %.3f, val top-1 %s, colour family %.3f (%.0f s)", epoch,
                 train_loss, val["loss"], ", ".join(f"{k} {v['top1']:.3f}" for k, v in val.items() if isinstance(v, dict)),
                 val.get("colour_family_acc", float("nan")), time.monotonic() - t0)
        if score > best:
            best, stale = score, 0
            if dist.main:
                torch.save({"model": model.state_dict(), **meta, "epoch": epoch, "val": val}, out / "best.pt")
        else:
            stale += 1
        if dist.main:
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(), "epoch": epoch, "best": best, "stale": stale,
                        "history": history, "rng": torch.get_rng_state(), **meta}, ckpt_path.with_suffix(".tmp"))
            ckpt_path.with_suffix(".tmp").replace(ckpt_path)
            report.plot_history(history, out / "loss.png")
        if stale >= args.patience:
            log.info("no better validation score for %d epochs: stopping early", stale)
            break
        if dist.any(bool(args.max_minutes) and time.monotonic() - began > args.max_minutes * 60):
            log.info("time limit of %.0f minutes reached: stopping", args.max_minutes)
            break
    distributed.finish(dist)
    if not dist.main:
        return {}
    best_ckpt = torch.load(out / "best.pt", map_location="cpu", weights_only=False)
    model.load_state_dict(best_ckpt["model"])
    results = {}
    for name in ("val", "test"):
        logits = predict_logits(model, splits[name].images, pre, args.device)
        np.savez_compressed(out / f"{name}-logits.npz", logits=logits, targets=splits[name].targets,
                            colour_sets=splits[name].colour_sets,
                            sources=splits[name].sources, paths=np.array([r.path for r in splits[name].records]))
        results[name] = report.full_report(logits[:, : len(classes)], splits[name].targets, splits[name].sources,
                                           classes, out, name)
        if families:
            results[name]["colour_family_acc"] = report.set_accuracy(logits[:, len(classes) :], splits[name].colour_sets)
    (out / "metrics.json").write_text(json.dumps({"best_epoch": best_ckpt["epoch"], **results}, indent=2))
    log.info("test: %s", json.dumps({k: v for k, v in results["test"].items() if k != "per_class"}))
    log.info("test per-class tables and confusion matrices are in %s", out)
    return results
