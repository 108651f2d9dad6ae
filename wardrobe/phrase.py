"""The spoken sentence: garment, colours and honest uncertainty, in plain words."""

from __future__ import annotations

import re
from dataclasses import dataclass

from wardrobe.colours import Colour, spoken_colours
from wardrobe.lang import Language, english
from wardrobe.taxonomy import PATTERNS  # said when confident (words: the language file's [patterns])

SURE = 0.75
"""Calibrated probability at or above which the garment is named plainly. Chosen on validation by the names a
sighted person gives (`wardrobe train evaluate`'s sweep, bundle 20261130-161305, whose temperature is fitted on the
same names): the lowest at which the confidently wrong answers stay under both targets, 4 % of home and 2 % of
product photos, even at the top of their 95 % interval by sender (0.75: 2.1 %, at most 3.75 %, and 1.4 %, at most
1.85 %; 0.7 gave 2.6 %, at most 4.5 %). The margin is the interval, because a confident mistake hurts a blind user
most and the test homes have run a point or two above validation's. From 0.86 it hedges 20 fewer home answers and
10 fewer product answers in a hundred."""
PROBABLY = 0.5
"""At or above this (and below SURE) the garment is 'probably' that; below, the model is unsure. A listener hears
"probably" as more likely than not, and the long press says the percentage: "Probably a coat" beside "I'm 48
percent sure" contradicted itself (0.45 before)."""
MAYBE = 0.15
"""An alternative this likely is mentioned ('maybe a blazer')."""

PROBLEMS = ("too-dark", "overexposed", "no-garment", "blurry", "no-model", "aim-further", "aim-closer", "aim-left",
            "aim-right", "colour-unsure")
"""Problem codes; what is said for each is in the language file's [problems]."""


@dataclass(frozen=True)
class Alternative:
    """A garment class and its calibrated probability."""

    garment: str
    confidence: float


def capitalise(s: str) -> str:
    """Upper-case the first letter only ('T-shirt' stays as it is; Hangul has no case)."""
    return s[:1].upper() + s[1:]


OCCASIONS = ("usage:casual", "usage:formal", "usage:sports", "usage:ethnic")
"""Occasion outputs said on a long press when confident (words: the language file's [occasions])."""


def colour_words(colour: Colour, lang: Language) -> list[str]:
    """The words a colour is said in, in the language: ["navy blue"], or ["navy blue", "black"] when hedged; a
    hedge whose two names are one word there (teal and turquoise are both 청록색) is one."""
    words = [lang.colour(colour.name, colour.family)]
    if colour.or_name and (other := lang.colour(colour.or_name, colour.or_family)) != words[0]:
        words.append(other)
    return words


def colour_said(colour: Colour, lang: Language) -> str:
    """A colour's spoken words: "navy blue", or "navy blue or black" when hedged."""
    words = colour_words(colour, lang)
    return lang.render("sentence", "colour_or", first=words[0], other=words[1]) if len(words) > 1 else words[0]


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
                    occasion: str | None = None, pattern: str | None = None, lang: Language | None = None) -> list[str]:
    """Clauses naming the garment with its colours (and its pattern when sure), hedged by confidence."""
    lang = lang or english()
    said = spoken_colours(colours)
    main = colour_said(said[0], lang) if said else ""
    heard = colour_words(said[0], lang) if said else []  # a colour is never said twice, in any language's words
    doubted = bool(said) and said[0].unsure
    second = said[1] if len(said) > 1 and lang.colour(said[1].name, said[1].family) not in heard else None
    if pattern == "solid" and second:
        pattern = None  # "plain" beside a second colour contradicts it: "A plain navy blue coat with white."
    word = lang.pattern(pattern) if pattern in PATTERNS and alternatives else ""
    if word and second and pattern != "solid" and len(heard) == 1:  # not "navy blue or black and white striped"
        form, both = "thing_pattern_two", lang.colour(second.name, second.family)  # "navy blue and white striped"
        second = None
    elif word and pattern != "solid" and len(heard) > 1:  # "Striped shoes, black or navy blue.", not "black or
        form, both = "thing_pattern_hedged", ""          # navy blue striped": heard as navy-blue stripes
    else:
        form, both = ("thing_solid" if pattern == "solid" else "thing_pattern") if word else "thing", ""
    second_word = lang.colour(second.name, second.family) if second else ""

    def with_second(thing: str) -> str:
        return lang.render("sentence", "with_second", thing=thing, second=second_word) if second_word else thing

    colours_clause = capitalise(lang.render("sentence", "colours_unsure" if doubted else "colours",
                                            colours=with_second(main))) if main else ""
    if not alternatives:
        return [colours_clause, lang.text("problems", "no-model")] if main else []
    top = alternatives[0]
    runner = alternatives[1] if len(alternatives) > 1 and alternatives[1].confidence >= MAYBE else None
    garment = lang.garment(top.garment)
    other = lang.garment(runner.garment) if runner else ""
    plural = frozenset(slot for slot, g in (("thing", top.garment), ("garment", top.garment),
                                            ("runner", runner.garment if runner else "")) if lang.is_plural(g))
    thing = with_second(lang.render("sentence", form, main=main, second=both, pattern=word, garment=garment))
    ends_in_colour = bool(second_word) or form == "thing_pattern_hedged"
    if top.confidence >= SURE:
        clauses = [capitalise(lang.render("sentence", "sure", plural, thing=thing))]
    elif top.confidence >= PROBABLY:
        if runner and ends_in_colour:  # "..., with black, maybe a hoodie" is heard as "black, maybe a hoodie"
            clauses = [lang.render("sentence", "probably", plural, thing=thing),
                       lang.render("sentence", "maybe_apart", plural, runner=other)]
        else:
            clauses = [lang.render("sentence", "probably_then" if runner else "probably", plural, thing=thing)]
            if runner:
                clauses.append(lang.render("sentence", "maybe", plural, runner=other))
    else:
        clauses = [lang.render("sentence", "unsure_two" if runner else "unsure", plural, garment=garment, runner=other)]
        if main:
            clauses.append(colours_clause)  # "The colour might be black." when doubted: said once, on the colour
    if doubted and top.confidence >= PROBABLY:  # right after the colour it is about, before the long press's details
        clauses.append(lang.text("problems", "colour-unsure"))
    if detail:
        clauses.append(lang.render("sentence", "percent_sure_plural" if lang.is_plural(top.garment) else
                                   "percent_sure", plural, percent=str(round(100 * top.confidence)), garment=garment))
        if runner and top.confidence >= SURE:
            clauses.append(lang.render("sentence", "could_be", plural, runner=other))
        said_second = both or second_word  # "heather gray" said second: "gray" is not "also some"; main by word
        extra = [w for w in (lang.colour(c.name, c.family) for c in colours[1:])
                 if w not in heard and not (said_second and said_second.endswith(w))]
        if extra:
            clauses.append(lang.render("sentence", "also_some", colour=extra[0]))
        if occasion in OCCASIONS:
            clauses.append(lang.render("sentence", "occasion", occasion=lang.text("occasions", occasion)))
    return clauses


def colour_doubted(colours: list[Colour], problems: list[str]) -> bool:
    """Whether the sentence says the main colour is uncertain ("I'm not sure of the colour.", "The colour might be
    black."): the caretaker's queue and the JSON's `colour-unsure` follow what the user heard."""
    said = spoken_colours(colours)
    return bool(said) and said[0].unsure and not any(p in problems for p in BLOCKING)


BLOCKING = ("too-dark", "overexposed", "no-garment")
AIMING = ("aim-further", "aim-closer", "aim-left", "aim-right")
"""Problems that are said instead of a description: the garment is not named at all."""


def clauses_for(alternatives: list[Alternative], colours: list[Colour], problems: list[str], detail: bool = False,
                occasion: str | None = None, pattern: str | None = None, lang: Language | None = None) -> list[str]:
    """The whole utterance as clauses (spoken one after another; the first can start sooner)."""
    lang = lang or english()
    blocking = [p for p in BLOCKING if p in problems]
    if blocking:
        return [lang.text("problems", blocking[0])]
    blurry = [lang.text("problems", "blurry")] if "blurry" in problems else []  # first: the guess after it is doubtful
    return aiming_clauses(problems, lang) + blurry + garment_clauses(alternatives, colours, detail, occasion, pattern,
                                                                    lang)


def aiming_clauses(problems: list[str], lang: Language) -> list[str]:
    """How to aim better, said first: the user can act on it now."""
    return [lang.text("problems", p) for p in AIMING if p in problems]


def sentence(alternatives: list[Alternative], colours: list[Colour], problems: list[str], detail: bool = False,
             occasion: str | None = None, pattern: str | None = None, lang: Language | None = None) -> str:
    """The utterance as one string."""
    return " ".join(clauses_for(alternatives, colours, problems, detail, occasion, pattern, lang))


def names_a_garment(name: str, garment: str | None = None, lang: Language | None = None) -> bool:
    """Whether a user's name for a garment already holds a garment word (its own class's words included): whole
    words for Latin letters ("coats"), anywhere in the name for other scripts ("겨울코트")."""
    lang = lang or english()
    known = set(lang.garment_words())
    if garment:  # each word of its name too: "polo" names a polo shirt, "폴로" a 폴로 셔츠
        known |= {*re.findall(r"[a-z][a-z-]*", garment.lower()), *lang.garment(garment).split()} - {"or"}
    words = {w.removesuffix("s") for w in re.findall(r"[a-z][a-z-]*", name.lower())}
    if words & {w.lower().removesuffix("s") for w in known if w.isascii()}:
        return True
    return any(w in name for w in known if not w.isascii())


def yours(name: str | None, garment: str | None, lang: Language | None = None) -> str:
    """The user's own garment: "Your red winter coat." The model's garment word is added only when the name
    holds no garment word of its own ("Your grandad's" + "coat or jacket"). A garment known by its voice label
    alone (name None) is said by the garment word: "Your coat or jacket." (its recording could not be played)."""
    lang = lang or english()
    words = " ".join((name or "").split())
    if garment and not names_a_garment(words, garment, lang):
        words = f"{words} {lang.garment(garment)}".strip()
    return lang.render("sentence", "yours", name=words)
