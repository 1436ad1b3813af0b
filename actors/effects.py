"""What a pure actor core asks of the world. A core returns effects; it never does I/O itself.

The pykka shells carry effects out on threads; the deterministic simulation carries them out in one
thread, in a seeded order. The same cores run under both, so the simulation proves the threaded run.
"""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np

from ticktape.messages.codec import EncodedBatch


class Tell(msgspec.Struct, frozen=True):
    """Send `message` to the actor named `to` (see `messages.commands` for the names)."""

    to: str
    message: Any


class Write(msgspec.Struct, frozen=True):
    """Append records to the log and publish them to the consumer, in this order."""

    records: EncodedBatch
    parts: np.ndarray | None = None  # where the consumer's pieces end: a step, boundary by boundary


class Measure(msgspec.Struct, frozen=True):
    """A paced step's records are out: measure their lateness against their release times
    (`due`) on the Clock's pacing line (sim time, wall time, speed). Pacing, never a fact."""

    due: np.ndarray
    line: tuple[int, float, float]


class Commit(msgspec.Struct, frozen=True):
    """Make everything written so far durable (a session close, a control input, the end)."""


class Finish(msgspec.Struct, frozen=True):
    """The run ended ("finished" or "stopped"); `totals` are the coordinator's counts."""

    state: str
    totals: Any


Effect = Tell | Write | Measure | Commit | Finish
