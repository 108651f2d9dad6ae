"""The original system's colour method, kept only as the reference `wardrobe bench` and the studies measure against."""

from __future__ import annotations

import numpy as np


def original_colours(rgb: np.ndarray, alpha: np.ndarray, k: int = 3) -> list[tuple[str, float]]:
    """The original method: KMeans on every masked pixel in RGB, nearest CSS3 by a KD-tree built per call."""
    import cv2

    from wardrobe.css3 import names_and_rgb, said_indices
    from wardrobe.kdtree import KDTree

    px = rgb[alpha > 0].astype(np.float32)
    if len(px) == 0:
        return []
    cv2.setRNGSeed(0)
    crit = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.5)
    _, labels, centers = cv2.kmeans(px, min(k, len(px)), None, crit, 1, cv2.KMEANS_PP_CENTERS)
    shares = np.bincount(labels.ravel(), minlength=len(centers)) / len(labels)
    names, rgb = names_and_rgb()
    first = said_indices(names, rgb)
    tree = KDTree(rgb[first].astype(np.float32))
    order = np.argsort(-shares)
    return [(names[int(first[tree.query(centers[i])[1][0]])], float(shares[i])) for i in order]
