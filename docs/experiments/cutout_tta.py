"""Validation: garment top-1 from the photo, the cut-out, and their average (the pipeline already runs the
cut-out through the network for the pattern head, so the average would cost nothing). Not adopted yet: see
docs/precision.md. Usage: python docs/experiments/cutout_tta.py val CLOTHING_PHOTOS_DIR PRODUCT_PHOTOS_DIR"""
import sys
import tempfile

import numpy as np

from wardrobe import settings as sm
from wardrobe import wiring
from wardrobe.images import read_image, shrink
from wardrobe.pipeline import WORK_SIDE
from wardrobe.preprocess import Preprocess
from wardrobe.segment import segment
from wardrobe.taxonomy import Taxonomy
from wardrobe.train.data import build_splits

if __name__ == "__main__":
    split = sys.argv[1]
    with tempfile.TemporaryDirectory() as st:
        pipe = wiring.build_pipeline(sm.load(None, {"": {"state_dir": st}}), closet=False)
    tax = Taxonomy.load()
    _, splits = build_splits([f"clothing-photos={sys.argv[2]}", f"product-photos={sys.argv[3]}"], tax, Preprocess(), 0,
                             None, decode=False)
    rng = np.random.default_rng(0)
    recs = splits[split].records
    home = [r for r in recs if r.source == "clothing-photos"]
    prod = [r for r in recs if r.source == "product-photos"]
    prod = [prod[i] for i in rng.choice(len(prod), 600, replace=False)]
    ws = [0.0, 0.2, 0.3, 0.4, 0.5, 1.0]
    out = {}
    for name, group in (("home", home), ("product", prod)):
        hits = {w: 0 for w in ws}
        n = 0
        for r in group:
            truth = tax.garment(r.source, r.label)
            rgb, _ = pipe.white.correct(shrink(read_image(r.path), WORK_SIDE))
            alpha = segment(rgb, pipe.method, pipe.plate)
            a, b = pipe.classify_with_cutout(rgb, alpha)
            pa = dict(a.ranked)
            pb = dict(b.ranked) if b is not None else pa
            n += 1
            for w in ws:
                avg = {g: (1 - w) * pa.get(g, 0) + w * pb.get(g, 0) for g in pa}
                hits[w] += max(avg, key=avg.get) == truth
        out[name] = {str(w): round(hits[w] / n, 4) for w in ws} | {"n": n}
        print(name, out[name], flush=True)
