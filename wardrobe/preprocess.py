"""Image preprocessing shared by training and inference, described by a small dict in the bundle."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from wardrobe.errors import ModelError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MODES = ("squash", "short-side")
MIN_SIDE, MAX_SIDE = 16, 1024
"""The sides a bundle may ask photos to be resized and cropped to (networks here take 28 to 260 pixels)."""


@dataclass(frozen=True)
class Preprocess:
    """Resize then centre-crop then normalise, like torchvision's eval presets.

    Images are RGB uint8 arrays of shape (H, W, 3).
    """

    resize: int = 128
    """Side in pixels after resizing."""
    crop: int = 112
    """Side in pixels of the centre crop fed to the network."""
    mode: str = "squash"
    """"squash" resizes to resize x resize ignoring aspect; "short-side" scales the short side to resize."""
    mean: tuple[float, float, float] = IMAGENET_MEAN
    """Per-channel mean on the 0..1 scale."""
    std: tuple[float, float, float] = IMAGENET_STD
    """Per-channel standard deviation on the 0..1 scale."""

    def to_dict(self) -> dict:
        """Return the JSON form stored in a bundle."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Preprocess:
        """Build from the JSON form stored in a bundle; ValueError for sizes, a mode or statistics no network was
        trained with (a zero or huge side, a crop larger than the resized photo, two channels, a zero spread)."""
        sides = [d["resize"], d["crop"]]
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in sides):
            raise ValueError("resize and crop must be whole numbers")
        if not (MIN_SIDE <= d["crop"] <= d["resize"] <= MAX_SIDE):
            raise ValueError(f"resize and crop must be {MIN_SIDE} to {MAX_SIDE} pixels, the crop no larger")
        if d.get("mode", "squash") not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}")
        stats = [d["mean"], d["std"]]
        if not all(isinstance(v, list | tuple) and len(v) == 3 and all(isinstance(x, int | float) and not isinstance(x, bool)
                                                               and math.isfinite(x) for x in v) for v in stats):
            raise ValueError("mean and std must each be three numbers, one per colour channel")
        if not all(x > 0 for x in d["std"]):
            raise ValueError("std must be positive")
        return cls(
            resize=d["resize"],
            crop=d["crop"],
            mode=str(d.get("mode", "squash")),
            mean=tuple(float(x) for x in d["mean"]),  # type: ignore[arg-type]
            std=tuple(float(x) for x in d["std"]),  # type: ignore[arg-type]
        )

    def resized(self, rgb: np.ndarray, exact: bool = False) -> np.ndarray:
        """Resize an RGB uint8 image as training caches it (before cropping).

        exact: resize in float32 and keep the fractions: OpenCV's 8-bit resizing rounds some pixels one
        level up on one CPU and down on another (x86-64 and ARM differ), which moves an int8 model's
        logits by up to 0.28; the float result differs by rounding error only."""
        import cv2

        if exact:
            rgb = np.asarray(rgb, np.float32)
        h, w = rgb.shape[:2]
        if self.mode == "squash":
            size = (self.resize, self.resize)
        elif self.mode == "short-side":
            s = self.resize / min(h, w)
            size = (max(self.resize, round(w * s)), max(self.resize, round(h * s)))
        else:
            raise ModelError(f"unknown resize mode {self.mode!r}")
        shrinking = size[0] < w
        return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)

    def center_crop(self, rgb: np.ndarray, side: int | None = None) -> np.ndarray:
        """Cut the central side x side square (the crop size by default)."""
        side = side or self.crop
        h, w = rgb.shape[:2]
        top, left = (h - side) // 2, (w - side) // 2
        return rgb[top : top + side, left : left + side]

    def normalise(self, rgb: np.ndarray) -> np.ndarray:
        """uint8 HWC (or NHWC) to float32 CHW (or NCHW), normalised."""
        x = rgb.astype(np.float32) / 255.0
        x = (x - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return np.ascontiguousarray(np.moveaxis(x, -1, -3))

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        """RGB uint8 image to a float32 batch of one, shape (1, 3, crop, crop)."""
        return self.normalise(self.center_crop(self.resized(rgb, exact=True)))[None]
