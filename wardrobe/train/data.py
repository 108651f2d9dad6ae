"""Datasets for the companion training script: sources, taxonomy, splits and a decoded-image cache."""

from __future__ import annotations

import csv
import hashlib
import logging
import os
import random
from collections import defaultdict
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from wardrobe.errors import TrainingError
from wardrobe.preprocess import Preprocess
from wardrobe.taxonomy import Taxonomy

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Record:
    """One labelled photo."""

    path: str
    source: str
    label: str
    """The source's own label (folder name, clothing label or articleType)."""
    group: str
    """Photos sharing a group never straddle splits (the sender of a home photo)."""
    colour: str = ""
    """The shop's colour label (product photos), empty when unknown."""
    usage: str = ""
    """The shop's usage label (product photos: Casual, Formal, ...), empty when unknown."""
    name: str = ""
    """The shop's product name (product photos, e.g. "Turtle Check Men Navy Blue Shirt"), empty when unknown."""


def read_clothing_photos(root: Path) -> list[Record]:
    """The home photos: labels.csv with image,label,kids,sender_id."""
    with open(root / "labels.csv", newline="") as f:
        return [
            Record(str(root / r["image"]), "clothing-photos", r["label"], "sender-" + r["sender_id"])
            for r in csv.DictReader(f)
        ]


def read_product_photos(root: Path) -> list[Record]:
    """The catalogue photos: styles.csv with image,...,articleType,baseColour,..."""
    with open(root / "styles.csv", newline="") as f:
        return [
            Record(str(root / r["image"]), "product-photos", r["articleType"], r["image"], r["baseColour"],
                   r.get("usage", ""), r.get("name", ""))
            for r in csv.DictReader(f)
        ]


def read_image_folder(root: Path, source: str = "image-folder") -> list[Record]:
    """An ImageFolder tree (one folder per label), the original system's format."""
    exts = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
    return [
        Record(str(p), source, p.parent.name, str(p))
        for p in sorted(root.glob("*/*"))
        if p.suffix.lower() in exts
    ]


EYE_FILES = {"home_colours": ("clothing-photos", "families"), "home_garments": ("clothing-photos", "garments"),
             "product_colours": ("product-photos", "families"), "product_garments": ("product-photos", "garments")}
"""Each by-eye flag: the photos it names, and its CSV column."""


def load_eye_labels(path: Path, root: Path, column: str = "families") -> dict[str, tuple[str, ...]]:
    """Photo path -> what a sighted person accepts, from a by-eye CSV (image,split,<column>, the names separated by
    ';', most fitting first; paths relative to the photos' folder): the colour families of --home-colours and
    --product-colours, the garments of --home-garments, --product-garments and --eye-garments."""
    with open(path, newline="") as f:
        return {str(root / r["image"]): tuple(r[column].split(";")) for r in csv.DictReader(f)}


def eye_names(specs: list[str], data: list[str]) -> dict[str, str]:
    """Photo path -> the first garment a sighted person names it, from each KIND=CSV of --eye-garments (the by-eye
    garments of that kind of photos, paths relative to its --data folder): build_splits()' named. A file that names
    none of the photos (another folder) is refused in one line: it would otherwise teach nothing, silently."""
    roots = dict(spec.split("=", 1) for spec in data if "=" in spec)
    out: dict[str, str] = {}
    for spec in specs:
        kind, sep, path = spec.partition("=")
        if not sep or kind not in roots:
            raise TrainingError(f"--eye-garments expects KIND=CSV with a --data KIND=DIR of the same kind, got {spec!r}")
        try:
            labels = load_eye_labels(Path(path), Path(roots[kind]), "garments")
        except (OSError, KeyError, csv.Error) as e:
            raise TrainingError(f"--eye-garments {path}: not a by-eye garments file (image,split,garments): {e}") from e
        if not any(Path(p).is_file() for p in labels):  # stops at the first photo found
            raise TrainingError(f"--eye-garments {path}: none of its {len(labels)} photos is in {roots[kind]}")
        out.update({p: names[0] for p, names in labels.items() if names[0]})
    return out


def read_source(spec: str) -> list[Record]:
    """Read a dataset given as KIND=PATH (clothing-photos, product-photos or folder)."""
    kind, sep, path = spec.partition("=")
    if not sep:
        raise TrainingError(f"--data expects KIND=PATH, got {spec!r}")
    root = Path(path)
    if not root.is_dir():
        raise TrainingError(f"--data {kind}: {root} is " + ("a file, not a folder" if root.exists()
                                                             else "no such directory"))
    readers = {"clothing-photos": read_clothing_photos, "product-photos": read_product_photos,
               "folder": read_image_folder}
    if kind not in readers:
        raise TrainingError(f"--data: unknown kind {kind!r} (clothing-photos, product-photos, folder)")
    try:
        records = readers[kind](root)
    except FileNotFoundError as e:  # its labels file
        raise TrainingError(f"--data {kind}={root}: {e.filename or e} is missing: is this the {kind} folder?") from None
    except (KeyError, csv.Error) as e:  # a column the dataset's labels file must have
        raise TrainingError(f"--data {kind}={root}: its labels file lacks the column {e} (or is not CSV)") from None
    except UnicodeDecodeError:
        raise TrainingError(f"--data {kind}={root}: its labels file is not UTF-8 text") from None
    if not records:
        raise TrainingError(f"--data {kind}={root}: no labelled photos in it")
    return records


def split_records(
    records: list[Record], seed: int, val: float = 0.1, test: float = 0.1
) -> dict[str, list[Record]]:
    """Stratified train/val/test split by label; groups (senders) are kept whole.

    Groups are assigned to splits greedily, largest first, to the split whose share of each
    of the group's labels is furthest below target, so rare labels land in every split.
    """
    rng = random.Random(seed)
    target = {"train": 1 - val - test, "val": val, "test": test}
    out: dict[str, list[Record]] = {s: [] for s in SPLITS}
    by_source: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        by_source[r.source].append(r)
    for _source, recs in sorted(by_source.items()):
        groups: dict[str, list[Record]] = defaultdict(list)
        for r in recs:
            groups[r.group].append(r)
        totals: dict[str, int] = defaultdict(int)
        for r in recs:
            totals[r.label] += 1
        have = {s: defaultdict(int) for s in SPLITS}
        keys = sorted(groups)
        rng.shuffle(keys)
        keys.sort(key=lambda g: -len(groups[g]))
        for g in keys:
            members = groups[g]
            deficit = {
                s: sum(target[s] * totals[m.label] - have[s][m.label] for m in members) / len(members) for s in SPLITS
            }
            best = max(SPLITS, key=lambda s: (deficit[s], target[s]))
            for m in members:
                have[best][m.label] += 1
            out[best].extend(members)
    return out


def _decode(args: tuple[str, dict]) -> np.ndarray | None:
    import cv2

    path, pre = args
    bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    if bgr is None:
        return None
    p = Preprocess.from_dict(pre)
    # The central resize x resize square: same centre, so the later crop equals inference's.
    return p.center_crop(p.resized(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)), p.resize)


def load_images(paths: list[str], pre: Preprocess, cache_dir: Path | None, workers: int = 0) -> np.ndarray:
    """Decode and resize photos into one uint8 array (N, resize, resize, 3), cached on disk."""
    key = hashlib.sha256(("\n".join(paths) + repr(pre.to_dict())).encode()).hexdigest()[:16]
    cache = cache_dir / f"images-{pre.resize}-{pre.mode}-{key}.npy" if cache_dir else None
    if cache and cache.exists():
        return np.load(cache, mmap_mode="r")
    from tqdm import tqdm

    if not paths:
        return np.zeros((0, pre.resize, pre.resize, 3), np.uint8)
    workers = workers or min(8, os.cpu_count() or 1)
    jobs = [(p, pre.to_dict()) for p in paths]
    # forkserver, not fork: the calling process may hold threads (ONNX Runtime, torch, a running appliance in
    # the tests) whose locks a forked child would inherit locked, and hang on.
    with get_context("forkserver").Pool(workers) as pool:
        arrays = list(tqdm(pool.imap(_decode, jobs, chunksize=64), total=len(jobs), desc="decode", unit="img"))
    bad = [p for p, a in zip(paths, arrays, strict=True) if a is None]
    if bad:
        raise TrainingError(f"{len(bad)} photos could not be read, first: {bad[0]}")
    out = np.stack(arrays)  # type: ignore[arg-type]
    if cache:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp.npy")  # unique: torchrun ranks decode at once
        np.save(tmp, out)
        os.replace(tmp, cache)
    return out


@dataclass
class Split:
    """Images and targets of one split, ready for a DataLoader."""

    images: np.ndarray
    targets: np.ndarray
    sources: np.ndarray
    records: list[Record]
    colour_sets: np.ndarray
    """(N, families) bool: the colour families acceptable for each photo; all False when unknown."""


def colour_sets(records: list[Record]) -> np.ndarray:
    """Acceptable colour families per photo from its shop colour label (Multi, metallics: none)."""
    from wardrobe.colours import FAMILIES, shop_colours

    shop = shop_colours()
    out = np.zeros((len(records), len(FAMILIES)), bool)
    for i, r in enumerate(records):
        for fam in shop.get(r.colour, (set(), ""))[0]:
            out[i, FAMILIES.index(fam)] = True
    return out


def build_splits(
    specs: list[str], taxonomy: Taxonomy, pre: Preprocess, seed: int, cache_dir: Path | None,
    limit: int | None = None, decode: bool = True, named: dict[str, str] | None = None,
) -> tuple[list[str], dict[str, Split]]:
    """Read every source, map labels through the taxonomy, split, decode. Returns (classes, splits).

    With decode=False the splits carry no images (an empty array): for callers that read the files themselves.
    named: photo path -> the garment a sighted person names it (eye_names()); it replaces the taxonomy's garment
    of that photo in the training and validation splits, never in test, and never moves a photo between splits.
    """
    records: list[Record] = []
    for spec in specs:
        records.extend(read_source(spec))
    garment = {r: taxonomy.garment(r.source, r.label, r.name) for r in records}  # once: a rule may read the name
    unknown = sorted({(r.source, r.label) for r in records if garment[r] is None})
    if unknown:
        log.warning("%d labels are not in the taxonomy and are left out, e.g. %s", len(unknown), unknown[:3])
        records = [r for r in records if garment[r] is not None]
    splits = split_records(records, seed)
    if limit:
        rng = random.Random(seed)
        splits = {s: rng.sample(v, min(limit, len(v))) for s, v in splits.items()}
    classes = sorted({garment[r] for r in records})  # type: ignore[type-var]
    if named:
        unknown = sorted(set(named.values()) - set(classes))
        if unknown:
            raise TrainingError(f"the photos named by eye use names that are not classes: {unknown[:3]}")
        for r in splits["train"] + splits["val"]:
            garment[r] = named.get(r.path, garment[r])
    index = {c: i for i, c in enumerate(classes)}
    out = {}
    for name, recs in splits.items():
        recs = sorted(recs, key=lambda r: r.path)
        out[name] = Split(
            images=load_images([r.path for r in recs], pre, cache_dir) if decode
            else np.zeros((0, pre.resize, pre.resize, 3), np.uint8),
            targets=np.array([index[garment[r]] for r in recs], dtype=np.int64),
            sources=np.array([r.source for r in recs]),
            records=recs,
            colour_sets=colour_sets(recs),
        )
    return classes, out
