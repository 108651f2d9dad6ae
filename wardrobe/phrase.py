"""The spoken sentence: garment, colours and honest uncertainty, in plain words."""

from __future__ import annotations

import re
from dataclasses import dataclass

from wardrobe.colours import Colour, spoken_colours

SURE = 0.85
"""Calibrated probability at or above which the garment is named plainly: the lowest that kept validation home
photos' confidently wrong answers under 4 % (`wardrobe train evaluate`'s sweep; 0.75 gave 6.5 %)."""
PROBABLY = 0.45
"""At or above this (and below SURE) the garment is 'probably' that; below, the model is unsure."""
MAYBE = 0.15
"""An alternative this likely is mentioned ('maybe a blazer')."""

PROBLEM_WORDS = {
    "too-dark": "It's too dark, please turn on the light.",
    "overexposed": "The picture is too bright, please move out of the glare.",
    "no-garment": "I can't see a garment. Please hold it up in front of the camera.",
    "blurry": "The picture is blurry, please hold the garment still.",
    "no-model": "I can't tell what garment it is.",
    "aim-further": "Hold it a little further away.",
    "aim-closer": "Hold it closer.",
    "aim-left": "Move it a little to your left.",
    "aim-right": "Move it a little to your right.",
}
"""What is said for each problem code."""

PLURALS = {"trousers", "shorts", "shoes", "socks", "sandals", "heels", "flip-flops", "leggings", "tights", "gloves",
           "braces"}


@dataclass(frozen=True)
class Alternative:
    """A garment class and its calibrated probability."""

    garment: str
    confidence: float


def with_article(noun_phrase: str, plural: bool) -> str:
    """'a navy T-shirt', 'an orange coat', 'black trousers'."""
    if plural:
        return noun_phrase
    return ("an " if noun_phrase[:1].lower() in "aeiou" else "a ") + noun_phrase


def colour_words(colours: list[Colour]) -> tuple[str, str]:
    """(main colour, ' with SECOND' or '') from the colours worth saying."""
    said = spoken_colours(colours)
    if not said:
        return "", ""
    second = f" with {said[1].name}" if len(said) > 1 else ""
    return said[0].said, second


def capitalise(s: str) -> str:
    """Upper-case the first letter only ('T-shirt' stays as it is)."""
    return s[:1].upper() + s[1:]


OCCASION_WORDS = {"usage:casual": "casual wear", "usage:formal": "formal wear", "usage:sports": "sportswear",
                  "usage:ethnic": "ethnic wear"}
"""How a confident occasion output is said on a long press."""


PATTERN_WORDS = {"solid": "plain", "striped": "striped", "checked": "checked", "printed": "printed",
                 "floral": "flowered", "dotted": "polka-dot"}
"""How a confident pattern is said."""


def named_garments(alternatives: list[Alternative], sure: float = SURE, maybe: float = MAYBE
                   ) -> tuple[list[str], bool]:
    """The garments a short press names, most likely first, and whether they are hedged ("probably", "maybe",
    "not sure"). A plain answer names one garment; a hedged one adds the runner-up when it is at least `maybe`."""
    if not alternatives:
        return [], False
    top = alternatives[0]
    if top.confidence >= sure:
        return [top.garment], False
    runner = alternatives[1] if len(alternatives) > 1 and alternatives[1].confidence >= maybe else None
    return [top.garment] + ([runner.garment] if runner else []), True


def garment_clauses(alternatives: list[Alternative], colours: list[Colour], detail: bool = False,
                    occasion: str | None = None, pattern: str | None = None) -> list[str]:
    """Clauses naming the garment with its colours (and its pattern when sure), hedged by confidence."""
    main, second = colour_words(colours)
    coloured = f"{main} " if main else ""
    if pattern in PATTERN_WORDS and alternatives:
        word = PATTERN_WORDS[pattern]
        if pattern == "solid":
            coloured = f"{word} {coloured}"
        elif second:  # a pattern is made of both colours: "a navy blue and white striped shirt"
            coloured, second = f"{main} and {second.removeprefix(' with ')} {word} ", ""
        else:
            coloured = f"{coloured}{word} "
    if not alternatives:
        if not main:
            return []
        return [capitalise(f"{main}{second}."), PROBLEM_WORDS["no-model"]]
    top = alternatives[0]
    runner = alternatives[1] if len(alternatives) > 1 and alternatives[1].confidence >= MAYBE else None
    plural = top.garment in PLURALS
    thing = with_article(f"{coloured}{top.garment}", plural) + second
    if top.confidence >= SURE:
        clauses = [capitalise(thing) + "."]
    elif top.confidence >= PROBABLY:
        clauses = [f"Probably {thing}" + ("," if runner else ".")]
        if runner:
            clauses.append(f"maybe {with_article(runner.garment, runner.garment in PLURALS)}.")
    else:
        options = with_article(top.garment, plural)
        if runner:
            options += " or " + with_article(runner.garment, runner.garment in PLURALS)
        clauses = [f"I'm not sure what this is, maybe {options}."]
        if main:
            clauses.append(capitalise(f"{main}{second}."))
    if detail:
        clauses.append(f"I'm {round(100 * top.confidence)} percent sure it is {with_article(top.garment, plural)}.")
        if runner and top.confidence >= SURE:
            clauses.append(f"It could also be {with_article(runner.garment, runner.garment in PLURALS)}.")
        extra = [c for c in colours[1:] if c.name != main and not second.endswith(c.name)]
        if extra:
            clauses.append(f"There is also some {extra[0].name}.")
        if occasion in OCCASION_WORDS:
            clauses.append(f"It looks like {OCCASION_WORDS[occasion]}.")
    return clauses


BLOCKING = ("too-dark", "overexposed", "no-garment")
AIMING = ("aim-further", "aim-closer", "aim-left", "aim-right")
"""Problems that are said instead of a description: the garment is not named at all."""


def clauses_for(alternatives: list[Alternative], colours: list[Colour], problems: list[str], detail: bool = False,
                occasion: str | None = None, pattern: str | None = None) -> list[str]:
    """The whole utterance as clauses (spoken one after another; the first can start sooner)."""
    blocking = [p for p in BLOCKING if p in problems]
    if blocking:
        return [PROBLEM_WORDS[blocking[0]]]
    aiming = [PROBLEM_WORDS[p] for p in AIMING if p in problems]  # said first: the user can act on it now
    clauses = aiming + garment_clauses(alternatives, colours, detail, occasion, pattern)
    if "blurry" in problems:
        clauses.append(PROBLEM_WORDS["blurry"])
    return clauses


def sentence(alternatives: list[Alternative], colours: list[Colour], problems: list[str], detail: bool = False,
             occasion: str | None = None, pattern: str | None = None) -> str:
    """The utterance as one string."""
    return " ".join(clauses_for(alternatives, colours, problems, detail, occasion, pattern))


GARMENT_NOUNS = frozenset(
    "t-shirt tshirt tee shirt top blouse polo undershirt vest long-sleeved sweater jumper pullover cardigan hoodie "
    "sweatshirt fleece coat jacket anorak parka raincoat blazer suit waistcoat dress gown skirt trousers pants jeans "
    "chinos slacks leggings tights shorts shoes shoe boots sneakers trainers heels sandals flip-flops slippers socks "
    "hat cap beanie scarf gloves mittens belt tie braces bra underwear pants nightwear pyjamas pajamas robe bodysuit "
    "jumpsuit overalls dungarees tracksuit swimwear swimsuit bikini kurta saree sari".split())
"""Words that already say what a garment is: a name holding one ("red winter coat") needs no garment word."""


def names_a_garment(name: str, garment: str | None = None) -> bool:
    """Whether a user's name for a garment already holds a garment word (its own class's words included)."""
    words = {w.removesuffix("s") for w in re.findall(r"[a-z][a-z-]*", name.lower())}
    known = {w.removesuffix("s") for w in GARMENT_NOUNS}
    if garment:
        known |= {w.removesuffix("s") for w in re.findall(r"[a-z][a-z-]*", garment.lower()) if w != "or"}
    return bool(words & known)


def yours(name: str, garment: str | None) -> str:
    """The user's own garment: "Your red winter coat." The model's garment word is added only when the name
    holds no garment word of its own ("Your grandad's" + "coat or jacket")."""
    words = " ".join(name.split())
    if garment and not names_a_garment(words, garment):
        words = f"{words} {garment}"
    return f"Your {words}."
