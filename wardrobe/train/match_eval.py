"""Do these match? Pairs of held-out sock photos compared as the double press does.

    wardrobe train match --bundle models/default --data clothing-photos=DIR --data product-photos=DIR

Every pair of held-out product photos of socks (or, with --label all, of a random sample of every type) is labelled by the shop's base colours: the same colour is
"match", a different one is "different" ("Multi" is left out); navy blue against black is reported on its
own. Same-garment pairs are made by comparing each sock photo with another view of itself (a crop of
85-95 %, brightness x0.85-1.15, each channel x0.93-1.07). The colour threshold (CIEDE2000 of the main
colours) is chosen on validation pairs for the best balanced accuracy; the look threshold (embedding
similarity) as the lowest similarity among 95 % of validation same-garment pairs.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
from pathlib import Path

import numpy as np

from wardrobe.errors import TrainingError
from wardrobe.preprocess import Preprocess
from wardrobe.taxonomy import Taxonomy
from wardrobe.train import engine
from wardrobe.train.data import build_splits
from wardrobe.train.evaluate import SPLIT_DATA

log = logging.getLogger(__name__)

DELTA_ES = (4.0, 6.0, 8.0, 10.0, 12.0, 15.0, 20.0, 25.0)


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    """Command-line flags."""
    p = argparse.ArgumentParser(prog="wardrobe train match", add_help=add_help,
                                description="Do-these-match accuracy on held-out sock pairs.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    engine.add_flags(p, "bundle", "data", "seed", "report", required=("bundle", "data"), data={"help": SPLIT_DATA},
                     report=Path("runs/match.json"))
    p.add_argument("--label", default="Socks", help='the product type compared, or "all" (a random sample of every type)')
    p.add_argument("--sample", type=int, default=300, help='photos per split with --label all')
    return p


def other_view(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = rgb.shape[:2]
    s = rng.uniform(0.85, 0.95)
    ch, cw = max(8, int(h * s)), max(8, int(w * s))
    y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
    gains = rng.uniform(0.85, 1.15) * rng.uniform(0.93, 1.07, 3)
    return np.clip(rgb[y:y + ch, x:x + cw].astype(np.float32) * gains, 0, 255).astype(np.uint8)


def check_pairs(compared: dict[str, list], label: str) -> None:
    """TrainingError, in one line, unless validation and test each hold two photos of the type to make a pair of
    (a misspelt --label compared nothing and reported NaN)."""
    short = [split for split, recs in compared.items() if len(recs) < 2]
    if short:
        what = "product photos" if label == "all" else f"product photos of the type {label!r}"
        raise TrainingError(f"--label {label}: fewer than two {what} with a colour label in the "
                            f"{' and the '.join(short)} split (types are the shop's articleType: Socks, Tshirts, ...)")


def main(args: argparse.Namespace) -> dict:
    from wardrobe.classify import Classifier
    from wardrobe.colours import ciede2000
    from wardrobe.images import read_image
    from wardrobe.pipeline import Pipeline

    _, splits = build_splits(args.data, Taxonomy.load(), Preprocess(), args.seed, None, decode=False)
    compared = {split: [r for r in splits[split].records if r.source == "product-photos"
                        and (args.label == "all" or r.label == args.label) and r.colour and r.colour != "Multi"]
                for split in ("val", "test")}
    check_pairs(compared, args.label)
    pipe = Pipeline(Classifier.load(args.bundle))
    rng = np.random.default_rng(args.seed)
    data: dict = {}
    for split in ("val", "test"):
        recs = compared[split]
        if args.label == "all":
            recs = [recs[i] for i in sorted(rng.choice(len(recs), min(args.sample, len(recs)), replace=False))]
        ds = []
        for r in recs:
            rgb = read_image(r.path)
            d, v = pipe.describe(rgb), pipe.describe(other_view(rgb, rng))
            if d.colours and v.colours:
                ds.append((r.colour, d, v))
        pairs = [(a[0] == b[0], {a[0], b[0]} == {"Navy Blue", "Black"}, ciede2000(a[1].colours[0].lab, b[1].colours[0].lab),
                  a[0], b[0]) for a, b in itertools.combinations(ds, 2)]
        same = [(ciede2000(d.colours[0].lab, v.colours[0].lab), float(np.dot(d.embedding, v.embedding))
                 if d.embedding is not None else None) for _, d, v in ds]
        data[split] = {"photos": len(ds), "pairs": pairs, "same_garment": same}

    def score(split: str, t: float) -> dict:
        pairs = data[split]["pairs"]
        same_pairs = [p for p in pairs if p[0]]
        diff_pairs = [p for p in pairs if not p[0]]
        navy_black = [p for p in pairs if p[1]]
        sg = data[split]["same_garment"]
        return {"same_colour_pairs": len(same_pairs), "said_same": float(np.mean([p[2] <= t for p in same_pairs])),
                "different_colour_pairs": len(diff_pairs),
                "said_different": float(np.mean([p[2] > t for p in diff_pairs])),
                "navy_vs_black_pairs": len(navy_black),
                "navy_vs_black_said_different": float(np.mean([p[2] > t for p in navy_black])) if navy_black else None,
                "same_garment_pairs": len(sg), "same_garment_said_same_colour": float(np.mean([d <= t for d, _ in sg]))}

    grid = {t: score("val", t) for t in DELTA_ES}
    best = max(DELTA_ES, key=lambda t: (grid[t]["said_same"] + grid[t]["said_different"]) / 2)
    sims = sorted(s for _, s in data["val"]["same_garment"] if s is not None)
    look = round(float(np.percentile(sims, 5)), 3) if sims else None
    test = score("test", best)
    from wardrobe.matching import SAME_COLOUR_DELTA_E

    at_shipped = score("test", SAME_COLOUR_DELTA_E)
    confusion: dict = {}
    for same, _, de, a, b in data["test"]["pairs"]:
        if not same:
            key = " vs ".join(sorted((a, b)))
            c = confusion.setdefault(key, [0, 0])
            c[0] += 1
            c[1] += de <= best
    close = {k: {"pairs": v[0], "said_same": round(v[1] / v[0], 3)} for k, v in
             sorted(confusion.items(), key=lambda kv: -kv[1][1] / kv[1][0]) if v[1]}
    test_sims = [s for _, s in data["test"]["same_garment"] if s is not None]
    results = {"label": args.label, "chosen_delta_e": best, "look_threshold": look,
               "val": {str(t): m for t, m in grid.items()}, "test": test,
               "test_at_shipped_delta_e": {"delta_e": SAME_COLOUR_DELTA_E, **at_shipped},
               "test_same_garment_said_same_look": float(np.mean([s >= look for s in test_sims])) if look else None,
               "test_different_colours_said_same": close,
               "photos": {s: data[s]["photos"] for s in data}}
    log.info("chosen %.1f, look %.3f; test %s", best, look or 0, json.dumps(test))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2))
    return results
