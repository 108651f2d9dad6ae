"""Photos in and out: reading files, resizing, and colour-space conversion, used everywhere."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from wardrobe.errors import ImageError


def fit_long_side(rgb: np.ndarray, side: int, enlarge: bool = False) -> np.ndarray:
    """Scale so the long side is side pixels (area filter); smaller photos pass through unless enlarge."""
    import cv2

    h, w = rgb.shape[:2]
    s = side / max(h, w)
    if s >= 1 and not enlarge or s == 1:
        return rgb
    return cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)


def shrink(rgb: np.ndarray, side: int) -> np.ndarray:
    """Downscale so the long side is at most side pixels; smaller photos pass through."""
    return fit_long_side(rgb, side)


def read_image(path: Path | str, max_side: int = 1024) -> np.ndarray:
    """Decode a photo file to RGB uint8, shrunk to max_side; ImageError if it cannot be read."""
    import cv2

    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: no such file")
    try:
        data = np.fromfile(str(path), np.uint8)
    except OSError as e:
        raise ImageError(f"{path}: cannot be read: {e.strerror or e}") from e
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if bgr is None:
        raise ImageError(f"{path}: not a readable image (corrupt or not a photo)")
    return shrink(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), max_side)


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB uint8 (..., 3) to CIELAB float32 (L 0..100), D65."""
    import cv2

    a = np.asarray(rgb, np.float32).reshape(-1, 1, 3) / 255.0
    return cv2.cvtColor(a, cv2.COLOR_RGB2Lab).reshape(np.shape(rgb))


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """CIELAB to sRGB uint8."""
    import cv2

    a = np.asarray(lab, np.float32).reshape(-1, 1, 3)
    return np.clip(np.round(cv2.cvtColor(a, cv2.COLOR_Lab2RGB) * 255), 0, 255).astype(np.uint8).reshape(np.shape(lab))


def packaged_photos() -> list[Path]:
    """The sample garment photos shipped inside the package (wardrobe/data/health): found after any install."""
    from importlib import resources

    return sorted(Path(str(resources.files("wardrobe.data").joinpath("health"))).glob("*.jpg"))


def sample_photos() -> list[Path]:
    """The repository's 18 sample photos (assets/photos) in a checkout, else the packaged ones."""
    assets = Path(__file__).resolve().parent.parent / "assets" / "photos"
    return sorted(assets.glob("*.jpg")) or packaged_photos()
