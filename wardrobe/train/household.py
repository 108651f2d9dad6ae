"""A household simulated: the caretaker reviews some of one sender's presses on the page (right, or corrected to
the right garment), and the closet keeps each reviewed photo's embedding as a labelled example, used only when a
new photo is very close to one (`wardrobe.reviews.Examples`). Two measures, before and after, through the
same describe path a user hears:
- again: a garment the closet got wrong and the caretaker corrected, held up again (a new view of its photo:
  crop, turn, light, as `wardrobe train closet` makes them);
- others: the same sender's other photos, which were not reviewed (the examples must not make them worse).

With --home-colours (the home photos' colours labelled by eye) the main colour is measured the same way: a reviewed
photo keeps the colour families the caretaker gave (its by-eye family when the closet said another; the families
said when it was right and said plainly), and a new photo of that garment whose colours are within a CIEDE2000 gap
of the reviewed photo's is said in those families (`wardrobe.reviews.Examples`): colours corrected and held up
again, colours confirmed and held up again, and the unreviewed others.

Held-out senders only: the similarity threshold and the colour gap are chosen on the validation split's senders and
reported on the test split's. Usage:
    wardrobe train household --bundle models/default --data clothing-photos=DIR [--reviewed 0.5] \
        [--home-colours assets/labels/home-colours.csv]
"""

from __future__ import annotations

import argparse
import json
import logging
from collections import defaultdict
from pathlib import Path

import numpy as np

from wardrobe.train import engine
from wardrobe.train.data import build_splits

log = logging.getLogger(__name__)


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="wardrobe train household", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    engine.add_flags(p, "bundle", "data", "seed", "home_colours", required=("bundle", "data"))
    p.add_argument("--reviewed", type=float, default=0.5, help="share of each sender's photos the caretaker reviews")
    p.add_argument("--min-photos", type=int, default=6, help="senders with fewer photos are left out")
    p.add_argument("--thresholds", type=engine.fractions, default="0.50,0.55,0.60,0.65,0.70,0.75,0.80,0.85,0.90",
                   help="cosine similarities tried on validation")
    p.add_argument("--colour-gaps", type=engine.number_list(float, 0, 100), default="5,10,15,20,25,30,40",
                   help="CIEDE2000 gaps tried on validation: a reviewed photo's colours are said within the gap")
    p.add_argument("--output", type=Path, default=Path("runs/household.json"))
    return p


def describe_senders(pipe, records, taxonomy, seed: int, colours_by_eye: dict | None = None
                     ) -> dict[str, list[dict]]:
    """Each home photo of each sender: the truth (the garment, and the colour families by eye when known), and what
    is said of the photo and of a new view of it."""
    from tqdm import tqdm

    from wardrobe.history import camera_colours, said_families, seen_colours
    from wardrobe.images import read_image
    from wardrobe.train.closet_eval import view

    rng = np.random.default_rng(seed)
    colours_by_eye = colours_by_eye or {}

    def seen(rgb, path) -> dict | None:
        d = pipe.describe(rgb, path)
        if d.embedding is None:
            return None
        e = np.asarray(d.embedding, np.float32)
        main, said = d.colours[0] if d.colours else None, d.to_json()
        return {"said": d.garment, "embedding": e / (np.linalg.norm(e) or 1.0),
                "families": [c.family for c in d.colours], "or": main.or_family if main else None,
                "heard": said_families(said), "colours": seen_colours(camera_colours(said))}

    by_sender: dict[str, list[dict]] = defaultdict(list)
    for r in tqdm(records, desc="describe", unit="photo"):
        rgb = read_image(r.path)
        photo, again = seen(rgb, r.path), seen(view(rgb, rng, None), r.path + "#again")
        if photo and again:
            by_sender[r.group].append({"truth": taxonomy.garment(r.source, r.label, r.name), **photo, "again": again,
                                       "colour_truth": colours_by_eye.get(r.path, ())})
    return by_sender


def reviews(by_sender: dict[str, list[dict]], reviewed: float, seed: int):
    """Each sender's photos split into those the caretaker reviews and the rest, the same way for every measure."""
    rng = np.random.default_rng(seed)
    for _, photos in sorted(by_sender.items()):
        order = rng.permutation(len(photos))
        k = max(1, int(round(reviewed * len(photos))))
        yield [photos[i] for i in order[:k]], [photos[i] for i in order[k:]]


ZERO = {"before": 0, "after": 0, "fixed": 0, "broken": 0, "used": 0, "hedged": 0, "needless": 0, "n": 0}


def count(s: dict, before: bool, after: bool, used: bool, hedged: bool = False) -> None:
    """Add one case to a measure's counts (hedged: the reviewed colour said with the closet's own, "X or Y")."""
    s["n"] += 1
    s["before"] += before
    s["after"] += after
    s["used"] += used
    s["hedged"] += hedged
    s["needless"] += hedged and before  # right already, and now said with another colour beside it
    s["fixed"] += after and not before
    s["broken"] += before and not after


def accuracies(by_setting: dict) -> dict:
    """The counts of each setting and measure, with the accuracy before and after."""
    return {str(t): {m: {**s, "before_acc": s["before"] / max(s["n"], 1), "after_acc": s["after"] / max(s["n"], 1)}
                     for m, s in by_measure.items()} for t, by_measure in by_setting.items()}


def simulate(by_sender: dict[str, list[dict]], reviewed: float, thresholds: list[float], seed: int) -> dict:
    """Per threshold, before and after: the corrected garments held up again, and the unreviewed others."""
    from wardrobe.reviews import Examples

    out = {t: {"again": dict(ZERO), "others": dict(ZERO)} for t in thresholds}
    senders = 0
    for seen, rest in reviews(by_sender, reviewed, seed):
        senders += 1
        corrected = [p for p in seen if p["said"] != p["truth"]]
        for t in thresholds:
            memory = Examples([p["embedding"] for p in seen], [p["truth"] for p in seen], t)
            for measure, cases in (("again", [(p["again"], p["truth"]) for p in corrected]),
                                   ("others", [(p, p["truth"]) for p in rest])):
                for case, truth in cases:
                    example = memory.nearest(case["embedding"])
                    count(out[t][measure], case["said"] == truth,
                          (example.garment if example else case["said"]) == truth, example is not None)
    return {"senders": senders, "by_threshold": accuracies(out)}


def colour_right(photo: dict, truth: tuple[str, ...]) -> bool:
    """Whether the main colour said of a photo is one the eye accepts (a hedged pair: either)."""
    families = photo["families"]
    return bool(families) and (families[0] in truth or photo["or"] in truth)


def caretaker_families(photo: dict) -> list[str]:
    """The colour families a caretaker's review keeps: the eye's family as the main colour when the closet said
    another ("wrong" on the page; a second colour is not labelled here); the families heard when it was right
    ("right": history.said_families, none for a hedged pair); none for a photo with no colour label."""
    truth = photo["colour_truth"]
    if not truth or not photo["families"]:
        return []
    return [truth[0]] if not colour_right(photo, truth) else list(photo["heard"])


def simulate_colours(by_sender: dict[str, list[dict]], reviewed: float, similarity: float, gaps: list[float],
                     seed: int) -> dict:
    """Per colour gap, before and after: reviewed photos whose colour was corrected, or confirmed, held up again,
    and the unreviewed others; a photo within `similarity` of a reviewed one and within the gap of its colours is
    said in the reviewed families, with the closet's own beside them as `describe` says it (colours.own_beside)."""
    from wardrobe.colours import own_beside
    from wardrobe.reviews import Examples

    out = {g: {"corrected": dict(ZERO), "confirmed": dict(ZERO), "others": dict(ZERO)} for g in gaps}
    senders = 0
    for seen, rest in reviews(by_sender, reviewed, seed):
        senders += 1
        memory = Examples([p["embedding"] for p in seen], [p["truth"] for p in seen], similarity,
                          families=[caretaker_families(p) for p in seen], seen=[p["colours"] for p in seen])
        cases = [("corrected" if not colour_right(p, p["colour_truth"]) else "confirmed", p["again"],
                  p["colour_truth"]) for p in seen if p["colour_truth"] and p["families"]]
        cases += [("others", p, p["colour_truth"]) for p in rest if p["colour_truth"] and p["families"]]
        for measure, case, truth in cases:
            example = memory.nearest(case["embedding"])
            for g in gaps:
                families = example.colours_for(case["colours"], g) if example else None
                beside = (own_beside(families, case["families"][0], case["or"], case["colours"][0], example.seen)
                          if families else None)
                after = families[0] in truth or beside in truth if families else colour_right(case, truth)
                count(out[g][measure], colour_right(case, truth), after, bool(families), beside is not None)
    return {"senders": senders, "by_gap": accuracies(out)}


def widest_harmless_gap(by_gap: dict) -> float:
    """The widest colour gap at which the reviews only helped: no unreviewed photo's colour, nor a confirmed one,
    made wrong, and no unreviewed photo whose colour was right said with a reviewed photo's colour beside it (the
    reviews must not make the closet unsure of the household's other clothes); the narrowest tried when every gap
    harmed."""
    def harmless(s: dict) -> bool:
        return s["confirmed"]["broken"] + s["others"]["broken"] + s["others"]["needless"] == 0
    ok = [float(g) for g, s in by_gap.items() if harmless(s)]
    return max(ok) if ok else min(float(g) for g in by_gap)


def main(args: argparse.Namespace) -> dict:
    from wardrobe.preprocess import Preprocess
    from wardrobe.taxonomy import Taxonomy
    from wardrobe.train.evaluate import by_eye_labels, describe_pipeline

    pipe = describe_pipeline(args.bundle)  # a missing bundle: refused now, not "0 senders" after the photos
    taxonomy = Taxonomy.load()
    _, splits = build_splits(args.data, taxonomy, Preprocess(), args.seed, None, decode=False)
    colours_by_eye = by_eye_labels(args, splits)["home_colours"]  # a file naming none of them: refused in one line
    thresholds = [float(t) for t in args.thresholds.split(",")]
    gaps = [float(g) for g in args.colour_gaps.split(",")]
    results: dict = {"bundle": str(args.bundle), "reviewed": args.reviewed}
    for name in ("val", "test"):
        counts: dict[str, int] = defaultdict(int)
        for r in splits[name].records:
            counts[r.group] += r.source == "clothing-photos"
        recs = [r for r in splits[name].records if r.source == "clothing-photos" and counts[r.group] >= args.min_photos]
        described = describe_senders(pipe, recs, taxonomy, args.seed, colours_by_eye)
        sims = simulate(described, args.reviewed, thresholds if name == "val" else [results["chosen"]], args.seed)
        results[name] = sims
        if name == "val":  # the lowest threshold that makes none of the unreviewed photos worse
            ok = [float(t) for t, s in sims["by_threshold"].items() if s["others"]["broken"] == 0]
            results["chosen"] = min(ok) if ok else max(thresholds)
        log.info("%s: %s", name, json.dumps(sims))
        if colours_by_eye:
            col = simulate_colours(described, args.reviewed, results["chosen"],
                                   gaps if name == "val" else [results["chosen_gap"]], args.seed)
            results[f"{name}_colours"] = col
            if name == "val":
                results["chosen_gap"] = widest_harmless_gap(col["by_gap"])
            log.info("%s colours: %s", name, json.dumps(col))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2))
    t = results["test"]["by_threshold"][str(results["chosen"])]
    print(f"{results['test']['senders']} held-out senders, similarity >= {results['chosen']} (chosen on validation):")
    for measure, what in (("again", "corrected garments held up again"), ("others", "their other photos")):
        m = t[measure]
        print(f"  {what} ({m['n']}): top-1 {100 * m['before_acc']:.1f} % -> {100 * m['after_acc']:.1f} % "
              f"({m['fixed']} fixed, {m['broken']} made wrong, an example used {m['used']} times)")
    if colours_by_eye:
        c = results["test_colours"]["by_gap"][str(results["chosen_gap"])]
        print(f"  main colour, within CIEDE2000 {results['chosen_gap']:g} of a reviewed photo's (chosen on validation):")
        for measure, what in (("corrected", "corrected colours held up again"),
                              ("confirmed", "confirmed colours held up again"), ("others", "their other photos")):
            m = c[measure]
            print(f"    {what} ({m['n']}): {100 * m['before_acc']:.1f} % -> {100 * m['after_acc']:.1f} % "
                  f"({m['fixed']} fixed, {m['broken']} made wrong, the reviewed colours said {m['used']} times, "
                  f"{m['hedged']} of them with the closet's own)")
    return results
