"""Fine-tune a pretrained EfficientNet-Lite on two CPU cores: cache the frozen early blocks once, train the rest.

The stem and the first `--freeze-blocks` blocks keep their ImageNet weights. Their outputs are computed
once per view of every photo with ONNX Runtime (several times faster than torch here) and kept in a
float16 memory map; each epoch then trains only the later blocks and the heads on those maps.
Views: the inference view and its mirror for every training photo, plus random crops with mild
brightness changes (never hue: the colour head must see true colours) for the scarce home photos, and with
`--cutout-views` the garment cut out on white as the appliance cuts it (segmentation, then `on_white`), which
the pipeline sends through the network beside the photo.

Three heads share the network's last layer, in this order:
- garments, with one extra class, "no garment", trained on garment-free corners of home photos;
- colour families (the shop's base colour, product photos only);
- occasions (the shop's usage: casual, formal, ethnic, sports), a sigmoid each, product photos only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from wardrobe.colours import FAMILIES
from wardrobe.errors import ModelError, TrainingError
from wardrobe.preprocess import Preprocess
from wardrobe.taxonomy import Taxonomy
from wardrobe.train import report
from wardrobe.train.data import Split
from wardrobe.train.engine import (
    Checkpoint,
    MultiHeadLoss,
    Progress,
    class_balanced,
    fit,
    load_checkpoint,
    step,
    warmup_cosine,
)

log = logging.getLogger(__name__)

BACKGROUND = "no garment"
"""The extra class for photos with no garment in them (bundle.json names it as background_class)."""
OCCASIONS = ("usage:casual", "usage:formal", "usage:ethnic", "usage:sports")
SOURCE_SHARES = {"clothing-photos": 0.45, "product-photos": 0.47, "background": 0.08}
"""Share of each batch drawn from each source: home photos are a tenth of the data but what the closet sees."""
HOME_VIEWS, PRODUCT_VIEWS = 4, 2
"""Training views per photo: the inference view, its mirror, then random crops (home photos only)."""
BACKGROUND_SIDE = 0.42
"""Side of a corner crop, as a share of the photo's short side, tried as a garment-free sample."""
BACKGROUND_MAX_GARMENT = 0.02
"""A corner crop is garment-free when the segmentation mask covers at most this share of it."""


def views(rgb: np.ndarray, pre: Preprocess, n: int, rng: np.random.Generator) -> list[np.ndarray]:
    """n square uint8 views: the inference view (the bundle's own resize and crop), its mirror, then random
    resized crops with a mild brightness change (never hue)."""
    base = pre.center_crop(pre.resized(rgb))
    out = [base, base[:, ::-1]][:n]
    h, w = rgb.shape[:2]
    while len(out) < n:
        area, aspect = rng.uniform(0.5, 1.0), math.exp(rng.uniform(-0.3, 0.3))
        ch, cw = min(h, round(h * math.sqrt(area / aspect))), min(w, round(w * math.sqrt(area * aspect)))
        top, left = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
        crop = rgb[top : top + ch, left : left + cw]
        v = pre.center_crop(pre.resized(crop)).astype(np.float32) * rng.uniform(0.88, 1.12)
        v = np.clip(v, 0, 255).astype(np.uint8)
        out.append(v[:, ::-1] if rng.random() < 0.5 else v)
    return [np.ascontiguousarray(v) for v in out]


def cutout_views(rgb: np.ndarray, pre: Preprocess, n: int, white) -> list[np.ndarray]:
    """n views of the garment cut out on white exactly as the pipeline cuts it (work size, white balance,
    segmentation, on_white), and its mirror; none when the mask is too small to cut."""
    from wardrobe.pipeline import garment_views

    if n <= 0:
        return []
    small, cut = garment_views(rgb, white)
    if cut is small:
        return []
    base = pre.center_crop(pre.resized(cut))
    return [np.ascontiguousarray(v) for v in [base, base[:, ::-1]][:n]]


def background_crop(rgb: np.ndarray, side: int) -> np.ndarray | None:
    """The most garment-free corner square of a home photo, or None when every corner holds garment."""
    import cv2

    from wardrobe.segment import segment

    alpha = segment(rgb, "auto")
    h, w = alpha.shape
    s = int(BACKGROUND_SIDE * min(h, w))
    corners = [(0, 0), (0, w - s), (h - s, 0), (h - s, w - s)]
    shares = [alpha[t : t + s, x : x + s].mean() / 255 for t, x in corners]
    best = int(np.argmin(shares))
    if shares[best] > BACKGROUND_MAX_GARMENT:
        return None
    t, x = corners[best]
    return cv2.resize(rgb[t : t + s, x : x + s], (side, side), interpolation=cv2.INTER_LINEAR)


@dataclass
class FeatureSet:
    """Cached prefix outputs of one split, one row per view."""

    features: np.ndarray
    """(N, C, H, W) float16, usually a read-only memory map."""
    targets: np.ndarray
    """Garment class index; len(classes) for the background class."""
    colour_sets: np.ndarray
    """(N, families) bool, all False when unknown."""
    occasions: np.ndarray
    """(N, len(OCCASIONS)) float32: 1/0, or -1 when unknown."""
    sources: np.ndarray
    """clothing-photos, product-photos or background."""
    photo: np.ndarray
    """Index of the row's photo in the split's records (-1 for nothing)."""


def prefix_backend(model, cut: int, side: int, path: Path, threads: int):
    """Export the frozen prefix to ONNX and open it with the appliance's own ONNX Runtime backend."""
    from wardrobe.classify import OnnxBackend

    class Prefix(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.m = model

        def forward(self, x):
            return self.m.prefix(x, cut)

    model.eval()
    torch.onnx.export(Prefix(), (torch.zeros(1, 3, side, side),), str(path), input_names=["image"],
                      output_names=["features"], dynamic_axes={"image": {0: "batch"}, "features": {0: "batch"}},
                      opset_version=17, dynamo=False)
    return OnnxBackend(path, threads or torch.get_num_threads())


def open_cached(folder: Path, name: str) -> FeatureSet:
    """A split's cached features (a read-only memory map) and labels."""
    arrays = np.load(folder / f"{name}-labels.npz")
    feats = np.lib.format.open_memmap(folder / f"{name}-features.npy", mode="r")
    return FeatureSet(feats, arrays["targets"], arrays["colour_sets"], arrays["occasions"], arrays["sources"],
                      arrays["photo"])


def cache_split(name: str, split: Split, backend, pre: Preprocess, train: bool, folder: Path,
                seed: int, cutouts: int = 0) -> FeatureSet:
    """Compute (or reopen) the cached prefix outputs of every view of one split (with `cutouts` cut-out views
    of each training photo), and of its home photos' garment-free corners."""
    import cv2
    from tqdm import tqdm

    from wardrobe.whitebalance import WhiteBalance

    if (folder / f"{name}.json").exists():  # written last: the cache is complete
        return open_cached(folder, name)
    rng = np.random.default_rng(seed)
    white = WhiteBalance("auto", None)
    rows: list[tuple] = []
    feats_list: list[np.ndarray] = []
    batch: list[np.ndarray] = []

    def flush() -> None:
        if batch:
            x = pre.normalise(np.stack(batch))
            feats_list.append(backend.logits(x).astype(np.float16))
            batch.clear()

    for i, rec in enumerate(tqdm(split.records, desc=f"cache {name}", unit="photo")):
        bgr = cv2.imread(rec.path, cv2.IMREAD_COLOR)
        if bgr is None:
            continue
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        home = rec.source == "clothing-photos"
        n = (HOME_VIEWS if home else PRODUCT_VIEWS) if train else 1
        occ = np.full(len(OCCASIONS), -1.0, np.float32)
        if rec.source == "product-photos":
            occ[:] = [float(f"usage:{rec.usage.lower()}" == o) for o in OCCASIONS]
        cuts = (cutouts if home else min(cutouts, 1)) if train else 0  # the shop's photos: one, they are many
        for v in views(rgb, pre, n, rng) + cutout_views(rgb, pre, cuts, white):
            batch.append(v)
            rows.append((int(split.targets[i]), split.colour_sets[i], occ, rec.source, i))
        if home:
            crop = background_crop(rgb, pre.crop)
            if crop is not None:
                for v in ([crop, crop[:, ::-1].copy()] if train else [crop]):
                    batch.append(v)
                    rows.append((-1, np.zeros(len(FAMILIES), bool), np.full(len(OCCASIONS), -1.0, np.float32),
                                 "background", i))
        if len(batch) >= 64:
            flush()
    flush()
    feats = np.concatenate(feats_list)
    np.save(folder / f"{name}-features.npy", feats)
    labels = dict(targets=np.array([r[0] for r in rows], np.int64),
                  colour_sets=np.array([r[1] for r in rows], bool).reshape(len(rows), len(FAMILIES)),
                  occasions=np.array([r[2] for r in rows], np.float32).reshape(len(rows), len(OCCASIONS)),
                  sources=np.array([r[3] for r in rows]), photo=np.array([r[4] for r in rows], np.int64))
    np.savez(folder / f"{name}-labels.npz", **labels)
    (folder / f"{name}.json").write_text(json.dumps({"rows": len(rows)}))
    return open_cached(folder, name)


def cached_splits(model, splits: dict[str, Split], pre: Preprocess, run: dict, cache_dir: Path,
                  threads: int = 0) -> dict[str, FeatureSet]:
    """Every split's cached prefix outputs for a run's settings (its flags as a dict: model, freeze_blocks,
    weights, seed, cutout_views), computed the first time; the pattern head reads the same cache later."""
    cut, cutouts, seed = int(run["freeze_blocks"]), int(run.get("cutout_views") or 0), int(run["seed"])
    key = hashlib.sha256(json.dumps([run["model"], cut, pre.to_dict(), str(run["weights"]),
                                     {k: [r.path for r in s.records] for k, s in splits.items()},
                                     HOME_VIEWS, PRODUCT_VIEWS, seed, *([cutouts] if cutouts else [])]
                                    ).encode()).hexdigest()[:12]
    folder = Path(cache_dir) / f"frozen-{run['model']}-{key}"
    if all((folder / f"{name}.json").exists() for name in splits):
        sets = {name: open_cached(folder, name) for name in splits}
    else:
        folder.mkdir(parents=True, exist_ok=True)
        backend = prefix_backend(model, cut, pre.crop, folder / "prefix.onnx", threads)
        sets = {name: cache_split(name, s, backend, pre, name == "train", folder, seed + i, cutouts)
                for i, (name, s) in enumerate(splits.items())}
    for name, fs in sets.items():
        relabel(fs, splits[name])
    return sets


def relabel(fs: FeatureSet, split: Split) -> None:
    """Each view's garment as the split names its photo now. The cache keeps the labels it was made with, and the
    views depend only on the photos; the taxonomy may since name some photos better (a polo shirt the shop files
    under "Tshirts", named by its product name), and a run must learn what the taxonomy says today. Garment-free
    corners keep their own label."""
    real = fs.targets >= 0
    fs.targets = np.where(real, split.targets[np.where(real, fs.photo, 0)], fs.targets)


def source_weights(fs: FeatureSet, balance: float) -> np.ndarray:
    """Per-row weights: class counts raised to -balance within each source, sources scaled to SOURCE_SHARES."""
    w = np.zeros(len(fs.targets))
    present = [s for s in SOURCE_SHARES if (fs.sources == s).any()]
    for src in present:
        m = fs.sources == src
        w[m] = SOURCE_SHARES[src] * class_balanced(fs.targets[m] - fs.targets[m].min(), balance)
    return w / w.sum()


def losses(out: torch.Tensor, y: torch.Tensor, sets: torch.Tensor, occ: torch.Tensor, n: int, f: int,
           label_smoothing: float, colour_weight: float, occasion_weight: float) -> torch.Tensor:
    """The classifier's garment and colour loss, plus occasion binary cross-entropy on rows that know it."""
    loss = MultiHeadLoss(n, colour_weight, label_smoothing)(out[:, : n + f], y, sets)
    known = occ >= 0
    if occasion_weight and known.any():
        loss = loss + occasion_weight * F.binary_cross_entropy_with_logits(out[:, n + f :][known], occ[known])
    return loss


def distillation(out: torch.Tensor, teacher: torch.Tensor, n: int, f: int, temperature: float,
                 colour_rows: torch.Tensor | None = None, garments: bool = True) -> torch.Tensor:
    """Knowledge distillation: the KL divergence from the teacher's softened garment distribution (the background
    class included; unless garments is False) and colour-family distribution (on colour_rows only: not
    garment-free corners) to the student's, scaled by T² as Hinton et al. do."""
    loss = out.new_zeros(())
    parts = [(0, n, None)] * garments + [(n, n + f, colour_rows)]
    for lo, hi, rows in parts:
        s, t = out[:, lo:hi], teacher[:, lo:hi].float()
        if rows is not None:
            s, t = s[rows], t[rows]
        if len(s):
            loss = loss + F.kl_div(F.log_softmax(s / temperature, 1), F.softmax(t / temperature, 1),
                                   reduction="batchmean")
    return loss * temperature**2


def taught(args: argparse.Namespace, splits: dict[str, Split], student: FeatureSet,
           classes: list[str]) -> np.ndarray | None:
    """What the student is taught, row by row: the garment logits of the --teacher runs, and the colour logits of
    the --colour-teacher runs (or of the --teacher runs with --distill-colours). Where several runs teach, their
    log-probabilities are averaged (a product of experts). None when nothing is taught."""
    n, f = len(classes), len(FAMILIES)
    if not (args.teacher or args.colour_teacher):
        return None

    def averaged(runs: list[Path], flag: str, lo: int, hi: int) -> np.ndarray:
        return np.mean([log_softmax(teacher_logits(args, run, flag, splits, student, classes)[:, lo:hi]
                                    .astype(np.float32)) for run in runs], axis=0)

    out = np.zeros((len(student.targets), n + f), np.float16)
    if args.teacher:
        out[:, :n] = averaged(args.teacher, "--teacher", 0, n)
        filed_as_named(out, splits["train"], student, classes, Taxonomy.load(getattr(args, "taxonomy", None)))
    colour_runs = args.colour_teacher or (args.teacher if args.distill_colours else [])
    if colour_runs:
        out[:, n:] = averaged(colour_runs, "--colour-teacher" if args.colour_teacher else "--teacher", n, n + f)
    return out


def log_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(axis=1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=1, keepdims=True))


def filed_as_named(logp: np.ndarray, split: Split, fs: FeatureSet, classes: list[str], taxonomy: Taxonomy) -> None:
    """A teacher may have learnt the shop's filing: a polo shirt under "Tshirts". Where a photo is named otherwise
    than filed (by its product name, Taxonomy.named, or by eye, --eye-garments), the teacher's belief in the class
    the photo is filed under is moved to the class it is named, in place: the named class gets both probabilities,
    the filed one the smaller of the two.
    A teacher that already names the photo rightly teaches as before; what else it knows of the photo (a polo is
    not a shirt, nor a dress) is kept. Garment logits are log-probabilities here; the softmax ignores the total."""
    index = {c: i for i, c in enumerate(classes)}
    filed = np.array([index.get(taxonomy.garment(r.source, r.label) or "", -1) for r in split.records])
    rows = np.flatnonzero(fs.sources != "background")  # a garment-free corner is named for no photo
    rows = rows[(filed[fs.photo[rows]] >= 0) & (filed[fs.photo[rows]] != fs.targets[rows])]
    if len(rows):
        a, b = filed[fs.photo[rows]], fs.targets[rows]
        was_filed, was_named = logp[rows, a].astype(np.float32), logp[rows, b].astype(np.float32)
        logp[rows, b] = np.logaddexp(was_filed, was_named)
        logp[rows, a] = np.minimum(was_filed, was_named)
        log.info("teacher: %d views named otherwise than filed (their filed class's belief moved to the named one)",
                 len(rows))


def teacher_checkpoint(folder: Path, flag: str) -> tuple[dict, Path]:
    """A teacher's checkpoint and the file its weights came from: a finished run's best.pt, or a bundle (a folder
    with bundle.json: its fp32 weights, classes, preprocessing and the arguments of the run that trained it, so
    the shipped model can teach its successor)."""
    if not (folder / "bundle.json").is_file():
        return load_checkpoint(folder / "best.pt"), folder / "best.pt"
    from safetensors.torch import load_file

    from wardrobe.bundle import Bundle

    try:
        bundle = Bundle.load(folder)
    except ModelError as e:
        raise TrainingError(f"{flag} {folder}: {e}") from None
    run = bundle.meta.get("trained", {}).get("args")
    if "torch" not in bundle.runtimes or not isinstance(run, dict):
        raise TrainingError(f"{flag} {folder}: the bundle carries no fp32 weights or no record of its training run")
    weights = bundle.path / bundle.runtimes["torch"]
    return {"model": load_file(weights), "classes": bundle.classes, "colour_families": bundle.colour_families,
            "preprocess": bundle.preprocess.to_dict(), "args": run}, weights


def teacher_logits(args: argparse.Namespace, folder: Path, flag: str, splits: dict[str, Split],
                   student: FeatureSet, classes: list[str]) -> np.ndarray:
    """The garment and colour logits of a finished run (folder) on every training view of this run, kept in
    this run's folder (teacher-<checksum>.npz, with the teacher's checksum and the views it was computed for).

    The teacher may be another network at another size (Lite2 at 260 px for Lite0 at 224): its own cache holds
    the same views, cut at the same places, because the views are drawn from the same seed. A teacher of other
    classes, views, seed or cut-outs is refused with one line."""
    from wardrobe.train.models import build_model

    best, weights = teacher_checkpoint(folder, flag)
    if best.get("classes") != classes or list(best.get("colour_families", ())) != list(FAMILIES):
        raise TrainingError(f"{flag} {folder}: its classes are not this run's")
    checksum = hashlib.sha256(weights.read_bytes()).hexdigest()
    saved = Path(args.output_dir) / f"teacher-{checksum[:12]}.npz"
    if saved.exists():
        with np.load(saved) as z:
            corner = len(classes) - 1  # the background class: the garment-free corners' label
            if (str(z["teacher"]) == checksum and np.array_equal(z["targets"] == corner, student.targets == corner)
                    and np.array_equal(z["photo"], student.photo)):  # the same views, whatever their labels
                return z["logits"]
    run = best.get("args", {})
    views_differ = (f"{flag} {folder}: its views are not this run's (give it the same data, seed and "
                    "--cutout-views)")
    if "freeze_blocks" not in run or int(run["freeze_blocks"]) < 1:
        raise TrainingError(f"{flag} {folder}: not a run on cached frozen blocks (--freeze-blocks 1 or more)")
    if int(run["seed"]) != args.seed or int(run.get("cutout_views") or 0) != args.cutout_views:
        raise TrainingError(views_differ)
    model = build_model(run["model"], best["model"]["net._fc.weight"].shape[0])
    model.load_state_dict(best["model"])
    pre = Preprocess.from_dict(best["preprocess"])
    theirs = cached_splits(model, splits, pre, run, args.cache_dir, args.threads)["train"]
    same = np.array_equal(np.where(theirs.targets < 0, len(classes) - 1, theirs.targets), student.targets)
    if not (same and np.array_equal(theirs.photo, student.photo)):
        raise TrainingError(views_differ)
    log.info("teacher %s (%s): logits of %d training views", folder, run["model"], len(theirs.targets))
    logits = suffix_logits(model, theirs, int(run["freeze_blocks"]))[:, : len(classes) + len(FAMILIES)]
    logits = logits.astype(np.float16)
    tmp = saved.with_suffix(".tmp.npz")
    np.savez(tmp, logits=logits, targets=student.targets, photo=student.photo, teacher=np.array(checksum))
    os.replace(tmp, saved)  # whole or absent: a killed run leaves no half file
    return logits


@torch.no_grad()
def suffix_logits(model, fs: FeatureSet, cut: int, batch: int = 256) -> np.ndarray:
    """Logits of every cached row, in evaluation mode."""
    model.eval()
    outs = [model.suffix(torch.from_numpy(np.asarray(fs.features[i : i + batch], np.float32)), cut).numpy()
            for i in range(0, len(fs.targets), batch)]
    return np.concatenate(outs)


def metrics(logits: np.ndarray, fs: FeatureSet, n: int, f: int) -> dict:
    """Garment top-1/top-2 per source (background as a class), colour family, garment-free photos named."""
    real = fs.sources != "background"
    out = report.accuracy_by_source(logits[real, :n], fs.targets[real], fs.sources[real])
    out["colour_family_acc"] = report.set_accuracy(logits[real, n : n + f], fs.colour_sets[real])
    bg = ~real
    pred = logits[:, :n].argmax(1)
    if bg.any():
        out["background"] = {"n": int(bg.sum()), "named_as_garment": float((pred[bg] != n - 1).mean())}
    out["garments_lost"] = float((pred[real] == n - 1).mean())
    return out


def occasion_thresholds(probs: np.ndarray, occ: np.ndarray, min_precision: float = 0.9,
                        min_said: int = 20) -> dict[str, dict]:
    """Per occasion, the lowest threshold whose validation precision reaches min_precision."""
    out = {}
    for j, name in enumerate(OCCASIONS):
        known = occ[:, j] >= 0
        p, y = probs[known, j], occ[known, j] > 0.5
        best = None
        for t in np.unique(np.round(p, 3))[::-1]:
            said = p >= t
            if said.sum() >= min_said and y[said].mean() >= min_precision:
                best = (float(t), float(y[said].mean()), float(said[y].mean()) if y.any() else 0.0)
        if best:
            out[name] = {"threshold": best[0], "precision": best[1], "recall": best[2]}
    return out


def run(args: argparse.Namespace, model, classes: list[str], splits: dict[str, Split], pre: Preprocess,
        meta: dict) -> dict:
    """Cache, train the suffix with checkpoint/resume/time limit, pick occasions, evaluate on test."""
    out: Path = args.output_dir
    cut = args.freeze_blocks
    n, f = len(classes), len(FAMILIES)
    sets = cached_splits(model, splits, pre, vars(args), args.cache_dir, args.threads)
    for fs in sets.values():
        fs.targets = np.where(fs.targets < 0, n - 1, fs.targets)  # the background class is the last
    for name, fs in sets.items():
        log.info("%s: %d cached views (%s)", name, len(fs.targets),
                 ", ".join(f"{s} {c}" for s, c in zip(*np.unique(fs.sources, return_counts=True), strict=True)))
    if args.probe:
        return probe(model, sets, classes, cut, out)
    for p in model.parameters():
        p.requires_grad = False
    net = model.net
    trainable = [p for m in (*net._blocks[cut:], net._conv_head, net._bn1) for p in m.parameters()]
    head = list(model.net._fc.parameters())
    for p in trainable + head:
        p.requires_grad = True
    optimizer = torch.optim.AdamW([{"params": trainable, "lr": args.lr}, {"params": head, "lr": args.lr * 10}],
                                  weight_decay=args.weight_decay)
    epoch_size = args.epoch_size or len(sets["train"].targets)
    scheduler = warmup_cosine(optimizer, math.ceil(epoch_size / args.batch_size), args.epochs, args.warmup_epochs)
    checkpoint = Checkpoint(out / "checkpoint.pt")
    progress = checkpoint.resume(model, optimizer, scheduler) if args.resume else Progress()
    train = sets["train"]
    weights = source_weights(train, args.balance)
    teacher = taught(args, splits, train, classes)
    distil_colours = args.distill_colours or bool(args.colour_teacher)

    def one_epoch(epoch: int) -> tuple[float, dict]:
        t0 = time.monotonic()
        rng = np.random.default_rng(args.seed * 1000 + epoch)
        torch.manual_seed(args.seed * 1000 + epoch)
        idx = rng.choice(len(weights), size=epoch_size, replace=True, p=weights)
        model.train()
        for b in model.net._blocks[:cut]:
            b.eval()
        run_loss, seen = 0.0, 0
        for s in range(0, len(idx), args.batch_size):
            b = np.sort(idx[s : s + args.batch_size])
            x = torch.from_numpy(np.asarray(train.features[b], np.float32))
            if args.feature_shift:  # a pixel of translation on the cached map: cheap augmentation
                dx, dy = (int(v) for v in rng.integers(-1, 2, size=2))
                x = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
            out = model.suffix(x, cut)
            loss = losses(out, torch.from_numpy(train.targets[b]),
                          torch.from_numpy(train.colour_sets[b]), torch.from_numpy(train.occasions[b]), n, f,
                          args.label_smoothing, args.colour_weight, args.occasion_weight)
            if teacher is not None:
                colour_rows = torch.from_numpy((train.sources[b] != "background") & distil_colours)
                loss = loss + args.distill_weight * distillation(out, torch.from_numpy(np.asarray(teacher[b])), n, f,
                                                                 args.distill_temperature, colour_rows,
                                                                 garments=bool(args.teacher))
            run_loss += step(loss, optimizer, scheduler) * len(b)
            seen += len(b)
        val = metrics(suffix_logits(model, sets["val"], cut), sets["val"], n, f)
        score = float(np.mean([val[s]["top1"] for s in ("clothing-photos", "product-photos") if s in val]))
        log.info("epoch %d: loss %.3f, val home %.3f, product %.3f, colour %.3f, background named %.3f (%.0f s)",
                 epoch, run_loss / max(seen, 1), val.get("clothing-photos", {}).get("top1", float("nan")),
                 val.get("product-photos", {}).get("top1", float("nan")), val["colour_family_acc"],
                 val.get("background", {}).get("named_as_garment", float("nan")), time.monotonic() - t0)
        return score, {"train_loss": run_loss / max(seen, 1), "val_loss": float("nan"), "val": val}

    def on_epoch(progress: Progress, improved: bool) -> None:
        if improved:
            torch.save({"model": model.state_dict(), **meta, "epoch": progress.epoch,
                        "val": json.dumps(progress.history[-1]["val"])}, out / "best.pt")
        checkpoint.save(progress, model, optimizer, scheduler)
        report.plot_history(progress.history, out / "loss.png")

    fit(progress, one_epoch, args.epochs, args.patience, args.max_minutes, on_epoch)
    return finish(model, sets, splits, classes, cut, out)


def finish(model, sets: dict[str, FeatureSet], splits: dict[str, Split], classes: list[str], cut: int,
           out: Path) -> dict:
    """Best weights; occasions that reach 90 % validation precision kept (the rest cut from the last layer); test."""
    best = load_checkpoint(out / "best.pt")
    model.load_state_dict(best["model"])
    n, f = len(classes), len(FAMILIES)
    val_logits = suffix_logits(model, sets["val"], cut)
    occ_probs = 1 / (1 + np.exp(-val_logits[:, n + f :]))
    speak = occasion_thresholds(occ_probs, sets["val"].occasions)
    keep = list(range(n + f)) + [n + f + OCCASIONS.index(o) for o in speak]
    fc = model.net._fc
    new = torch.nn.Linear(fc.in_features, len(keep))
    with torch.no_grad():
        new.weight.copy_(fc.weight[keep])
        new.bias.copy_(fc.bias[keep])
    model.net._fc = new
    results = {}
    for name in ("val", "test"):
        fs = sets[name]
        logits = suffix_logits(model, fs, cut)
        results[name] = metrics(logits, fs, n, f)
        real = fs.sources != "background"
        np.savez_compressed(out / f"{name}-logits.npz", logits=logits, targets=fs.targets, sources=fs.sources,
                            colour_sets=fs.colour_sets, occasions=fs.occasions, photo=fs.photo)
        results[name]["per_class"] = report.full_report(logits[real, :n], fs.targets[real], fs.sources[real],
                                                        classes, out, name).get("per_class")
        if speak:
            o = 1 / (1 + np.exp(-logits[:, n + f :]))
            results[name]["occasions"] = {}
            for j, (occ, th) in enumerate(speak.items()):
                col = fs.occasions[:, OCCASIONS.index(occ)]
                known = col >= 0
                said = known & (o[:, j] >= th["threshold"])
                results[name]["occasions"][occ] = {
                    "precision": float((col[said] > 0.5).mean()) if said.any() else None,
                    "recall": float(said[col > 0.5].mean()) if (col > 0.5).any() else None}
    occasions = {o: v["threshold"] for o, v in speak.items()}
    torch.save({**best, "model": model.state_dict(), "occasions": occasions,
                "occasion_metrics": speak}, out / "best.pt")
    (out / "metrics.json").write_text(json.dumps({"best_epoch": best["epoch"], **results}, indent=2, default=str))
    log.info("test: %s", json.dumps({k: v for k, v in results["test"].items() if k != "per_class"}, default=str))
    return results


@torch.no_grad()
def pooled_features(model, fs: FeatureSet, cut: int, rows: np.ndarray, batch: int = 256) -> np.ndarray:
    """The frozen network's 1280-wide pooled features of the given cached rows."""
    model.eval()
    return np.concatenate([model.pooled(torch.from_numpy(np.asarray(fs.features[np.sort(rows[i : i + batch])],
                                                                    np.float32)), cut).numpy()
                           for i in range(0, len(rows), batch)])


def probe(model, sets: dict[str, FeatureSet], classes: list[str], cut: int, out: Path) -> dict:
    """The floor fine-tuning must beat: a logistic regression on the untouched ImageNet network's pooled features
    (inference views only; garment classes and the background class; colour family as a second regression)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    train = sets["train"]
    first = np.r_[True, train.photo[1:] != train.photo[:-1]]  # a photo's first row is its inference view
    rows = np.flatnonzero(first | (train.sources == "background"))
    x = pooled_features(model, train, cut, rows)
    scaler = StandardScaler().fit(x)
    garments = LogisticRegression(max_iter=300, C=0.5).fit(scaler.transform(x),
                                                                                    train.targets[rows])
    known = train.colour_sets[rows].any(1)
    single = known & (train.colour_sets[rows].sum(1) == 1)
    colours = LogisticRegression(max_iter=300, C=0.5).fit(scaler.transform(x[single]),
                                                          train.colour_sets[rows][single].argmax(1))
    results = {}
    n = len(classes)
    for name in ("val", "test"):
        fs = sets[name]
        z = scaler.transform(pooled_features(model, fs, cut, np.arange(len(fs.targets))))
        logits = np.full((len(z), n), -1e9)
        logits[:, garments.classes_] = garments.predict_log_proba(z)
        col = np.full((len(z), len(FAMILIES)), -1e9)
        col[:, colours.classes_] = colours.predict_log_proba(z)
        results[name] = metrics(np.concatenate([logits, col], 1), fs, n, len(FAMILIES))
    (out / "metrics.json").write_text(json.dumps({"probe": True, **results}, indent=2))
    log.info("linear probe, test: %s", json.dumps(results["test"]))
    return results
