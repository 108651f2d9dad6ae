"""Do these match? Two described garments compared by their main colours (CIEDE2000) and their look (embedding).

Said after a double press, comparing the garment now in front of the camera with the one before:
"They match: both navy blue.", "Different: this one is black, the first was navy blue.",
"Same colour, different pattern." The thresholds are chosen on validation pairs (docs/closet.md). Whether they
match is the pixels' difference; the colour words are the closet's names, and a name it doubted when the garment
was described is doubted again: "They match: both navy blue. I'm not sure of the colour." When the garment now is
one the caretaker reviewed and the closet says it in the caretaker's colours, a match is said in those.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wardrobe.colours import ciede2000
from wardrobe.lang import Language, english

SAME_COLOUR_DELTA_E = 8.0
"""Largest CIEDE2000 difference between two main colours still called the same colour (chosen on validation
sock pairs of the same and of different shop colours: docs/closet.md)."""
NO_SHADES = ("black", "white")
"""Families with no lighter or darker shade of the same word: "both are black, but this one is lighter"."""
SHADE_WORDS = ("light", "pale", "dark", "deep")
"""First words of colour names that say a shade already: "both are dark slate gray, but this one is lighter",
never "a lighter dark slate gray"."""
SAME_LOOK = 0.72
"""Embedding similarity below which two garments of the same colour are said to look different (95 % of
validation same-garment pairs are above it)."""


@dataclass(frozen=True)
class Verdict:
    """The comparison and what is said."""

    kind: str
    """"match", "different colour", "different look" or "unknown"."""
    sentence: str
    delta_e: float | None = None
    similarity: float | None = None

    def to_json(self) -> dict:
        return {"verdict": self.kind, "sentence": self.sentence,
                "delta_e": None if self.delta_e is None else round(self.delta_e, 2),
                "similarity": None if self.similarity is None else round(self.similarity, 4)}


def seen(d) -> list:
    """A described garment's colours as the camera saw them (Description.as_seen; a bare one's colours)."""
    return getattr(d, "as_seen", d.colours) or d.colours


def compare(now, before, same_colour: float = SAME_COLOUR_DELTA_E, same_look: float = SAME_LOOK,
            lang: Language | None = None) -> Verdict:
    """Compare the garment now (a Description) with the one before."""
    lang = lang or english()
    if not now.colours or not before.colours:
        return Verdict("unknown", lang.text("compare", "unknown"))
    a, b = now.colours[0], before.colours[0]
    this, first = lang.colour(a.name, a.family), lang.colour(b.name, b.family)  # the colours as first said
    de = ciede2000(seen(now)[0].lab, seen(before)[0].lab)  # the pixels' difference: the camera's main colours
    sim = None
    if now.embedding is not None and before.embedding is not None:
        sim = float(np.dot(now.embedding, before.embedding))

    def said(sentence: str, *named) -> str:  # the colours the sentence names: doubted when described, again here
        return f"{sentence} {lang.text('problems', 'colour-unsure')}" if any(c.unsure for c in named) else sentence

    if de > same_colour:
        if this == first:  # one colour word (in the language's words: teal and turquoise may be one), two shades
            shade = lang.text("compare", "darker" if a.lab[0] < b.lab[0] else "lighter")
            neutral = a.family in NO_SHADES or a.name.split(" ", 1)[0] in SHADE_WORDS
            form = "shade_neutral" if neutral else "shade"
            return Verdict("different colour", said(lang.render("compare", form, shade=shade, colour=this), a, b),
                           de, sim)
        return Verdict("different colour", said(lang.render("compare", "different", now=this, before=first), a, b),
                       de, sim)
    if now.pattern and before.pattern and now.pattern != before.pattern:
        return Verdict("different look", lang.text("compare", "pattern"), de, sim)
    if sim is not None and sim < same_look:
        return Verdict("different look", said(lang.render("compare", "look", before=first), b), de, sim)
    if getattr(now, "example_colours", False) and not getattr(before, "example_colours", False):
        # the same pixels, and this one's words are the caretaker's: both are what the caretaker said
        return Verdict("match", lang.render("compare", "match", before=this), de, sim)
    return Verdict("match", said(lang.render("compare", "match", before=first), b), de, sim)
