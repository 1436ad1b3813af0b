"""Messages between actors. In-process only: they may carry numpy columns and actor refs, and are
never encoded. Requests flow one way (System -> Coordinator -> Prefetch/Upkeep/SessionData/Clock);
an actor that owes work back names its requester in `reply_to` and answers with a message.
"""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np

from messages.columns import BarColumns, QuoteColumns, SessionInput, TradeColumns
from messages.events import Event
from messages.session import Session


class Start(msgspec.Struct, frozen=True):
    pass


class NextStep(msgspec.Struct, frozen=True):
    """The coordinator's own nudge to release its next step."""


class Pause(msgspec.Struct, frozen=True):
    pass


class Resume(msgspec.Struct, frozen=True):
    pass


class Stop(msgspec.Struct, frozen=True):
    pass


class LoadSession(msgspec.Struct, frozen=True):
    session: Session
    history: bool
    reply_to: Any


class SessionLoaded(msgspec.Struct, frozen=True):
    input: SessionInput
    history: bool


class OpenSession(msgspec.Struct, frozen=True):
    session: Session
    start: int  # when the session's stream starts (the open, or earlier with extended hours)
    reply_to: Any


class UpkeepStep(msgspec.Struct, frozen=True):
    """Regular-hours bars released in one step, and the minute boundaries it crossed."""

    boundaries: np.ndarray
    bars: BarColumns  # sorted by release time
    release: np.ndarray  # release time of each bar
    reply_to: Any


class CloseSession(msgspec.Struct, frozen=True):
    now: int
    released: int
    left_out: int
    reply_to: Any


class UpkeepReply(msgspec.Struct, frozen=True):
    """Upkeep's findings, one list per boundary of the request (one list for open/close)."""

    findings: list[list[Event]]


class Released(msgspec.Struct, frozen=True):
    """What the coordinator released up to `now`, for SessionData."""

    now: int
    bars: BarColumns
    trades: TradeColumns
    quotes: QuoteColumns


class Upkept(msgspec.Struct, frozen=True):
    """Upkeep's findings that change session state (fills, derived bars, quality)."""

    events: list[Event]


class AddHistory(msgspec.Struct, frozen=True):
    input: SessionInput


class BeginSession(msgspec.Struct, frozen=True):
    session: Session


class AdvanceTo(msgspec.Struct, frozen=True):
    ts: int


class WakeAt(msgspec.Struct, frozen=True):
    """Clock-driven mode: tell `reply_to` NextStep when simulated time reaches `ts`."""

    ts: int
    reply_to: Any
