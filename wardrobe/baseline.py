"""The original system's colour method, kept only as the reference `wardrobe bench` and the studies measure against."""

from __future__ import annotations

import numpy as np


def original_colours(rgb: np.ndarray, alpha: np.ndarray, k: int = 3) -> list[tuple[str, float]]:
    """The original method: KMeans on every masked pixel in RGB, nearest CSS3 by a KD-tree built per call."""
    import cv2
    import webcolors

    from wardrobe.kdtree import KDTree

    px = rgb[alpha > 0].astype(np.float32)
    if len(px) == 0:
        return []
    cv2.setRNGSeed(0)
    crit = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.5)
    _, labels, centers = cv2.kmeans(px, min(k, len(px)), None, crit, 1, cv2.KMEANS_PP_CENTERS)
    shares = np.bincount(labels.ravel(), minlength=len(centers)) / len(labels)
    names = sorted(webcolors.names("css3"))
    rgb = np.array([tuple(webcolors.name_to_rgb(n)) for n in names], np.float32)
    _, first = np.unique(rgb, axis=0, return_index=True)  # one name of twins ("dimgray", "dimgrey"): the first
    tree = KDTree(rgb[first])
    order = np.argsort(-shares)
    return [(names[int(first[tree.query(centers[i])[1][0]])], float(shares[i])) for i in order]
