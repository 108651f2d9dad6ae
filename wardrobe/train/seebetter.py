"""Measure the "see better" additions on held-out photos: white balance under simulated lights, aiming help.

    wardrobe train see-better --bundle models/default --data clothing-photos=DIR --data product-photos=DIR \
        --home-colours assets/labels/home-colours.csv --limit 300 --output runs/see-better.json

White balance. Each photo is described by the real pipeline (shipped bundle, colour head as shipped)
under four lights, each with each correction, and the main colour's family is scored against the
shop's label (product photos) or the families labelled by eye (home photos):
- lights: as taken; warm 2700 K and cool 6500 K bulbs seen by a camera balanced for 4500 K whose own
  auto white balance removes half the cast (log scale); dim (a fifth of the light, with sensor noise);
- corrections: none; an estimate from the photo always (grey-world, grey-edge); "estimate" (an estimate
  only when the cast it finds reaches a threshold: estimator and threshold chosen on validation); the
  white card (reflectance 0.85, pasted into the top-left corner before the light is applied, read at
  its calibrated place).
Aiming help. How often each aiming message fires on the photos as taken; a sample of them is written
as a contact sheet for checking by eye (--sheet).
The closet (--part closet): the appliance's own setting, which no photo set shows. Held-out product garments,
cut out of their white ground, hang in a closet whose back is a plain wall (a held-out home photo's garment-free
corner, blurred flat and stretched to the frame) with the white card in view, under each light; the closet is
calibrated as `wardrobe calibrate` does it (the empty closet and the card, under the same light). Scored: the
shop's own photo (uncontrolled), the closet photo described as a closet without calibration would (auto
segmentation, no card), and with the calibrated plate and card. "capture light" is the closet's own LED: the
light is then the same at every press (neutral here).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from dataclasses import replace
from pathlib import Path

import numpy as np

from wardrobe.colours import shop_colours
from wardrobe.preprocess import Preprocess
from wardrobe.taxonomy import Taxonomy
from wardrobe.train import engine
from wardrobe.train.data import build_splits, load_eye_labels
from wardrobe.train.evaluate import SPLIT_DATA
from wardrobe.whitebalance import ESTIMATORS, WhiteBalance, WhiteCard, cast_strength, to_linear, to_srgb

log = logging.getLogger(__name__)

CAMERA_K = 4500
"""The colour temperature the simulated camera is balanced for."""
AWB_SHARE = 0.5
"""Share of a light's cast (log scale) the simulated camera's own auto white balance removes."""
CAST_THRESHOLDS = (0.0, 0.05, 0.08, 0.12, 0.16, 0.2, 0.25, 0.3, 1.01)
CARD_SIDE = 0.12
"""The pasted card's side as a share of the photo's short side."""


def blackbody_srgb(kelvin: float) -> np.ndarray:
    """sRGB (0..255) of a black body's light (Tanner Helland's fit to the CIE data, 1000-40000 K)."""
    t = kelvin / 100
    r = 255.0 if t <= 66 else 329.698727446 * (t - 60) ** -0.1332047592
    g = 99.4708025861 * math.log(t) - 161.1195681661 if t <= 66 else 288.1221695283 * (t - 60) ** -0.0755148492
    b = 255.0 if t >= 66 else (0.0 if t <= 19 else 138.5177312231 * math.log(t - 10) - 305.0447927307)
    return np.clip(np.array([r, g, b]), 0, 255)


def cast_of(kelvin: float) -> np.ndarray:
    """Linear per-channel multipliers a light of this temperature leaves in the simulated camera's photo."""
    ratio = to_linear(blackbody_srgb(kelvin)) / to_linear(blackbody_srgb(CAMERA_K))
    ratio = ratio ** (1 - AWB_SHARE)
    return ratio / ratio.max()


LIGHTS = {"as taken": None, "warm 2700 K": 2700, "cool 6500 K": 6500, "dim": "dim"}


def under(rgb: np.ndarray, light, rng: np.random.Generator) -> np.ndarray:
    """The photo as the simulated camera would take it under this light."""
    if light is None:
        return rgb
    lin = to_linear(rgb)
    if light == "dim":
        lin = lin * 0.2
        noisy = to_srgb(lin).astype(np.float32) + rng.normal(0, 2.0, rgb.shape)
        return np.clip(np.round(noisy), 0, 255).astype(np.uint8)
    return to_srgb(lin * cast_of(light).reshape(1, 1, 3))


def with_card(rgb: np.ndarray) -> tuple[np.ndarray, WhiteCard]:
    """The photo with a white card in its top-left corner, and the card's calibrated place."""
    h, w = rgb.shape[:2]
    side = max(4, int(CARD_SIDE * min(h, w)))
    m = max(1, int(0.02 * min(h, w)))
    out = rgb.copy()
    out[m:m + side, m:m + side] = to_srgb(np.full(3, 0.85))
    return out, WhiteCard((m / w, m / h, side / w, side / h))


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    """Command-line flags."""
    p = argparse.ArgumentParser(prog="wardrobe train see-better", add_help=add_help,
                                description="White balance under simulated lights, and aiming-message rates.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    engine.add_flags(p, "bundle", "data", "home_colours", "seed", "report", required=("bundle", "data"),
                     data={"help": SPLIT_DATA}, report=Path("runs/see-better.json"))
    p.add_argument("--limit", type=int, default=300, help="product photos per split (home: every labelled one)")
    p.add_argument("--splits", type=engine.split_names, default="val,test")
    p.add_argument("--part", choices=("white-balance", "aiming", "closet"), default="white-balance")
    p.add_argument("--sheets", type=Path, help="aiming: write contact sheets of each message's photos here")
    p.add_argument("--colour-view", choices=("auto", "photo", "cutout"), default="auto",
                   help="closet: where the colour head looks (vision.colour_view)")
    p.add_argument("--config", type=Path,
                   help="closet: settings file whose colour decision is measured (default: the built-in defaults)")
    return p


def closet_vision(config: Path | None):
    """The [vision] settings a closet has (from config, or the defaults): the closet measure decides colours as
    `describe` does."""
    import tempfile

    from wardrobe import settings as settings_module

    with tempfile.TemporaryDirectory() as state:
        return settings_module.load(config, {"": {"state_dir": state}}).vision


def main(args: argparse.Namespace) -> dict:
    """Run the chosen part and write its JSON."""
    parts = {"aiming": aiming_rates, "closet": closet_setting, "white-balance": white_balance}
    results = parts[args.part](args)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2))
    return results


def aiming_rates(args: argparse.Namespace) -> dict:
    """How often each aiming message fires on held-out home photos as taken; contact sheets to check by eye."""
    from tqdm import tqdm

    from wardrobe.classify import Classifier
    from wardrobe.images import read_image
    from wardrobe.phrase import AIMING
    from wardrobe.pipeline import Pipeline

    pipe = Pipeline(Classifier.load(args.bundle))  # aiming help on, as a closet has it
    _, splits = build_splits(args.data, Taxonomy.load(), Preprocess(), args.seed, None, decode=False)
    results: dict = {"bundle": str(args.bundle)}
    fired: dict[str, list[str]] = {m: [] for m in (*AIMING, "blurry")}
    for split in args.splits.split(","):
        home = [r for r in splits[split].records if r.source == "clothing-photos"]
        counts = {m: 0 for m in fired}
        for r in tqdm(home, desc=f"aiming {split}", unit="photo"):
            d = pipe.describe(read_image(r.path), r.path)
            for m in fired:
                if m in d.problems:
                    counts[m] += 1
                    fired[m].append(r.path)
        results[split] = {"n": len(home), "rate": {m: round(c / max(1, len(home)), 4) for m, c in counts.items()},
                          "count": counts}
        log.info("aiming %s: %s", split, results[split])
    if args.sheets:
        rng = np.random.default_rng(args.seed)
        for m, paths in fired.items():
            if paths:
                pick = [paths[i] for i in sorted(rng.choice(len(paths), min(12, len(paths)), replace=False))]
                contact_sheet(pick, args.sheets / f"aiming-{m}.png", m)
                results.setdefault("sheets", {})[m] = pick
    return results


CLOSET_LIGHTS = {"capture light": None, "warm 2700 K": 2700, "cool 6500 K": 6500, "dim": "dim"}
FRAME = (480, 640)
"""The closet camera's frame as described (WORK_SIDE), height and width."""


def hang(garment: np.ndarray, alpha: np.ndarray, wall: np.ndarray) -> np.ndarray:
    """The garment (its alpha mask) hung in the middle of the closet, filling about 70 % of the frame's height."""
    import cv2

    h, w = FRAME
    scale = 0.7 * h / garment.shape[0]
    size = (max(1, int(garment.shape[1] * scale)), max(1, int(garment.shape[0] * scale)))
    g = cv2.resize(garment, size, interpolation=cv2.INTER_CUBIC)
    a = cv2.resize(alpha, size, interpolation=cv2.INTER_LINEAR).astype(np.float32)[..., None] / 255
    out = wall.copy()
    y, x = (h - size[1]) // 2, (w - size[0]) // 2
    region = out[y:y + size[1], x:x + size[0]].astype(np.float32)
    out[y:y + size[1], x:x + size[0]] = np.round(a * g + (1 - a) * region).astype(np.uint8)
    return out


def closet_setting(args: argparse.Namespace) -> dict:
    """Main-colour family of held-out product garments in the simulated closet, per light and method."""
    import cv2
    from tqdm import tqdm

    from wardrobe.classify import Classifier
    from wardrobe.images import read_image
    from wardrobe.pipeline import Pipeline
    from wardrobe.segment import segment
    from wardrobe.train.frozen import background_crop

    clf = Classifier.load(args.bundle)
    vision = replace(closet_vision(args.config), colour_view=args.colour_view)
    decide = {k: getattr(vision, k) for k in ("family_hint_min", "colour_pixel_weight", "colour_head_sure",
                                              "colour_learned_weight")}
    shop = shop_colours()
    _, splits = build_splits(args.data, Taxonomy.load(), Preprocess(), args.seed, None, decode=False)
    rng = np.random.default_rng(args.seed)
    results: dict = {"bundle": str(args.bundle), "lights": list(CLOSET_LIGHTS), "colour_decision": decide}
    for split in args.splits.split(","):
        recs = splits[split].records
        product = [r for r in recs if r.source == "product-photos" and r.colour in shop]
        product = [product[i] for i in sorted(rng.choice(len(product), min(args.limit, len(product)), replace=False))]
        homes = [r for r in recs if r.source == "clothing-photos"]
        walls = []
        for i in rng.permutation(len(homes)):
            crop = background_crop(read_image(homes[i].path), 64)
            if crop is not None:
                walls.append(cv2.resize(cv2.GaussianBlur(crop, (0, 0), 12), FRAME[::-1], interpolation=cv2.INTER_CUBIC))
            if len(walls) == 40:
                break
        rows = []
        for k, r in enumerate(tqdm(product, desc=f"closet {split}", unit="photo")):
            accept = tuple(shop[r.colour][0])
            rgb = read_image(r.path)
            shop_photo = Pipeline(clf, vision).describe(rgb, r.path)
            row = {"accept": accept, "shop photo": shop_photo.colours[0].family if shop_photo.colours else None}
            wall, card = with_card(walls[k % len(walls)])
            photo = hang(rgb, segment(rgb, "threshold"), wall)
            for light_name, light in CLOSET_LIGHTS.items():
                lit = under(photo, light, np.random.default_rng(int(rng.integers(1 << 31))))
                plate = under(wall, light, np.random.default_rng(int(rng.integers(1 << 31))))
                for method, pipe in (("closet, auto", Pipeline(clf, vision)),
                                     ("closet, plate + card", Pipeline(clf, replace(vision, segmentation="plate"),
                                                                       plate=plate, white=WhiteBalance("card", card)))):
                    d = pipe.describe(lit, r.path)
                    row[f"{light_name}|{method}"] = d.colours[0].family if d.colours else None
            rows.append(row)
        table: dict = {"shop photo (uncontrolled)": round(100 * float(np.mean([r["shop photo"] in r["accept"]
                                                                                for r in rows])), 1)}
        for light_name in CLOSET_LIGHTS:
            for method in ("closet, auto", "closet, plate + card"):
                key = f"{light_name}|{method}"
                table[key] = round(100 * float(np.mean([r[key] in r["accept"] for r in rows])), 1)
        results[split] = {"n": len(rows), "walls": len(walls), "main_family_percent": table}
        log.info("closet %s: %s", split, json.dumps(results[split]))
    return results


def contact_sheet(paths: list[str], out: Path, title: str) -> None:
    """Up to 12 photos, 4 x 3, each with its number (to check a message by eye)."""
    import cv2

    from wardrobe.images import fit_long_side, read_image

    tiles = []
    for i, p in enumerate(paths):
        tile = np.full((260, 260, 3), 255, np.uint8)
        small = fit_long_side(read_image(p), 240, enlarge=True)
        tile[10:10 + small.shape[0], 10:10 + small.shape[1]] = small
        cv2.putText(tile, str(i + 1), (12, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 0, 0), 2)
        tiles.append(tile)
    while len(tiles) % 4:
        tiles.append(np.full((260, 260, 3), 255, np.uint8))
    sheet = np.vstack([np.hstack(tiles[i:i + 4]) for i in range(0, len(tiles), 4)])
    cv2.putText(sheet, title, (10, sheet.shape[0] - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))


def white_balance(args: argparse.Namespace) -> dict:
    """Describe every photo under every light with every correction; score the main colour's family."""
    from tqdm import tqdm

    from wardrobe.classify import Classifier
    from wardrobe.images import read_image, shrink
    from wardrobe.pipeline import WORK_SIDE, Pipeline

    clf = Classifier.load(args.bundle)
    pipe = Pipeline(clf)
    shop = shop_colours()
    by_eye: dict[str, tuple[str, ...]] = {}
    for spec in args.data:
        kind, _, path = spec.partition("=")
        if kind == "clothing-photos" and args.home_colours:
            by_eye = load_eye_labels(args.home_colours, Path(path))
    _, splits = build_splits(args.data, Taxonomy.load(), Preprocess(), args.seed, None, decode=False)
    rng = np.random.default_rng(args.seed)
    results: dict = {"bundle": str(args.bundle), "lights": {k: (cast_of(v).round(3).tolist()
                                                                 if isinstance(v, int) else v)
                                                             for k, v in LIGHTS.items()}}
    for split in args.splits.split(","):
        recs = splits[split].records
        product = [r for r in recs if r.source == "product-photos" and r.colour in shop]
        product = [product[i] for i in sorted(rng.choice(len(product), min(args.limit, len(product)), replace=False))]
        home = [r for r in recs if r.path in by_eye]
        rows = []
        for r in tqdm(product + home, desc=f"white balance {split}", unit="photo"):
            accept = tuple(shop[r.colour][0]) if r.source == "product-photos" else by_eye[r.path]
            rgb = shrink(read_image(r.path), WORK_SIDE)
            carded, card = with_card(rgb)
            for light_name, light in LIGHTS.items():
                seed = int(rng.integers(1 << 31))
                lit = under(rgb, light, np.random.default_rng(seed))
                lit_card = under(carded, light, np.random.default_rng(seed))
                row = {"source": r.source, "light": light_name, "accept": accept,
                       **{f"cast:{e}": cast_strength(f(lit)) for e, f in ESTIMATORS.items()}}
                for method, photo, wb in (("none", lit, WhiteBalance("off")),
                                          *((e, lit, WhiteBalance("estimate", estimator=e)) for e in ESTIMATORS),
                                          ("card", lit_card, WhiteBalance("card", card))):
                    pipe.white = wb
                    d = pipe.describe(photo, r.path)
                    row[method] = d.colours[0].family if d.colours else None
                rows.append(row)
        results[split] = summarise(rows)
        log.info("%s: %s", split, json.dumps(results[split]["estimate_by_threshold"]))
    if "val" in results:
        val = results["val"]["estimate_by_threshold"]
        best = max(val, key=lambda k: (round(val[k], 6), float(k.split("@")[1])))  # ties: the least correction
        estimator, threshold = best.split("@")
        results["chosen"] = {"estimator": estimator, "threshold": float(threshold)}
        log.info("chosen on validation: %s", results["chosen"])
        for split in args.splits.split(","):
            results[split]["table"] = table(results[split], estimator, float(threshold))
    return results


def correct(row: dict, method: str, estimator: str = "grey-edge", threshold: float = 0.0) -> bool:
    """Whether the main colour's family was right with this correction."""
    if method == "estimate":
        said = row[estimator] if row[f"cast:{estimator}"] >= threshold else row["none"]
    else:
        said = row[method]
    return said in row["accept"]


def summarise(rows: list[dict]) -> dict:
    """The gated estimate's accuracy over every photo and light for each estimator and threshold, and the rows."""
    return {"estimate_by_threshold": {f"{e}@{t}": float(np.mean([correct(r, "estimate", e, t) for r in rows]))
                                  for e in ESTIMATORS for t in CAST_THRESHOLDS}, "rows": rows}


def table(result: dict, estimator: str, threshold: float) -> dict:
    """Accuracy (%) per source and light: none, each estimate always, the gated estimate as chosen, the card."""
    rows = result["rows"]
    out: dict = {}
    for src in sorted({r["source"] for r in rows}):
        for light in LIGHTS:
            mine = [r for r in rows if r["source"] == src and r["light"] == light]
            out.setdefault(src, {})[light] = {
                "n": len(mine),
                **{m: round(100 * float(np.mean([correct(r, m, estimator, threshold) for r in mine])), 1)
                   for m in ("none", *ESTIMATORS, "estimate", "card")}}
    return out
