"""Photo problems worth telling a blind user about: too dark, too bright, blurry, no garment."""

from __future__ import annotations

import numpy as np

from wardrobe.images import fit_long_side

DARK_LUMA = 60
"""Luma (0..255) that the brightest 5% of the photo must reach; below it the light is off.
(Not the median: a black garment filling the frame is dark, the photo is not.)"""
EMPTY_DARK_MEDIAN = 40
"""Median luma (0..255) under which a photo of the empty closet (the calibration plate, doctor's test photo) is too
dark to use: with no garment in it, the median is the closet's own light."""
BRIGHT_SHARE = 0.5
"""Share of the garment's pixels clipped to white above which the photo is overexposed."""
MIN_GARMENT_SHARE = 0.02
"""Share of the photo the mask must cover to count as a garment."""
MAX_GARMENT_SHARE = 0.995
BLUR_VARIANCE = 12.0
"""Laplacian variance (at 256 px) below which the photo is blurry."""


STRUCTURE_MIN = 10.0
"""Edge strength (90th percentile of the smoothed gradient at 256 px) a photo of a garment reaches.
Measured: plain walls 1-3, home garment photos 31 at the 1st percentile."""


def median_luma(rgb: np.ndarray) -> float:
    """The photo's median brightness (luma, 0..255): compared with EMPTY_DARK_MEDIAN for an empty closet."""
    import cv2

    return float(np.median(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)))


def edges(small: np.ndarray) -> np.ndarray:
    """Gradient magnitude of the smoothed grey image (sensor noise smoothed away)."""
    import cv2

    g = cv2.GaussianBlur(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32), (0, 0), 2)
    return np.hypot(cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1))


def structure(rgb: np.ndarray) -> float:
    """How much shape the photo holds (folds, seams, edges), ignoring sensor noise."""
    return float(np.percentile(edges(fit_long_side(rgb, 256, enlarge=True)), 90))


def problems(rgb: np.ndarray, alpha: np.ndarray) -> list[str]:
    """Problem codes, most serious first: too-dark, overexposed, no-garment, blurry."""
    import cv2

    out = []
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    if float(np.percentile(gray, 95)) < DARK_LUMA:
        out.append("too-dark")
        return out
    fg = alpha > 127
    share = float(fg.mean())
    if fg.any() and float((gray[fg] >= 250).mean()) > BRIGHT_SHARE and share > MIN_GARMENT_SHARE:
        out.append("overexposed")
    if not (MIN_GARMENT_SHARE <= share <= MAX_GARMENT_SHARE):
        out.append("no-garment")
    small = fit_long_side(gray, 256, enlarge=True)
    if float(cv2.Laplacian(small, cv2.CV_64F).var()) < BLUR_VARIANCE:
        out.append("blurry")
    return out


EDGE_TOUCH = 0.3
"""Share of one frame edge the garment must cover to count as touching it."""
TOUCHED_EDGES = 3
"""Edges the garment must touch before "Hold it further away" (a held-up garment often hangs past the
bottom edge, and a close-up fills two edges: neither is worth a word)."""
SMALL_SHARE = 0.10
"""Below this share of the frame, "Hold it closer"."""
OFF_CENTRE = 0.22
"""Horizontal distance of the garment's centre from the frame's centre (share of the width) for "move"."""


def outside_structure(rgb: np.ndarray, fg: np.ndarray) -> float:
    """Edge strength (as structure()) of the photo away from the garment mask: low when the rest of the
    frame is plain background, so the mask's size and place can be trusted."""
    import cv2

    small = fit_long_side(rgb, 256, enlarge=True)
    mask = cv2.resize(fg.astype(np.uint8), (small.shape[1], small.shape[0]), interpolation=cv2.INTER_NEAREST)
    grow = max(3, round(0.08 * max(small.shape[:2])))
    away = cv2.dilate(mask, np.ones((grow, grow), np.uint8)) == 0
    if away.mean() < 0.2:
        return 0.0
    return float(np.percentile(edges(small)[away], 90))


def aiming(alpha: np.ndarray, rgb: np.ndarray) -> list[str]:
    """Aiming codes from the garment mask: aim-further, aim-closer, aim-left, aim-right (at most one of each kind).

    Directions are the user's: the camera faces the user, so a garment on the right of the photo is on the
    user's left and should move to the user's right ("aim-right"). "Closer" and the directions are only said
    when the rest of the frame is plain: on a busy background a small mask usually means the garment fills
    the frame and only part of it was found (measured: 13 of 13 such home photos, docs/see-better.md)."""
    fg = alpha > 127
    share = float(fg.mean())
    if share < MIN_GARMENT_SHARE:
        return []  # no garment: "I can't see a garment" says it
    edges = [fg[0].mean(), fg[-1].mean(), fg[:, 0].mean(), fg[:, -1].mean()]
    out = []
    if sum(e >= EDGE_TOUCH for e in edges) >= TOUCHED_EDGES:
        return ["aim-further"]
    if outside_structure(rgb, fg) >= STRUCTURE_MIN:
        return out
    if share < SMALL_SHARE:
        out.append("aim-closer")
    cols = np.nonzero(fg.any(axis=0))[0]
    centre = float((fg.sum(axis=0) * np.arange(fg.shape[1])).sum() / fg.sum()) / fg.shape[1] - 0.5
    spans_width = cols.size and cols[0] == 0 and cols[-1] == fg.shape[1] - 1
    if abs(centre) >= OFF_CENTRE and not spans_width:
        out.append("aim-right" if centre > 0 else "aim-left")
    return out
