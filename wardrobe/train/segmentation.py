"""Measure background removal on composites with exact ground truth.

Real garments cut from white-background product photos (their threshold mask is exact there) are
placed on real home backgrounds (strips from the edges of home photos, mirror-tiled) under a
lighting change; each method's mask is scored by intersection over union with the truth.

    wardrobe train segmentation --data clothing-photos=DIR --data product-photos=DIR
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from pathlib import Path

import numpy as np

from wardrobe.errors import TrainingError
from wardrobe.segment import auto_mask, plate_mask, threshold_mask
from wardrobe.train import engine
from wardrobe.train.data import read_source, split_records

log = logging.getLogger(__name__)


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    """Command-line flags."""
    p = argparse.ArgumentParser(prog="wardrobe train segmentation", add_help=add_help,
                                description="Score background removal methods on composites with known masks.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", action="append", required=True, metavar="KIND=PATH",
                   help="clothing-photos=DIR (backgrounds) and product-photos=DIR (garments)")
    p.add_argument("--count", type=engine.number(int, 1, 100_000), default=200, help="composites")
    p.add_argument("--split", default="val", choices=("train", "val", "test"), help="which split's photos to use")
    engine.add_flags(p, "seed")
    p.add_argument("--report", type=Path, default=Path("runs/segmentation/report.json"))
    return p


def background(home_rgb: np.ndarray, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A garment-free background: the calmest edge strip of a home photo, mirror-tiled to size (w, h).

    The strip with the least colour variation is taken, so the home photo's own garment (which
    often reaches an edge) is rarely in it.
    """
    import cv2

    h, w = home_rgb.shape[:2]
    band = max(8, h // 10)
    rotated = np.ascontiguousarray(np.rot90(home_rgb))
    strips = [home_rgb[:band], home_rgb[-band:][::-1],
              cv2.resize(rotated[:band], (w, band)), cv2.resize(rotated[-band:][::-1], (w, band))]
    strip = min(strips, key=lambda s: float(s.reshape(-1, 3).astype(np.float32).std(0).sum()))
    tiles = []
    while sum(t.shape[0] for t in tiles) < h:
        tiles.append(strip if len(tiles) % 2 == 0 else strip[::-1])
    return cv2.resize(np.vstack(tiles)[:h], size, interpolation=cv2.INTER_LINEAR)


def composite(product_rgb: np.ndarray, bg: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Paste the product's foreground onto bg at a random place; returns (photo, true mask)."""
    import cv2

    H, W = bg.shape[:2]
    scale = rng.uniform(0.55, 0.85) * H / product_rgb.shape[0]
    fg = cv2.resize(product_rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    alpha = threshold_mask(fg).astype(np.float32) / 255
    h, w = fg.shape[:2]
    top = int(rng.integers(0, max(1, H - h)))
    left = int(rng.integers(0, max(1, W - w)))
    out = bg.astype(np.float32).copy()
    region = out[top : top + h, left : left + w]
    a = alpha[: region.shape[0], : region.shape[1], None]
    region[:] = a * fg[: region.shape[0], : region.shape[1]] + (1 - a) * region
    truth = np.zeros((H, W), bool)
    truth[top : top + h, left : left + w] = a[..., 0] > 0.5
    return np.clip(out, 0, 255).astype(np.uint8), truth


def iou(mask: np.ndarray, truth: np.ndarray) -> float:
    """Intersection over union of a soft mask (thresholded at half) and a boolean truth."""
    m = mask > 127
    union = (m | truth).sum()
    return float((m & truth).sum() / union) if union else 1.0


def main(args: argparse.Namespace) -> dict:
    """Build composites, score each method, write the report."""
    import cv2

    recs = {}
    for spec in args.data:
        kind = spec.partition("=")[0]
        recs[kind] = split_records(read_source(spec), args.seed)[args.split]
    if set(recs) != {"clothing-photos", "product-photos"}:
        raise TrainingError("--data needs both clothing-photos=DIR and product-photos=DIR")
    rng = np.random.default_rng(args.seed)
    methods = {
        "threshold (original)": lambda x, plate: threshold_mask(x),
        "border model only": lambda x, plate: auto_mask(x, grabcut=False),
        "auto: border + GrabCut, 96 px, 2 iterations": lambda x, plate: auto_mask(x, 2, 96),
        "auto: border + GrabCut, 128 px, 2 iterations (default)": lambda x, plate: auto_mask(x, 2, 128),
        "auto: border + GrabCut, 128 px, 3 iterations": lambda x, plate: auto_mask(x, 3, 128),
        "auto: border + GrabCut, 160 px, 4 iterations": lambda x, plate: auto_mask(x, 4, 160),
        "plate: difference only": lambda x, plate: plate_mask(x, plate, iterations=0),
        "plate: difference + GrabCut (default)": lambda x, plate: plate_mask(x, plate),
    }
    scores: dict[str, list[float]] = {m: [] for m in methods}
    times: dict[str, list[float]] = {m: [] for m in methods}
    for _ in range(args.count):
        home = cv2.cvtColor(cv2.imread(recs["clothing-photos"][int(rng.integers(len(recs["clothing-photos"])))].path),
                            cv2.COLOR_BGR2RGB)
        prod = cv2.cvtColor(cv2.imread(recs["product-photos"][int(rng.integers(len(recs["product-photos"])))].path),
                            cv2.COLOR_BGR2RGB)
        bg = background(home, (640, 480), rng)
        photo, truth = composite(prod, bg, rng)
        gain = rng.uniform(0.8, 1.15)  # the light changed since calibration
        photo = np.clip(photo.astype(np.float32) * gain + rng.normal(0, 3, photo.shape), 0, 255).astype(np.uint8)
        for name, fn in methods.items():
            t = time.perf_counter()
            mask = fn(photo, bg)
            times[name].append((time.perf_counter() - t) * 1000)
            scores[name].append(iou(mask, truth))
    report = {name: {"mean_iou": float(np.mean(s)), "iou_below_0.5": float(np.mean(np.array(s) < 0.5)),
                     "median_ms": statistics.median(times[name])} for name, s in scores.items()}
    # Real home photos have no true masks, but every one holds a garment: a mask under 5% of the
    # photo has lost it (the user would hear "I can't see a garment").
    from wardrobe.pipeline import read_image, shrink

    homes = [shrink(read_image(r.path), 640) for r in recs["clothing-photos"][: args.count]]
    for name, fn in methods.items():
        if name.startswith(("auto", "border")):
            lost = [float(((fn(x, None) > 127).mean()) < 0.05) for x in homes]
            report[name]["home_photos_lost"] = float(np.mean(lost))
    report = {"composites": args.count, "home_photos": len(homes), "split": args.split, "size": "640x480",
              "methods": report}
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(report, indent=2))
    for name, r in report["methods"].items():
        lost = f", garment lost on {100 * r['home_photos_lost']:.1f}% of home photos" if "home_photos_lost" in r else ""
        log.info("%-56s composite IoU %.3f, IoU<0.5 in %4.1f%%, %.1f ms%s", name, r["mean_iou"],
                 100 * r["iou_below_0.5"], r["median_ms"], lost)
    return report
