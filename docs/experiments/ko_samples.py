"""Ten held-out photos (the training script's test split, seed 0), five home and five product, said by the shipped
bundle through `wardrobe describe` in English and in Korean: the table in docs/ko.md.

Usage: python docs/experiments/ko_samples.py CLOTHING_PHOTOS_DIR PRODUCT_PHOTOS_DIR
"""
import json
import subprocess
import sys
import tempfile

import numpy as np

from wardrobe.preprocess import Preprocess
from wardrobe.taxonomy import Taxonomy
from wardrobe.train.data import build_splits

if __name__ == "__main__":
    data = [f"clothing-photos={sys.argv[1]}", f"product-photos={sys.argv[2]}"]
    _, splits = build_splits(data, Taxonomy.load(), Preprocess(), 0, None, decode=False)
    recs = splits["test"].records
    rng = np.random.default_rng(25)
    pick = []
    for src in ("clothing-photos", "product-photos"):
        mine = [r for r in recs if r.source == src]
        pick += [mine[i] for i in rng.choice(len(mine), 5, replace=False)]
    paths = [r.path for r in pick]
    out = {}
    for code in ("en", "ko"):
        res = subprocess.run([sys.executable, "-m", "wardrobe", "describe", "--json", "--language", code,
                              "--state-dir", tempfile.mkdtemp(), *paths], capture_output=True, text=True)
        out[code] = [json.loads(line) for line in res.stdout.splitlines()]
    for r, en, ko in zip(pick, out["en"], out["ko"], strict=True):
        print(f"| {r.source.split('-')[0]} | {r.label} | {en['sentence']} | {ko['sentence']} |")
