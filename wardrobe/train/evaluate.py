"""Score what the user hears: the shipped bundle through the same describe path, settings and default runtime
that `wardrobe describe` uses, on held-out photos.

    wardrobe train evaluate --bundle models/default --data clothing-photos=DIR --data product-photos=DIR \
        --home-colours assets/labels/home-colours.csv

Per split and source (home photos, product photos; and the photos labelled by eye, judged as a sighted person
names them: --home-garments, --home-colours, --product-colours, --product-garments):
- garment top-1 as spoken (a photo the model calls garment-free counts as wrong: a lost garment);
- truth said: the right garment is the one named or one of the "maybe" alternatives the sentence says;
- confidently wrong: the sentence names a wrong garment with no hedge ("probably", "maybe", "not sure");
- the garment hedge rate, and answers with no garment named at all (too dark, no garment seen);
- the main-colour family of the first colour spoken (against the shop's label or the by-eye families; a
  hedged colour, "navy blue or black", is right when either is), the colour hedge rate, and the share of colours
  said unsure ("I'm not sure of the colour.") with how often they and the others are right;
- garment-free photos (the most garment-free corner of each home photo) still named as a garment.
On validation it also sweeps the thresholds that decide hedging (phrase.SURE, vision.colour_hedge_min) from the
same answers, and the weight of the cut-out garment in the garment probabilities (the bundle's cutout_weight,
with each SURE), so they are chosen there and reported on test.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from wardrobe import phrase
from wardrobe.colours import shop_colours
from wardrobe.errors import ModelError
from wardrobe.preprocess import Preprocess
from wardrobe.taxonomy import Taxonomy
from wardrobe.train import engine
from wardrobe.train.data import EYE_FILES, build_splits, load_eye_labels

log = logging.getLogger(__name__)

SPLIT_DATA = "clothing-photos=DIR and/or product-photos=DIR (the training script's split, same seed)"
"""The --data help of every measurement on a bundle: the photos are split exactly as training split them."""
SURE_SWEEP = (0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.86, 0.87, 0.88, 0.9, 0.95)
"""Calibrated garment probabilities tried as the plain-answer threshold (phrase.SURE) on validation."""
CUTOUT_SWEEP = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
"""Weights of the cut-out garment in the garment probabilities tried on validation (the bundle's cutout_weight)."""
HEDGE_SWEEP = (1.01, 0.6, 0.55, 0.5, 0.45, 0.4, 0.35, 0.3, 0.25, 0.2, 0.15)
"""Colour-head probabilities tried as the two-colour threshold (vision.colour_hedge_min; 1.01: never)."""


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    """Command-line flags."""
    p = argparse.ArgumentParser(prog="wardrobe train evaluate", add_help=add_help,
                                description="Score the whole describe pipeline of a bundle on held-out photos.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    engine.add_flags(p, "bundle", "data", "home_colours", "home_garments", "product_colours", "product_garments",
                     "seed", "report",
                     required=("bundle", "data"),
                     data={"help": SPLIT_DATA}, report=Path("runs/evaluate.json"))
    p.add_argument("--config", type=Path, help="settings file (default: the built-in defaults, as a new closet has)")
    p.add_argument("--rows", type=Path, help="also write one JSON line per photo here (what was said, and why)")
    p.add_argument("--limit", type=engine.number(int, 0, 10**9), default=0,
                   help="at most this many photos per source and split (0: all)")
    p.add_argument("--splits", type=engine.split_names, default="val,test", help="splits to score")
    return p


def by_eye_labels(args: argparse.Namespace, splits: dict) -> dict[str, dict[str, tuple[str, ...]]]:
    """Each by-eye file given, as photo path -> what a sighted person accepts, kept to the held-out photos of --data.
    A file that names none of them (another folder, another seed, its source not in --data) is refused in one line:
    its column would otherwise quietly vanish, or fall back to the dataset's labels."""
    roots = dict(spec.split("=", 1) for spec in args.data if "=" in spec)
    held_out = {r.path for name in ("val", "test") if name in splits for r in splits[name].records}
    out: dict[str, dict[str, tuple[str, ...]]] = {}
    for flag, (kind, column) in EYE_FILES.items():
        path = getattr(args, flag, None)
        out[flag] = {}
        if path is None:
            continue
        if kind not in roots:
            raise ModelError(f"--{flag.replace('_', '-')} names {kind}: give --data {kind}=DIR as well")
        labels = load_eye_labels(path, Path(roots[kind]), column)
        out[flag] = {p: v for p, v in labels.items() if p in held_out}
        if not out[flag]:
            raise ModelError(f"{path}: none of its {len(labels)} photos is a validation or test photo of "
                             f"--data {kind}={roots[kind]} (another folder or split seed?)")
    return out


def describe_pipeline(bundle: Path, config: Path | None = None):
    """The describe path a user hears, with bundle, in a new closet (no enrolled garments, no white card).
    ModelError, in one line, for a bundle that cannot be loaded: the closet would go on without naming garments,
    and measuring that would measure nothing (for minutes, then report it)."""
    import tempfile

    from wardrobe import settings as settings_module
    from wardrobe import wiring

    with tempfile.TemporaryDirectory() as state:
        settings = settings_module.load(config, {"model": {"bundle": str(bundle)}, "": {"state_dir": state}})
        pipe = wiring.build_pipeline(settings, closet=False)
    if pipe.classifier is None:
        raise ModelError(f"the bundle cannot be used: {pipe.model_problem}")
    return pipe


def main(args: argparse.Namespace) -> dict:
    """Run the user's describe path over each split and write the scores."""

    import cv2
    from tqdm import tqdm

    from wardrobe.images import read_image
    from wardrobe.pipeline import garment_views
    from wardrobe.train.frozen import background_crop

    pipe = describe_pipeline(args.bundle, args.config)
    clf = pipe.classifier
    shop = shop_colours()
    taxonomy = Taxonomy.load()
    _, splits = build_splits(args.data, taxonomy, Preprocess(), args.seed, None, decode=False)
    eye = by_eye_labels(args, splits)
    by_eye, product_eye = eye["home_colours"], eye["product_colours"]
    garments_eye = {**eye["home_garments"], **eye["product_garments"]}
    decision = {k: getattr(pipe.vision, k) for k in ("colour_hedge_min", "family_hint_min", "colour_pixel_weight",
                                                     "colour_head_sure", "colour_learned_weight", "colour_unsure_below")}
    results: dict = {"bundle": str(args.bundle), "version": clf.bundle.version, "runtime": clf.runtime,
                     "by_eye": {flag: len(labels) for flag, labels in eye.items() if labels},
                     "onnx_precision": clf.bundle.meta.get("onnx_precision", "int8") if clf.runtime == "onnx" else None,
                     "self_check": clf.self_check,
                     "settings": {**decision, "colour_decision": bool(clf.bundle.colour_decision), "sure": phrase.SURE,
                                  "maybe": phrase.MAYBE}}
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
            accept: tuple[str, ...] = ()
            if r.source == "product-photos" and r.colour in shop:
                accept = tuple(shop[r.colour][0])
            elif r.path in by_eye:
                accept = by_eye[r.path]
            rows.append({"source": r.source, "group": r.group, "by_eye": r.path in by_eye, "eye": product_eye.get(r.path, ()),
                         "eye_garments": garments_eye.get(r.path, ()),
                         "truth": taxonomy.garment(r.source, r.label, r.name),
                         "said": d.garment, "sentence": d.sentence,
                         "alternatives": [(a.garment, a.confidence) for a in d.alternatives],
                         "no_garment": "no-garment" in d.problems, "accept": accept,
                         "colour": d.colours[0].family if d.colours else None,
                         "colour_or": d.colours[0].or_family if d.colours else None,
                         "colour_unsure": bool(d.colours and d.colours[0].unsure),
                         "unhedged": [replace(c, or_name=None, or_family=None) for c in d.colours[:1]],
                         "families": d.colour_families})
            if name == "val":  # both views' garment probabilities, for the cut-out weight's sweep
                views = garment_views(rgb, pipe.white, pipe.method, pipe.plate)
                probs = clf.probabilities_of([views[0]] if views[1] is views[0] else list(views))
                rows[-1]["views"] = [p[0].round(5).tolist() for p in probs]
            if r.source == "clothing-photos":
                crop = background_crop(rgb, 224)
                if crop is not None:
                    # The corner itself, and the same corner blurred flat: a plain wall out of focus.
                    for kind, img in (("garment-free", crop), ("plain-wall", cv2.GaussianBlur(crop, (0, 0), 12))):
                        b = pipe.describe(img, r.path + "#" + kind)
                        rows.append({"source": kind, "said": b.garment, "no_garment": "no-garment" in b.problems,
                                     "model_background": clf.predict(img).background})
        if args.rows:
            write_rows(args.rows, name, rows)
        results[name] = summarise(rows)
        if name == "val":
            results["val_sweeps"] = sweeps(rows, pipe.namer, clf.bundle.classes, clf.bundle.background_class)
        log.info("%s: %s", name, json.dumps(results[name]))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2))
    print(table(results))
    return results


@dataclass(frozen=True)
class Source:
    """Which rows a column of the results holds, and what its answers are judged against."""

    keep: Callable[[dict], bool]
    garment: str = "truth"
    """The rows' key of the right garment (the dataset's label) or garments (named by eye; a row without them
    falls back to the label)."""
    colour: str = "accept"
    """The rows' key of the acceptable colour families (the shop's label or the home photo's by-eye families;
    "eye": the product photo's by-eye families)."""


SOURCES = {"home": Source(lambda r: r["source"] == "clothing-photos"),
           "product": Source(lambda r: r["source"] == "product-photos"),
           "home by eye": Source(lambda r: r["source"] == "clothing-photos" and (r["by_eye"] or bool(r.get("eye_garments"))),
                                 garment="eye_garments"),
           "product by eye": Source(lambda r: r["source"] == "product-photos" and (bool(r.get("eye")) or bool(r.get("eye_garments"))),
                                    garment="eye_garments", colour="eye")}
"""The results' columns. "home": garments against the dataset's label; colours against the by-eye families (home
photos have no other colour label). "product": both against the shop's labels. "home by eye": the home photos
labelled by eye, garments against the names a sighted person accepts (--home-garments; the label where a photo has
none: the results' "by_eye" counts say how many were named). "product by eye": the product photos named by eye
(assets/labels/product-garments.csv names every held-out one), garments against the names of --product-garments,
colour against the families of --product-colours where a photo has them (663 photos; a photo with neither: the
shop's labels)."""


def user_figures(rows: list[dict], sure: float = phrase.SURE, truth: str = "truth") -> dict:
    """Garment top-1 as spoken, truth said, confidently wrong, hedged and unanswered shares. truth: the rows' key
    of the right garment, or of the garments a sighted person accepts (a row without it: its label)."""
    return {"n": len(rows), **{k: mean(v) for k, v in user_outcomes(rows, sure, truth).items()}}


def user_outcomes(rows: list[dict], sure: float = phrase.SURE, truth: str = "truth") -> dict[str, list[bool]]:
    """user_figures() photo by photo: for each figure, whether it holds for each row."""
    def right(r: dict, garment: str | None) -> bool:
        accept = r.get(truth) or r["truth"]
        return garment == accept if isinstance(accept, str) else garment in accept

    named = [phrase.named_garments([phrase.Alternative(g, p) for g, p in r["alternatives"]], sure) for r in rows]
    answered = [bool(n) and r["said"] is not None for (n, _), r in zip(named, rows, strict=True)]
    return {"garment_top1": [r["said"] is not None and right(r, r["said"]) for r in rows],
            "truth_said": [a and any(right(r, g) for g in n) for (n, _), a, r in zip(named, answered, rows, strict=True)],
            "confidently_wrong": [a and not h and not right(r, n[0])
                                  for (n, h), a, r in zip(named, answered, rows, strict=True)],
            "garment_hedged": [a and h for (_, h), a in zip(named, answered, strict=True)],
            "no_garment_named": [not a for a in answered]}


def colour_figures(rows: list[dict], family=lambda r: (r["colour"], r["colour_or"]), truth: str = "accept") -> dict:
    """Main-colour family of the first colour spoken (right when the truth is one of a hedged pair), hedge rate.
    truth: the rows' key of the acceptable families ("accept": the shop's label or the home photo's by-eye
    families; "eye": the product photo's by-eye families)."""
    labelled = [r for r in rows if r.get(truth) and r["colour"]]
    said = [family(r) for r in labelled]
    right = colour_right(labelled, family, truth)
    unsure = [bool(r.get("colour_unsure")) for r in labelled]
    return {"n": len(labelled), "main_family": mean(right), "colour_hedged": mean(o is not None for _, o in said),
            "colour_unsure": mean(unsure),
            "right_when_unsure": mean([ok for ok, u in zip(right, unsure, strict=True) if u]),
            "right_when_not_unsure": mean([ok for ok, u in zip(right, unsure, strict=True) if not u])}


def colour_right(rows: list[dict], family=lambda r: (r["colour"], r["colour_or"]), truth: str = "accept"
                 ) -> list[bool | None]:
    """Whether each row's main colour family was right (None: no label, or no colour said)."""
    def right(r: dict) -> bool | None:
        if not (r.get(truth) and r["colour"]):
            return None
        f, o = family(r)
        return f in r[truth] or (o is not None and o in r[truth])
    return [right(r) for r in rows]


INTERVAL_DRAWS = 2000
"""Bootstrap draws for each figure's 95 % interval."""


def intervals(rows: list[dict], truth: str = "truth", colour: str = "accept", seed: int = 0
              ) -> dict[str, list[float]]:
    """95 % intervals of the user-level figures (resampled(): a home photo's sender is drawn again, not the photo;
    a product photo is its own group)."""
    outcomes: dict[str, list] = {**user_outcomes(rows, truth=truth), "colour_main_family": colour_right(rows, truth=colour)}
    draws = resampled(groups_of(rows), seed)
    out = {}
    for name, values in outcomes.items():
        lo_hi = interval(values, *draws)
        if lo_hi is not None:
            out[name] = lo_hi
    return out


def groups_of(rows: list[dict]) -> list[str]:
    """Each row's group: its sender for a home photo, else the photo itself."""
    return [str(r.get("group") or f"#{i}") for i, r in enumerate(rows)]


def resampled(groups: list[str], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The bootstrap behind every interval: each row's group index, and how often each of INTERVAL_DRAWS draws
    takes each group (the groups drawn again with replacement, as many as there are). Photos from one home are alike
    (the same light, the same bed, often the same garment twice), so drawing senders, not photos, gives the honest
    width: a few dozen senders make a split, and one sender moves it by points."""
    names, group_of = np.unique(np.asarray(groups, dtype=str), return_inverse=True)
    rng = np.random.default_rng(seed)
    times = np.zeros((INTERVAL_DRAWS, len(names)), np.float32)
    np.add.at(times, (np.arange(INTERVAL_DRAWS)[:, None], rng.integers(len(names), size=(INTERVAL_DRAWS, len(names)))), 1)
    return group_of.reshape(-1), times


def interval(values: list, group_of: np.ndarray, times: np.ndarray) -> list[float] | None:
    """The 95 % interval of the mean of values (None: not counted) over the draws of resampled(); None when no
    value is counted."""
    known = np.array([v is not None for v in values], bool)
    if not known.any():
        return None
    sums = np.bincount(group_of[known], [float(v) for v in values if v is not None], times.shape[1])
    counted = times @ np.bincount(group_of[known], minlength=times.shape[1]).astype(np.float32)
    means = (times @ sums.astype(np.float32))[counted > 0] / counted[counted > 0]
    return [float(q) for q in np.percentile(means, [2.5, 97.5])]


def summarise(rows: list[dict]) -> dict:
    """The user-level figures per source, and garment-free photos named."""
    out: dict = {}
    for name, src in SOURCES.items():
        mine = [r for r in rows if r["source"] in ("clothing-photos", "product-photos") and src.keep(r)]
        if mine:
            out[name] = {**user_figures(mine, truth=src.garment), "colour": colour_figures(mine, truth=src.colour),
                         "interval95": intervals(mine, src.garment, src.colour)}
    out["garment_free"] = {}
    for kind in ("garment-free", "plain-wall"):
        free = [r for r in rows if r["source"] == kind]
        if free:
            out["garment_free"][kind] = {
                "n": len(free), "named_as_garment": mean(not r["no_garment"] for r in free),
                "model_says_no_garment": mean(r["model_background"] >= 0.5 for r in free)}
    return out


def with_cutout_weight(row: dict, w: float, classes: list[str], background: str | None) -> dict:
    """A row as the sentence would have had it with the cut-out at weight w (the photo alone says whether a
    garment is there, as in Classifier.predict_with_cutout)."""
    views = [np.asarray(v) for v in row["views"]]
    p = (1 - w) * views[0] + w * views[-1]
    if background is not None:
        p[classes.index(background)] = -1.0  # never ranked as a garment
    order = np.argsort(-p)[:3]
    alternatives = [(classes[i], float(p[i])) for i in order]
    return {**row, "alternatives": alternatives if row["alternatives"] else [],
            "said": alternatives[0][0] if row["said"] is not None else None}


def sweeps(rows: list[dict], namer, classes: list[str] | None = None, background: str | None = None) -> dict:
    """On validation: the user-level figures at each plain-answer threshold, and colour at each two-colour
    threshold, recomputed from the same answers (what the sentence would have said); with the rows' two views,
    the garment figures at each cut-out weight and plain-answer threshold."""
    real = [r for r in rows if r["source"] in ("clothing-photos", "product-photos")]
    out: dict = {"sure": {}, "colour_hedge_min": {}}
    for t in SURE_SWEEP:
        out["sure"][str(t)] = {name: user_figures([r for r in real if src.keep(r)], t, src.garment)
                               for name, src in SOURCES.items()}
    if classes and all("views" in r for r in real):
        out["cutout_weight"] = {}
        for w in CUTOUT_SWEEP:
            mixed = [with_cutout_weight(r, w, classes, background) for r in real]
            out["cutout_weight"][str(w)] = {str(t): {name: user_figures([r for r in mixed if src.keep(r)], t, src.garment)
                                                     for name, src in SOURCES.items()} for t in SURE_SWEEP}
    for t in HEDGE_SWEEP:
        def hedged(r, t=t):
            c = namer.with_hedge(r["unhedged"], r["families"], t)
            return (c[0].family, c[0].or_family) if c else (None, None)
        out["colour_hedge_min"][str(t)] = {name: colour_figures([{**r, "colour_unsure": False} for r in real
                                                                 if src.keep(r)], hedged, src.colour)
                                           for name, src in SOURCES.items()}  # "unsure" is not swept: as shipped
    return out


def table(results: dict) -> str:
    """The README's results table (markdown) for the test split; the user-level figures with their 95 % intervals
    (intervals())."""
    test = results.get("test") or results.get("val") or {}
    lines = [f"bundle {results['version']}, runtime {results['runtime']}"
             + (f" ({results['onnx_precision']})" if results.get("onnx_precision") else ""),
             "", "| measure | " + " | ".join(SOURCES) + " |", "|---|" + "---|" * len(SOURCES)]
    def within(f: dict, name: str) -> str:  # the figure and its 95 % interval, resampling senders
        lo_hi = f.get("interval95", {}).get(name)
        return pct(f[name]) + (f" ({100 * lo_hi[0]:.1f}-{100 * lo_hi[1]:.1f})" if lo_hi else "")

    rows = [("photos", lambda f: str(f["n"])), ("garment top-1", lambda f: within(f, "garment_top1")),
            ("truth said", lambda f: within(f, "truth_said")),
            ("confidently wrong", lambda f: within(f, "confidently_wrong")),
            ("garment hedged", lambda f: pct(f["garment_hedged"])),
            ("no garment named", lambda f: pct(f["no_garment_named"])),
            ("main-colour family (photos with a colour label)",
             lambda f: within({**f["colour"], "interval95": {"main_family": f.get("interval95", {}).get(
                 "colour_main_family")}}, "main_family") + f" (n={f['colour']['n']})"),
            ("colour hedged / said unsure (right when unsure / otherwise)",
             lambda f: f"{pct(f['colour']['colour_hedged'])} / {pct(f['colour'].get('colour_unsure'))}"
                       f" ({pct(f['colour'].get('right_when_unsure'))} / {pct(f['colour'].get('right_when_not_unsure'))})")]
    for label, get in rows:
        lines.append(f"| {label} | " + " | ".join(get(test[s]) if s in test else "" for s in SOURCES) + " |")
    return "\n".join(lines)


def write_rows(path: Path, split: str, rows: list[dict]) -> None:
    """Append the split's rows as JSON lines (the colour objects as their JSON)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        for r in rows:
            r = {**r, "split": split, "unhedged": [c.to_json() for c in r.get("unhedged", [])]}
            f.write(json.dumps(r) + "\n")


def pct(x: float | None) -> str:
    return "" if x is None else f"{100 * x:.1f} %"


def mean(values) -> float | None:
    v = list(values)
    return float(np.mean(v)) if v else None
