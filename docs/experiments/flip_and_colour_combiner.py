"""Two ideas for the recognition targets, tried on the validation split only and not adopted
(results in docs/recognition.md, "Tried and not adopted").

1. Flip averaging: the classifier's probabilities for the photo and its mirror image, averaged
   (one more photo in the same model run).
2. A learned colour-family combiner: multinomial logistic regression over the colour head's
   log-probabilities, the clusters' share per family, the main cluster's family and its CIELAB,
   fitted on the product validation photos (5-fold cross-validation, so each photo is predicted by
   a model that never saw it), checked on the home photos labelled by eye.

    python docs/experiments/flip_and_colour_combiner.py --bundle models/default \
        --data clothing-photos=DIR --data product-photos=DIR --home-colours assets/labels/home-colours.csv
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def features(args) -> tuple[list[dict], list[str], list[str]]:
    from wardrobe.classify import Classifier
    from wardrobe.colours import ColourNamer, shop_colours
    from wardrobe.images import read_image, shrink
    from wardrobe.pipeline import WORK_SIDE, Pipeline
    from wardrobe.preprocess import Preprocess
    from wardrobe.settings import VisionSettings
    from wardrobe.taxonomy import Taxonomy
    from wardrobe.train.data import build_splits
    from wardrobe.train.evaluate import load_eye_labels

    clf = Classifier.load(args.bundle)
    clusters_only = VisionSettings(family_hint_min=2.0, colour_pixel_weight=0.0, colour_head_sure=1.01,
                                   colour_learned_weight=0.0, colour_hedge_min=1.01, colour_unsure_below=0.0)
    pipe = Pipeline(clf, clusters_only, namer=ColourNamer())  # the rules are applied below
    shop, tax = shop_colours(), Taxonomy.load()
    _, splits = build_splits(args.data, tax, Preprocess(), 0, None, decode=False)
    by_eye: dict = {}
    for spec in args.data:
        kind, _, path = spec.partition("=")
        if kind == "clothing-photos":
            by_eye = load_eye_labels(args.home_colours, Path(path))
    rows = []
    for r in splits["val"].records:
        rgb = read_image(r.path)
        d = pipe.describe(rgb, r.path)
        small = shrink(rgb, WORK_SIDE)
        plain, mirror = clf.probabilities_of([small, small[:, ::-1].copy()])
        accept = tuple(shop[r.colour][0]) if r.source == "product-photos" and r.colour in shop else by_eye.get(r.path, ())
        rows.append({"source": r.source, "truth": tax.garment(r.source, r.label), "accept": accept,
                     "p": plain[0], "pf": mirror[0], "c": plain[1],
                     "colours": [(c.lab, c.share, c.family) for c in d.colours]})
    return rows, clf.bundle.classes, list(clf.bundle.colour_families)


def main() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bundle", type=Path, required=True)
    p.add_argument("--data", action="append", required=True)
    p.add_argument("--home-colours", type=Path, required=True)
    args = p.parse_args()
    rows, classes, fams = features(args)
    bg = classes.index("no garment") if "no garment" in classes else None

    def top1(src: str, flip: bool) -> float:
        ok = []
        for r in (r for r in rows if r["source"] == src):
            q = ((r["p"] + r["pf"]) / 2 if flip else r["p"]).copy()
            if bg is not None:
                q[bg] = -1
            ok.append(classes[int(np.argmax(q))] == r["truth"])
        return 100 * float(np.mean(ok))

    for src in ("clothing-photos", "product-photos"):
        print(f"garment top-1, {src}: plain {top1(src, False):.2f} %, flip-averaged {top1(src, True):.2f} %")

    def x(r) -> np.ndarray:
        share, main, lab = np.zeros(len(fams)), np.zeros(len(fams)), np.zeros(3)
        for k, (colour_lab, s, f) in enumerate(r["colours"]):
            if f in fams:
                share[fams.index(f)] += s
                main[fams.index(f)] += k == 0
            if k == 0:
                lab = np.asarray(colour_lab) / 100
        return np.concatenate([np.log(r["c"] + 1e-4), share, main, lab])

    def shipped(r) -> str:  # the pipeline's rule: the head's family at probability >= 0.5, else the clusters'
        i = int(np.argmax(r["c"]))
        return fams[i] if r["c"][i] >= 0.5 else r["colours"][0][2]

    def acc(rs, said) -> str:
        return f"{100 * float(np.mean([s in r['accept'] for r, s in zip(rs, said, strict=True)])):.2f} % of {len(rs)}"

    prod = [r for r in rows if r["source"] == "product-photos" and r["colours"] and r["accept"] and r["accept"][0] in fams]
    home = [r for r in rows if r["source"] == "clothing-photos" and r["colours"] and r["accept"]]
    X, y = np.stack([x(r) for r in prod]), np.array([fams.index(r["accept"][0]) for r in prod])
    print(f"main-colour family, product: shipped rule {acc(prod, [shipped(r) for r in prod])}")
    for c in (0.1, 0.3, 1.0, 3.0):
        cv = cross_val_predict(LogisticRegression(C=c, max_iter=3000), X, y,
                               cv=StratifiedKFold(5, shuffle=True, random_state=0))
        print(f"  combiner C={c}: {acc(prod, [fams[i] for i in cv])} (5-fold)")
    m = LogisticRegression(C=0.1, max_iter=3000).fit(X, y)
    print(f"main-colour family, home by eye: shipped rule {acc(home, [shipped(r) for r in home])}, "
          f"combiner C=0.1 {acc(home, [fams[i] for i in m.predict(np.stack([x(r) for r in home]))])}")


if __name__ == "__main__":
    main()
