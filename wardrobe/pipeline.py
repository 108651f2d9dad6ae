"""Photo in, frozen Description out: segment -> classify + colours -> phrase. Touches no hardware."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from wardrobe import phrase, quality
from wardrobe.colours import Colour, ColourNamer, dominant_colours, garment_weights
from wardrobe.errors import ImageError, ModelError
from wardrobe.segment import segment

log = logging.getLogger(__name__)

UPPER = {"T-shirt", "shirt", "top", "long-sleeved top", "polo shirt", "hoodie", "blouse", "coat or jacket",
         "blazer", "undershirt", "waistcoat", "bra", "bodysuit"}
LOWER = {"trousers", "shorts", "skirt", "leggings", "tights", "underwear"}


def region_of(garment: str | None) -> str:
    """Where a garment class sits on a worn figure: 'upper', 'lower' or 'whole'."""
    if garment in UPPER:
        return "upper"
    if garment in LOWER:
        return "lower"
    return "whole"


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

    def to_json(self) -> dict:
        """The describe --json object."""
        return {
            "image": self.image,
            "garment": self.garment,
            "garment_confidence": None if self.garment_confidence is None else round(self.garment_confidence, 4),
            "alternatives": [{"garment": a.garment, "confidence": round(a.confidence, 4)} for a in self.alternatives[1:]],
            "colours": [c.to_json() for c in self.colours],
            "sentence": self.sentence,
            "problems": self.problems,
            "occasion": self.occasion,
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
        }

    def detailed(self) -> str:
        """The long-press version: second colour, alternatives, confidence, a confident occasion."""
        return phrase.sentence(self.alternatives, self.colours, self.problems, detail=True, occasion=self.occasion)


FILLS_FRAME_MIN = 0.5
"""Classifier confidence above which an empty mask means the garment fills the frame, not that none is there."""
COLOUR_SIDE = 200
"""Colours are sampled from a copy at most this large: area averaging keeps the colours, and it is 10x cheaper."""
WORK_SIDE = 640
"""Photos are described at most this large (pixels, long side): enough for colour, cheap on a Pi."""


def shrink(rgb: np.ndarray, side: int) -> np.ndarray:
    """Downscale so the long side is at most side pixels (area filter); smaller photos pass through."""
    import cv2

    h, w = rgb.shape[:2]
    if max(h, w) <= side:
        return rgb
    s = side / max(h, w)
    return cv2.resize(rgb, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)


def read_image(path: Path | str, max_side: int = 1024) -> np.ndarray:
    """Decode a photo file to RGB uint8, shrunk to max_side; ImageError if it cannot be read."""
    import cv2

    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: no such file")
    data = np.fromfile(str(path), np.uint8)
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if bgr is None:
        raise ImageError(f"{path}: not a readable image (corrupt or not a photo)")
    return shrink(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), max_side)


class Pipeline:
    """Holds the loaded parts (classifier, colour namer, background plate) and describes photos."""

    def __init__(self, classifier=None, namer: ColourNamer | None = None, method: str = "auto",
                 plate: np.ndarray | None = None, k: int | None = 3, model_problem: str | None = None,
                 family_hint_min: float = 0.5) -> None:
        self.classifier = classifier
        self.namer = namer or ColourNamer()
        self.method, self.plate, self.k = method, plate, k
        self.family_hint_min = family_hint_min
        """The colour head's probability above which its family overrides the cluster's."""
        self.model_problem = model_problem
        """Why no classifier is loaded (logged once; the sentence says the garment is unknown)."""

    def describe(self, rgb: np.ndarray, image: str = "") -> Description:
        """Describe one RGB photo."""
        t: dict[str, float] = {}
        t0 = time.perf_counter()
        rgb = shrink(rgb, WORK_SIDE)
        t["resize"] = (time.perf_counter() - t0) * 1000
        t0 = time.perf_counter()
        alpha = segment(rgb, self.method, self.plate)
        t["segment"] = (time.perf_counter() - t0) * 1000
        problems = quality.problems(rgb, alpha)
        alternatives: list[phrase.Alternative] = []
        family_hint: tuple[str, float] | None = None
        occasion: str | None = None
        t0 = time.perf_counter()
        if self.classifier is not None:
            try:
                pred = self.classifier.predict(rgb)
                alternatives = [phrase.Alternative(g, p) for g, p in pred.ranked]
                family_hint = pred.colour_families[0] if pred.colour_families else None
                occasion = pred.occasions[0][0] if pred.occasions else None
            except ModelError as e:
                log.error("classifier failed: %s", e)
                problems.append("no-model")
        else:
            problems.append("no-model")
        t["classify"] = (time.perf_counter() - t0) * 1000
        if ("no-garment" in problems and alternatives and alternatives[0].confidence >= FILLS_FRAME_MIN
                and quality.structure(rgb) >= quality.STRUCTURE_MIN):
            # Nothing stands out from the border, yet the model sees a garment and the photo has
            # folds and seams (a bare wall has none): the garment fills the frame.
            problems.remove("no-garment")
            alpha = np.full(alpha.shape, 255, np.uint8)
        t0 = time.perf_counter()
        colours: list[Colour] = []
        if "too-dark" not in problems and "no-garment" not in problems:
            colours = self.colours(rgb, alpha, alternatives[0].garment if alternatives else None, family_hint)
        t["colour"] = (time.perf_counter() - t0) * 1000
        if alternatives and alternatives[0].confidence < phrase.PROBABLY:
            problems.append("low-confidence")
        t0 = time.perf_counter()
        clauses = phrase.clauses_for(alternatives, colours, problems)
        t["phrase"] = (time.perf_counter() - t0) * 1000
        top = alternatives[0] if alternatives else None
        return Description(image=image, garment=top.garment if top else None,
                           garment_confidence=top.confidence if top else None, alternatives=alternatives,
                           colours=colours, sentence=" ".join(clauses), clauses=clauses, problems=problems,
                           timings_ms=t, occasion=occasion)

    def colours(self, rgb: np.ndarray, alpha: np.ndarray, garment: str | None = None,
                family_hint: tuple[str, float] | None = None) -> list[Colour]:
        """Named dominant colours of the garment, main colour first."""
        import cv2

        small = shrink(rgb, COLOUR_SIDE)
        if small.shape != rgb.shape:
            alpha = cv2.resize(alpha, (small.shape[1], small.shape[0]), interpolation=cv2.INTER_AREA)
        weights = garment_weights(small, alpha, region=region_of(garment))
        colours = [self.namer.name(c) for c in dominant_colours(small, weights, k=self.k)]
        if family_hint and family_hint[1] >= self.family_hint_min:
            colours = self.namer.with_family_hint(colours, family_hint[0])
        return colours

    def describe_file(self, path: Path | str) -> Description:
        """Read a photo file and describe it."""
        t0 = time.perf_counter()
        rgb = read_image(path)
        load_ms = (time.perf_counter() - t0) * 1000
        d = self.describe(rgb, str(path))
        d.timings_ms["load"] = load_ms
        return d


def load_classifier(path: Path | None, runtime: str | None = None):
    """The classifier, or (None, reason) when the bundle is missing or broken; never raises."""
    from wardrobe.classify import Classifier

    if path is None:
        return None, "no model bundle is configured"
    try:
        return Classifier.load(path, runtime), None
    except ModelError as e:
        return None, str(e)
