"""Nearest stations by a k-d tree on unit-sphere vectors.

Chord distance on the unit sphere is monotone in great-circle distance, so the k nearest by
chord are the k nearest on the ground: the tree (scipy ``cKDTree``) is an exact prefilter, and
travel minutes are then computed only for those k candidates.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree


def unit_vectors(latlon: np.ndarray) -> np.ndarray:
    lat, lon = np.radians(latlon[:, 0]), np.radians(latlon[:, 1])
    c = np.cos(lat)
    return np.column_stack([c * np.cos(lon), c * np.sin(lon), np.sin(lat)])


class StationIndex:
    def __init__(self, latlon: np.ndarray) -> None:
        self.latlon = np.asarray(latlon, dtype=float).reshape(-1, 2)
        self.tree = cKDTree(unit_vectors(self.latlon))

    def nearest(self, points: np.ndarray, k: int = 3) -> np.ndarray:
        """Indices (n, k') of the k' = min(k, stations) nearest stations to each point."""
        k = min(k, len(self.latlon))
        _, idx = self.tree.query(unit_vectors(np.asarray(points, dtype=float).reshape(-1, 2)), k=k)
        return np.asarray(idx).reshape(len(points), k)
