"""Upkeep: session transitions and data quality, around the pure `UpkeepCore`."""

from __future__ import annotations

from typing import Any

from ticktape.actors.backfill import SessionBackfill
from ticktape.actors.effects import Effect, Tell
from ticktape.actors.session_plan import session_break
from ticktape.actors.shell import Shell
from ticktape.actors.upkeep_core import UpkeepCore
from ticktape.messages.codec import EncodedBatch
from ticktape.messages.commands import (
    CLOCK,
    COORDINATOR,
    SESSION_DATA,
    AdvanceTo,
    CloseSession,
    OpenSession,
    UpkeepReply,
    UpkeepStep,
    Upkept,
)
from ticktape.messages.events import Event, SessionOpened, TimeAdvanced
from ticktape.messages.session import Session


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
        *session_break(start, session),
    ]


def upkeep_receive(core: UpkeepCore, message: Any) -> list[Effect]:
    """Moves the clock at day transitions; answers each step with its findings per boundary."""
    match message:
        case OpenSession(session=session, start=start, backfill=backfill):
            core.open_session(session, None if backfill is None else SessionBackfill(backfill))
            return [
                Tell(CLOCK, AdvanceTo(start)),
                Tell(COORDINATOR, UpkeepReply(EncodedBatch.of(session_opened(session, start)))),
            ]
        case UpkeepStep(boundaries=boundaries, bars=bars, release=release):
            findings = core.advance_many(boundaries, bars, release)
            return [
                Tell(SESSION_DATA, Upkept(findings.changes)),
                Tell(COORDINATOR, UpkeepReply(findings.records, findings.ends)),
            ]
        case CloseSession(now=now, released=released, left_out=left_out):
            findings = core.close(now, released, left_out)
            return [
                Tell(SESSION_DATA, Upkept(findings.changes)),
                Tell(COORDINATOR, UpkeepReply(findings.records, findings.ends)),
            ]
    raise TypeError(f"Upkeep cannot handle {type(message).__name__}")


class Upkeep(Shell):
    name = "Upkeep"

    def __init__(self, supervisor: Any, core: UpkeepCore) -> None:
        super().__init__(supervisor)
        self.core = core

    def handle(self, message: Any) -> None:
        self.carry_out(upkeep_receive(self.core, message))
