"""White balance: judge colour under a known white, so the room's light does not change the answer.

Two sources of the light's colour, both turned into per-channel gains applied in linear light (von Kries):
- a white reference card fixed in the closet's view: `wardrobe calibrate --white PHOTO` finds it and
  stores where it is; every capture then reads the card's colour under the light of that moment;
- without a card, an estimate from the photo itself (grey-edge), applied only when the cast it finds is
  strong. Measured on held-out photos (docs/see-better.md) it wins 9 to 11 points of main-colour family
  accuracy under a warm bulb but loses 1 to 2 on photos as people took them, so it is not the default:
  "auto" uses the card when one is calibrated and leaves the photo alone otherwise.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wardrobe.errors import ImageError
from wardrobe.files import read_json, write_atomic

CLIPPED = 250
"""Pixel value (0..255) at or above which a channel is clipped: no information about the light."""
MIN_CAST = 0.2
"""The estimate is applied only when the light it finds is this far from neutral (1 - the smallest gain over
the largest; the highest of the thresholds that tied best on validation photos, docs/see-better.md)."""
MAX_GAIN = 4.0
"""Gains are capped: a patch this far from white is not a white card under a normal light."""
CARD_FLAT_MAX = 0.08
"""Largest spread of brightness across the card (standard deviation over mean): a fold, a shadow's edge or a
garment's weave over it is more."""
CARD_BRIGHT_PERCENTILE = 75
"""A white card is at least as bright as this percentile of the photo: in shadow or under a dark garment it is not."""
LIGHT_A_RANGE = (-8.0, 12.0)
"""CIELAB a* a white card can take under a room's light: lights run from bluish to orange (b*), barely along
green-magenta (a*). A pink or green garment over the card lies outside."""


def _to_linear(c: np.ndarray) -> np.ndarray:
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4).astype(np.float32)


_LINEAR = _to_linear(np.arange(256, dtype=np.float32) / 255.0)
"""sRGB byte -> linear light, as a table (a photo is converted by lookup, not by powers)."""


def to_linear(rgb: np.ndarray) -> np.ndarray:
    """sRGB 0..255 to linear light 0..1."""
    rgb = np.asarray(rgb)
    if rgb.dtype == np.uint8:
        return _LINEAR[rgb]
    return _to_linear(rgb.astype(np.float32) / 255.0)


def to_srgb(linear: np.ndarray) -> np.ndarray:
    """Linear light 0..1 to sRGB uint8 (clipped)."""
    c = np.clip(linear, 0.0, 1.0)
    s = np.where(c <= 0.0031308, c * 12.92, 1.055 * np.power(c, 1 / 2.4) - 0.055)
    return np.clip(np.round(s * 255.0), 0, 255).astype(np.uint8)


def apply_gains(rgb: np.ndarray, gains: np.ndarray) -> np.ndarray:
    """Multiply each channel's linear light by its gain (one 256-entry table per channel)."""
    import cv2

    tables = to_srgb(_LINEAR[:, None] * np.asarray(gains, np.float32)[None, :])  # (256, 3)
    return cv2.LUT(np.ascontiguousarray(rgb, np.uint8), tables.reshape(256, 1, 3))


def gains_for(light: np.ndarray) -> np.ndarray:
    """Gains that turn a light of this linear RGB colour neutral: its strongest channel stays, the others are
    raised to it (a coloured light mostly takes away from some channels; it rarely adds)."""
    light = np.maximum(np.asarray(light, np.float64), 1e-6)
    return np.clip(light.max() / light, 1.0, MAX_GAIN)


def cast_strength(gains: np.ndarray) -> float:
    """How far from neutral a set of gains is: 0 for no cast, 0.5 for one channel half as bright."""
    g = np.asarray(gains, np.float64)
    return float(1 - g.min() / g.max())


def grey_world_gains(rgb: np.ndarray) -> np.ndarray:
    """The light's colour estimated as the mean of the unclipped pixels (the world averages to grey)."""
    lin = to_linear(rgb).reshape(-1, 3)
    ok = (np.asarray(rgb).reshape(-1, 3) < CLIPPED).all(axis=1)
    return gains_for(lin[ok].mean(axis=0) if ok.sum() > 100 else lin.mean(axis=0))


def grey_edge_gains(rgb: np.ndarray, p: float = 6.0, sigma: float = 1.0) -> np.ndarray:
    """The light's colour estimated from the edges (van de Weijer, Gevers and Gijsenij 2007, 1st order,
    Minkowski p): colour differences across edges average to grey, so a large uniformly coloured garment
    biases it less than grey-world."""
    import cv2

    from wardrobe.images import fit_long_side

    lin = to_linear(fit_long_side(rgb, 320))
    ok = cv2.erode((lin < to_linear(np.array([CLIPPED]))[0]).all(axis=2).astype(np.uint8), np.ones((3, 3), np.uint8))
    light = []
    for c in range(3):
        ch = cv2.GaussianBlur(lin[..., c], (0, 0), sigma)
        mag = np.hypot(cv2.Sobel(ch, cv2.CV_32F, 1, 0), cv2.Sobel(ch, cv2.CV_32F, 0, 1))[ok > 0]
        light.append(float(np.mean(mag ** p)) ** (1 / p) if mag.size else 1.0)
    return gains_for(np.array(light))


ESTIMATORS = {"grey-world": grey_world_gains, "grey-edge": grey_edge_gains}
ESTIMATOR = "grey-edge"
"""The estimate used without a card (chosen on validation photos, see docs/see-better.md)."""


@dataclass(frozen=True)
class WhiteCard:
    """Where the white reference card is, as fractions of the frame (x, y, width, height)."""

    box: tuple[float, float, float, float]

    def pixels(self, rgb: np.ndarray) -> np.ndarray:
        """The card's pixels in this photo (a margin inside the box, away from its edges)."""
        h, w = rgb.shape[:2]
        x, y, bw, bh = self.box
        x0, x1 = int((x + 0.2 * bw) * w), int(np.ceil((x + 0.8 * bw) * w))
        y0, y1 = int((y + 0.2 * bh) * h), int(np.ceil((y + 0.8 * bh) * h))
        return rgb[y0:max(y1, y0 + 1), x0:max(x1, x0 + 1)].reshape(-1, 3)

    def hide(self, alpha: np.ndarray) -> np.ndarray:
        """The garment mask without the card (its whole box and a pixel around it): a card seen white is never part
        of the garment, though a segmentation that looks for what stands out from the border finds it."""
        h, w = alpha.shape[:2]
        x, y, bw, bh = self.box
        x0, x1 = max(0, int(x * w) - 1), int(np.ceil((x + bw) * w)) + 1
        y0, y1 = max(0, int(y * h) - 1), int(np.ceil((y + bh) * h)) + 1
        out = alpha.copy()
        out[y0:y1, x0:x1] = 0
        return out

    def gains(self, rgb: np.ndarray) -> np.ndarray | None:
        """Gains from the card under the light of this photo; None if the card cannot be trusted (problem())."""
        if self.problem(rgb) is not None:
            return None
        px = self.pixels(rgb)
        return gains_for(to_linear(px[(px < CLIPPED).all(axis=1)]).mean(axis=0))

    def problem(self, rgb: np.ndarray) -> str | None:
        """Why the card's place does not show a white card under a room's light now (None: it does): clipped or
        too dark, not flat (covered by cloth, fallen, half in shadow), darker than most of the photo (in shadow,
        covered) or of a colour no lamp gives white (a pink dress over it)."""
        from wardrobe.images import rgb_to_lab

        px = self.pixels(rgb)
        ok = px[(px < CLIPPED).all(axis=1)]
        if len(ok) < 0.5 * len(px) or len(ok) == 0 or float(ok.mean()) < 30:
            return "clipped or too dark"
        luma = ok.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        if float(luma.std()) > CARD_FLAT_MAX * float(luma.mean()):
            return "not flat"
        photo = np.asarray(rgb, np.float32).reshape(-1, 3)[:: 7] @ np.array([0.299, 0.587, 0.114], np.float32)
        if float(luma.mean()) < float(np.percentile(photo, CARD_BRIGHT_PERCENTILE)):
            return "in shadow or covered"
        a = float(rgb_to_lab(ok.mean(axis=0).round().astype(np.uint8)[None, None])[0, 0, 1])
        if not LIGHT_A_RANGE[0] <= a <= LIGHT_A_RANGE[1]:
            return "not white under this light"
        return None

    def save(self, path: Path) -> None:
        """Write the card's place as JSON (temp file and rename)."""
        write_atomic(path, (json.dumps({"box": list(self.box)}) + "\n").encode())

    @classmethod
    def load(cls, path: Path) -> WhiteCard | None:
        """The stored card, or None when there is none (or the file is damaged)."""
        try:
            box = tuple(float(v) for v in read_json(path)["box"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if len(box) != 4 or not all(0 <= v <= 1 for v in box):
            return None
        return cls(box)  # type: ignore[arg-type]


def find_white_card(rgb: np.ndarray, min_share: float = 0.003, max_share: float = 0.1) -> WhiteCard:
    """Find a white card: a bright, evenly coloured, rectangular patch, by growing regions of nearly one
    colour from the brightest flat pixels and keeping the most card-like.

    Works under a coloured light too: "white" is judged relative to the photo (among its brightest flat
    regions), not by hue. ImageError with a plain reason if nothing fits."""
    import cv2

    from wardrobe.images import fit_long_side

    small = fit_long_side(rgb, 400)
    h, w = small.shape[:2]
    gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32)
    texture = cv2.GaussianBlur(np.abs(cv2.Laplacian(cv2.GaussianBlur(gray, (0, 0), 1), cv2.CV_32F)), (0, 0), 2)
    seeds = (gray >= max(np.percentile(gray, 80), 90)) & (texture < 3.0) & (small < CLIPPED).all(axis=2)
    tried = np.zeros((h, w), bool)
    best, best_score = None, 0.0
    order = np.argsort(-gray[seeds])
    ys, xs = np.nonzero(seeds)
    for k in order[:400]:
        y, x = int(ys[k]), int(xs[k])
        if tried[y, x]:
            continue
        mask = np.zeros((h + 2, w + 2), np.uint8)
        cv2.floodFill(small, mask, (x, y), 0, (6, 6, 6), (6, 6, 6),
                      4 | cv2.FLOODFILL_FIXED_RANGE | cv2.FLOODFILL_MASK_ONLY | (1 << 8))
        region = mask[1:-1, 1:-1] > 0
        tried |= region
        area = int(region.sum())
        if not (min_share * h * w <= area <= max_share * h * w):
            continue
        rows, cols = np.nonzero(region.any(axis=1))[0], np.nonzero(region.any(axis=0))[0]
        bh, bw = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
        fill = area / float(bh * bw)
        if fill < 0.85 or not 1 / 3 <= bw / bh <= 3:
            continue
        score = area * fill * float(gray[region].mean())
        if score > best_score:
            best, best_score = (cols[0] / w, rows[0] / h, bw / w, bh / h), score
    if best is None:
        raise ImageError("no white card found: fix a plain white card (at least 3 x 3 cm) where the camera sees it, "
                         "light the closet, and try again")
    card = WhiteCard(tuple(float(v) for v in best))  # type: ignore[arg-type]
    problem = card.problem(small)
    if problem is not None:
        raise ImageError(f"the white card looks {problem} in this photo: move the light or the card")
    return card


@dataclass(frozen=True)
class WhiteBalance:
    """The correction the pipeline applies to each photo before judging colours."""

    mode: str = "off"
    """"off"; "card" (the calibrated white card); "estimate" (the photo's own estimate when the cast it finds
    is strong); "auto" (the card if one is calibrated, else nothing)."""
    card: WhiteCard | None = None
    min_cast: float = MIN_CAST
    estimator: str = ESTIMATOR

    def gains(self, rgb: np.ndarray) -> tuple[np.ndarray | None, str]:
        """Gains for this photo (None: leave it as it is) and where they came from."""
        if self.mode == "off":
            return None, "off"
        if self.mode in ("card", "auto") and self.card is not None:
            g = self.card.gains(rgb)
            if g is not None:
                return g, "card"
            return None, "card unusable"  # covered, fallen or in shadow: no correction beats a wrong one
        if self.mode == "estimate":
            g = ESTIMATORS[self.estimator](rgb)
            if cast_strength(g) >= self.min_cast:
                return g, self.estimator
            return None, "none needed"
        return None, "no card"

    def correct(self, rgb: np.ndarray) -> tuple[np.ndarray, str]:
        """The photo under a neutral light, and how it was corrected."""
        g, how = self.gains(rgb)
        return (rgb if g is None else apply_gains(rgb, g)), how
