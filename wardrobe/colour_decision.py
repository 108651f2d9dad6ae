"""A learned decision of the main colour's family, from what the colour step already has at each press.

The hand-made rule (ColourNamer.decided_family) weighs the colour head's log-probabilities against the share of
the garment's clusters each family names, with one weight. This is the same decision learnt from photos labelled
by eye at home and by the shop: a multinomial logistic regression over

- the colour head's log-probabilities (12 families), on the photo and on the garment cut out on white,
- the share of the garment's clusters each family names (12),
- each of the three largest clusters' CIELAB, chroma and share, and the garment's mean CIELAB (the pixels),
- the lightness and the colour cast of the photo around the garment (the light and the exposure),
- a coarse histogram of the garment's pixels: neutrals by lightness, hues by angle and lightness.

Its weights live in the bundle (`bundle.json`, "colour_decision"), beside the colour head they were fitted to;
a bundle without them keeps the hand-made rule. The rename guard (colours.may_rename) still bounds what it may
say: it chooses a family, and the pixels decide whether a cluster may be called that.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from wardrobe.colours import FAMILIES, NEUTRAL_CHROMA, Colour
from wardrobe.errors import ModelError
from wardrobe.images import rgb_to_lab

FEATURES_VERSION = 1
"""Bump when `features` changes: a bundle's weights fit one version only."""
STRIDE = 2
"""Every second pixel of every second row is read for the pixel statistics (a quarter of the work; the same
medians, means and histograms to within noise): about 1 ms a press here."""
NEUTRAL_L_BINS = (25.0, 50.0, 75.0)
HUE_BINS = 8
CLUSTERS = 3
N_FEATURES = 3 * len(FAMILIES) + 5 * CLUSTERS + 3 + 4 + 1 + (len(NEUTRAL_L_BINS) + 1) + 2 * HUE_BINS


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
    return x.astype(np.float32)


@dataclass(frozen=True)
class ColourDecision:
    """Fitted weights: standardise the features, then a softmax over the families."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    """(families, features)"""
    intercept: np.ndarray
    fitted_on: str = ""

    def probabilities(self, x: np.ndarray) -> list[tuple[str, float]]:
        """(family, probability) for every family, most likely first."""
        z = self.coef @ ((np.asarray(x, np.float64) - self.mean) / self.scale) + self.intercept
        p = np.exp(z - z.max())
        p /= p.sum()
        return sorted(zip(FAMILIES, (float(v) for v in p), strict=True), key=lambda fp: -fp[1])

    def to_json(self) -> dict:
        """The block written into bundle.json."""
        return {"features": FEATURES_VERSION, "families": list(FAMILIES), "mean": self.mean.round(6).tolist(),
                "scale": self.scale.round(6).tolist(), "coef": self.coef.round(6).tolist(),
                "intercept": self.intercept.round(6).tolist(), "fitted_on": self.fitted_on}

    @classmethod
    def from_json(cls, d: dict, where: str = "bundle.json") -> ColourDecision:
        """Read and check the block; a ModelError names what is wrong."""
        try:
            if d.get("features") != FEATURES_VERSION or list(d.get("families", [])) != list(FAMILIES):
                raise ValueError(f"fits features version {d.get('features')}, this program computes "
                                 f"{FEATURES_VERSION}")
            mean, scale = np.asarray(d["mean"], np.float64), np.asarray(d["scale"], np.float64)
            coef, intercept = np.asarray(d["coef"], np.float64), np.asarray(d["intercept"], np.float64)
            if (mean.shape != (N_FEATURES,) or scale.shape != (N_FEATURES,)
                    or coef.shape != (len(FAMILIES), N_FEATURES) or intercept.shape != (len(FAMILIES),)):
                raise ValueError("its arrays have the wrong shapes")
            if not all(np.isfinite(v).all() for v in (mean, scale, coef, intercept)) or (scale <= 0).any():
                raise ValueError("it holds a non-finite weight or a scale that is not positive")
        except (KeyError, TypeError, ValueError) as e:
            raise ModelError(f"{where}: bad colour_decision block: {e}") from e
        return cls(mean, scale, coef, intercept, str(d.get("fitted_on", "")))
