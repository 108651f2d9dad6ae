"""What the learned colour decision (wardrobe.colour_decision) reads at each press, from the colour step's own
photo, mask, clusters and colour head:

- the colour head's log-probabilities (12 families), on the photo and on the garment cut out on white,
- the share of the garment's clusters each family names (12),
- each of the three largest clusters' CIELAB, chroma and share, and the garment's mean CIELAB (the pixels),
- the lightness and the colour cast of the photo around the garment (the light and the exposure),
- a coarse histogram of the garment's pixels: neutrals by lightness, hues by angle and lightness.
"""

from __future__ import annotations

import math

import numpy as np

from wardrobe.colour_decision import N_FEATURES
from wardrobe.colours import FAMILIES, NEUTRAL_CHROMA, Colour
from wardrobe.images import rgb_to_lab

STRIDE = 2
"""Every second pixel of every second row is read for the pixel statistics (a quarter of the work; the same
medians, means and histograms to within noise): under 1 ms a press here."""
NEUTRAL_L_BINS = (25.0, 50.0, 75.0)
HUE_BINS = 8
CLUSTERS = 3


def log_probabilities(families: list[tuple[str, float]]) -> list[float]:
    """The head's log-probability of each family, in FAMILIES order (uniform when there is no head)."""
    head = dict(families) if families else {}
    return [math.log(head.get(f, 1.0 / len(FAMILIES)) + 1e-4) for f in FAMILIES]


def features(rgb: np.ndarray, alpha: np.ndarray, weights: np.ndarray, colours: list[Colour],
             families: list[tuple[str, float]], cutout_families: list[tuple[str, float]] | None = None
             ) -> np.ndarray:
    """The decision's inputs for one photo (float32, N_FEATURES): rgb the photo at colour size, alpha its mask,
    weights the garment's pixel weights (colours.garment_weights), colours its named clusters (largest first),
    families the colour head's (family, probability) pairs on the photo, cutout_families on the cut-out (None:
    the photo's again)."""
    share = dict.fromkeys(FAMILIES, 0.0)
    for c in colours:
        share[c.family] = share.get(c.family, 0.0) + c.share
    clusters = []
    for c in [*colours, *[None] * CLUSTERS][:CLUSTERS]:
        L, a, b = (float(v) for v in c.lab) if c else (0.0, 0.0, 0.0)
        clusters += [L / 100, a / 100, b / 100, math.hypot(a, b) / 100, c.share if c else 0.0]

    rgb, alpha, weights = (np.asarray(v)[::STRIDE, ::STRIDE] for v in (rgb, alpha, weights))
    lab = rgb_to_lab(np.ascontiguousarray(rgb)).reshape(-1, 3)
    w = np.asarray(weights, np.float32).reshape(-1)
    total = float(w.sum())
    w = w / total if total > 0 else np.full_like(w, 1.0 / len(w))
    mean = (lab * w[:, None]).sum(axis=0) / 100

    outside = np.asarray(alpha).reshape(-1) <= 127
    if outside.mean() >= 0.05 and (~outside).any():
        around = lab[outside]
        inside_l = float(np.median(lab[~outside, 0]))
        cast = [float(np.median(around[:, 0])) / 100, float(around[:, 1].mean()) / 100,
                float(around[:, 2].mean()) / 100, 1.0]
        diff = [(inside_l - float(np.median(around[:, 0]))) / 100]
    else:
        cast, diff = [0.0, 0.0, 0.0, 0.0], [0.0]

    chroma = np.hypot(lab[:, 1], lab[:, 2])
    neutral = chroma < NEUTRAL_CHROMA
    l_bin = np.digitize(lab[:, 0], NEUTRAL_L_BINS)
    hist_n = np.bincount(l_bin[neutral], weights=w[neutral], minlength=len(NEUTRAL_L_BINS) + 1)
    hue = ((np.arctan2(lab[:, 2], lab[:, 1]) + math.pi) / (2 * math.pi) * HUE_BINS).astype(int) % HUE_BINS
    hue_bin = hue * 2 + (lab[:, 0] >= 50)
    hist_h = np.bincount(hue_bin[~neutral], weights=w[~neutral], minlength=2 * HUE_BINS)

    x = np.concatenate([log_probabilities(families), log_probabilities(cutout_families or families),
                        [share[f] for f in FAMILIES], clusters, mean, cast, diff, hist_n, hist_h])
    if x.shape != (N_FEATURES,):  # a change here needs a new FEATURES_VERSION and bundles fitted to it
        raise RuntimeError(f"{len(x)} colour inputs computed, the decision reads {N_FEATURES}")
    return x.astype(np.float32)
