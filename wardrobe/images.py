"""Photos in and out: reading files, resizing, and colour-space conversion, used everywhere."""

from __future__ import annotations

import os
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

    path = Path(path)
    if not path.is_file():
        if path.is_dir():
            raise ImageError(f"{path}: a folder, not a photo")
        raise ImageError(f"{path}: not a regular file (a device or a pipe)" if path.exists()
                         else f"{path}: no such file")
    try:
        data = np.fromfile(str(path), np.uint8)
    except OSError as e:
        raise ImageError(f"{path}: cannot be read: {e.strerror or e}") from e
    return shrink(decode(data.tobytes(), str(path)), max_side)


MAX_PIXELS = 40_000_000
"""Largest photo decoded (width x height, read from the file's header first): a 12 MP Pi camera photo is a third
of it; a 20000 x 20000 PNG of 1 MB would need 1.2 GB to decode."""
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(MAX_PIXELS))  # OpenCV's own cap too, should a header lie


def decode(data: bytes, name: str = "the photo") -> np.ndarray:
    """Decode image bytes to RGB uint8; ImageError, in one line, for anything that is not a bounded photo."""
    import cv2

    check_header(data, name)
    try:
        bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    except cv2.error:  # OpenCV's own pixel cap (set below) or a decoder failure
        bgr = None
    if bgr is None:
        raise ImageError(f"{name}: not a readable image (corrupt or not a photo)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def check_header(data: bytes, name: str = "the photo") -> tuple[int, int]:
    """(width, height) of a photo that may be decoded, read from its header alone; ImageError, in one line, for
    anything that is not a bounded photo (checked before a byte is decoded)."""
    size = pixel_size(data)
    if size is None:
        raise ImageError(f"{name}: not a readable image (corrupt, or not a JPEG, PNG, WebP, BMP or GIF photo)")
    if size[0] * size[1] > MAX_PIXELS or min(size) < 1:
        raise ImageError(f"{name}: {size[0]} x {size[1]} pixels is too large a photo "
                         f"(at most {MAX_PIXELS // 1_000_000} megapixels)")
    return size


def pixel_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from an image file's header without decoding it; None when it is no JPEG, PNG, WebP,
    BMP or GIF (or its header is damaged)."""
    import struct

    try:
        if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
            return struct.unpack(">II", data[16:24])
        if data[:6] in (b"GIF87a", b"GIF89a"):
            return struct.unpack("<HH", data[6:10])
        if data[:2] == b"BM":
            w, h = struct.unpack("<ii", data[18:26])
            return abs(w), abs(h)
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            kind = data[12:16]
            if kind == b"VP8 ":
                w, h = struct.unpack("<HH", data[26:30])
                return w & 0x3FFF, h & 0x3FFF
            if kind == b"VP8L":
                b = int.from_bytes(data[21:25], "little")
                return (b & 0x3FFF) + 1, ((b >> 14) & 0x3FFF) + 1
            if kind == b"VP8X":
                return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
            return None
        if data[:2] == b"\xff\xd8":
            i = 2
            while i + 9 < len(data):
                if data[i] != 0xFF:
                    return None
                if data[i + 1] == 0xFF:  # fill bytes before a marker: libjpeg skips them, so must we
                    i += 1
                    continue
                marker = data[i + 1]
                if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
                    i += 2
                    continue
                length = struct.unpack(">H", data[i + 2:i + 4])[0]
                if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                    h, w = struct.unpack(">HH", data[i + 5:i + 9])
                    return w, h
                i += 2 + length
    except struct.error:
        return None
    return None


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
    """The repository's sample photos (assets/photos, 20) in a checkout, else the packaged health photos (8)."""
    assets = Path(__file__).resolve().parent.parent / "assets" / "photos"
    return sorted(assets.glob("*.jpg")) or packaged_photos()
