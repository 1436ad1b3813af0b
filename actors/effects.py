"""What a pure actor core asks of the world. A core returns effects; it never does I/O itself.

The pykka shells carry effects out on threads; the deterministic simulation carries them out in one
thread, in a seeded order. The same cores run under both, so the simulation proves the threaded run.
"""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np

from messages.codec import EncodedBatch


class Tell(msgspec.Struct, frozen=True):
    """Send `message` to the actor named `to` (see `messages.commands` for the names)."""

    to: str
    message: Any


class Write(msgspec.Struct, frozen=True):
    """Append records to the log and publish them to the consumer, in this order.

    A paced step also carries its release times (`due`) and the Clock's pacing line
    (sim time, wall time, speed), so the shell can measure lateness; never a fact.
    """

    records: EncodedBatch
    due: np.ndarray | None = None
    line: tuple[int, float, float] | None = None
    parts: np.ndarray | None = None  # where the consumer's pieces end: a step, boundary by boundary


class Commit(msgspec.Struct, frozen=True):
    """Make everything written so far durable (a session close, a control input, the end)."""


class Finish(msgspec.Struct, frozen=True):
    """The run ended ("finished" or "stopped"); `totals` are the coordinator's counts."""

    state: str
    totals: Any


Effect = Tell | Write | Commit | Finish
