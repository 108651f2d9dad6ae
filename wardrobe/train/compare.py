"""Is one bundle really better than another? Two `wardrobe train evaluate --rows` files of the same photos, compared
photo by photo.

    wardrobe train compare runs/rows-before.jsonl runs/rows-after.jsonl --split val

For each source of the results (home, product, and the photos labelled by eye) and each user-level figure, it
prints both figures on the photos both bundles answered, and their difference with a 95 % interval. The interval
comes from the differences photo by photo, drawn again by sender (evaluate.resampled), so two bundles that are
wrong on the same photos are compared on the photos where they differ, and a gain that comes from one home counts
as one home. An interval that holds 0
is no evidence either way: at a few hundred home photos from a few dozen homes, that is most gains under 3 points.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from wardrobe.errors import TrainingError
from wardrobe.train.evaluate import SOURCES, colour_right, groups_of, interval, mean, pct, resampled, user_outcomes

FIGURES = ("garment_top1", "truth_said", "confidently_wrong", "colour_main_family")
"""The figures compared (a lower confidently_wrong is better)."""
FIGURE_NAMES = {"garment_top1": "garment top-1", "truth_said": "truth said", "confidently_wrong": "confidently wrong",
                "colour_main_family": "main-colour family"}


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    """Command-line flags."""
    p = argparse.ArgumentParser(prog="wardrobe train compare", add_help=add_help,
                                description="Compare two bundles' evaluate --rows files on the same photos.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("before", type=Path, help="the rows of the bundle compared against (evaluate --rows)")
    p.add_argument("after", type=Path, help="the rows of the candidate, from the same photos")
    p.add_argument("--split", default="val", help="the split to compare (the rows files may hold several)")
    return p


NEEDED = ("source", "truth", "said", "alternatives")
"""What every row of an evaluate --rows file holds."""
SAME = ("source", "truth", "group", "by_eye", "eye", "eye_garments", "accept")
"""What must be the same, row by row, for two rows files to be the same photos judged against the same truths."""


def read_rows(path: Path, split: str) -> list[dict]:
    """The rows of one split from an evaluate --rows file (JSON lines), the photos a user could hold up."""
    rows = []
    try:
        with open(path) as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                row = json.loads(line)
                if not isinstance(row, dict) or not isinstance(row.get("alternatives", []), list):
                    raise ValueError(f"line {n} is not a row")
                rows.append(row)
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise TrainingError(f"{path}: not an evaluate --rows file ({e})") from None
    rows = [r for r in rows if r.get("split", split) == split and r.get("source") in ("clothing-photos", "product-photos")]
    if not rows:
        raise TrainingError(f"{path}: no photos of the {split} split")
    missing = next((k for r in rows for k in NEEDED if k not in r), None)
    if missing:
        raise TrainingError(f"{path}: its rows lack {missing!r}: not an evaluate --rows file")
    return rows


def differences(before: list[dict], after: list[dict]) -> dict[str, dict[str, dict]]:
    """Per source and figure: both figures on the photos both answered, after minus before, and its 95 % interval.
    The rows must be the same photos in the same order, judged against the same truths (the same split, seed,
    --limit, taxonomy and by-eye files); otherwise a TrainingError says what differs."""
    if len(before) != len(after):
        raise TrainingError(f"the two rows files are not the same photos ({len(before)} against {len(after)}): "
                            "evaluate both with the same --data, --seed, --splits and --limit")
    for key in SAME:
        if any(a.get(key) != b.get(key) and (key != "group" or (a.get(key) and b.get(key)))
               for a, b in zip(before, after, strict=True)):
            hint = {"truth": " (another taxonomy?)", "group": " (another order?)"}.get(key, " (other by-eye files?)")
            raise TrainingError(f"the two rows files judge the photos differently: their {key!r} differs{hint}; "
                                "evaluate both with the same flags and code")
    out: dict[str, dict[str, dict]] = {}
    for name, src in SOURCES.items():
        keep = [i for i, r in enumerate(before) if src.keep(r)]
        if not keep:
            continue
        pair = [[rows[i] for i in keep] for rows in (before, after)]
        first, second = ({**user_outcomes(rows, truth=src.garment), "colour_main_family": colour_right(rows, truth=src.colour)}
                         for rows in pair)
        draws = resampled(groups_of(pair[0]))
        out[name] = {}
        for figure in FIGURES:
            both = [x is not None and y is not None for x, y in zip(first[figure], second[figure], strict=True)]
            delta = [float(y) - float(x) if ok else None for x, y, ok in zip(first[figure], second[figure], both, strict=True)]
            out[name][figure] = {"n": sum(both),
                                 "before": mean(float(x) for x, ok in zip(first[figure], both, strict=True) if ok),
                                 "after": mean(float(y) for y, ok in zip(second[figure], both, strict=True) if ok),
                                 "difference": mean(d for d in delta if d is not None),
                                 "interval95": interval(delta, *draws)}
    return out


def table(diffs: dict[str, dict[str, dict]]) -> str:
    """The comparison as a markdown table, in points."""
    lines = ["| photos | figure | n | before | after | after − before (95 % interval) |", "|---|---|---|---|---|---|"]
    for source, figures in diffs.items():
        for figure, d in figures.items():
            if d["difference"] is None:
                continue
            lo_hi = d["interval95"]
            lines.append(f"| {source} | {FIGURE_NAMES[figure]} | {d['n']} | {pct(d['before'])} | {pct(d['after'])} | "
                         f"{100 * d['difference']:+.1f} ({100 * lo_hi[0]:+.1f} to {100 * lo_hi[1]:+.1f}) |")
    return "\n".join(lines)


def main(args: argparse.Namespace) -> dict:
    """Print the comparison table."""
    before, after = read_rows(args.before, args.split), read_rows(args.after, args.split)
    diffs = differences(before, after)
    if not all(r.get("group") for r in before + after):
        print("(some rows name no sender: those photos are drawn alone, so the home intervals are too narrow; "
              "evaluate again to record them)")
    print(table(diffs))
    return diffs
