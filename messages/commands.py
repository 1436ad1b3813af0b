"""Messages between actors. In-process only: they may carry numpy columns, and are never encoded.

Requests flow one way (System -> Coordinator -> Prefetch/Upkeep/SessionData/Clock). An actor that
owes work back answers the coordinator with a message; who answers whom is fixed by the design, so
no message carries a reply address, and the same cores run under pykka or the deterministic
simulation.
"""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np

from ticktape.messages.codec import EncodedBatch
from ticktape.messages.columns import BarColumns, QuoteColumns, SessionInput, TradeColumns
from ticktape.messages.plan import SessionPlan
from ticktape.messages.session import Session

# Actor names: the addresses of `Tell`.
COORDINATOR, UPKEEP, PREFETCH, SESSION_DATA, CLOCK = (
    "StreamCoordinator",
    "Upkeep",
    "Prefetch",
    "SessionData",
    "Clock",
)


class Start(msgspec.Struct, frozen=True):
    pass


class NextStep(msgspec.Struct, frozen=True):
    """Release the next step. Data-driven: the coordinator's own nudge (`until` None). Paced: from
    the Clock, with the simulated time the wall clock gave when it woke."""

    until: int | None = None
    anchor_sim: int = 0  # the pacing line: sim time `anchor_sim` was due at wall `anchor_wall`
    anchor_wall: float = 0.0
    speed: float = 0.0


class Pause(msgspec.Struct, frozen=True):
    pass


class Resume(msgspec.Struct, frozen=True):
    pass


class StepOnce(msgspec.Struct, frozen=True):
    """While paused: release exactly the next slice and its upkeep, then stay paused."""


class SetSpeed(msgspec.Struct, frozen=True):
    speed: float


class Stop(msgspec.Struct, frozen=True):
    pass


class ControlAt(msgspec.Struct, frozen=True):
    """A control input of an earlier run, taken again where its log has it: after `after` events
    of the log, at `ts`. A re-run or resume of a paused, stepped or stopped run applies these, so
    it writes the same facts in the same places however the original was paced."""

    after: int
    control: Pause | Resume | StepOnce | Stop
    ts: int


class LoadSession(msgspec.Struct, frozen=True):
    session: Session
    history: bool


class SessionLoaded(msgspec.Struct, frozen=True):
    input: SessionInput
    history: bool
    plan: SessionPlan | None = None  # the release stream of a session to stream (not history)
    backfill: SessionInput | None = None  # the backfill repository's rows of that session


class OpenSession(msgspec.Struct, frozen=True):
    session: Session
    start: int  # when the session's stream starts (the open, or earlier with extended hours)
    backfill: SessionInput | None = None  # where Upkeep looks gaps up (None: no backfill)


class UpkeepStep(msgspec.Struct, frozen=True):
    """Regular-hours bars released in one step, and the minute boundaries it crossed."""

    boundaries: np.ndarray
    bars: BarColumns  # sorted by release time
    release: np.ndarray  # release time of each bar


class CloseSession(msgspec.Struct, frozen=True):
    now: int
    released: int
    left_out: int


class UpkeepReply(msgspec.Struct, frozen=True):
    """Upkeep's findings in log order; for a step, `ends[j]` counts those through boundary j."""

    findings: EncodedBatch
    ends: np.ndarray | None = None


class Released(msgspec.Struct, frozen=True):
    """What the coordinator released up to `now`, for SessionData."""

    now: int
    bars: BarColumns
    trades: TradeColumns
    quotes: QuoteColumns


class Upkept(msgspec.Struct, frozen=True):
    """Upkeep's findings that change session state (fills, quality), for SessionData."""

    events: list[Any]


class AddHistory(msgspec.Struct, frozen=True):
    session: Session
    bars: BarColumns


class BeginSession(msgspec.Struct, frozen=True):
    session: Session


class AdvanceTo(msgspec.Struct, frozen=True):
    ts: int


class WakeAt(msgspec.Struct, frozen=True):
    """Clock-driven mode: answer NextStep when simulated time reaches `ts`."""

    ts: int
