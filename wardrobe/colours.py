"""Dominant colours of a garment and the words for them.

Pixels are weighted by the segmentation alpha (skin removed), sampled, clustered with KMeans
in CIELAB, and each cluster is named three ways: the nearest CSS3 name (KD-tree), a colour
family (a nearest-neighbour vote over photos a shop labelled, so boundaries such as "dark grey
photographs of black cloth" are learned, not guessed) and a plain spoken name within that family.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib import resources

import numpy as np

from wardrobe.css3 import names_and_rgb, said_indices
from wardrobe.errors import ConfigError
from wardrobe.images import lab_to_rgb, rgb_to_lab
from wardrobe.kdtree import KDTree
from wardrobe.settings import COLOUR_WORDS, NAMING_MODES

FAMILIES = ("black", "white", "gray", "red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "beige")


@dataclass(frozen=True)
class Cluster:
    """One dominant colour: its CIELAB centre, sRGB and share of the garment's weight."""

    lab: tuple[float, float, float]
    rgb: tuple[int, int, int]
    share: float


@dataclass(frozen=True)
class Colour:
    """A named dominant colour as reported and spoken."""

    name: str
    css3: str
    family: str
    rgb: tuple[int, int, int]
    share: float
    lab: tuple[float, float, float] = (0.0, 0.0, 0.0)
    or_name: str | None = None
    """A second, neighbouring family's word when the two are too close to choose ("navy blue" or "black")."""
    or_family: str | None = None
    """That second family (None: the colour is said plainly)."""
    unsure: bool = False
    """The learned colour decision gives the family said little chance (Pipeline.colour_unsure_below): the user
    hears "I'm not sure of the colour." after the description."""

    @property
    def said(self) -> str:
        """The words spoken for this colour: "navy blue", or "navy blue or black" when hedged."""
        return f"{self.name} or {self.or_name}" if self.or_name else self.name

    def to_json(self) -> dict:
        """The JSON form of describe --json."""
        out = {"name": self.name, "css3": self.css3, "family": self.family, "rgb": list(self.rgb),
               "share": round(self.share, 3)}
        if self.or_family:
            out["or"] = {"name": self.or_name, "family": self.or_family}
        if self.unsure:
            out["unsure"] = True
        return out


NEIGHBOURS = frozenset(frozenset(pair) for pair in (
    ("black", "gray"), ("black", "blue"), ("black", "brown"), ("gray", "white"), ("gray", "blue"), ("gray", "beige"),
    ("white", "beige"), ("beige", "brown"), ("beige", "yellow"), ("brown", "orange"), ("brown", "red"),
    ("red", "pink"), ("red", "orange"), ("red", "purple"), ("pink", "purple"), ("purple", "blue"), ("blue", "green"),
    ("green", "yellow"), ("yellow", "orange")))
"""Families whose borders people and shops disagree on (navy or black, beige or brown): the only renames the colour
head may make to a cluster, and the only pairs said together as "X or Y"."""
SATURATED = frozenset({"red", "orange", "yellow", "green", "blue", "purple", "pink"})
NEUTRAL_CHROMA = 10.0
"""CIELAB chroma below which a colour that is not near-black is a white or a grey: never called a hue."""
NEAR_BLACK_L = 25.0
"""CIELAB lightness below which a dark cloth may be a navy or a dark brown though its chroma is small."""
BRIGHT_NEUTRAL_L = 60.0
"""CIELAB lightness from which a neutral garment no darker than what is around it is white, not grey: a camera
exposes for the whole frame, so a white garment at home photographs grey (L 60 to 80). Validation home photos
labelled by eye, docs/precision.md."""


def may_rename(lab, old: str, new: str, sure: bool = False) -> bool:
    """Whether a cluster named `old` by its pixels may be called `new`: the same family, or a neighbouring one,
    and never a hue for a near-white or near-grey cluster (an int8 head saying "yellow" for a white shirt). A
    near-black cluster may always be called black: in the dark the pixels' vote is unsure of its hue (a black
    dress's shadows voted "purple").

    sure: the colour head gives `new` at least vision.colour_head_sure. Then any family may be said, except a hue
    for a neutral cluster (CIELAB chroma < NEUTRAL_CHROMA) of any lightness: black shoes are never "green"."""
    if old == new:
        return True
    L, a, b = (float(v) for v in lab)
    if new == "black" and L < NEAR_BLACK_L:
        return True
    neutral = math.hypot(a, b) < NEUTRAL_CHROMA
    if frozenset((old, new)) in NEIGHBOURS and not (new in SATURATED and neutral and L >= NEAR_BLACK_L):
        return True
    return sure and not (new in SATURATED and neutral)


def region_weights(alpha: np.ndarray, region: str) -> np.ndarray:
    """A soft vertical band of the mask's bounding box where a garment sits on a worn figure.

    region: "whole", "upper" (a top on a model) or "lower" (trousers, skirts).
    """
    h = alpha.shape[0]
    rows = np.flatnonzero((alpha > 127).any(axis=1))
    if region == "whole" or len(rows) < 4:
        return np.ones(h, np.float32)
    top, bottom = rows[0], rows[-1]
    pos = (np.arange(h) - top) / max(1, bottom - top)
    lo, hi = (0.12, 0.55) if region == "upper" else (0.5, 0.95)
    band = np.clip(np.minimum(pos - lo, hi - pos) / 0.05 + 0.5, 0.05, 1.0)
    return band.astype(np.float32)


def garment_weights(rgb: np.ndarray, alpha: np.ndarray, remove_skin: bool = True, centre: float = 0.0,
                    region: str = "whole") -> np.ndarray:
    """Per-pixel weight for colour sampling: alpha, minus skin, optionally favouring the centre.

    Skin is removed only while enough garment is left: a beige or pink garment is mostly
    "skin-coloured" and must keep its own pixels.
    """
    from wardrobe.segment import skin_mask

    w = alpha.astype(np.float32) / 255.0
    if remove_skin:
        skin = skin_mask(rgb)
        kept = w * ~skin
        if kept.sum() > 0.35 * w.sum():
            w = kept
    if region != "whole":
        w = w * region_weights(alpha, region)[:, None]
    if centre > 0:
        h, wd = alpha.shape
        yy, xx = np.mgrid[0:h, 0:wd]
        r2 = ((yy - h / 2) / (h / 2)) ** 2 + ((xx - wd / 2) / (wd / 2)) ** 2
        w = w * np.exp(-centre * r2).astype(np.float32)
    return w


def dominant_colours(
    rgb: np.ndarray, weights: np.ndarray, k: int | None = 3, sample: int = 2000,
    merge_delta_e: float = 12.0, min_share: float = 0.08, seed: int = 0,
) -> list[Cluster]:
    """KMeans in CIELAB on a weighted sub-sample; near-identical clusters merged, tiny ones dropped.

    k=None chooses k in 1..5 per image (the smallest k whose clustering explains the colours well).
    """
    import cv2

    flat_w = weights.reshape(-1).astype(np.float64)
    total = flat_w.sum()
    if total <= 0:
        return []
    rng = np.random.default_rng(seed)
    n = min(sample, int((flat_w > 0).sum()))
    idx = rng.choice(flat_w.size, size=n, replace=True, p=flat_w / total)
    lab = rgb_to_lab(rgb.reshape(-1, 3)[idx])
    cv2.setRNGSeed(seed)
    crit = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.5)

    def run(kk: int) -> tuple[float, np.ndarray, np.ndarray]:
        kk = max(1, min(kk, len(lab)))
        compact, labels, centers = cv2.kmeans(lab, kk, None, crit, 2, cv2.KMEANS_PP_CENTERS)
        return compact / len(lab), labels.ravel(), centers

    if k is None:
        first = run(1)
        chosen = first
        for kk in range(2, 6):
            trial = run(kk)
            if trial[0] > 0.6 * chosen[0]:
                break  # another cluster no longer cuts the spread by much
            chosen = trial
        _, labels, centers = chosen
    else:
        _, labels, centers = run(k)
    shares = np.bincount(labels, minlength=len(centers)) / len(labels)
    groups = [[c.astype(np.float64), s] for c, s in zip(centers, shares, strict=True)]
    merged = True
    while merged and len(groups) > 1:
        merged = False
        for i in range(len(groups)):
            for j in range(i + 1, len(groups)):
                if np.linalg.norm(groups[i][0] - groups[j][0]) < merge_delta_e:
                    (ci, si), (cj, sj) = groups[i], groups[j]
                    groups[i] = [(ci * si + cj * sj) / (si + sj), si + sj]
                    del groups[j]
                    merged = True
                    break
            if merged:
                break
    groups = [g for g in groups if g[1] >= min_share] or [max(groups, key=lambda g: g[1])]
    total_share = sum(g[1] for g in groups)
    groups.sort(key=lambda g: -g[1])
    rgbs = lab_to_rgb(np.array([g[0] for g in groups]))
    return [Cluster(tuple(float(x) for x in g[0]), tuple(int(x) for x in c), float(g[1] / total_share))  # type: ignore[arg-type]
            for g, c in zip(groups, rgbs, strict=True)]


def rule_family(lab: np.ndarray | tuple[float, float, float]) -> str:
    """A colour family from CIELAB by fixed hue/lightness/chroma rules (the fallback, and the CSS3 map)."""
    L, a, b = (float(x) for x in lab)
    chroma = float(np.hypot(a, b))
    hue = float(np.degrees(np.arctan2(b, a)) % 360)
    if chroma < 12:
        if L < 22:
            return "black"
        return "white" if L > 88 else "gray"
    if L < 12:
        return "black"
    if 20 <= hue < 85 and chroma < 35 and L > 65:
        return "beige"
    if 20 <= hue < 75 and L < 55:
        return "brown"
    if hue < 20 or hue >= 345:
        return "pink" if L > 65 and chroma < 60 else "red"
    if hue < 60:
        return "orange"
    if hue < 100:
        return "yellow" if L > 60 else ("green" if hue > 90 else "brown")
    if hue < 195:
        return "green"
    if hue < 315:  # saturated blues sit near 300 degrees in CIELAB
        return "blue"
    if hue < 345:
        return "purple"
    return "pink"


@lru_cache(maxsize=1)
def shop_colours() -> dict[str, tuple[tuple[str, ...], str]]:
    """Shop colour label -> (acceptable families, the first being its own; spoken name), from the packaged CSV."""
    text = resources.files("wardrobe.data").joinpath("shop_colours.csv").read_text()
    return {r["label"]: (tuple(r["families"].split()), r["spoken"]) for r in csv.DictReader(text.splitlines())}


CSS3_WORDS = sorted("""dark light medium pale deep hot lawn sea slate sky steel powder royal midnight navy cornflower
dodger cadet forest lime olive spring lemon chiffon alice antique blanched floral ghost old navajo papaya peach misty
lavender blush sandy rosy indian saddle burly mint cream honeydew shell orange red green blue yellow violet orchid grey
gray white goldenrod turquoise aquamarine purple pink brown salmon khaki magenta cyan wood smoke lace linen whip almond
puff rose drab sienna chocolate tan wheat bisque moccasin beige coral tomato crimson gold silver gainsboro thistle plum
fuchsia maroon teal aqua azure ivory snow chartreuse fire brick indigo black web lemon dim corn silk rebecca""".split(), key=len, reverse=True)
"""The words CSS3 colour names are made of, to say "darkslategray" as "dark slate gray"."""


SAME_COLOUR = 3.0
"""CIEDE2000 within which two colours are one colour to the eye (a just-noticeable difference is about 2.3): a
garment whose main colour the camera sees within it of a reviewed photo's is said in the caretaker's colour plainly."""


def own_beside(reviewed, own: str, own_or: str | None, own_lab, seen) -> str | None:
    """The closet's own main family to say beside a reviewed photo's main family ("navy blue or black"), or None:
    said plainly. `reviewed`: the families the caretaker gave or confirmed, main first. Plainly when the closet
    said that main family too (alone, or in its own "X or Y"), when its own main colour is one the caretaker gave
    (a navy and white shirt whose white part the camera now finds larger), or when its main colour is within
    SAME_COLOUR of the reviewed photo's as the camera saw it (`seen`, CIELAB, main first): the same garment in the
    same light. Otherwise the same cut in another colour can look as alike to the camera as the same garment in
    another light (black trousers 9 from navy ones), and a user who owns both must not be told the wrong one
    without a doubt."""
    if (reviewed[0] in (own, own_or) or own in reviewed
            or (len(seen) and ciede2000(own_lab, seen[0]) <= SAME_COLOUR)):
        return None
    return own


def part_of(colours: list[Colour], family: str) -> int | None:
    """The index of the largest cluster of the family that is a real part of the garment (the main cluster, or at
    least CHOSEN_MIN_SHARE of it); None when there is none."""
    return next((i for i, c in enumerate(colours) if c.family == family and (i == 0 or c.share >= CHOSEN_MIN_SHARE)),
                None)


def says_family(name: str, family: str, voted: str) -> bool:
    """Whether a CSS3 name may be said for a colour of this family: its last family word is the family's ("slate
    gray" for gray, "navajo white" for white, "orange red" for red: the ear takes the last word as the colour), or
    it holds no family's word and the labelled photos' vote puts it in the family ("teal" for green, "maroon" for
    red). A name holding another family's word never is ("dim gray" is not said of black, "alice blue" not of
    white)."""
    said = [w for w in ("gray" if w == "grey" else w for w in css3_words(name).split()) if w in FAMILIES]
    return said[-1] == family if said else voted == family  # "orange red" is a red, "yellow green" a green


def css3_words(name: str) -> str:
    """A CSS3 name in words, by the longest known word at each place ("darkslategray" -> "dark slate gray")."""
    out, rest = [], name.lower()
    while rest:
        word = next((w for w in CSS3_WORDS if rest.startswith(w)), None)
        if word is None:
            return name
        out.append(word)
        rest = rest[len(word):]
    return " ".join(out)


class ColourNamer:
    """Names a CIELAB colour: nearest CSS3 name, family and plain spoken name. Build once, reuse."""

    def __init__(self, mode: str = "lab", model: dict | None = None, words: str = "plain") -> None:
        if mode not in NAMING_MODES:
            raise ConfigError(f"unknown colour naming mode {mode!r}; choose from {', '.join(NAMING_MODES)}")
        if words not in COLOUR_WORDS:
            raise ConfigError(f"unknown colour words {words!r}; choose from {', '.join(COLOUR_WORDS)}")
        self.mode, self.words = mode, words
        self.css3_names, self.css3_rgb = names_and_rgb()
        self.css3_lab = rgb_to_lab(self.css3_rgb)
        self.css3_first = said_indices(self.css3_names, self.css3_rgb)  # one point per colour: one name said for it
        points = self.css3_lab if mode == "lab" else self.css3_rgb.astype(np.float32)
        self.css3_tree = KDTree(points[self.css3_first])
        self.model = model if model is not None else load_colour_model()
        self.family_tree = None
        if self.model:
            self.points = np.asarray(self.model["points"], np.float32)
            self.point_family = np.asarray([FAMILIES.index(f) for f in self.model["point_family"]])
            self.scale = np.asarray(self.model["scale"], np.float32)
            self.k = int(self.model["k"])
            self.family_tree = KDTree(self.points * self.scale)
            # Votes are divided by each family's frequency to this power, so common black does
            # not swallow the greys next to it.
            counts = np.bincount(self.point_family, minlength=len(FAMILIES)).astype(np.float64)
            self.vote_scale = np.where(counts > 0, np.maximum(counts, 1) ** -float(self.model.get("balance", 0.0)), 0.0)
            self.palette = [(p["name"], p["family"], np.asarray(p["lab"], np.float32)) for p in self.model["palette"]]
        self.css3_family = [self.family(lab) for lab in self.css3_lab]
        """Each CSS3 colour's family, as the labelled photos' vote puts it."""
        self.css3_for = {f: [int(i) for i in self.css3_first if says_family(self.css3_names[i], f, self.css3_family[i])]
                         for f in FAMILIES}
        """The CSS3 names the descriptive words may say for each family: basic and plain follow the family, so must
        descriptive, to the ear as well as by the vote (a green kurta is never "dark slate gray", a white shirt
        never "alice blue", though the vote puts those colours in green and white)."""

    def css3(self, lab: np.ndarray, rgb: np.ndarray) -> str:
        """Nearest CSS3 name, in CIELAB or (the original mode) in RGB."""
        q = lab if self.mode == "lab" else np.asarray(rgb, np.float32)
        return self.css3_names[int(self.css3_first[self.css3_tree.query(q)[1][0]])]

    def css3_within(self, lab: np.ndarray, family: str, css3: str) -> str:
        """The nearest CSS3 name (in CIELAB) among those the family may say (css3_for); the given name when it is
        one of them already or the family has none."""
        mine = self.css3_for.get(family, [])
        if not mine or self.css3_names.index(css3) in mine:
            return css3
        d = np.linalg.norm(self.css3_lab[mine] - np.asarray(lab, np.float32), axis=1)
        return self.css3_names[mine[int(d.argmin())]]

    def family(self, lab: np.ndarray) -> str:
        """Colour family by a distance-weighted vote of the k nearest labelled photos (rules if no model)."""
        if self.family_tree is None:
            return rule_family(lab)
        d, i = self.family_tree.query(np.asarray(lab, np.float32) * self.scale, k=self.k)
        votes = np.bincount(self.point_family[i], weights=1.0 / (d + 1.0), minlength=len(FAMILIES)) * self.vote_scale
        return FAMILIES[int(votes.argmax())]

    def spoken(self, lab: np.ndarray, family: str) -> str:
        """The plain name a person would use: the nearest palette colour within the family."""
        if self.family_tree is None:
            return family
        best, best_d = family, np.inf
        for name, fam, ref in self.palette:
            if fam == family:
                d = float(np.linalg.norm(ref - lab))
                if d < best_d:
                    best, best_d = name, d
        return best

    def name(self, cluster: Cluster) -> Colour:
        """Name one cluster."""
        lab = np.asarray(cluster.lab, np.float32)
        family = self.family(lab)
        css3 = self.css3(lab, np.asarray(cluster.rgb))
        return Colour(self.said(lab, family, css3), css3, family, cluster.rgb, cluster.share, cluster.lab)

    def said(self, lab: np.ndarray, family: str, css3: str) -> str:
        """The word spoken for a colour in the configured words: the family ("basic"), the plain word
        ("plain") or the CSS3 name in words ("descriptive": "dark slate gray", "teal")."""
        if self.words == "basic":
            return family
        if self.words == "descriptive":
            return css3_words(self.css3_within(lab, family, css3))
        return self.spoken(lab, family)

    @staticmethod
    def decided_family(colours: list[Colour], families: list[tuple[str, float]], pixel_weight: float,
                       learned: list[tuple[str, float]] | None = None, learned_weight: float = 0.0
                       ) -> tuple[str, float]:
        """The main colour's family as the colour head and the pixels decide it together, and the head's
        probability of it: the family with the most log p(family) + pixel_weight × (the garment's share of
        clusters named that family). At 0 the head alone decides; at 3 (validation, docs/precision.md) a family
        that most of the garment's pixels show wins unless the head is much surer of another.

        learned: the bundle's learned decision (wardrobe.colour_decision), whose log-probability (floored at
        LEARNED_FLOOR) is added at learned_weight: what photos labelled by eye at home taught about the light and
        the mask. The floor bounds how far it can move a family, so that the head and the pixels agreeing on black
        outweigh a decision sure of blue."""
        share: dict[str, float] = {}
        for c in colours:
            share[c.family] = share.get(c.family, 0.0) + c.share
        taught = dict(learned or [])

        def score(fp: tuple[str, float]) -> float:
            extra = learned_weight * math.log(taught.get(fp[0], 0.0) + LEARNED_FLOOR) if taught and learned_weight else 0.0
            return math.log(fp[1] + 1e-4) + pixel_weight * share.get(fp[0], 0.0) + extra

        return max(families, key=score)

    def with_family_hint(self, colours: list[Colour], family: str, sure: bool = False) -> list[Colour]:
        """Trust a confident whole-photo family (the classifier's colour head) for the main colour, within
        what the pixels allow.

        The largest cluster of that family that is a real part of the garment (CHOSEN_MIN_SHARE) becomes the
        main colour; if there is none, the largest cluster is renamed to that family only when the two are
        neighbours (may_rename): gray may become black, never yellow. A head `sure` of the family may rename it
        to any family but a hue for a neutral cluster. Otherwise the pixels' name stands.
        """
        if not colours:
            return colours
        i = part_of(colours, family)
        if i is not None:
            return [colours[i], *colours[:i], *colours[i + 1 :]]
        main = colours[0]
        if not may_rename(main.lab, main.family, family, sure):
            return colours
        return [self.renamed(main, family), *colours[1:]]

    def as_reviewed(self, colours: list[Colour], families: tuple[str, ...] | list[str], seen=(),
                    gap: float = 20.0) -> list[Colour]:
        """The colours a sighted person gave a garment that looks like this one on the caretaker's page, main first:
        the main colour is the largest cluster of the first family that is a real part of the garment
        (CHOSEN_MIN_SHARE), else the main cluster called by it (the caretaker has looked: a pale pink the camera saw
        as white is pink); the other clusters of a family given follow as they are. A family given with no cluster
        of its own is left out (never painted on another cluster), and so are clusters of families not given that
        the camera saw then too (`seen`: the reviewed photo's colours, CIELAB; within `gap` CIEDE2000 of one of
        them): what the caretaker corrected or heard and marked right is what is said. A cluster the camera did not
        see then (a red yoke on a navy shirt of the same cut) is a part of this garment, said as the closet names
        it. A cluster called by a family that is not a neighbour of its own (may_rename) is said in the family's
        own word ("pink", not the pink word nearest a near-white: "magenta"); a neighbour's nearest word stands
        ("navy blue" for a near-black).

        The caretaker's main colour is said plainly when the closet said it too, or when the camera sees the main
        colour as it did then (own_beside); otherwise the closet's own main colour follows it, "navy blue or black".
        Nothing returned is unsure."""
        if not colours or not families:
            return colours
        first, own = families[0], colours[0]
        i = part_of(colours, first) or 0
        main = self.renamed(colours[i], first, own_word=colours[i].family != first
                            and not may_rename(colours[i].lab, colours[i].family, first))
        beside = own_beside(families, own.family, own.or_family, own.lab, seen)
        if beside is not None and own.name != main.name:
            main = replace(main, or_name=own.name, or_family=beside)

        def said_again(c: Colour) -> bool:
            return c.family in families or (bool(seen) and all(ciede2000(c.lab, s) > gap for s in seen))
        rest = [replace(c, or_name=None, or_family=None, unsure=False)
                for j, c in enumerate(colours) if j != i and said_again(c)]
        return [main, *rest]

    def renamed(self, colour: Colour, family: str, own_word: bool = False) -> Colour:
        """The same cluster called by another family, in the configured words (own_word: the family's own word,
        whatever the words configured)."""
        lab = np.asarray(colour.lab, np.float32)
        said = family if own_word else self.said(lab, family, colour.css3)
        return Colour(said, colour.css3, family, colour.rgb, colour.share, colour.lab)

    def with_exposure(self, colours: list[Colour], garment_l: float | None, around_l: float | None) -> list[Colour]:
        """The main colour called white when it is a bright neutral (CIELAB lightness at least BRIGHT_NEUTRAL_L,
        chroma under NEUTRAL_CHROMA) and the garment's median lightness is no less than that of the photo around
        it, whatever its pixels or the colour head called it (grey, a bluish or a beige tint): the camera made a
        white garment grey. garment_l, around_l: the medians (None when the garment fills the photo, and then
        nothing changes)."""
        if not colours or garment_l is None or around_l is None or garment_l < around_l:
            return colours
        main = colours[0]
        L, a, b = (float(v) for v in main.lab)
        if main.family == "white" or L < BRIGHT_NEUTRAL_L or math.hypot(a, b) >= NEUTRAL_CHROMA:
            return colours
        return [self.renamed(main, "white"), *colours[1:]]

    def with_hedge(self, colours: list[Colour], families: list[tuple[str, float]], least: float) -> list[Colour]:
        """Say two families for the main colour when the colour head gives a neighbouring family of it at least
        `least` probability: "navy blue or black". Its word is in the configured words."""
        if not colours or least > 1:
            return colours
        main = colours[0]
        other = next(((f, p) for f, p in families if f != main.family), None)
        if other is None or other[1] < least or not may_rename(main.lab, main.family, other[0]):
            return colours
        word = self.renamed(main, other[0]).name
        if word == main.name:
            return colours
        hedged = Colour(main.name, main.css3, main.family, main.rgb, main.share, main.lab, word, other[0])
        return [hedged, *colours[1:]]


LEARNED_FLOOR = 0.02
"""Added to the learned decision's probabilities before their log is taken: at weight 1 it moves a family's score
by at most log(1.02 / 0.02), about 3.9, a little more than the garment's pixels all naming it (3). Validation: the
same right colours as no floor (docs/precision.md)."""

CHOSEN_MIN_SHARE = 0.15
"""A cluster smaller than this share of the garment is never made its main colour by the colour head."""


@lru_cache(maxsize=1)
def load_colour_model() -> dict | None:
    """The fitted family model shipped in the package (None if it has not been fitted)."""
    f = resources.files("wardrobe.data").joinpath("colour_model.json")
    return json.loads(f.read_text()) if f.is_file() else None


def spoken_colours(colours: list[Colour], second_min_share: float = 0.2) -> list[Colour]:
    """The colours worth saying: the main one, and a second only if it is a real part of the garment.

    A second colour must cover a fifth of the garment and belong to another family, so the
    shading of one cloth ("navy blue with blue") is not called two colours.
    """
    if not colours:
        return []
    main = colours[0]
    for c in colours[1:]:  # not the hedge's other family either: never "brown or black and black"
        if c.share >= second_min_share and c.family not in (main.family, main.or_family):
            return [main, c]
    return [main]



def ciede2000(lab1, lab2) -> float:
    """CIEDE2000 colour difference of two CIELAB colours (Sharma, Wu and Dalal 2005): about 1 is just
    noticeable, 2-10 a clear difference at a glance, above 20 different colours."""
    L1, a1, b1 = (float(v) for v in lab1)
    L2, a2, b2 = (float(v) for v in lab2)
    c1, c2 = math.hypot(a1, b1), math.hypot(a2, b2)
    c_mean7 = ((c1 + c2) / 2) ** 7
    g = 0.5 * (1 - math.sqrt(c_mean7 / (c_mean7 + 25 ** 7)))
    a1p, a2p = a1 * (1 + g), a2 * (1 + g)
    c1p, c2p = math.hypot(a1p, b1), math.hypot(a2p, b2)
    h1p = math.degrees(math.atan2(b1, a1p)) % 360 if c1p else 0.0
    h2p = math.degrees(math.atan2(b2, a2p)) % 360 if c2p else 0.0
    dL, dC = L2 - L1, c2p - c1p
    dh = 0.0
    if c1p * c2p:
        dh = h2p - h1p
        dh = dh - 360 if dh > 180 else dh + 360 if dh < -180 else dh
    dH = 2 * math.sqrt(c1p * c2p) * math.sin(math.radians(dh / 2))
    L_mean, c_mean = (L1 + L2) / 2, (c1p + c2p) / 2
    if c1p * c2p == 0:
        h_mean = h1p + h2p
    elif abs(h1p - h2p) <= 180:
        h_mean = (h1p + h2p) / 2
    else:
        h_mean = (h1p + h2p + 360) / 2 if h1p + h2p < 360 else (h1p + h2p - 360) / 2
    t = (1 - 0.17 * math.cos(math.radians(h_mean - 30)) + 0.24 * math.cos(math.radians(2 * h_mean))
         + 0.32 * math.cos(math.radians(3 * h_mean + 6)) - 0.20 * math.cos(math.radians(4 * h_mean - 63)))
    sl = 1 + 0.015 * (L_mean - 50) ** 2 / math.sqrt(20 + (L_mean - 50) ** 2)
    sc, sh = 1 + 0.045 * c_mean, 1 + 0.015 * c_mean * t
    c_mean7 = c_mean ** 7
    rt = (-2 * math.sqrt(c_mean7 / (c_mean7 + 25 ** 7))
          * math.sin(math.radians(60 * math.exp(-(((h_mean - 275) / 25) ** 2)))))
    return math.sqrt((dL / sl) ** 2 + (dC / sc) ** 2 + (dH / sh) ** 2 + rt * (dC / sc) * (dH / sh))
