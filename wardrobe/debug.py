"""Pictures for a sighted helper: the mask overlay and the colour swatches of a description."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_debug(folder: Path, photo: Path, pipeline, description) -> list[Path]:
    """Write PHOTO-mask.png (background tinted magenta) and PHOTO-colours.png (one swatch per colour)."""
    import cv2

    from wardrobe.images import read_image
    from wardrobe.segment import segment

    folder.mkdir(parents=True, exist_ok=True)
    rgb = read_image(photo)
    alpha = segment(rgb, pipeline.method, pipeline.plate)
    overlay = rgb.copy()
    bg = alpha < 128
    overlay[bg] = (overlay[bg] * 0.35 + np.array([255, 0, 255]) * 0.65).astype(np.uint8)
    mask_png = folder / f"{photo.stem}-mask.png"
    cv2.imwrite(str(mask_png), cv2.cvtColor(overlay, cv2.COLOR_RGB2BGR))
    h = 60
    swatches = [np.full((h, max(40, round(400 * c.share)), 3), c.rgb, np.uint8) for c in description.colours]
    strip = np.hstack(swatches) if swatches else np.full((h, 400, 3), 128, np.uint8)
    canvas = np.full((h + 24 * max(1, len(description.colours)), max(400, strip.shape[1]), 3), 255, np.uint8)
    canvas[:h, : strip.shape[1]] = strip
    for i, c in enumerate(description.colours):
        label = f"{c.name} ({c.css3}, {c.family}) {round(100 * c.share)}%"
        cv2.putText(canvas, label, (4, h + 18 + 24 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1)
    colours_png = folder / f"{photo.stem}-colours.png"
    cv2.imwrite(str(colours_png), cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
    return [mask_png, colours_png]
