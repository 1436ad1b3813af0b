"""Crash points for the kill -9 tests: `TICKTAPE_CRASH_AT=point:n` kills the process with SIGKILL
the n-th time `point` is reached ("commit" inside a log transaction; the coordinator's "open",
"step" and "close" between two writes). Unset, as always outside those tests, it costs nothing."""

from __future__ import annotations

import os
import signal
from collections import Counter

_POINT, _, _AT = os.environ.get("TICKTAPE_CRASH_AT", "").partition(":")
_reached: Counter[str] = Counter()


def reached(point: str) -> None:
    if not _POINT or point != _POINT:
        return
    _reached[point] += 1
    if _reached[point] == int(_AT or 1):
        os.kill(os.getpid(), signal.SIGKILL)
