"""Fit a bundle's learned colour decision (wardrobe.colour_decision) and write it into the bundle.

    wardrobe train colour-decision --bundle models/default --output models/default \\
        --data clothing-photos=DIR --data product-photos=DIR \\
        --home-colours assets/labels/home-colours-train.csv

Each training photo goes through the user's describe path (the bundle, its default runtime, segmentation, the
clusters and the colour head on both views), and the decision's inputs (wardrobe.colour_inputs) are kept with the photo's label: the first
family of the home photos labelled by eye (only photos of the training split are used, whatever the file holds),
and the shop's colour of --products product photos drawn from the training split. The split is the bundle's own
(its training seed): a label file with any photo outside that training split is refused, so the by-eye measure of
validation and test never trains the closet. A logistic regression is
fitted on them, the product photos weighing --product-weight each, and written into bundle.json
("colour_decision"), with a new version; the weights, heads and ONNX model are unchanged. How much it weighs
at each press is vision.colour_learned_weight; `wardrobe train evaluate --splits val` measures it as heard.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import shutil
from pathlib import Path

import numpy as np

from wardrobe.bundle import Bundle
from wardrobe.colour_decision import ColourDecision
from wardrobe.colours import FAMILIES, shop_colours
from wardrobe.errors import ModelError
from wardrobe.preprocess import Preprocess
from wardrobe.taxonomy import Taxonomy
from wardrobe.train import engine
from wardrobe.train.data import build_splits, load_eye_labels

log = logging.getLogger(__name__)


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    """Command-line flags."""
    p = argparse.ArgumentParser(prog="wardrobe train colour-decision", add_help=add_help,
                                description="Fit the bundle's learned colour decision on training photos.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--output", type=Path, required=True, help="the new bundle's directory (replaced; may be --bundle)")
    p.add_argument("--products", type=int, default=3000, help="product photos drawn from the training split")
    p.add_argument("--product-weight", type=float, default=0.25,
                   help="each product photo's weight beside a home photo's (1)")
    p.add_argument("--c", type=float, default=0.03, dest="c",
                   help="inverse L2 strength of the logistic regression (validation, docs/precision.md)")
    p.add_argument("--limit", type=int, help="use at most this many photos of each source (smoke tests)")
    engine.add_flags(p, "bundle", "data", "home_colours", "seed", "version", "sign",
                     required=("bundle", "data", "home_colours"),
                     seed={"default": None, "help": "the split's seed: must be the bundle's own (default: it is)"})
    return p


def training_photos(args: argparse.Namespace, seed: int) -> list[tuple[str, str, bool]]:
    """(photo path, first family, whether a home photo) of the labelled training photos: home by eye, then a draw
    of product photos; seed: the bundle's training seed, which made its split."""
    _, splits = build_splits(args.data, Taxonomy.load(), Preprocess(), seed, None, decode=False)
    train = splits["train"].records
    home_root = next((Path(d.split("=", 1)[1]) for d in args.data if d.startswith("clothing-photos=")), None)
    eye = load_eye_labels(args.home_colours, home_root) if home_root else {}
    home = [(r.path, eye[r.path][0], True) for r in train if r.source == "clothing-photos" and r.path in eye]
    if len(home) < len(eye):
        raise ModelError(f"{args.home_colours}: {len(eye) - len(home)} of its {len(eye)} photos are not in the "
                         f"training split (seed {seed}): validation and test photos measure the closet, never train it")
    shop = shop_colours()
    products = [(r.path, shop[r.colour][0][0], False) for r in train if r.source == "product-photos" and r.colour in shop]
    random.Random(seed).shuffle(products)
    limit = args.limit or None
    photos = home[:limit] + products[: min(args.products, limit or args.products)]
    bad = sorted({f for _, f, _ in photos} - set(FAMILIES))
    if bad:
        raise ModelError(f"{args.home_colours}: unknown colour families {', '.join(bad)}")
    if not home:
        raise ModelError(f"{args.home_colours}: none of its photos is in the training split of --data")
    return photos


def cut_out_at_every_press(bundle: Bundle) -> None:
    """The decision reads the colour head on the garment cut out on white. The pipeline computes that view at every
    press only for a bundle with a pattern head or a cut-out weight; for another, training (photo view) and a
    calibrated closet (cut-out view) would feed it different inputs, so it is refused."""
    if not bundle.colour_families:
        raise ModelError(f"{bundle.path}: the bundle has no colour head to learn beside")
    if not bundle.patterns and not bundle.cutout_weight:
        raise ModelError(f"{bundle.path}: the bundle reads no cut-out view at each press (no pattern head, "
                         "cutout_weight 0); add a pattern head first (wardrobe train patterns)")


def record(bundle: Path, photos: list[tuple[str, str, bool]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each photo through the describe path: the decision's inputs (rows), the label's index, and which rows are
    home photos. Photos whose colours are not described (too dark, no garment) are left out."""
    from tqdm import tqdm

    from wardrobe.errors import ImageError
    from wardrobe.images import read_image
    from wardrobe.train.evaluate import describe_pipeline

    pipe = describe_pipeline(bundle)
    pipe.keep_colour_features = True
    rows, labels, home = [], [], []
    for path, family, at_home in tqdm(photos, desc="colour decision", unit="photo"):
        try:
            d = pipe.describe(read_image(path), path)
        except ImageError as e:
            log.warning("%s", e)
            continue
        if d.colours and pipe.last_colour_features is not None:
            rows.append(pipe.last_colour_features)
            labels.append(FAMILIES.index(family))
            home.append(at_home)
    if not rows:
        raise ModelError("no training photo's colours could be read")
    return np.stack(rows), np.asarray(labels), np.asarray(home, bool)


def fit(x: np.ndarray, y: np.ndarray, weight: np.ndarray, c: float, fitted_on: str = "") -> ColourDecision:
    """A standardised multinomial logistic regression; families never seen get no probability to speak of.
    fitted_on: what it was fitted on, in words (kept in the bundle)."""
    from sklearn.linear_model import LogisticRegression

    if len(set(y.tolist())) < 2:
        raise ModelError("the training photos name a single colour family: nothing to decide between")
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-3
    model = LogisticRegression(C=c, max_iter=3000).fit((x - mean) / scale, y, sample_weight=weight)
    coef = np.zeros((len(FAMILIES), x.shape[1]))
    intercept = np.full(len(FAMILIES), -30.0)
    for i, k in enumerate(model.classes_):
        coef[k], intercept[k] = model.coef_[i], model.intercept_[i]
    return ColourDecision(FAMILIES, mean, scale, coef, intercept, fitted_on)


def main(args: argparse.Namespace) -> dict:
    """Record, fit, write."""
    from wardrobe.train.export import check_bundle_output, finish_bundle, next_version, work_folder

    check_bundle_output(args.output)
    if args.sign:
        from wardrobe.signing import load_private

        load_private(args.sign)
    bundle = Bundle.load(args.bundle)
    cut_out_at_every_press(bundle)
    seed = int(bundle.meta.get("trained", {}).get("args", {}).get("seed", 0))
    if args.seed is not None and args.seed != seed:
        raise ModelError(f"--seed {args.seed}: the bundle was trained with seed {seed}, whose split this must keep")
    photos = training_photos(args, seed)
    x, y, home = record(bundle.path, photos)
    weight = np.where(home, 1.0, args.product_weight)
    decision = fit(x, y, weight, args.c, f"{int(home.sum())} home photos labelled by eye, {int((~home).sum())} "
                   f"product photos (weight {args.product_weight}), C {args.c}, split seed {seed}")
    train_right = float(np.mean([decision.probabilities(r)[0][0] == FAMILIES[k] for r, k in zip(x, y, strict=True)]))
    out = args.output
    tmp = work_folder(out, "tmp")
    shutil.copytree(bundle.path, tmp, dirs_exist_ok=True)
    for name in ("manifest.json", "signature.json"):
        (tmp / name).unlink(missing_ok=True)
    meta = json.loads((tmp / "bundle.json").read_text())
    meta["colour_decision"] = decision.to_json()
    next_version(meta, bundle.version, args.version)
    (tmp / "bundle.json").write_text(json.dumps(meta, indent=2))
    finish_bundle(tmp, out, args.sign)
    log.info("bundle %s written to %s with a colour decision fitted on %s", meta["version"], out, decision.fitted_on)
    return {"photos": len(y), "home": int(home.sum()), "train_right": round(train_right, 4)}
