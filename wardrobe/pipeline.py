"""Photo in, frozen Description out: segment -> classify + colours -> phrase. Touches no hardware."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from wardrobe import phrase, quality
from wardrobe.colours import Colour, ColourNamer, dominant_colours, garment_weights
from wardrobe.errors import ModelError
from wardrobe.images import read_image, shrink
from wardrobe.lang import Language, english
from wardrobe.reviews import EXAMPLE_COLOUR_GAP
from wardrobe.segment import segment
from wardrobe.settings import VisionSettings
from wardrobe.taxonomy import region_of
from wardrobe.whitebalance import WhiteBalance

if TYPE_CHECKING:
    from wardrobe.closet import Closet, Match

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class Description:
    """What the appliance knows about one photo."""

    image: str
    garment: str | None
    garment_confidence: float | None
    alternatives: list[phrase.Alternative]
    colours: list[Colour]
    sentence: str
    clauses: list[str]
    problems: list[str]
    timings_ms: dict[str, float] = field(default_factory=dict)
    occasion: str | None = None
    """The model's confident occasion ("usage:formal"), said on a long press; None when unsure or no head."""
    white_balance: str = "off"
    """How the photo's light was corrected: "off", "card", "grey-edge", "none needed", "card unusable"."""
    pattern: str | None = None
    """The garment's pattern when the model is sure of it ("striped", "solid", ...); None otherwise."""
    embedding: np.ndarray | None = field(default=None, repr=False, compare=False)
    """The model's embedding of the photo (for the user's own clothes); not in the JSON."""
    enrolled: Match | None = None
    """The user's own enrolled garment this photo shows, or None."""
    colour_families: list[tuple[str, float]] = field(default_factory=list, repr=False, compare=False)
    """The classifier's colour head, most likely family first (empty without one); not in the JSON."""
    lang: Language = field(default_factory=english, repr=False, compare=False)
    """The language the sentence is in (the JSON's codes stay English)."""
    example: object | None = None
    """The caretaker's reviewed photo this one is very close to (wardrobe.reviews.Example), which named it;
    or None."""
    example_colours: bool = False
    """Whether the colours said are the ones the caretaker gave that photo (it looked the same)."""
    camera_colours: list[Colour] | None = field(default=None, repr=False, compare=False)
    """The colours as the camera saw them, before a reviewed photo's words (None: the same as `colours`)."""

    @property
    def as_seen(self) -> list[Colour]:
        """The colours as the camera saw them: what the user's enrolled garments are matched with and enrolled
        from, what a double press compares, and what a review of this answer keeps (the JSON's example.seen)."""
        return self.colours if self.camera_colours is None else self.camera_colours

    def example_json(self) -> dict | None:
        """The reviewed photo that named this one: its garment and similarity, and when its colours were said, the
        families said and the camera's own colours (`seen`, sRGB, main first: what a review of this answer keeps,
        wardrobe.history.seen_colours)."""
        if self.example is None:
            return None
        out = {"garment": self.example.garment, "similarity": round(self.example.similarity, 4), "colours": None}
        if self.example_colours:
            out["colours"] = list(dict.fromkeys(c.family for c in self.colours))
            out["seen"] = [list(c.rgb) for c in self.as_seen]
        return out

    def to_json(self) -> dict:
        """The describe --json object."""
        return {
            "image": self.image,
            "garment": self.garment,
            "garment_confidence": None if self.garment_confidence is None else round(self.garment_confidence, 4),
            "alternatives": [{"garment": a.garment, "confidence": round(a.confidence, 4)} for a in self.alternatives[1:]],
            "colours": [c.to_json() for c in self.colours],
            "sentence": self.sentence,
            "language": self.lang.code,
            "problems": self.problems,
            "occasion": self.occasion,
            "white_balance": self.white_balance,
            "pattern": self.pattern,
            "enrolled": self.enrolled.to_json() if self.enrolled else None,
            "example": self.example_json(),
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
        }

    def detailed(self) -> str:
        """The long-press version: second colour, alternatives, confidence, a confident occasion."""
        return phrase.sentence(self.alternatives, self.colours, self.problems, detail=True, occasion=self.occasion,
                               pattern=self.pattern, lang=self.lang)


def with_example(alternatives: list[phrase.Alternative], garment: str) -> list[phrase.Alternative]:
    """The reviewed garment first, said plainly (at least phrase.SURE), the model's others after it."""
    mine = next((a.confidence for a in alternatives if a.garment == garment), 0.0)
    return [phrase.Alternative(garment, max(mine, phrase.SURE)), *(a for a in alternatives if a.garment != garment)]


NO_GARMENT_MIN = 0.5
"""Probability of the model's background class at or above which the photo holds no garment."""
FILLS_FRAME_MIN = 0.5
"""Classifier confidence above which an empty mask means the garment fills the frame, not that none is there."""
COLOUR_SIDE = 200
"""Colours are sampled from a copy at most this large: area averaging keeps the colours, and it is 10x cheaper."""
WORK_SIDE = 640
"""Photos are described at most this large (pixels, long side): enough for colour, cheap on a Pi."""


def on_white(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The garment cut out along its mask onto white, cropped to it (the photo itself when the mask is too small to be a garment)."""
    fg = alpha > 127
    if fg.mean() < quality.MIN_GARMENT_SHARE:
        return rgb
    rows, cols = np.flatnonzero(fg.any(axis=1)), np.flatnonzero(fg.any(axis=0))
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    out = rgb[box].copy()
    out[~fg[box]] = 255
    return out


def garment_views(rgb: np.ndarray, white, method: str = "auto", plate: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """The two views the network is shown of a photo, as describe makes them: the photo at work size after the
    white balance, and the garment cut out on white (the photo again when no garment stands out)."""
    small, _ = white.correct(shrink(rgb, WORK_SIDE))
    return small, on_white(small, segment(small, method, plate))


AROUND_MIN = 0.05
"""Least share of the photo outside the garment for its lightness to be compared with the garment's."""


def lightness_inside_and_around(rgb: np.ndarray, alpha: np.ndarray) -> tuple[float | None, float | None]:
    """Median CIELAB lightness of the garment (alpha > 127) and of the rest of the photo; (None, None) when either
    is under AROUND_MIN of the photo."""
    import cv2

    inside = alpha > 127
    if not AROUND_MIN <= inside.mean() <= 1 - AROUND_MIN:
        return None, None
    L = cv2.cvtColor(np.ascontiguousarray(rgb, np.uint8), cv2.COLOR_RGB2LAB)[..., 0]  # 8-bit: L × 255 / 100
    return float(np.median(L[inside])) * 100 / 255, float(np.median(L[~inside])) * 100 / 255


class Pipeline:
    """Holds the loaded parts (classifier, colour namer, background plate) and describes photos."""

    def __init__(self, classifier=None, vision: VisionSettings | None = None, *, namer: ColourNamer | None = None,
                 plate: np.ndarray | None = None, white: WhiteBalance | None = None, closet: Closet | None = None,
                 lang: Language | None = None, model_problem: str | None = None) -> None:
        self.classifier = classifier
        self.vision = vision = vision or VisionSettings()
        """How photos are segmented and their colours decided: the settings' [vision], whose defaults are what a
        closet runs (a measure that builds a Pipeline scores what the user hears unless it says otherwise)."""
        self.lang = lang or english()
        """The language sentences are said in."""
        self.examples = None
        """Photos the caretaker reviewed on the page (wardrobe.reviews.Examples): a photo very close to one is
        that garment. None: no reviews."""
        self.white = white or WhiteBalance(vision.white_balance)
        """How each photo's light is corrected before anything else looks at it."""
        self.closet = closet
        """The user's enrolled garments, matched first (None: no enrolled closet)."""
        self.namer = namer or ColourNamer(vision.colour_naming, words=vision.colour_names)
        if plate is not None and self.white.card is not None and self.white.mode in ("card", "auto"):
            # Each photo is corrected by the card under its light before segmenting; the empty closet must be
            # seen the same way, or the plate differs from every corrected photo everywhere (all is garment).
            plate, _ = self.white.correct(plate)
        self.method, self.plate, self.k = vision.segmentation, plate, vision.colour_k or None
        self.colour_view = ("cutout" if self.method == "plate" else "photo") if vision.colour_view == "auto" \
            else vision.colour_view
        """Which view the colour head's families are read from: "photo" (the whole photo) or "cutout" (the
        garment alone on white, as the shop's photos it learnt from show garments: better in a calibrated
        closet, worse on photos as people take them)."""
        self.keep_colour_features = False
        """Keep each photo's learned-decision inputs in last_colour_features (the training script sets it)."""
        self.last_colour_features: np.ndarray | None = None
        self.model_problem = model_problem
        """Why no classifier is loaded (logged once; the sentence says the garment is unknown)."""

    @property
    def model_version(self) -> str | None:
        """The loaded model bundle's version (None: no classifier)."""
        return self.classifier.bundle.version if self.classifier is not None else None

    @property
    def runtime(self) -> str | None:
        """The classifier's runtime ("onnx", "torch"; None: no classifier)."""
        return self.classifier.runtime if self.classifier is not None else None

    def classify(self, rgb: np.ndarray):
        """The classifier's prediction for a photo (None without a classifier)."""
        return self.classifier.predict(rgb) if self.classifier is not None else None

    def keep_model_of(self, other: Pipeline) -> None:
        """Use another pipeline's classifier (a reload whose new model failed keeps the old one)."""
        self.classifier, self.model_problem = other.classifier, other.model_problem

    def garment_mask(self, rgb: np.ndarray, t: dict[str, float] | None = None) -> tuple[np.ndarray, np.ndarray, str]:
        """The photo at the working size under a neutral light, its garment mask (alpha, 0..255), and how the light
        was corrected; the steps' times into t. describe() and the helper's mask picture (--debug-dir) use this."""
        t = {} if t is None else t
        t0 = time.perf_counter()
        rgb = shrink(rgb, WORK_SIDE)
        t["resize"] = (time.perf_counter() - t0) * 1000
        t0 = time.perf_counter()
        rgb, white = self.white.correct(rgb)
        t["white_balance"] = (time.perf_counter() - t0) * 1000
        t0 = time.perf_counter()
        alpha = segment(rgb, self.method, self.plate)
        if white == "card":  # the card was seen white where it hangs: it is not the garment
            alpha = self.white.card.hide(alpha)
        t["segment"] = (time.perf_counter() - t0) * 1000
        return rgb, alpha, white

    def describe(self, rgb: np.ndarray, image: str = "") -> Description:
        """Describe one RGB photo: the mask, the garment, its colours, the caretaker's reviews, the user's own
        garments, then the sentence."""
        self.last_colour_features = None  # a photo whose colours are not read leaves none behind
        t: dict[str, float] = {}
        rgb, alpha, white = self.garment_mask(rgb, t)
        problems = quality.problems(rgb, alpha)
        t0 = time.perf_counter()
        pred, pattern_pred, alternatives = self.garments(rgb, alpha, problems)
        t["classify"] = (time.perf_counter() - t0) * 1000
        if ("no-garment" in problems and alternatives and alternatives[0].confidence >= FILLS_FRAME_MIN
                and quality.structure(rgb) >= quality.STRUCTURE_MIN):
            # Nothing stands out from the border, yet the model sees a garment and the photo has
            # folds and seams (a bare wall has none): the garment fills the frame.
            problems.remove("no-garment")
            alpha = np.full(alpha.shape, 255, np.uint8)
            pattern_pred = pred  # the cut-out is now the whole photo
        families: list[tuple[str, float]] = []
        if pred is not None:
            view = pattern_pred if self.colour_view == "cutout" and pattern_pred is not None else pred
            families = view.colour_families
        t0 = time.perf_counter()
        colours: list[Colour] = []
        if "too-dark" not in problems and "no-garment" not in problems:
            views = (pred.colour_families, pattern_pred.colour_families if pattern_pred is not None else None
                     ) if pred is not None else None
            colours = self.colours(rgb, alpha, alternatives[0].garment if alternatives else None, families, views)
        t["colour"] = (time.perf_counter() - t0) * 1000
        embedding = pred.embedding if pred is not None else None
        camera_colours = colours
        alternatives, colours, example, reviewed = self.reviewed(alternatives, colours, embedding)
        if alternatives and alternatives[0].confidence < phrase.PROBABLY:
            problems.append("low-confidence")
        occasion = pred.occasions[0][0] if alternatives and pred is not None and pred.occasions else None
        if any(p in problems for p in phrase.BLOCKING):
            alternatives = []  # the sentence names no garment, so neither does the JSON
        elif self.vision.aiming:
            problems += quality.aiming(alpha, rgb)
        pattern = pattern_pred.pattern if alternatives and pattern_pred is not None else None
        enrolled = None
        if self.closet is not None and not any(p in problems for p in phrase.BLOCKING):
            t0 = time.perf_counter()
            enrolled = self.closet.match(embedding, camera_colours)
            t["enrolled"] = (time.perf_counter() - t0) * 1000
        t0 = time.perf_counter()
        clauses = self.sentence(alternatives, colours, problems, pattern, enrolled)
        t["phrase"] = (time.perf_counter() - t0) * 1000
        top = alternatives[0] if alternatives else None
        return Description(image=image, garment=top.garment if top else None,
                           garment_confidence=top.confidence if top else None, alternatives=alternatives,
                           colours=colours, sentence=" ".join(clauses), clauses=clauses, problems=problems,
                           timings_ms=t, occasion=occasion, white_balance=white, pattern=pattern,
                           embedding=embedding, enrolled=enrolled, colour_families=families, lang=self.lang,
                           example=example, example_colours=bool(reviewed), camera_colours=camera_colours)

    def garments(self, rgb: np.ndarray, alpha: np.ndarray, problems: list[str]):
        """The classifier's predictions on the photo and on the cut-out (classify_with_cutout; None, None without a
        working model) and the garments ranked; "no-model" or "no-garment" added to problems when so."""
        if self.classifier is None:
            problems.append("no-model")
            return None, None, []
        try:
            pred, pattern_pred = self.classify_with_cutout(rgb, alpha)
        except ModelError as e:
            log.error("classifier failed: %s", e)
            problems.append("no-model")
            return None, None, []
        alternatives = [phrase.Alternative(g, p) for g, p in pred.ranked]
        if pred.background >= NO_GARMENT_MIN:
            alternatives = []  # the model sees no garment: say so rather than guess one
            if "no-garment" not in problems:
                problems.append("no-garment")
        return pred, pattern_pred, alternatives

    def reviewed(self, alternatives: list[phrase.Alternative], colours: list[Colour], embedding):
        """What the caretaker said on the page about this very garment, when the photo is very close to one they
        reviewed: (alternatives with its garment first, colours as reviewed when it looks as it did then, the
        example or None, the reviewed colours or None)."""
        if self.examples is None or not alternatives or embedding is None:
            return alternatives, colours, None, None
        example = self.examples.nearest(embedding)
        if example is None:
            return alternatives, colours, None, None
        reviewed = example.colours_for([c.lab for c in colours])
        if reviewed:
            colours = self.namer.as_reviewed(colours, reviewed, example.seen, EXAMPLE_COLOUR_GAP)
        return with_example(alternatives, example.garment), colours, example, reviewed

    def sentence(self, alternatives: list[phrase.Alternative], colours: list[Colour], problems: list[str],
                 pattern: str | None, enrolled) -> list[str]:
        """The clauses said: the user's own garment by its name first (the long press gives the rest), else the
        garment, its colours and pattern with the hedges; "colour-unsure" added to problems when the colour is
        doubted (for the caretaker's queue and the JSON)."""
        if enrolled is not None:
            return [*phrase.aiming_clauses(problems, self.lang),
                    phrase.yours(enrolled.garment.name, alternatives[0].garment if alternatives else None, self.lang)]
        clauses = phrase.clauses_for(alternatives, colours, problems, pattern=pattern, lang=self.lang)
        if phrase.colour_doubted(colours, problems):
            problems.append("colour-unsure")
        return clauses

    def classify_with_cutout(self, rgb: np.ndarray, alpha: np.ndarray):
        """The classifier's prediction for the photo, and the prediction its pattern is read from: the garment
        alone on a white ground, as the shop's photos the pattern head learnt from show it (a patterned carpet
        behind plain trousers is not their pattern). The photo's garments are read from both views when the
        bundle says so (cutout_weight: the cut-out hides the bed and the floor). Both photos go through the
        network in one run, which costs less than two; when the cut-out is the whole photo, or nothing needs
        it, one photo goes."""
        bundle = self.classifier.bundle
        cutout = bool(bundle.patterns) or self.colour_view == "cutout" or bundle.cutout_weight > 0
        cut = on_white(rgb, alpha) if cutout else rgb
        if cut is rgb:
            pred = self.classifier.predict(rgb)
            return pred, (pred if cutout else None)
        if bundle.cutout_weight > 0:
            return self.classifier.predict_with_cutout(rgb, cut)
        pred, cut_pred = self.classifier.predict_many([rgb, cut])
        return pred, cut_pred

    def pattern(self, rgb: np.ndarray, alpha: np.ndarray) -> tuple[str | None, np.ndarray | None]:
        """The garment's pattern (None when unsure) and the pattern probabilities, judged on the cut-out
        garment (classify_with_cutout)."""
        pred = self.classifier.predict(on_white(rgb, alpha))
        return pred.pattern, pred.pattern_probs

    def colours(self, rgb: np.ndarray, alpha: np.ndarray, garment: str | None = None,
                families: list[tuple[str, float]] | None = None,
                views: tuple[list[tuple[str, float]], list[tuple[str, float]] | None] | None = None) -> list[Colour]:
        """Named dominant colours of the garment, main colour first; the colour head's families (most likely
        first) and, when the bundle has one, its learned decision may choose or rename the main one within what
        its pixels allow, or add a close neighbour; a bright neutral main colour no darker than the photo around
        the garment is white (ColourNamer.with_exposure). views: the head's families on the photo and on the
        garment cut out on white (the learned decision's inputs; None: `families` for both)."""
        import cv2

        small = shrink(rgb, COLOUR_SIDE)
        if small.shape != rgb.shape:
            alpha = cv2.resize(alpha, (small.shape[1], small.shape[0]), interpolation=cv2.INTER_AREA)
        weights = garment_weights(small, alpha, region=region_of(garment))
        colours = [self.namer.name(c) for c in dominant_colours(small, weights, k=self.k)]
        self.last_colour_features = None
        learned = None
        if families and colours:
            decision = self.classifier.bundle.colour_decision if self.classifier is not None else None
            if (decision is not None and self.vision.colour_learned_weight > 0) or self.keep_colour_features:
                from wardrobe.colour_inputs import features

                photo, cut = views or (families, None)
                x = features(small, alpha, weights, colours, photo, cut)
                self.last_colour_features = x if self.keep_colour_features else None
                learned = decision.probabilities(x) if decision is not None else None
        return self.decided_colours(colours, families, learned, lightness_inside_and_around(small, alpha))

    def decided_colours(self, colours: list[Colour], families: list[tuple[str, float]] | None,
                        learned: list[tuple[str, float]] | None,
                        lightness: tuple[float | None, float | None]) -> list[Colour]:
        """The named clusters (largest first) as the user hears them: the main colour's family decided by the colour
        head, the pixels and the learned decision (None: none), a cluster chosen or renamed within what its pixels
        allow, a bright neutral made white (lightness: the garment's and its surroundings', as
        lightness_inside_and_around gives them), a close neighbour said beside it, and the main colour called unsure
        when the learned decision gives its family little chance."""
        if families and colours:
            family, p = self.namer.decided_family(colours, families, self.vision.colour_pixel_weight, learned,
                                                  self.vision.colour_learned_weight)
            if p >= self.vision.family_hint_min:
                colours = self.namer.with_family_hint(colours, family, sure=p >= self.vision.colour_head_sure)
        colours = self.namer.with_exposure(colours, *lightness)
        colours = self.namer.with_hedge(colours, families or [], self.vision.colour_hedge_min)
        if (learned and colours and not colours[0].or_family
                and dict(learned).get(colours[0].family, 0.0) < self.vision.colour_unsure_below):
            colours = [replace(colours[0], unsure=True), *colours[1:]]
        return colours

    def describe_file(self, path: Path | str) -> Description:
        """Read a photo file and describe it."""
        t0 = time.perf_counter()
        rgb = read_image(path)
        load_ms = (time.perf_counter() - t0) * 1000
        d = self.describe(rgb, str(path))
        return replace(d, timings_ms={**d.timings_ms, "load": load_ms})

