"""Every kind of sentence a language file can make, side by side with English, as the review table in
docs/ko-sentences.md (tests/test_lang.py checks the file is current and every Korean sentence is Hangul).

Usage: python -m tests.lang_table [CODE] > docs/ko-sentences.md
"""

from __future__ import annotations

import sys

from wardrobe import lang, matching, phrase
from wardrobe.colours import FAMILIES, Colour
from wardrobe.phrase import Alternative

CLASSES = sorted(lang.english().data["garments"])
COLOUR_WORDS = sorted(lang.english().data["colours"])
FAMILY_OF = {**{f: f for f in FAMILIES}, "cream": "white", "heather gray": "gray", "lavender": "purple",
             "magenta": "pink", "maroon": "red", "mustard yellow": "yellow", "navy blue": "blue", "nude": "beige",
             "skin tone": "beige", "tan": "brown", "teal": "green", "turquoise": "blue"}
"""Each plain word's family, as the shipped colour model's palette has it."""


def colour(word: str, share: float = 0.7, lab=(40.0, 10.0, -30.0), hedge: str | None = None) -> Colour:
    return Colour(word, word, FAMILY_OF[word], (0, 0, 0), share, lab, hedge, FAMILY_OF[hedge] if hedge else None)


NAVY, WHITE = colour("navy blue"), colour("white", 0.3, (95.0, 0.0, 0.0))
TIERS = {"sure": [0.9, 0.05], "probably": [0.6, 0.05], "probably, maybe": [0.6, 0.3], "unsure": [0.3, 0.1],
         "unsure, maybe": [0.3, 0.2]}
"""The hedges: the top garment's and the runner-up's probabilities."""


def alternatives(garment: str, tier: str, runner: str = "blazer") -> list[Alternative]:
    top, second = TIERS[tier]
    return [Alternative(garment, top), Alternative(runner if runner != garment else "dress", second)]


def rows(code: str) -> dict[str, list[tuple[str, str, str]]]:
    """Tables of (what, English, the language) for every garment, colour word, pattern, hedge and message."""
    other, en = lang.load(code), lang.english()

    def both(fn, *args, **kw) -> tuple[str, str]:
        return fn(*args, **kw, lang=en), fn(*args, **kw, lang=other)

    out: dict[str, list[tuple[str, str, str]]] = {}
    out["Every garment at every hedge (navy blue)"] = [
        (f"{g}, {tier}", *both(phrase.sentence, alternatives(g, tier), [NAVY], []))
        for g in CLASSES for tier in TIERS]
    out["Every colour word: alone, with white, as a hedge, as the second colour, a pattern of two (a shirt)"] = [
        (f"{w}, {form}", *both(phrase.sentence, [Alternative("shirt", 0.9)], cols, [], pattern=pattern))
        for w in COLOUR_WORDS
        for form, cols, pattern in (
            ("alone", [colour(w)], None), ("with white", [colour(w), WHITE], None),
            ("hedged with a neighbour", [colour(w, hedge="black" if w != "black" else "navy blue")], None),
            ("second", [NAVY, colour(w, 0.3)], None), ("striped with white", [colour(w), WHITE], "striped"))]
    out["Every pattern, one colour and two, sure and probably (a T-shirt)"] = [
        (f"{p}, {n} colour{'s' if n == 2 else ''}, {tier}",
         *both(phrase.sentence, alternatives("T-shirt", tier), [NAVY, WHITE][:n], [], pattern=p))
        for p in phrase.PATTERNS for n in (1, 2) for tier in ("sure", "probably")]
    out["A long press: confidence, the runner-up, another colour, the occasion"] = [
        (f"{tier}, {occ}", *both(phrase.sentence, alternatives("coat or jacket", tier),
                                 [NAVY, WHITE, colour("gray", 0.12)], [], detail=True, occasion=occ))
        for tier in ("sure", "unsure, maybe") for occ in phrase.OCCASIONS]
    out["No model, the user's own garment"] = [
        ("no model", *both(phrase.sentence, [], [NAVY, WHITE], [])),
        *((f"yours: {name} ({g})", *both(phrase.yours, name, g)) for name, g in (
            ("red winter coat", "coat or jacket"), ("grandad's", "coat or jacket"), ("빨간 겨울코트", "coat or jacket"),
            ("할아버지", "socks")))]
    out["Problems and aiming"] = [(p, en.text("problems", p), other.text("problems", p)) for p in phrase.PROBLEMS]
    darker = colour("navy blue", lab=(20.0, 10.0, -30.0))
    black, grey_black = colour("black", lab=(8.0, 0.0, 0.0)), colour("black", lab=(24.0, 0.0, 0.0))
    pairs = {"darker": ([darker], [NAVY], None), "lighter black": ([grey_black], [black], None), "different": ([colour("red", lab=(45.0, 65.0, 45.0))], [NAVY], None),
             "pattern": ([NAVY], [NAVY], ("striped", "solid")), "match": ([NAVY], [NAVY], None),
             "unknown": ([], [NAVY], None), "look": ([NAVY], [NAVY], "look")}
    out["Do these match? (a double press)"] = [(k, *both(compare_said, *v)) for k, v in pairs.items()]
    out["The daemon's messages"] = [(k, en.text("daemon", k), other.text("daemon", k))
                                    for k, v in en.data["daemon"].items() if isinstance(v, str)]
    out["The spoken help (a triple press)"] = [
        (str(i + 1), a, b) for i, (a, b) in enumerate(zip(en.list("daemon", "gestures"),
                                                            other.list("daemon", "gestures"), strict=True))]
    return out


def compare_said(now: list[Colour], before: list[Colour], how, lang: lang.Language) -> str:
    """What a double press says for two garments' colours (and patterns, or looks apart)."""
    import numpy as np

    class Seen:
        def __init__(self, colours, pattern=None, embedding=None):
            self.colours, self.pattern, self.embedding = colours, pattern, embedding

    patterns = how if isinstance(how, tuple) else (None, None)
    looks = (np.array([1.0, 0.0]), np.array([0.0, 1.0])) if how == "look" else (None, None)
    return matching.compare(Seen(now, patterns[0], looks[0]), Seen(before, patterns[1], looks[1]), lang=lang).sentence


def markdown(code: str) -> str:
    """The review table."""
    other = lang.load(code)
    lines = [f"# Every sentence in {other.name}, beside the English", "",
             f"Generated from `wardrobe/data/lang/{code}.toml` by `python -m tests.lang_table {code}` "
             "(tests/test_lang.py fails when this file is out of date). Each dimension is shown in full against "
             "fixed values of the others: the sentences are made of the same parts in every combination. Every "
             "combination (garment x colour x pattern x hedge, over 30,000 sentences) is made by tests/test_lang.py "
             "and checked to be Hangul without Latin letters. Who checked the Korean: AI helper sessions, reading it "
             "as a Korean speaker would (four reviews, the last on 2026-12-01), not yet a native speaker; a native "
             "speaker's reading is the next step.", ""]
    for title, table in rows(code).items():
        lines += [f"## {title}", "", f"| | English | {other.name} |", "|---|---|---|"]
        lines += [f"| {what} | {a} | {b} |" for what, a, b in table]
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(markdown(sys.argv[1] if len(sys.argv) > 1 else "ko"))
