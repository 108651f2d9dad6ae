"""Is the model itself the same on two machines? check-arm64.sh runs this on both sides.

    python same_model_check.py dump BUNDLE DIR PHOTO...    # here: each photo's model input and logits
    python same_model_check.py check BUNDLE DIR PHOTO...   # there: the same, and the logits of HERE's input

Separates the two places two machines can differ: the image preparation (OpenCV's resizing rounds a
little differently with each CPU's vector instructions) and the model (ONNX Runtime's int8 kernels).
Exits 1 if the model, given the very same input, gives different logits (more than 1e-4).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np


def main(mode: str, bundle: str, folder: str, photos: list[str]) -> int:
    from wardrobe.classify import Classifier
    from wardrobe.images import read_image, shrink
    from wardrobe.pipeline import WORK_SIDE

    clf = Classifier.load(bundle)
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    worst_input = worst_same = worst_own = 0.0
    for photo in photos:
        name = Path(photo).stem
        x = clf.bundle.preprocess(shrink(read_image(photo), WORK_SIDE))
        z = clf.backend.logits(x)[0]
        if mode == "dump":
            np.save(out / f"{name}.x.npy", x)
            np.save(out / f"{name}.logits.npy", z)
            continue
        x_ref, z_ref = np.load(out / f"{name}.x.npy"), np.load(out / f"{name}.logits.npy")
        same_input = float(np.abs(clf.backend.logits(x_ref)[0] - z_ref).max())
        own = float(np.abs(z - z_ref).max())
        diff_x = float(np.abs(x - x_ref).max())
        worst_input, worst_same, worst_own = max(worst_input, diff_x), max(worst_same, same_input), max(worst_own, own)
        print(f"{name}: input differs by up to {diff_x:.4f}; logits on its own input differ by {own:.4f}, "
              f"on the very same input by {same_input:.6f}")
    if mode == "check":
        print(f"model input: largest difference {worst_input:.4f} (1/255/0.502 = {1 / 255 / 0.502:.4f} is one pixel "
              f"level); logits: {worst_own:.4f} on each machine's own input, {worst_same:.6f} on the same input")
        return 1 if worst_same > 1e-4 else 0
    return 0


if __name__ == "__main__":
    if len(sys.argv) < 5 or sys.argv[1] not in ("dump", "check"):
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]))
