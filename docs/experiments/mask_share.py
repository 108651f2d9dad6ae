"""How much the garment's mask costs the colour at home: each validation home labelled by eye through the shipped
bundle's describe, with the mask as shipped, the whole photo, and a centred ellipse in its place, grouped by the share
of the photo the shipped mask holds (docs/precision.md, "The same head on middle layers trained along with it").
Development figures: the first colour's family only, hedges not counted.

    python docs/experiments/mask_share.py --bundle models/default \\
        --data clothing-photos=DIR --data product-photos=DIR \\
        --home-colours-train assets/labels/home-colours-train.csv --home-colours assets/labels/home-colours.csv

About a minute here.
"""

from __future__ import annotations

import tempfile

import numpy as np
from mask_pooled_colour_head import parser, photos


def main() -> None:
    args = parser(__doc__).parse_args()
    from wardrobe import pipeline, wiring
    from wardrobe import settings as settings_module
    from wardrobe.images import read_image
    from wardrobe.segment import centre_ellipse

    with tempfile.TemporaryDirectory() as state:
        settings = settings_module.load(None, {"model": {"bundle": str(args.bundle)}, "": {"state_dir": state}})
        pipe = wiring.build_pipeline(settings, closet=False)
    shipped, mode = pipeline.segment, {"mask": "shipped"}

    def segment(rgb, method, plate):
        alpha = shipped(rgb, method, plate)
        if mode["mask"] == "whole photo":
            return np.full(alpha.shape, 255, np.uint8)
        if mode["mask"] == "centred ellipse":
            return (centre_ellipse(*alpha.shape, 0.42) * 255).astype(np.uint8)
        return alpha

    pipeline.segment = segment
    rows = []
    for path, source, accept in photos(args, "val", 0):
        if source != "clothing-photos":
            continue
        rgb = read_image(path)
        row = {"share": float((shipped(pipeline.shrink(rgb, pipeline.WORK_SIDE), pipe.method, pipe.plate) > 127).mean())}
        for mask in ("shipped", "whole photo", "centred ellipse"):
            mode["mask"] = mask
            d = pipe.describe(rgb, path)
            row[mask] = bool(d.colours) and d.colours[0].family in accept
        rows.append(row)
    print("mask share | homes | right: shipped / whole photo / centred ellipse")
    for lo, hi in ((0, 0.1), (0.1, 0.2), (0.2, 0.5), (0.5, 1.01)):
        part = [r for r in rows if lo <= r["share"] < hi]
        print(f"{lo:.0%}-{min(hi, 1):.0%} | {len(part)} | " + " / ".join(
            f"{100 * np.mean([r[m] for r in part]):.1f} %" for m in ("shipped", "whole photo", "centred ellipse")))


if __name__ == "__main__":
    main()
