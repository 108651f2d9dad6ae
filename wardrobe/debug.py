"""Pictures for a sighted helper: the mask overlay and the colour swatches of a description."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_debug(folder: Path, photo: Path, pipeline, description) -> list[Path]:
    """Write PHOTO-mask.png (the photo as the pipeline saw it, its light corrected, the background tinted magenta)
    and PHOTO-colours.png (one swatch per colour)."""
    import cv2

    from wardrobe.images import read_image

    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        from wardrobe.errors import WardrobeError

        raise WardrobeError(f"cannot write debug pictures into {folder}: {e.strerror or e}") from None
    rgb, alpha, _white = pipeline.garment_mask(read_image(photo))  # the mask describe used
    overlay = rgb.copy()
    bg = alpha < 128
    overlay[bg] = (overlay[bg] * 0.35 + np.array([255, 0, 255]) * 0.65).astype(np.uint8)
    mask_png = folder / f"{photo.stem}-mask.png"
    write_png(mask_png, overlay)
    h = 60
    swatches = [np.full((h, max(40, round(400 * c.share)), 3), c.rgb, np.uint8) for c in description.colours]
    strip = np.hstack(swatches) if swatches else np.full((h, 400, 3), 128, np.uint8)
    canvas = np.full((h + 24 * max(1, len(description.colours)), max(400, strip.shape[1]), 3), 255, np.uint8)
    canvas[:h, : strip.shape[1]] = strip
    for i, c in enumerate(description.colours):
        label = f"{c.name} ({c.css3}, {c.family}) {round(100 * c.share)}%"
        cv2.putText(canvas, label, (4, h + 18 + 24 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1)
    colours_png = folder / f"{photo.stem}-colours.png"
    write_png(colours_png, canvas)
    return [mask_png, colours_png]


def write_png(path: Path, rgb: np.ndarray) -> None:
    """Write an RGB picture as PNG; WardrobeError, in one line, when it cannot be written (a full disk)."""
    import cv2

    from wardrobe.errors import WardrobeError

    ok, png = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    try:
        if not ok:
            raise OSError("the picture could not be encoded")
        path.write_bytes(png.tobytes())
    except OSError as e:
        path.unlink(missing_ok=True)
        raise WardrobeError(f"cannot write {path}: {e.strerror or e}") from None
