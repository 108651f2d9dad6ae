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
        """(family, probability) for every family, most likely first."""
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
            if d.get("features") != FEATURES_VERSION:
                raise ValueError(f"fits features version {d.get('features')}, this program computes "
                                 f"{FEATURES_VERSION}")
            if list(d.get("families", [])) != list(families):
                raise ValueError("its families are not the colour head's")
            mean, scale = np.asarray(d["mean"], np.float64), np.asarray(d["scale"], np.float64)
            coef, intercept = np.asarray(d["coef"], np.float64), np.asarray(d["intercept"], np.float64)
            if (mean.shape != (N_FEATURES,) or scale.shape != (N_FEATURES,)
                    or coef.shape != (len(families), N_FEATURES) or intercept.shape != (len(families),)):
                raise ValueError("its arrays have the wrong shapes")
            if not all(np.isfinite(v).all() for v in (mean, scale, coef, intercept)) or (scale <= 0).any():
                raise ValueError("it holds a non-finite weight or a scale that is not positive")
        except (KeyError, TypeError, ValueError) as e:
            raise ModelError(f"{where}: bad colour_decision block: {e}") from e
        return cls(tuple(families), mean, scale, coef, intercept, str(d.get("fitted_on", "")))
