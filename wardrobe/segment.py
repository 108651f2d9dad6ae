"""Background removal: an alpha mask (uint8, 255 = garment) for an RGB photo.

Three methods:
- "threshold": the original system's, for white backgrounds only.
- "plate": difference against a calibrated photo of the empty closet (the fixed closet camera).
- "auto" (default): a model of the border colours, refined by GrabCut, for unknown backgrounds.
"""

from __future__ import annotations

import numpy as np

from wardrobe.errors import ConfigError
from wardrobe.images import rgb_to_lab, shrink
from wardrobe.settings import SEGMENTATION_METHODS as METHODS

WORK_SIDE = 128
MIN_SHARE = 0.03
"""A mask smaller than this share of the photo counts as collapsed."""
CORE_DISTINCT = 1.0
"""Median border-colour distance of the photo's centre above which it holds something (measured:
5% of home garment photos fall below, 10% of empty backgrounds rise above)."""
"""Long side in pixels at which masks are computed; they are scaled back up and feathered."""


def threshold_mask(rgb: np.ndarray) -> np.ndarray:
    """The original method: grey > 250 is background; inverted, blurred (sigma 2), stretched 2m-255."""
    import cv2

    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    _, binary = cv2.threshold(gray, 250, 255, cv2.THRESH_BINARY)
    blurred = cv2.GaussianBlur(255 - binary, (0, 0), 2).astype(np.float32)
    return np.clip(2 * blurred - 255, 0, 255).astype(np.uint8)


def _finish(mask_small: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Clean a small binary mask (keep large parts, fill holes), scale it up and feather the edge."""
    import cv2

    m = (mask_small > 0).astype(np.uint8)
    k = np.ones((3, 3), np.uint8)
    m = cv2.morphologyEx(m, cv2.MORPH_OPEN, k)
    m = cv2.morphologyEx(m, cv2.MORPH_CLOSE, k, iterations=2)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    if n > 1:
        areas = stats[1:, cv2.CC_STAT_AREA]
        keep = 1 + np.flatnonzero(areas >= max(0.15 * areas.max(), 0.002 * m.size))
        m = np.isin(labels, keep).astype(np.uint8)
    # Fill small holes only: the gap between trouser legs is a large hole and stays background.
    n, labels, stats, _ = cv2.connectedComponentsWithStats(1 - m, connectivity=4)
    small_holes = 1 + np.flatnonzero(stats[1:, cv2.CC_STAT_AREA] < 0.01 * m.size)
    m[np.isin(labels, small_holes)] = 1
    big = cv2.resize(m * 255, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
    sigma = max(1.0, 0.004 * max(shape[:2]))
    return cv2.GaussianBlur(big, (0, 0), sigma)


def edge_ring(h: int, w: int, width: int) -> np.ndarray:
    """Boolean mask of the outer width pixels of an h x w image."""
    ring = np.zeros((h, w), bool)
    ring[:width], ring[-width:], ring[:, :width], ring[:, -width:] = True, True, True, True
    return ring


def centre_ellipse(h: int, w: int, radius: float) -> np.ndarray:
    """Boolean mask of a centred ellipse with semi-axes radius * (h, w)."""
    yy, xx = np.mgrid[0:h, 0:w]
    return ((yy - h / 2) / (radius * h)) ** 2 + ((xx - w / 2) / (radius * w)) ** 2 < 1


def border_distance(lab: np.ndarray, band: float = 0.05, k: int = 4) -> np.ndarray:
    """Per pixel, the CIELAB distance to the nearest of k colour clusters of the image border."""
    import cv2

    h, w = lab.shape[:2]
    b = max(2, round(band * min(h, w)))
    # The four strips, corners counted twice (as measured in the README).
    border = np.concatenate([lab[:b].reshape(-1, 3), lab[-b:].reshape(-1, 3),
                             lab[:, :b].reshape(-1, 3), lab[:, -b:].reshape(-1, 3)])
    cv2.setRNGSeed(0)
    crit = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 10, 1.0)
    k = min(k, len(border))
    _, labels, centers = cv2.kmeans(border.astype(np.float32), k, None, crit, 1, cv2.KMEANS_PP_CENTERS)
    labels = labels.ravel()
    # Each cluster's spread sets its own scale, so a textured floor is not mistaken for a garment.
    spread = np.array([max(4.0, float(np.median(np.linalg.norm(border[labels == i] - centers[i], axis=1)))) if
                       (labels == i).any() else 4.0 for i in range(k)])
    share = np.bincount(labels, minlength=k) / len(labels)
    flat = lab.reshape(-1, 3)
    d = np.full(len(flat), np.inf, np.float32)
    for i in range(k):
        if share[i] < 0.03:
            continue  # a few border pixels of garment (a sleeve touching the edge) are not background
        d = np.minimum(d, np.linalg.norm(flat - centers[i], axis=1) / spread[i])
    return d.reshape(h, w)


def auto_mask(rgb: np.ndarray, iterations: int = 2, side: int = WORK_SIDE, grabcut: bool = True) -> np.ndarray:
    """Border colour model plus a centre prior, refined by GrabCut.

    Pixels far from every border colour are sure garment; the image edge is sure background;
    the rest starts as "probably garment" near the centre and "probably background" outside it,
    and GrabCut's colour models settle them. If GrabCut degenerates, the border model stands.
    """
    import cv2

    small = shrink(rgb, side)
    lab = rgb_to_lab(small)
    dist = border_distance(lab)
    h, w = dist.shape
    if not grabcut:
        return _finish((dist > 3.0).astype(np.uint8), rgb.shape)
    central = centre_ellipse(h, w, 0.42)
    gc = np.full((h, w), cv2.GC_PR_BGD, np.uint8)
    gc[central | (dist > 2.0)] = cv2.GC_PR_FGD
    gc[central & (dist < 0.7)] = cv2.GC_PR_BGD
    gc[dist > 6.0] = cv2.GC_FGD
    gc[edge_ring(h, w, max(1, round(0.02 * min(h, w)))) & (dist <= 6.0)] = cv2.GC_BGD
    result = _grabcut(small, gc.copy(), dist > 3.0, iterations)
    core = centre_ellipse(h, w, 0.2)
    if result.mean() < MIN_SHARE and core.any() and float(np.median(dist[core])) > CORE_DISTINCT:
        # Collapsed, though the centre differs from the border: the garment is close to the
        # background's colours. A held-up garment is central, so insist on the centre and let
        # GrabCut grow the garment from it. (A centre like the border is an empty closet.)
        gc[core] = cv2.GC_FGD
        result = _grabcut(small, gc, core, iterations)
    return _finish(result.astype(np.uint8), rgb.shape)


def _grabcut(small: np.ndarray, gc: np.ndarray, fallback: np.ndarray, iterations: int) -> np.ndarray:
    """Refine a GrabCut trimap; if GrabCut fails or degenerates, return the fallback mask."""
    import cv2

    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)
    try:
        cv2.grabCut(np.ascontiguousarray(small[..., ::-1]), gc, None, bgd, fgd, iterations, cv2.GC_INIT_WITH_MASK)
    except cv2.error:
        return fallback  # GrabCut needs both classes present
    refined = (gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)
    return refined if 0.005 < refined.mean() < 0.97 else fallback


def plate_mask(rgb: np.ndarray, plate: np.ndarray, threshold: float = 6.0, iterations: int = 2) -> np.ndarray:
    """Difference against the empty-closet photo in CIELAB, then GrabCut on the uncertain band.

    Light changes shift lightness far more than chroma, so lightness is first matched on the
    image border (where the plate still shows) and then counts half.
    """
    import cv2

    small = shrink(rgb, WORK_SIDE)
    plate_small = cv2.resize(plate, (small.shape[1], small.shape[0]), interpolation=cv2.INTER_AREA)
    a, p = rgb_to_lab(small), rgb_to_lab(plate_small)
    h, w = a.shape[:2]
    ring = edge_ring(h, w, max(2, round(0.05 * min(h, w))))
    shift = float(np.median(a[..., 0][ring] - p[..., 0][ring]))
    d = a - p
    d[..., 0] = 0.5 * (d[..., 0] - shift)
    diff = cv2.GaussianBlur(np.linalg.norm(d, axis=2), (0, 0), 1.0)
    gc = np.where(diff > threshold, cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
    gc[diff > 2.5 * threshold] = cv2.GC_FGD
    gc[diff < 0.4 * threshold] = cv2.GC_BGD
    return _finish(_grabcut(small, gc, diff > threshold, iterations).astype(np.uint8), rgb.shape)


def skin_mask(rgb: np.ndarray) -> np.ndarray:
    """Boolean mask of skin-coloured pixels (YCrCb box widely used for skin detection)."""
    import cv2

    ycc = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)
    y, cr, cb = ycc[..., 0], ycc[..., 1], ycc[..., 2]
    return (y > 60) & (cr >= 138) & (cr <= 170) & (cb >= 85) & (cb <= 125)


def segment(rgb: np.ndarray, method: str = "auto", plate: np.ndarray | None = None) -> np.ndarray:
    """Alpha mask for a photo with the named method ("plate" needs the calibrated plate)."""
    if method == "threshold":
        return threshold_mask(rgb)
    if method == "plate":
        if plate is None:
            raise ConfigError("the plate method needs a background photo: run `wardrobe calibrate --background`")
        return plate_mask(rgb, plate)
    if method == "auto":
        return auto_mask(rgb)
    raise ConfigError(f"unknown segmentation method {method!r}; choose from {', '.join(METHODS)}")
