"""Fit colour-family boundaries on shop-labelled photos and measure colour naming against the labels.

`wardrobe train colours --data product-photos=DIR` writes runs/colours/colour_model.json (or
--output; the shipped one is wardrobe/data/colour_model.json) and prints family accuracy on the held-out test split for the original method and ours.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
from dataclasses import replace
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from wardrobe.baseline import original_colours
from wardrobe.colours import (
    FAMILIES,
    ColourNamer,
    dominant_colours,
    garment_weights,
    rule_family,
    shop_colours,
)
from wardrobe.errors import TrainingError
from wardrobe.segment import segment
from wardrobe.taxonomy import Taxonomy, region_of
from wardrobe.train import engine
from wardrobe.train.data import read_product_photos, split_records

log = logging.getLogger(__name__)

VARIANTS = ("auto", "auto-region", "threshold")
KS = (15, 31)
"""The neighbours a family vote may take, chosen on validation (a fit needs at least as many training photos)."""


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    """Command-line flags."""
    p = argparse.ArgumentParser(prog="wardrobe train colours", add_help=add_help,
                                description="Fit colour-family boundaries on product photos and report accuracy.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", required=True, metavar="product-photos=DIR", help="the product photos")
    engine.add_flags(p, "seed")
    p.add_argument("--train-limit", type=int, default=9000, help="training photos used for fitting")
    p.add_argument("--eval-limit", type=int, default=0, help="val/test photos used (0: all)")
    p.add_argument("--bundle", type=Path, help="also score the whole describe pipeline with this model bundle")
    p.add_argument("--workers", type=int, default=2)
    engine.add_flags(p, "cache_dir")
    p.add_argument("--output", type=Path, default=Path("runs/colours/colour_model.json"),
                   help="colour model to write (ship it by copying it to wardrobe/data/colour_model.json)")
    p.add_argument("--report", type=Path, default=Path("runs/colours/report.json"))
    return p


def features(job: tuple[str, str]) -> dict | None:
    """Clusters (CIELAB, share) of one photo under each variant, plus the original method's CSS3 answer."""
    import cv2

    path, region = job
    bgr = cv2.imread(path)
    if bgr is None:
        return None
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    out: dict = {}
    auto = segment(rgb, "auto")
    thr = segment(rgb, "threshold")
    for name, alpha, reg in (("auto", auto, "whole"), ("auto-region", auto, region), ("threshold", thr, "whole")):
        cl = dominant_colours(rgb, garment_weights(rgb, alpha, region=reg))
        out[name] = [[round(x, 2) for x in c.lab] + [round(c.share, 3)] for c in cl]
    orig = original_colours(rgb, threshold_alpha_binary(thr))
    out["original"] = orig[0][0] if orig else None
    return out


def pipeline_accuracy(bundle: Path, model: dict, records, accept) -> dict:
    """Main-colour family accuracy of the real describe pipeline, with and without the colour head's hint."""
    from tqdm import tqdm

    from wardrobe.classify import Classifier
    from wardrobe.images import read_image
    from wardrobe.pipeline import Pipeline
    from wardrobe.settings import VisionSettings

    clf = Classifier.load(bundle)
    out = {}
    # The study as it was made (docs/colours.md): the clusters' names with the colour head's hint alone, none of
    # the steps added since (the pixels' vote, the learned decision, hedges); `wardrobe train evaluate` measures
    # the colour step a closet runs.
    then = VisionSettings(colour_pixel_weight=0.0, colour_head_sure=1.01, colour_learned_weight=0.0,
                          colour_hedge_min=1.01, colour_unsure_below=0.0, aiming=False)
    for name, hint_min in (("test-pipeline-clusters-only", 1.01), ("test-pipeline-with-colour-head", 0.5)):
        pipe = Pipeline(clf, replace(then, family_hint_min=hint_min), namer=ColourNamer(model=model))
        pred = []
        for r in tqdm(records, desc=name):
            d = pipe.describe(read_image(r.path))
            pred.append(d.colours[0].family if d.colours else "none")
        out[name] = accuracy(pred, accept)
        log.info("%s: %.3f", name, out[name])
    return out


def threshold_alpha_binary(alpha: np.ndarray) -> np.ndarray:
    """The original kept every pixel with any alpha."""
    return (alpha > 0).astype(np.uint8)


def compute(records, regions: dict[str, str], workers: int, cache: Path) -> list[dict]:
    """Features for records, cached by image path."""
    from tqdm import tqdm

    done: dict = json.loads(cache.read_text()) if cache.exists() else {}
    todo = [(r.path, regions[r.path]) for r in records if r.path not in done]
    if todo:
        with get_context("forkserver").Pool(workers) as pool:  # no inherited locks (see data.load_images)
            for (path, _), f in zip(todo, tqdm(pool.imap(features, todo, chunksize=32), total=len(todo), desc="colours"), strict=True):
                done[path] = f
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(done))
    return [done[r.path] for r in records]


MISSING_MAX = 0.1
"""The share of a split's photos that may be missing: the shop's list names a few images its folder lacks; more is a
labels file from another folder, and a fit on what is left would be a fit on almost nothing."""


def readable(use: dict[str, list], feats: dict[str, list], root: Path) -> tuple[dict[str, list], dict[str, list]]:
    """Each split without the photos that are missing or not photos, with a count. More than MISSING_MAX of a split
    missing: TrainingError, naming the first one."""
    lost = [r.path for name in use for r, f in zip(use[name], feats[name], strict=True) if f is None]
    kept = {name: [i for i, f in enumerate(feats[name]) if f is not None] for name in use}
    for name in use:
        if len(kept[name]) < (1 - MISSING_MAX) * len(use[name]) or not kept[name]:
            raise TrainingError(f"--data product-photos={root}: {len(use[name]) - len(kept[name])} of the "
                                f"{len(use[name])} {name} photos its labels name are missing or unreadable (first: "
                                f"{lost[0]}): is it the folder the labels came with?")
    if lost:
        log.warning("%d of %d photos are missing or unreadable and left out, first: %s", len(lost),
                    sum(map(len, use.values())), lost[0])
    return ({name: [use[name][i] for i in kept[name]] for name in use},
            {name: [feats[name][i] for i in kept[name]] for name in use})


def fit(labs: np.ndarray, families: list[str], k: int, l_scale: float, balance: float = 0.0,
        max_points: int = 6000, seed: int = 0) -> dict:
    """The family model: labelled CIELAB points for a k-nearest-neighbour vote."""
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(labs))[:max_points]
    return {"k": k, "scale": [l_scale, 1.0, 1.0], "balance": balance, "points": np.round(labs[idx], 1).tolist(),
            "point_family": [families[i] for i in idx], "palette": []}


def balanced_accuracy(pred: list[str], accept: list[tuple[str, ...]]) -> float:
    """Mean over single-family labels of per-family accuracy."""
    per: dict[str, list[bool]] = {}
    for p, a in zip(pred, accept, strict=True):
        if len(a) == 1:
            per.setdefault(next(iter(a)), []).append(p in a)
    return float(np.mean([np.mean(v) for v in per.values()])) if per else 0.0


def accuracy(pred: list[str], accept: list[tuple[str, ...]]) -> float:
    """Share of predictions inside the label's acceptable families."""
    return float(np.mean([p in a for p, a in zip(pred, accept, strict=True)])) if pred else 0.0


def main(args: argparse.Namespace) -> dict:
    """Compute features, fit on train, choose k and lightness scale on val, report on test."""
    kind, _, path = args.data.partition("=")
    if kind != "product-photos":
        raise TrainingError("--data must be product-photos=DIR (the photos with shop colour labels)")
    root = Path(path)
    labels, regions = {}, {}
    taxonomy = Taxonomy.load()
    with open(root / "styles.csv", newline="") as f:
        for r in csv.DictReader(f):
            labels[str(root / r["image"])] = r["baseColour"]
            regions[str(root / r["image"])] = region_of(taxonomy.garment("product-photos", r["articleType"]))
    shop = shop_colours()
    splits = split_records(read_product_photos(root), args.seed)
    rng = np.random.default_rng(args.seed)
    use = {}
    for name, recs in splits.items():
        recs = [r for r in recs if labels[r.path] in shop]
        limit = args.train_limit if name == "train" else args.eval_limit
        if limit and len(recs) > limit:
            recs = [recs[i] for i in sorted(rng.choice(len(recs), limit, replace=False))]
        use[name] = recs
    feats = {name: compute(recs, regions, args.workers, args.cache_dir / f"colour-features-{name}.json") for name, recs in use.items()}
    use, feats = readable(use, feats, root)
    accept = {name: [shop[labels[r.path]][0] for r in recs] for name, recs in use.items()}

    def labs_of(name: str, variant: str) -> tuple[np.ndarray, np.ndarray]:
        ok = np.array([f is not None and bool(f[variant]) for f in feats[name]])
        arr = np.array([f[variant][0][:3] if ok[i] else [0, 0, 0] for i, f in enumerate(feats[name])], np.float32)
        return arr, ok

    results: dict = {"n": {k: len(v) for k, v in use.items()}}
    best = None
    for variant in VARIANTS:
        tr, ok = labs_of("train", variant)
        single = [i for i, a in enumerate(accept["train"]) if len(a) == 1 and ok[i]]
        if len(single) < max(KS):  # a family vote of k neighbours needs k photos of one family each
            log.warning("%s: %d training photos of one family, a fit needs %d: not tried", variant, len(single),
                        max(KS))
            continue
        fams = [next(iter(accept["train"][i])) for i in single]
        va, _ = labs_of("val", variant)
        results[f"val-rules-{variant}"] = accuracy([rule_family(x) for x in va], accept["val"])
        for k in KS:
            for ls in (0.5, 1.0):
                for bal in (0.0, 0.5, 1.0):
                    model = fit(tr[single], fams, k, ls, bal)
                    namer = ColourNamer(model=model)
                    pred = [namer.family(x) for x in va]
                    acc = accuracy(pred, accept["val"])
                    # Mean per-family accuracy too: a model that calls every grey black scores well
                    # on a black-heavy shop but fails the person in a grey sweater.
                    fam_acc = balanced_accuracy(pred, accept["val"])
                    results[f"val-knn-{variant}-k{k}-L{ls}-b{bal}"] = [acc, fam_acc]
                    score = (acc + fam_acc) / 2
                    if best is None or score > best[0]:
                        best = (score, variant, k, ls, bal, model)
    if best is None:
        raise TrainingError(f"--data product-photos={root}: too few training photos whose shop colour is of one "
                            f"family and whose garment was found (a fit needs {max(KS)})")
    score, variant, k, ls, bal, model = best
    log.info("best on validation: %s k=%d L-scale=%.1f balance=%.1f: %.3f", variant, k, ls, bal, score)
    # Palette: each shop colour's median photographed CIELAB, kept where the model agrees on its family.
    tr, ok = labs_of("train", variant)
    namer = ColourNamer(model=model)
    by_label: dict[str, list[np.ndarray]] = {}
    for i, r in enumerate(use["train"]):
        if ok[i]:
            by_label.setdefault(labels[r.path], []).append(tr[i])
    for label, pts in sorted(by_label.items()):
        fams, spoken = shop[label]
        if len(pts) < 8:
            continue
        centre = np.median(np.array(pts), axis=0)
        fam = namer.family(centre)
        if fam == fams[0]:  # the family the shop's name belongs to
            model["palette"].append({"name": spoken, "family": fam, "lab": np.round(centre, 1).tolist()})
    for fam in FAMILIES:  # every family needs at least its own name
        if not any(p["family"] == fam for p in model["palette"]):
            pts = [tr[i] for i in range(len(tr)) if ok[i] and namer.family(tr[i]) == fam]
            centre = np.median(np.array(pts), axis=0) if pts else np.zeros(3)
            model["palette"].append({"name": fam, "family": fam, "lab": np.round(centre, 1).tolist()})
    model["variant"] = variant
    args.output.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.output.with_suffix(".tmp")
    tmp.write_text(json.dumps(model, separators=(",", ":")))
    tmp.replace(args.output)
    # The test split, touched once, for the report.
    te, _ = labs_of("test", variant)
    namer = ColourNamer(model=model)
    results["test-ours"] = accuracy([namer.family(x) for x in te], accept["test"])
    results["test-rules-same-pipeline"] = accuracy([rule_family(x) for x in te], accept["test"])
    css = ColourNamer(model={})
    orig = [f["original"] if f else None for f in feats["test"]]
    results["test-original"] = accuracy(
        [rule_family(css.css3_lab[css.css3_names.index(n)]) if n else "none" for n in orig], accept["test"])
    results["chosen"] = {"variant": variant, "k": k, "l_scale": ls, "balance": bal}
    results["test-ours-balanced"] = balanced_accuracy([namer.family(x) for x in te], accept["test"])
    if args.bundle:
        results.update(pipeline_accuracy(args.bundle, model, use["test"], accept["test"]))
    per_label: dict[str, list[bool]] = {}
    for r, x, a in zip(use["test"], te, accept["test"], strict=True):
        per_label.setdefault(labels[r.path], []).append(namer.family(x) in a)
    results["test-per-label"] = {k2: [round(float(np.mean(v)), 3), len(v)] for k2, v in sorted(per_label.items(), key=lambda kv: -len(kv[1]))}
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(results, indent=2))
    log.info("test family accuracy: ours %.3f, original %.3f", results["test-ours"], results["test-original"])
    return results
