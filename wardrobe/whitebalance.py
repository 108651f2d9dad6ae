"""White balance: judge colour under a known white, so the room's light does not change the answer.

Two sources of the light's colour, both turned into per-channel gains applied in linear light (von Kries):
- a white reference card fixed in the closet's view: `wardrobe calibrate --white PHOTO` finds it and
  stores where it is; every capture then reads the card's colour under the light of that moment;
- without a card, an estimate from the photo itself (grey-world over the whole frame), applied only
  when the cast it finds is strong (a cast weaker than that is left alone: measured, it does more harm
  than good there).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wardrobe.errors import ImageError

CLIPPED = 250
"""Pixel value (0..255) at or above which a channel is clipped: no information about the light."""
GREY_WORLD_MIN_CAST = 0.12
"""Grey-world is applied only when the light it estimates is this far from neutral (largest relative
channel difference; chosen on validation photos, see docs/see-better.md)."""
MAX_GAIN = 4.0
"""Gains are capped: a patch this far from white is not a white card under a normal light."""


def to_linear(rgb: np.ndarray) -> np.ndarray:
    """sRGB 0..255 to linear light 0..1."""
    c = np.asarray(rgb, np.float32) / 255.0
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def to_srgb(linear: np.ndarray) -> np.ndarray:
    """Linear light 0..1 to sRGB uint8 (clipped)."""
    c = np.clip(linear, 0.0, 1.0)
    s = np.where(c <= 0.0031308, c * 12.92, 1.055 * np.power(c, 1 / 2.4) - 0.055)
    return np.clip(np.round(s * 255.0), 0, 255).astype(np.uint8)


def apply_gains(rgb: np.ndarray, gains: np.ndarray) -> np.ndarray:
    """Multiply each channel's linear light by its gain."""
    return to_srgb(to_linear(rgb) * np.asarray(gains, np.float32).reshape(1, 1, 3))


def gains_for(light: np.ndarray) -> np.ndarray:
    """Gains that turn a light of this linear RGB colour into neutral of the same brightness."""
    light = np.maximum(np.asarray(light, np.float64), 1e-6)
    gains = light.mean() / light
    return np.clip(gains, 1 / MAX_GAIN, MAX_GAIN)


def cast_strength(gains: np.ndarray) -> float:
    """How far from neutral a set of gains is: 0 for no cast, 0.5 for one channel half as bright."""
    g = np.asarray(gains, np.float64)
    return float(1 - g.min() / g.max())


def grey_world_gains(rgb: np.ndarray) -> np.ndarray:
    """The light's colour estimated as the mean of the unclipped pixels (the world averages to grey)."""
    lin = to_linear(rgb).reshape(-1, 3)
    ok = (np.asarray(rgb).reshape(-1, 3) < CLIPPED).all(axis=1)
    return gains_for(lin[ok].mean(axis=0) if ok.sum() > 100 else lin.mean(axis=0))


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

    def gains(self, rgb: np.ndarray) -> np.ndarray | None:
        """Gains from the card under the light of this photo; None if the card is clipped or too dark."""
        px = self.pixels(rgb)
        ok = px[(px < CLIPPED).all(axis=1)]
        if len(ok) < 0.5 * len(px) or len(ok) == 0 or float(ok.mean()) < 30:
            return None
        return gains_for(to_linear(ok).mean(axis=0))

    def mask(self, shape: tuple[int, ...]) -> np.ndarray:
        """The whole card as a boolean mask (to keep it out of the garment)."""
        h, w = shape[:2]
        x, y, bw, bh = self.box
        m = np.zeros((h, w), bool)
        m[int(y * h):int(np.ceil((y + bh) * h)), int(x * w):int(np.ceil((x + bw) * w))] = True
        return m

    def save(self, path: Path) -> None:
        """Write the card's place as JSON (temp file and rename)."""
        tmp = path.with_name(f".{path.name}.tmp")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps({"box": list(self.box)}) + "\n")
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> WhiteCard | None:
        """The stored card, or None when there is none (or the file is damaged)."""
        try:
            box = tuple(float(v) for v in json.loads(Path(path).read_text())["box"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if len(box) != 4 or not all(0 <= v <= 1 for v in box):
            return None
        return cls(box)  # type: ignore[arg-type]


def find_white_card(rgb: np.ndarray, min_share: float = 0.003) -> WhiteCard:
    """Find a white card: a bright, flat, low-texture, near-rectangular patch, not touching the clipped limit.

    Works under a coloured light too: "white" is judged relative to the photo (the brightest flat region),
    not by its hue. ImageError with a plain reason if nothing fits."""
    import cv2

    from wardrobe.images import fit_long_side

    small = fit_long_side(rgb, 400)
    h, w = small.shape[:2]
    gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32)
    texture = cv2.GaussianBlur(np.abs(cv2.Laplacian(cv2.GaussianBlur(gray, (0, 0), 1), cv2.CV_32F)), (0, 0), 2)
    bright = gray >= max(np.percentile(gray, 85), 90)
    flat = texture < 4.0
    candidates = (bright & flat).astype(np.uint8)
    candidates = cv2.morphologyEx(candidates, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(candidates)
    best, best_score = None, 0.0
    for i in range(1, n):
        x, y, bw, bh, area = stats[i]
        if area < min_share * h * w or area > 0.25 * h * w:
            continue
        fill = area / float(bw * bh)
        if fill < 0.7:
            continue
        score = area * fill * float(gray[labels == i].mean())
        if score > best_score:
            best, best_score = (x / w, y / h, bw / w, bh / h), score
    if best is None:
        raise ImageError("no white card found: fix a plain white card (at least 3 x 3 cm) where the camera sees it, "
                         "light the closet, and try again")
    card = WhiteCard(best)
    if card.gains(fit_long_side(rgb, 400)) is None:
        raise ImageError("the white card is overexposed or too dark in this photo: move the light or the card")
    return card


@dataclass(frozen=True)
class WhiteBalance:
    """The correction the pipeline applies to each photo before judging colours."""

    mode: str = "off"
    """"off", "card" (the calibrated white card), "grey-world" (always), "auto" (card if calibrated, else
    grey-world when the cast is strong)."""
    card: WhiteCard | None = None
    min_cast: float = GREY_WORLD_MIN_CAST

    def gains(self, rgb: np.ndarray) -> tuple[np.ndarray | None, str]:
        """Gains for this photo (None: leave it as it is) and where they came from."""
        if self.mode == "off":
            return None, "off"
        if self.mode in ("card", "auto") and self.card is not None:
            g = self.card.gains(rgb)
            if g is not None:
                return g, "card"
            if self.mode == "card":
                return None, "card unusable"
        if self.mode == "grey-world":
            return grey_world_gains(rgb), "grey-world"
        if self.mode == "auto":
            g = grey_world_gains(rgb)
            if cast_strength(g) >= self.min_cast:
                return g, "grey-world"
        return None, "none needed"

    def correct(self, rgb: np.ndarray) -> tuple[np.ndarray, str]:
        """The photo under a neutral light, and how it was corrected."""
        g, how = self.gains(rgb)
        return (rgb if g is None else apply_gains(rgb, g)), how
