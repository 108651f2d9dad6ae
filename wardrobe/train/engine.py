"""The training engine every preset shares: flags, start-up, sampling, augmentation, the epoch loop,
checkpoints with resume, and the time limit. Presets keep only their method.

    p = argparse.ArgumentParser(...)
    engine.add_flags(p, "data", "epochs", "lr", ..., output_dir="runs/mine", epochs=20)
    start(args.seed, args.threads, args.output_dir)
    ckpt = Checkpoint(args.output_dir / "checkpoint.pt")
    progress = ckpt.resume(model, optimizer, scheduler) if args.resume else Progress()
    fit(progress, one_epoch, epochs=..., patience=..., max_minutes=..., on_epoch=...)
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from wardrobe.errors import TrainingError
from wardrobe.preprocess import Preprocess
from wardrobe.train import distributed
from wardrobe.train.data import Split

log = logging.getLogger(__name__)

def number(kind: type, lo: float, hi: float):
    """An argparse type: a finite int or float from lo to hi (argparse turns the refusal into one line)."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'a whole number' if kind is int else 'a number'}") from None
        if not (lo <= value <= hi):  # also refuses NaN
            raise argparse.ArgumentTypeError(f"{text} is not from {lo:{'d' if kind is int else 'g'}} to "
                                             f"{hi:{'d' if kind is int else 'g'}}")
        return value
    return parse


def number_list(kind: type, lo: float, hi: float):
    """An argparse type: comma-separated numbers, each as number() takes it, kept as given."""
    one = number(kind, lo, hi)

    def parse(text: str) -> str:
        for part in text.split(","):
            one(part)
        return text
    return parse


def split_names(text: str) -> str:
    """An argparse type: a comma-separated list of splits (train, val, test), kept as given."""
    odd = [name for name in text.split(",") if name not in ("train", "val", "test")]
    if odd:
        raise argparse.ArgumentTypeError(f"{odd[0]!r} is not a split (train, val, test)")
    return text


fractions = number_list(float, 0, 1)
"""An argparse type: comma-separated numbers from 0 to 1, kept as given."""


def torch_device(text: str) -> str:
    """An argparse type: a device torch knows and this machine has (cpu, cuda, cuda:1, mps), kept as given; refused
    now rather than by torch after the photos are decoded."""
    try:
        device = torch.device(text)
    except RuntimeError:
        device = None
    if device is None or device.type not in ("cpu", "cuda", "mps"):  # torch knows meta, xpu, hpu...: not for this
        raise argparse.ArgumentTypeError(f"{text!r} is not a device this script trains on (cpu, cuda, cuda:N, mps)")
    if device.type == "cuda" and (device.index or 0) >= (torch.cuda.device_count() if torch.cuda.is_available() else 0):
        raise argparse.ArgumentTypeError(f"{text}: this machine has no such CUDA device")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise argparse.ArgumentTypeError(f"{text}: this machine has no Apple GPU")
    return text


FLAGS: dict[str, tuple[tuple[str, ...], dict]] = {
    # name: (option strings, argparse keywords); a preset picks the ones it needs and its own defaults.
    "data": (("--data",), dict(action="append", metavar="KIND=PATH",
                               help="a dataset: clothing-photos=DIR, product-photos=DIR or folder=DIR (repeatable)")),
    "epochs": (("--epochs",), dict(type=number(int, 1, 100_000), default=24, help="epochs")),
    "epoch_size": (("--epoch-size",), dict(type=number(int, 0, 10**9), default=0, help="samples per epoch (0: the training split's size)")),
    "batch_size": (("--batch-size", "-b"), dict(type=number(int, 1, 1 << 16), default=128, help="batch size")),
    "lr": (("--lr",), dict(type=number(float, 1e-12, 100.0), default=0.1, help="learning rate")),
    "seed": (("--seed",), dict(type=number(int, 0, 2**32 - 1), default=0, help="random seed (also the split's)")),
    "threads": (("--threads",), dict(type=number(int, 0, 1024), default=0, help="torch CPU threads (0: all cores)")),
    "device": (("--device",), dict(type=torch_device, default=None,
                                   help="torch device (default: cuda when there is one, else cpu)")),
    "limit": (("--limit",), dict(type=number(int, 1, 10**9), help="use at most this many photos per split (smoke tests)")),
    "cache_dir": (("--cache-dir",), dict(type=Path, default=Path("cache"), help="decoded-image and feature cache")),
    "output_dir": (("--output-dir",), dict(type=Path, default=Path("runs/train"), help="run folder")),
    "resume": (("--resume",), dict(action="store_true", help="continue from the run folder's checkpoint.pt")),
    "max_minutes": (("--max-minutes",), dict(type=float, default=0, help="stop after this many minutes (0: no limit)")),
    # The bundle tools (export, patterns) and the measurements on a bundle (evaluate, see-better, closet, match):
    "bundle": (("--bundle",), dict(type=Path, help="model bundle directory")),
    "home_colours": (("--home-colours",), dict(type=Path, help="CSV image,split,families of home photos labelled by eye")),
    "home_garments": (("--home-garments",), dict(type=Path, help="CSV image,split,garments of home photos named by eye "
                                                                   "(measured beside the dataset's label)")),
    "product_colours": (("--product-colours",), dict(type=Path, help="CSV image,split,families of product photos "
                                                                       "labelled by eye (measured beside the shop's label)")),
    "product_garments": (("--product-garments",), dict(type=Path, help="CSV image,split,garments of product photos "
                                                                         "named by eye (measured beside the shop's label)")),
    "report": (("--output",), dict(type=Path, default=Path("runs/report.json"), help="where the figures are written (JSON)")),
    "calibration_batches": (("--calibration-batches",), dict(type=number(int, 1, 10_000), default=8,
                                                            help="batches of 32 training photos for int8 calibration")),
    "check_photos": (("--check-photos",), dict(type=number(int, 0, 100_000), default=400, help="held-out validation photos (half home, "
                                               "half product) on which int8 must agree with fp32 to be shipped")),
    "precision": (("--precision",), dict(choices=("auto", "int8", "fp32"), default="auto",
                                         help="the shipped ONNX model: int8 (refused unless it agrees with fp32), "
                                              "fp32, or auto (int8 when it agrees, else fp32)")),
    "version": (("--version",), dict(help="bundle version (default: creation time)")),
    "sign": (("--sign",), dict(type=Path, metavar="KEY", help="sign the bundle with this private key (wardrobe keygen)")),
}


def add_flags(p: argparse.ArgumentParser, *names: str, required: tuple[str, ...] = (), **defaults) -> None:
    """Add the named common flags to a preset's parser, with the preset's own defaults and help."""
    for name in names:
        opts, kw = FLAGS[name]
        kw = dict(kw)
        if name in defaults:
            value = defaults.pop(name)
            if isinstance(value, dict):  # {"default": ..., "help": ...}
                kw.update(value)
            else:
                kw["default"] = value
        if name in required:
            kw["required"] = True
        if name == "device":
            kw["default"] = kw["default"] or ("cuda" if torch.cuda.is_available() else "cpu")
        p.add_argument(*opts, **kw)
    if defaults:
        raise TypeError(f"defaults for flags not added: {', '.join(defaults)}")


def seed_everything(seed: int) -> None:
    """Same seed, same run (on the same hardware and thread count)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def start(seed: int, threads: int, output_dir: Path, resume: bool = True) -> None:
    """What every training preset does first: seed, CPU threads (0: all), make the run folder. A folder that holds
    a finished or interrupted run is continued only with resume (without it, TrainingError: its hours of work
    would be overwritten by a new run)."""
    if output_dir.exists() and not output_dir.is_dir():
        raise TrainingError(f"the run folder {output_dir} is a file: choose a folder (--output-dir)")
    if not resume and any((output_dir / name).is_file() for name in ("checkpoint.pt", "best.pt")):
        raise TrainingError(f"{output_dir} holds a run already: add --resume to continue it, or choose another "
                            f"--output-dir (nothing was overwritten)")
    seed_everything(seed)
    if threads:
        torch.set_num_threads(threads)
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise TrainingError(f"cannot make the run folder {output_dir}: {e.strerror or e}") from None


def start_run(args: argparse.Namespace) -> distributed.Dist:
    """start(), then join torchrun's job (args.device becomes this rank's device)."""
    start(args.seed, args.threads, args.output_dir, resume=getattr(args, "resume", True))
    dist = distributed.init(args.device)
    args.device = distributed.device_for(dist, args.device)
    return dist


def class_balanced(targets: np.ndarray, balance: float) -> np.ndarray:
    """Weights summing to 1 over one group of photos: each photo's class count raised to -balance."""
    counts = np.bincount(targets).astype(float)
    w = counts[targets] ** -balance
    return w / w.sum()


def sample_weights(split: Split, balance: float, home_share: float) -> np.ndarray:
    """Per-photo sampling weights: class counts raised to -balance, then sources rescaled to home_share."""
    w = np.ones(len(split.targets))
    for src in np.unique(split.sources):
        in_src = split.sources == src
        w[in_src] = class_balanced(split.targets[in_src], balance)
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
    """Cross-entropy on the garment logits plus the weighted colour-set loss on the colour logits after them."""

    def __init__(self, num_classes: int, colour_weight: float, label_smoothing: float) -> None:
        super().__init__()
        self.n, self.w = num_classes, colour_weight
        self.ce = nn.CrossEntropyLoss(label_smoothing=label_smoothing)

    def forward(self, logits: torch.Tensor, y: torch.Tensor, sets: torch.Tensor | None = None) -> torch.Tensor:
        loss = self.ce(logits[:, : self.n], y)
        if self.w and sets is not None and logits.shape[1] > self.n:
            loss = loss + self.w * colour_set_loss(logits[:, self.n :], sets)
        return loss


def step(loss: torch.Tensor, optimizer, scheduler) -> float:
    """One optimiser step (and one scheduler step) on a batch's loss; returns the loss as a number."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    scheduler.step()
    return loss.item()


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


def make_optimizer(args, model):
    """The optimizer the flags ask for, over the trainable parameters only."""
    params = [p for p in model.parameters() if p.requires_grad]
    if args.opt == "sgd":
        return torch.optim.SGD(params, lr=args.lr, momentum=0.9, nesterov=True, weight_decay=args.weight_decay)
    if args.opt == "adam":
        return torch.optim.Adam(params, lr=args.lr)
    return torch.optim.AdamW(params, lr=args.lr, weight_decay=args.weight_decay)


def load_checkpoint(path: Path) -> dict:
    """A checkpoint's tensors and plain data, never pickled code (torch's weights_only); TrainingError otherwise."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise TrainingError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise TrainingError(f"{path} is a folder, not a checkpoint") from None
    except OSError as e:  # the file is fine, the reading is not (another user's after a sudo run): keep it
        raise TrainingError(f"{path} cannot be read: {e.strerror or e}") from None
    except Exception as e:  # torch's own words run to a paragraph (weights_only's advice, a zip archive's internals)
        raise TrainingError(f"{path} is not a plain checkpoint this script wrote, or is damaged (nothing in it "
                            f"was run)") from e


def warmup_cosine(optimizer, steps_per_epoch: int, epochs: float, warmup_epochs: float = 1.0):
    """Linear warm-up, then cosine decay to zero over the run, stepped once per batch."""
    total = max(1, int(steps_per_epoch * epochs))
    warmup = max(1, int(warmup_epochs * steps_per_epoch))
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))


@dataclass
class Progress:
    """Where a run stands: the next epoch, the best validation score, epochs without improvement, history."""

    epoch: int = 0
    best: float = -1.0
    stale: int = 0
    history: list[dict] = field(default_factory=list)


class Checkpoint:
    """checkpoint.pt in a run folder: written atomically each epoch, read back with weights_only (no pickled code)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.loaded: dict = {}
        """What resume() read, for a preset's own extra state (passed to save() as keywords)."""

    def save(self, progress: Progress, model: nn.Module, optimizer, scheduler, **extra) -> None:
        """Model, optimizer, scheduler, progress and the RNG, as one file replaced in one step."""
        tmp = self.path.with_suffix(".tmp")
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict() if scheduler is not None else None, "epoch": progress.epoch, "best": progress.best,
                    "stale": progress.stale, "history": progress.history, "rng": torch.get_rng_state(), **extra}, tmp)
        tmp.replace(self.path)

    def resume(self, model: nn.Module, optimizer, scheduler) -> Progress:
        """Restore everything save() wrote; a fresh Progress when there is no checkpoint yet."""
        if not self.path.exists():
            return Progress()
        ckpt = load_checkpoint(self.path)
        try:
            model.load_state_dict(ckpt["model"])
            optimizer.load_state_dict(ckpt["optimizer"])
            if scheduler is not None:
                scheduler.load_state_dict(ckpt["scheduler"])
        except KeyError as e:
            raise TrainingError(f"{self.path} is not a run's own checkpoint (it has no {e}); move it away to start "
                                f"afresh") from None
        except Exception as e:  # torch lists every tensor that does not fit
            raise TrainingError(f"{self.path} cannot be resumed: it does not fit this run's model or optimizer "
                                f"(another --model, --preset or data?); move it away to start afresh") from e
        if "rng" in ckpt:
            torch.set_rng_state(ckpt["rng"])
        self.loaded = ckpt
        log.info("resumed from %s at epoch %d", self.path, ckpt["epoch"] + 1)
        history = ckpt["history"]
        if isinstance(history, str):  # checkpoints written before the engine kept the history as JSON
            history = json.loads(history)
        return Progress(ckpt["epoch"] + 1, ckpt["best"], ckpt["stale"], list(history))


def fit(progress: Progress, one_epoch: Callable[[int], tuple[float, dict]], epochs: int, patience: int,
        max_minutes: float, on_epoch: Callable[[Progress, bool], None],
        stop_all: Callable[[bool], bool] = lambda flag: flag) -> Progress:
    """The epoch loop: one_epoch(epoch) -> (validation score, history record); keeps the best score, calls
    on_epoch(progress, improved) after each epoch (to save), stops at patience or the time limit.

    stop_all: under torchrun, turns this rank's wish to stop into every rank's decision.
    """
    began = time.monotonic()
    for epoch in range(progress.epoch, epochs):
        t0 = time.monotonic()
        score, record = one_epoch(epoch)
        progress.history.append({"epoch": epoch, **record, "val_score": score, "seconds": time.monotonic() - t0})
        improved = score > progress.best
        if improved:
            progress.best, progress.stale = score, 0
        else:
            progress.stale += 1
        progress.epoch = epoch
        on_epoch(progress, improved)
        progress.epoch = epoch + 1
        if progress.stale >= patience:
            log.info("no better validation score for %d epochs: stopping early", progress.stale)
            break
        if stop_all(bool(max_minutes) and time.monotonic() - began > max_minutes * 60):
            log.info("time limit of %.0f minutes reached: stopping", max_minutes)
            break
    return progress
