"""Wrote tests/data/en-golden.json.gz: every English sentence the phrase and matching code produced before the
language files (issue 25), over a grid of garments, colours, patterns, confidences, details and problems.
Run once, as `python -m tests.data.make_en_golden`, at commit 15b3942 (before the words moved to
wardrobe/data/lang/); kept as the record of how. tests/test_lang.py imports its grid. Changed once since, on
purpose (2026-12-01, phrase.colour_words): a two-colour pattern's second colour is no longer said again on a long
press ("A navy blue and white striped T-shirt." was followed by "There is also some white."), 2,160 rows; and a
hedged main colour in a two-colour pattern is said with the second colour after the garment ("A navy blue or black
striped T-shirt with white.", not "A navy blue or black and white striped T-shirt.", which can be heard as a black
and white stripe), 702 rows. Changed again on purpose (2026-12-01, after a listener's review of validation photos),
15,126 rows, each for what it fixed: a hedged colour with a pattern comes after the garment ("A striped T-shirt, navy
blue or black.", not "navy blue or black striped", heard as navy-blue stripes); a runner-up after a sentence that ends
in a colour is a sentence of its own ("Probably a navy blue T-shirt with white. It could also be a coat or jacket.",
not "... with white, maybe a coat or jacket", heard as "white, maybe a coat"); "plain" is not said beside a second
colour; the colours of an unsure garment are "The colour is navy blue.", not the one-word "Navy blue."; "sure these
are trousers", not "sure it is trousers"; the blur warning comes first (the guess after it is doubtful); and "I can't
see a garment" adds "about an arm's length away" (a garment held too close filled the frame and was told to be held
up in front of the camera)."""
import gzip
import json
from pathlib import Path

from wardrobe import matching, phrase
from wardrobe.colours import Colour
from wardrobe.phrase import Alternative

ROOT = Path(__file__).resolve().parents[2]

CLASSES = json.load(open(ROOT / "models/default/bundle.json"))["classes"]
navy = Colour("navy blue", "navy", "blue", (0, 0, 128), 0.7, (20.0, 30.0, -50.0))
white = Colour("white", "white", "white", (255, 255, 255), 0.3, (98.0, 0.0, 0.0))
hedged = Colour("navy blue", "navy", "blue", (0, 0, 128), 0.7, (20.0, 30.0, -50.0), "black", "black")
gray_extra = Colour("gray", "gray", "gray", (128, 128, 128), 0.1, (50.0, 0.0, 0.0))
COLOURS = {"none": [], "one": [navy], "two": [navy, white], "hedged": [hedged], "hedged-two": [hedged, white],
           "three": [navy, white, gray_extra]}
PATTERNS = [None, "solid", "striped", "floral", "dotted"]

def tiers(g, r):
    return {"sure": [Alternative(g, 0.9), Alternative(r, 0.05)], "sure-runner": [Alternative(g, 0.86), Alternative(r, 0.14 + 0.02)],
            "probably-runner": [Alternative(g, 0.6), Alternative(r, 0.2)], "probably": [Alternative(g, 0.6), Alternative(r, 0.05)],
            "unsure-runner": [Alternative(g, 0.3), Alternative(r, 0.2)], "unsure": [Alternative(g, 0.3), Alternative(r, 0.1)],
            "no-model": []}

class D:
    """Just what matching.compare reads of a Description."""

    def __init__(self, colours, emb=None, pattern=None):
        self.colours, self.embedding, self.pattern = colours, emb, pattern


def compare_pairs():
    import numpy as np
    e1 = np.array([1.0, 0.0])
    e2 = np.array([0.0, 1.0])
    light_navy = Colour("navy blue", "navy", "blue", (0, 0, 160), 0.7, (35.0, 30.0, -50.0))
    red = Colour("red", "red", "red", (200, 0, 0), 0.8, (45.0, 65.0, 45.0))
    pairs = {"unknown": (D([]), D([navy])), "darker": (D([navy]), D([light_navy])), "lighter": (D([light_navy]), D([navy])),
             "different": (D([red]), D([navy])), "pattern": (D([navy], pattern="striped"), D([navy], pattern="solid")),
             "look": (D([navy], e1), D([navy], e2)), "match": (D([navy], e1), D([navy], e1))}
    return pairs


def main():
    rows = []
    for i, g in enumerate(CLASSES):
        r = CLASSES[(i + 7) % len(CLASSES)]
        for tier, alts in tiers(g, r).items():
            for ck, cols in COLOURS.items():
                for p in PATTERNS:
                    key = {"garment": g, "runner": r, "tier": tier, "colours": ck, "pattern": p}
                    rows.append({**key, "clauses": phrase.clauses_for(alts, cols, [], pattern=p)})
    for g in CLASSES[:6] + ["trousers", "shoes", "coat or jacket"]:
        r = "blazer"
        for tier, alts in tiers(g, r).items():
            for ck in ("one", "two", "hedged", "three"):
                for occ in (None, "usage:formal", "usage:casual", "usage:sports", "usage:ethnic"):
                    for probs in ([], ["aim-left", "aim-closer"], ["blurry"], ["too-dark"], ["overexposed"], ["no-garment"],
                                  ["aim-further", "aim-right", "blurry"]):
                        for detail in (False, True):
                            key = {"garment": g, "runner": r, "tier": tier, "colours": ck, "occasion": occ, "problems": probs,
                                   "detail": detail, "pattern": "striped"}
                            rows.append({**key, "clauses": phrase.clauses_for(alts, COLOURS[ck], probs, detail, occ, "striped")})
    yours = [{"name": n, "garment": g, "said": phrase.yours(n, g)} for n in ("red winter coat", "grandad's", "blue  socks", "Sunday best")
             for g in (None, "coat or jacket", "socks", "shirt")]
    pairs = compare_pairs()
    compare = {k: matching.compare(a, b).sentence for k, (a, b) in pairs.items()}
    from wardrobe import button, daemon
    said = {k: getattr(daemon, k) for k in dir(daemon) if k.startswith("SAY_")}
    out = {"phrases": rows, "yours": yours, "compare": compare, "daemon": said, "gestures": list(button.GESTURES),
           "problems": phrase.PROBLEM_WORDS}
    with gzip.open(ROOT / "tests/data/en-golden.json.gz", "wt") as f:
        json.dump(out, f, ensure_ascii=False, indent=0, sort_keys=True)
    print(len(rows), "phrases")

if __name__ == "__main__":
    main()
