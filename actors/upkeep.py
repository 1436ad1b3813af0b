"""Upkeep: session transitions and data quality, around the pure `UpkeepCore`."""

from __future__ import annotations

from typing import Any

from actors.shell import Shell
from actors.upkeep_core import UpkeepCore
from messages.commands import (
    AdvanceTo,
    CloseSession,
    OpenSession,
    UpkeepReply,
    UpkeepStep,
    Upkept,
)
from messages.events import Event, SessionOpened, TimeAdvanced
from messages.session import Session


def session_opened(session: Session, start: int) -> list[Event]:
    """The day transition: time moves to the session's start, then the session opens."""
    return [
        TimeAdvanced(ts=start),
        SessionOpened(
            ts=start,
            session=session.label,
            open=session.open,
            close=session.close,
            early_close=session.early_close,
        ),
    ]


class Upkeep(Shell):
    """Moves the clock at day transitions; answers each step with its findings per boundary."""

    name = "Upkeep"

    def __init__(self, supervisor: Any, core: UpkeepCore, clock: Any, session_data: Any) -> None:
        super().__init__(supervisor)
        self.core = core
        self.clock = clock
        self.session_data = session_data

    def handle(self, message: Any) -> None:
        match message:
            case OpenSession(session=session, start=start, reply_to=reply_to):
                self.core.open_session(session)
                self.clock.tell(AdvanceTo(start))
                reply_to.tell(UpkeepReply([session_opened(session, start)]))
            case UpkeepStep(boundaries=boundaries, bars=bars, release=release, reply_to=reply_to):
                findings = self.core.advance_many(boundaries, bars, release)
                self.session_data.tell(Upkept(findings.changes))
                reply_to.tell(UpkeepReply(findings.events()))  # the coordinator re-encodes
            case CloseSession(now=now, released=released, left_out=left_out, reply_to=reply_to):
                findings = self.core.close(now, released, left_out)
                self.session_data.tell(Upkept(findings.changes))
                reply_to.tell(UpkeepReply(findings.events()))
