"""Lateness of paced releases: wall time of release minus the wall time it was due.

A fixed log-spaced histogram, so memory stays flat however long the run. Pacing only: the figures go
to loguru and the manifest, never into the chain.
"""

from __future__ import annotations

import numpy as np

# Bin edges from 1 µs to 1000 s, 20 bins per decade; index 0 holds releases on time or early.
_EDGES = np.logspace(-6, 3, 9 * 20 + 1)


class LatenessHistogram:
    def __init__(self) -> None:
        self.counts = np.zeros(len(_EDGES) + 1, dtype=np.int64)
        self.max = 0.0
        self.releases = 0

    def add(self, late: np.ndarray) -> None:
        if len(late) == 0:
            return
        self.counts += np.bincount(np.searchsorted(_EDGES, late), minlength=len(self.counts))
        self.max = max(self.max, float(late.max()))
        self.releases += len(late)

    def quantile(self, q: float) -> float:
        """Seconds; the upper edge of the bin holding the q-quantile (0 when on time)."""
        if not self.releases:
            return 0.0
        index = int(np.searchsorted(np.cumsum(self.counts), q * self.releases))
        if index == 0:
            return 0.0
        return min(float(_EDGES[min(index, len(_EDGES) - 1)]), self.max)

    def summary(self) -> dict[str, float]:
        if not self.releases:
            return {}
        return {
            "releases": float(self.releases),
            "p50": self.quantile(0.5),
            "p99": self.quantile(0.99),
            "max": self.max,
        }
