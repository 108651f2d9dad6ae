"""A learned decision of the main colour's family: its fitted weights, as a bundle carries them.

The hand-made rule (ColourNamer.decided_family) weighs the colour head's log-probabilities against the share of
the garment's clusters each family names, with one weight. This is the same decision learnt from photos labelled
by eye at home and by the shop: a multinomial logistic regression over what the colour step already has at each
press (wardrobe.colour_inputs computes those inputs).

Its weights live in the bundle (`bundle.json`, "colour_decision"), beside the colour head they were fitted to;
a bundle without them keeps the hand-made rule. The rename guard (colours.may_rename) still bounds what it may
say: it chooses a family, and the pixels decide whether a cluster may be called that. `wardrobe train
colour-decision` fits it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wardrobe.errors import ModelError

FEATURES_VERSION = 1
"""The inputs the weights were fitted to (wardrobe.colour_inputs.features); bump it when they change."""
N_FEATURES = 79
"""How many inputs that version has (wardrobe.colour_inputs checks that it computes exactly these)."""


@dataclass(frozen=True)
class ColourDecision:
    """Fitted weights: standardise the inputs, then a softmax over the colour families."""

    families: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    """(families, inputs)"""
    intercept: np.ndarray
    fitted_on: str = ""

    def probabilities(self, x: np.ndarray) -> list[tuple[str, float]]:
        """(family, probability) for every family, most likely first; x: the N_FEATURES inputs."""
        if np.shape(x) != (N_FEATURES,):
            raise ValueError(f"the colour decision reads {N_FEATURES} inputs, not {np.shape(x)}")
        z = self.coef @ ((np.asarray(x, np.float64) - self.mean) / self.scale) + self.intercept
        p = np.exp(z - z.max())
        p /= p.sum()
        return sorted(zip(self.families, (float(v) for v in p), strict=True), key=lambda fp: -fp[1])

    def to_json(self) -> dict:
        """The block written into bundle.json."""
        return {"features": FEATURES_VERSION, "families": list(self.families), "mean": self.mean.round(6).tolist(),
                "scale": self.scale.round(6).tolist(), "coef": self.coef.round(6).tolist(),
                "intercept": self.intercept.round(6).tolist(), "fitted_on": self.fitted_on}

    @classmethod
    def from_json(cls, d: dict, families: list[str], where: str = "bundle.json") -> ColourDecision:
        """Read and check the block against the bundle's colour families; a ModelError names what is wrong."""
        try:
            version = d.get("features")
            if type(version) is not int or version != FEATURES_VERSION:
                raise ValueError(f"fits features version {version!r}, this program computes {FEATURES_VERSION}")
            if not isinstance(d.get("families"), list) or d["families"] != list(families):
                raise ValueError("its families are not the colour head's")
            if not isinstance(d.get("fitted_on", ""), str):
                raise ValueError("fitted_on must be text")
            n = len(families)
            mean, scale = numbers(d, "mean", (N_FEATURES,)), numbers(d, "scale", (N_FEATURES,))
            coef, intercept = numbers(d, "coef", (n, N_FEATURES)), numbers(d, "intercept", (n,))
            if (scale < SMALLEST_SCALE).any():
                raise ValueError(f"a scale under {SMALLEST_SCALE}")
        except (KeyError, TypeError, ValueError, OverflowError) as e:
            raise ModelError(f"{where}: bad colour_decision block: {e}") from e
        return cls(tuple(families), mean, scale, coef, intercept, d.get("fitted_on", ""))


LARGEST_WEIGHT = 1e3
"""No fitted mean, scale, weight or intercept is larger than this (a standardised logistic regression's are
under 100): a block beyond it was not written by the training script."""
SMALLEST_SCALE = 1e-6


def numbers(d: dict, key: str, shape: tuple[int, ...]) -> np.ndarray:
    """d[key] as a float64 array of this shape, every element a finite real number no larger than LARGEST_WEIGHT
    (not text, not true or false); ValueError naming the key otherwise."""
    a = np.asarray(d[key])
    if a.dtype.kind not in "iuf":
        raise ValueError(f"{key} must hold numbers only")
    if a.shape != shape:
        raise ValueError(f"{key} has the wrong shape {a.shape}, not {shape}")
    a = a.astype(np.float64)
    if not np.isfinite(a).all() or (np.abs(a) > LARGEST_WEIGHT).any():
        raise ValueError(f"{key} holds a number that is not finite or larger than {LARGEST_WEIGHT:g}")
    return a
