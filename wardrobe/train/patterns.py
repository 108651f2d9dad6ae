"""A pattern head for a shipped bundle: weak labels from the shop's product names, thresholds for 90 % precision.

    wardrobe train patterns --bundle models/default --output models/default --cache-dir cache \
        [--home-patterns assets/labels/home-patterns.csv] [--sign KEY]

About a quarter of the product names carry a pattern word ("Turtle Check Men Navy Blue Shirt"). Those
become weak labels: solid, striped, checked, printed (or graphic), floral, dotted; a name without one is
unlabelled, not "solid". The head is a multinomial logistic regression on the bundle's own pooled
embedding (its fine-tuned EfficientNet-Lite blocks, read from the training cache of the frozen blocks);
on the appliance it runs on the garment cut out onto white (as the shop photographs it),
so the network is unchanged and the head folds into its last linear layer. Per pattern, the smallest
probability at which the shipped int8 model's validation predictions reach 90 % precision becomes its
threshold (a pattern that never gets there is never said); validation home photos labelled by eye raise it
(to where their own predictions reach 90 %, or withhold the pattern) when they hold at least as many
predictions of it above it as product photos need (8). Test precision and recall are reported per pattern, on product
photos and on home photos whose pattern was labelled by eye.

The new bundle's ONNX model gains the pattern outputs and a second output, "embedding" (the pooled
features), for matching a user's own garments.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import re
import shutil
from pathlib import Path

import numpy as np
import torch

from wardrobe.bundle import Bundle, write_manifest
from wardrobe.errors import TrainingError
from wardrobe.nets import build as build_model
from wardrobe.preprocess import Preprocess
from wardrobe.taxonomy import PATTERNS, Taxonomy
from wardrobe.train import engine
from wardrobe.train.data import build_splits

log = logging.getLogger(__name__)

WORDS = {
    "striped": r"\bstrip(e|ed|es)\b",
    "checked": r"\b(check|checked|checks|checkered|plaid|tartan)\b",
    "printed": r"\b(print|printed|graphic)\b",
    "floral": r"\b(floral|flower|flowers)\b",
    "dotted": r"\b(polka|dot|dots|dotted)\b",
    "solid": r"\b(solid|plain)\b",
}
SPECIFIC_PRINTS = ("floral", "dotted")
"""Prints with their own name: "Floral Printed" is floral."""
PRECISION = 0.9
MIN_PREDICTIONS = 8
"""A threshold needs at least this many validation predictions above it to be trusted."""


def pattern_of(name: str) -> str | None:
    """The weak pattern label of a product name, or None (no pattern word, or two that disagree)."""
    found = {p for p, rx in WORDS.items() if re.search(rx, name.lower())}
    if found & set(SPECIFIC_PRINTS):
        found -= {"printed"}
    return found.pop() if len(found) == 1 else None


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    """Command-line flags."""
    p = argparse.ArgumentParser(prog="wardrobe train patterns", add_help=add_help,
                                description="Add a pattern head (weak labels from product names) to a bundle.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--output", type=Path, required=True, help="the new bundle's directory (replaced)")
    p.add_argument("--home-patterns", type=Path, help="CSV image,split,pattern of home photos labelled by eye")
    engine.add_flags(p, "bundle", "cache_dir", "data", "calibration_batches", "check_photos", "precision", "version",
                     "sign", required=("bundle",),
                     bundle={"help": "the bundle to extend (its run's data and cache)"},
                     data={"help": "datasets (default: the bundle's run's)"})
    p.add_argument("--retune", action="store_true",
                   help="only choose the thresholds again, on an existing --output bundle that has a pattern head")
    return p


def main(args: argparse.Namespace) -> dict:
    """Weak labels, embeddings, the head, thresholds, test figures, then the extended bundle."""
    from wardrobe.train import frozen
    from wardrobe.train.export import check_bundle_output

    check_bundle_output(args.output)
    if args.retune:
        check_pattern_head(args.output)
    if args.sign:
        from wardrobe.signing import load_private

        load_private(args.sign)
    bundle = Bundle.load(args.bundle)
    run = bundle.meta["trained"]["args"]
    cut = int(run["freeze_blocks"])
    pre = bundle.preprocess
    data = args.data or run["data"]
    _, splits = build_splits(data, Taxonomy.load(run.get("taxonomy")), Preprocess(), int(run["seed"]), None,
                             decode=False)
    if args.retune:
        return retune(args, splits, data)
    from safetensors.torch import load_file

    model = build_model(bundle.arch, bundle.outputs)
    model.load_state_dict(load_file(str(bundle.path / bundle.runtimes["torch"])))
    drop_patterns(model, len(bundle.patterns))  # a bundle that has a pattern head gets a new one, not a second
    model.eval()
    sets = frozen.cached_splits(model, splits, pre, run, args.cache_dir)
    labels = {name: np.array([PATTERNS.index(p) if (p := pattern_of(r.name)) else -1 for r in s.records])
              for name, s in splits.items()}
    feats, targets = {}, {}
    for name in ("train", "val", "test"):
        fs = sets[name]
        rows = np.nonzero((fs.photo >= 0) & (labels[name][np.maximum(fs.photo, 0)] >= 0))[0]
        log.info("%s: %d labelled views of %d photos", name, len(rows), len(set(fs.photo[rows].tolist())))
        feats[name] = frozen.pooled_features(model, fs, cut, rows)
        targets[name] = labels[name][fs.photo[np.sort(rows)]]
    weight, bias, c = fit_head(feats, targets)
    probs = {name: softmax(feats[name] @ weight.T + bias) for name in ("val", "test")}
    thresholds = choose_thresholds(probs["val"], targets["val"])
    results: dict = {"C": c, "thresholds": thresholds, "counts": {
        name: {p: int((targets[name] == i).sum()) for i, p in enumerate(PATTERNS)} for name in targets},
        "val": per_pattern(probs["val"], targets["val"], thresholds),
        "test": per_pattern(probs["test"], targets["test"], thresholds)}
    log.info("test: %s", json.dumps(results["test"]))
    write_bundle(args, bundle, model, weight, bias, thresholds, splits, results)
    return retune(args, splits, data)


def check_pattern_head(folder: Path) -> None:
    """--retune chooses thresholds for a pattern head the bundle already has: TrainingError, before the photos
    are read, for a bundle without one (it has no pattern probabilities to choose them from)."""
    if not folder.exists():
        raise TrainingError(f"--retune: {folder} does not exist; --retune works on a bundle with a pattern head")
    if not Bundle.load(folder).patterns:
        raise TrainingError(f"--retune: {folder} has no pattern head; run `wardrobe train patterns` without "
                            f"--retune to add one")


def appliance_probs(pipe, paths: list[str]) -> np.ndarray:
    """The pattern probabilities the appliance itself computes (its int8 model on the garment cut out by its
    own segmentation)."""
    from tqdm import tqdm

    from wardrobe.images import read_image, shrink
    from wardrobe.pipeline import WORK_SIDE
    from wardrobe.segment import segment

    out = []
    for p in tqdm(paths, desc="patterns", unit="photo"):
        rgb = shrink(read_image(p), WORK_SIDE)
        out.append(pipe.pattern(rgb, segment(rgb, pipe.method, None))[1])
    return np.array(out)


def retune(args, splits: dict, data: list[str]) -> dict:
    """Thresholds from the shipped int8 model's own outputs: on validation product photos and, when given,
    validation home photos labelled by eye, each pattern's threshold is the higher of the two that reach
    90 % precision; test figures per source. Written into the bundle's bundle.json."""
    from wardrobe.classify import Classifier
    from wardrobe.pipeline import Pipeline

    pipe = Pipeline(Classifier.load(args.output))
    product = {}
    for name in ("val", "test"):
        recs = [r for r in splits[name].records if r.source == "product-photos" and pattern_of(r.name)]
        product[name] = (appliance_probs(pipe, [r.path for r in recs]),
                         np.array([PATTERNS.index(pattern_of(r.name)) for r in recs]))
    home: dict = {}
    if args.home_patterns:
        root = next(Path(spec.partition("=")[2]) for spec in data if spec.startswith("clothing-photos="))
        with open(args.home_patterns, newline="") as f:
            rows = list(csv.DictReader(f))
        for name in ("val", "test"):
            mine = [r for r in rows if r["split"] == name]
            home[name] = (appliance_probs(pipe, [str(root / r["image"]) for r in mine]),
                          np.array([PATTERNS.index(r["pattern"]) for r in mine]))
    thresholds = product_only = choose_thresholds(*product["val"])
    if home:
        at_home = choose_thresholds(*home["val"], min_predictions=3)
        thresholds = {p: max(thresholds[p], at_home[p]) if enough_evidence(*home["val"], i, thresholds[p])
                      else thresholds[p] for i, p in enumerate(PATTERNS)}
    results = {"thresholds": thresholds, "product_only_thresholds": product_only,
               "product_at_product_only_thresholds": per_pattern(*product["test"], product_only),
               "product": {name: per_pattern(*product[name], thresholds) for name in product},
               **({"home_by_eye": {name: per_pattern(*home[name], thresholds) for name in home}} if home else {})}
    log.info("thresholds %s; product test %s; home test %s", thresholds, json.dumps(results["product"]["test"]),
             json.dumps(results.get("home_by_eye", {}).get("test")))
    meta = json.loads((args.output / "bundle.json").read_text())
    meta["patterns"] = thresholds
    meta.setdefault("metrics", {}).setdefault("patterns", {})["appliance"] = results
    (args.output / "bundle.json").write_text(json.dumps(meta, indent=2))
    write_manifest(args.output)
    if args.sign:
        from wardrobe.signing import sign_bundle

        sign_bundle(args.output, args.sign)
    return results


def enough_evidence(probs: np.ndarray, targets: np.ndarray, i: int, threshold: float) -> bool:
    """Whether home photos may overrule the product photos' threshold of pattern i: they must hold as many
    predictions of it above that threshold as a threshold needs on product photos."""
    return int(((probs.argmax(1) == i) & (probs.max(1) >= threshold)).sum()) >= MIN_PREDICTIONS


def drop_patterns(model, n: int) -> None:
    """Cut the last n outputs (an earlier pattern head) off the network's last linear layer."""
    if n:
        fc = model.net._fc
        cut = torch.nn.Linear(fc.in_features, fc.out_features - n)
        with torch.no_grad():
            cut.weight.copy_(fc.weight[:-n])
            cut.bias.copy_(fc.bias[:-n])
        model.net._fc = cut


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fit_head(feats: dict, targets: dict) -> tuple[np.ndarray, np.ndarray, float]:
    """Class-balanced multinomial logistic regression; C chosen on validation log-loss."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss

    best = None
    for c in (0.01, 0.03, 0.1, 0.3):
        lr = LogisticRegression(C=c, max_iter=3000, class_weight="balanced")
        lr.fit(feats["train"], targets["train"])
        loss = log_loss(targets["val"], lr.predict_proba(feats["val"]), labels=lr.classes_)
        log.info("C=%s: validation log-loss %.3f", c, loss)
        if best is None or loss < best[0]:
            best = (loss, c, lr)
    _, c, lr = best
    weight = np.zeros((len(PATTERNS), lr.coef_.shape[1]), np.float32)
    bias = np.full(len(PATTERNS), -30.0, np.float32)  # a pattern absent from training is never predicted
    weight[lr.classes_] = lr.coef_
    bias[lr.classes_] = lr.intercept_
    return weight, bias, c


def choose_thresholds(probs: np.ndarray, targets: np.ndarray, min_predictions: int = MIN_PREDICTIONS
                      ) -> dict[str, float]:
    """Per pattern: the smallest probability at which validation predictions of it are >= 90 % precise."""
    top, conf = probs.argmax(1), probs.max(1)
    out = {}
    for i, p in enumerate(PATTERNS):
        mine = np.sort(conf[top == i])
        out[p] = 1.01
        for t in mine:
            chosen = (top == i) & (conf >= t)
            if chosen.sum() < min_predictions:
                break
            if (targets[chosen] == i).mean() >= PRECISION:
                out[p] = round(float(t), 4)
                break
    return out


def per_pattern(probs: np.ndarray, targets: np.ndarray, thresholds: dict[str, float]) -> dict:
    """Precision and recall of each pattern at its threshold, and how often a pattern is said at all."""
    top, conf = probs.argmax(1), probs.max(1)
    said = np.array([conf[k] >= thresholds[PATTERNS[top[k]]] for k in range(len(top))])
    out: dict = {"said_share": round(float(said.mean()), 4) if len(said) else 0.0,
                 "precision_all": round(float((top[said] == targets[said]).mean()), 4) if said.any() else None}
    for i, p in enumerate(PATTERNS):
        predicted = said & (top == i)
        truth = targets == i
        out[p] = {"n": int(truth.sum()), "said": int(predicted.sum()),
                  "precision": round(float((targets[predicted] == i).mean()), 4) if predicted.any() else None,
                  "recall": round(float((predicted & truth).sum() / truth.sum()), 4) if truth.any() else None}
    return out


def write_bundle(args, bundle: Bundle, model, weight: np.ndarray, bias: np.ndarray, thresholds: dict[str, float],
                 splits: dict, results: dict) -> None:
    """The bundle again, its last layer extended by the pattern rows and an "embedding" output added, with the
    head's figures on the cached features (results)."""
    from wardrobe.train.export import WithEmbedding, finish_bundle, next_version, ship_onnx, start_bundle

    fc = model.net._fc
    new = torch.nn.Linear(fc.in_features, fc.out_features + len(PATTERNS))
    with torch.no_grad():
        new.weight.copy_(torch.cat([fc.weight, torch.from_numpy(weight)]))
        new.bias.copy_(torch.cat([fc.bias, torch.from_numpy(bias)]))
    model.net._fc = new
    tmp = start_bundle(args.output, model)

    shutil.copy(bundle.path / "taxonomy.csv", tmp / "taxonomy.csv")
    meta = dict(bundle.meta)
    next_version(meta, bundle.version, args.version)
    meta["patterns"] = thresholds
    meta["embedding"] = "embedding"
    meta["metrics"]["patterns"] = {"head_on_cached_features": results}
    ship_onnx(tmp, WithEmbedding(model).eval(), meta, splits, args, outputs=("logits", "embedding")).unlink()
    (tmp / "bundle.json").write_text(json.dumps(meta, indent=2))
    finish_bundle(tmp, args.output)  # signed after retune() has written its thresholds
    log.info("bundle %s written to %s with patterns %s", meta["version"], args.output, thresholds)
