"""Score what the appliance says: the whole describe pipeline of a bundle on held-out photos.

    wardrobe train evaluate --bundle models/default --data clothing-photos=DIR --data product-photos=DIR \
        --home-colours assets/labels/home-colours.csv

For each photo the real pipeline runs (segment, classify, cluster, name). Reported per split:
- garment top-1 as spoken (a photo the model calls garment-free counts as wrong: a lost garment);
- the main colour's family against the shop's label (product photos) and against families labelled
  by eye (home photos, --home-colours), for each way of combining the colour head with the pixel
  clusters (clusters only; the head's family when its probability reaches a threshold);
- garment-free photos (the most garment-free corner of each home photo) still named as a garment.
The colour-head threshold is chosen on the validation split and reported on test.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
from pathlib import Path

import numpy as np

from wardrobe.colours import shop_colours
from wardrobe.preprocess import Preprocess
from wardrobe.taxonomy import Taxonomy
from wardrobe.train import engine
from wardrobe.train.data import build_splits

log = logging.getLogger(__name__)

SPLIT_DATA = "clothing-photos=DIR and/or product-photos=DIR (the training script's split, same seed)"
"""The --data help of every measurement on a bundle: the photos are split exactly as training split them."""
HINT_THRESHOLDS = (1.01, 0.9, 0.7, 0.5, 0.3, 0.0)
"""Colour-head probabilities at or above which its family replaces the clusters' (1.01: never; 0: always)."""


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    """Command-line flags."""
    p = argparse.ArgumentParser(prog="wardrobe train evaluate", add_help=add_help,
                                description="Score the whole describe pipeline of a bundle on held-out photos.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    engine.add_flags(p, "bundle", "data", "home_colours", "seed", "report", required=("bundle", "data"),
                     data={"help": SPLIT_DATA}, report=Path("runs/evaluate.json"))
    p.add_argument("--limit", type=int, default=0, help="at most this many photos per source and split (0: all)")
    p.add_argument("--splits", default="val,test", help="splits to score")
    return p


def load_home_colours(path: Path, root: Path) -> dict[str, tuple[str, ...]]:
    """Photo path -> acceptable families, from the by-eye CSV (paths relative to the home photos' folder)."""
    with open(path, newline="") as f:
        return {str(root / r["image"]): tuple(r["families"].split(";")) for r in csv.DictReader(f)}


def main(args: argparse.Namespace) -> dict:
    """Run the pipeline over each split and write the scores."""
    import cv2
    from tqdm import tqdm

    from wardrobe.classify import Classifier
    from wardrobe.colours import ColourNamer
    from wardrobe.images import read_image, shrink
    from wardrobe.pipeline import WORK_SIDE, Pipeline
    from wardrobe.train.frozen import background_crop

    clf = Classifier.load(args.bundle)
    namer = ColourNamer()
    pipe = Pipeline(clf, namer, family_hint_min=2.0)  # clusters only; the head's hint is applied below
    shop = shop_colours()
    taxonomy = Taxonomy.load()
    by_eye: dict[str, tuple[str, ...]] = {}
    _, splits = build_splits(args.data, taxonomy, Preprocess(), args.seed, None, decode=False)
    for spec in args.data:
        kind, _, path = spec.partition("=")
        if kind == "clothing-photos" and args.home_colours:
            by_eye = load_home_colours(args.home_colours, Path(path))
    results: dict = {"bundle": str(args.bundle), "version": clf.bundle.version}
    rng = np.random.default_rng(args.seed)
    for name in args.splits.split(","):
        rows = []
        recs = splits[name].records
        if args.limit:
            keep = []
            for src in sorted({r.source for r in recs}):
                mine = [r for r in recs if r.source == src]
                keep += [mine[i] for i in sorted(rng.choice(len(mine), min(args.limit, len(mine)), replace=False))]
            recs = keep
        for r in tqdm(recs, desc=f"describe {name}", unit="photo"):
            rgb = read_image(r.path)
            d = pipe.describe(rgb, r.path)
            pred = clf.predict(shrink(rgb, WORK_SIDE))  # the colour head's family, as the pipeline sees it
            head = pred.colour_families[0] if pred.colour_families else None
            accept: tuple[str, ...] = ()
            if r.source == "product-photos" and r.colour in shop:
                accept = tuple(shop[r.colour][0])
            elif r.path in by_eye:
                accept = by_eye[r.path]
            row = {"source": r.source, "truth": taxonomy.garment(r.source, r.label), "said": d.garment,
                   "no_garment": "no-garment" in d.problems, "accept": accept, "head": head}
            for t in HINT_THRESHOLDS:
                colours = d.colours
                if colours and head and head[1] >= t:
                    colours = namer.with_family_hint(colours, head[0])
                row[f"family@{t}"] = colours[0].family if colours else None
            rows.append(row)
            if r.source == "clothing-photos":
                crop = background_crop(rgb, 224)
                if crop is not None:
                    # The corner itself, and the same corner blurred flat: a plain wall out of focus.
                    for kind, img in (("garment-free", crop), ("plain-wall", cv2.GaussianBlur(crop, (0, 0), 12))):
                        b = pipe.describe(img, r.path + "#" + kind)
                        rows.append({"source": kind, "said": b.garment, "no_garment": "no-garment" in b.problems,
                                     "model_background": clf.predict(img).background})
        results[name] = summarise(rows)
        log.info("%s: %s", name, json.dumps(results[name]))
    if "val" in results and "test" in results:
        best = max(HINT_THRESHOLDS, key=lambda t: np.mean([results["val"]["colour"][s][str(t)]
                                                          for s in results["val"]["colour"]]))
        results["chosen_hint_threshold"] = best
        log.info("colour head threshold chosen on validation: %s", best)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2))
    return results


def summarise(rows: list[dict]) -> dict:
    """Garment accuracy as spoken, colour-family accuracy per threshold, garment-free photos named."""
    out: dict = {"garment": {}, "colour": {}, "garment_free": {}}
    for src in ("clothing-photos", "product-photos"):
        mine = [r for r in rows if r["source"] == src]
        if mine:
            out["garment"][src] = {"n": len(mine), "top1": float(np.mean([r["said"] == r["truth"] for r in mine])),
                                   "said_no_garment": float(np.mean([r["no_garment"] for r in mine]))}
            labelled = [r for r in mine if r["accept"]]
            if labelled:
                out["colour"][src] = {"n": len(labelled), **{
                    str(t): float(np.mean([r[f"family@{t}"] in r["accept"] for r in labelled]))
                    for t in HINT_THRESHOLDS}}
    for kind in ("garment-free", "plain-wall"):
        free = [r for r in rows if r["source"] == kind]
        if free:
            out["garment_free"][kind] = {
                "n": len(free), "named_as_garment": float(np.mean([not r["no_garment"] for r in free])),
                "model_says_no_garment": float(np.mean([r["model_background"] >= 0.5 for r in free]))}
    return out
