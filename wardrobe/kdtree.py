"""Exact nearest neighbours among a few thousand colours, for naming them.

OpenCV's FLANN k-d tree, one tree searched to the end (checks unlimited), so every answer is the exact one: the same
neighbours as SciPy's cKDTree (the same families on 20,000 random CIELAB colours; points at exactly equal distances,
which whole-number RGB colours meet, may come in another order), about as fast, and without importing SciPy, which
costs the daemon 29-37 MB of memory (docs/speed.md).
"""

from __future__ import annotations

import numpy as np

SINGLE_TREE = 4
"""FLANN's FLANN_INDEX_KDTREE_SINGLE: one k-d tree, built on the points as they are (no randomised trees)."""
UNLIMITED = -1
"""FLANN_CHECKS_UNLIMITED: search every branch that may hold a nearer point, so the result is exact."""
FLOAT32_SAFE = 1e4
"""FLANN computes in float32: a point further out than this (no colour is; CIELAB stays within ±128) is compared with
every point in float64 instead (at 1e10 float32 picks a wrong neighbour, at 1e20 none at all)."""


class KDTree:
    """query(q, k) gives the distances and indices of the k points nearest to q, nearest first."""

    def __init__(self, points: np.ndarray) -> None:
        import cv2

        self.points = np.ascontiguousarray(points, np.float32)
        if self.points.ndim != 2 or len(self.points) == 0:
            raise ValueError(f"a k-d tree needs a non-empty (n, d) array of points, not one of shape {np.shape(points)}")
        self.index = cv2.flann_Index(self.points, {"algorithm": SINGLE_TREE, "leaf_max_size": 10})

    def query(self, q: np.ndarray, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """(distances, indices), each of k values, for one point q; ValueError for a point that is not finite."""
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be a whole number of neighbours, at least 1, not {k!r}")
        q = np.asarray(q, np.float64).reshape(-1)
        if q.shape != self.points.shape[1:] or not np.isfinite(q).all():
            raise ValueError(f"no nearest colour to {q.tolist()}: {self.points.shape[1]} finite numbers are needed")
        k = min(k, len(self.points))
        if np.abs(q).max() <= FLOAT32_SAFE:
            i, d2 = self.index.knnSearch(q.astype(np.float32)[None], k, params={"checks": UNLIMITED})
            i, d2 = i[0].astype(np.intp), d2[0]
            if ((i >= 0) & (i < len(self.points))).all() and np.isfinite(d2).all():
                return np.sqrt(np.maximum(d2, 0)), i
        d = np.linalg.norm(self.points.astype(np.float64) - q, axis=1)  # every point, in float64
        i = np.argsort(d, kind="stable")[:k]
        return d[i], i
