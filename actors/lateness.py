"""Lateness of paced releases (wall time of release minus the wall time it was due), and the run's
progress in wall time.

A fixed log-spaced histogram, so memory stays flat however long the run. Pacing only: the figures go
to loguru and the manifest, never into the chain.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

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
            "p90": self.quantile(0.9),
            "p99": self.quantile(0.99),
            "p99.9": self.quantile(0.999),
            "max": self.max,
        }


class WallProgress:
    """Events committed against wall seconds since the run began, for the report's throughput
    chart: a point at each commit that makes sessions durable, at most one a second otherwise,
    thinned to every other point past `_MAX_POINTS` so a long run's manifest stays small."""

    _MAX_POINTS = 1024

    def __init__(self, clock: Callable[[], float]) -> None:
        self.started = time.time()
        self._clock = clock
        self._start = clock()
        self.points: list[tuple[int, float]] = [(0, 0.0)]

    def note(self, events: int, *, often: bool = True) -> None:
        seconds = self._clock() - self._start
        if not often and seconds - self.points[-1][1] < 1.0:
            return
        self.points.append((events, round(seconds, 4)))
        if len(self.points) > self._MAX_POINTS:
            self.points = [*self.points[:-1:2], self.points[-1]]

    def summary(self) -> dict[str, Any]:
        started = dt.datetime.fromtimestamp(self.started, dt.UTC).isoformat(timespec="seconds")
        return {"started": started, "seconds": self.points[-1][1], "events": self.points}
