"""Prefetch: reads, validates and plans the next session while the current one streams."""

from __future__ import annotations

from typing import Any

from ticktape.actors.effects import Effect, Tell
from ticktape.actors.session_plan import plan_session
from ticktape.actors.shell import Shell
from ticktape.messages.commands import COORDINATOR, LoadSession, SessionLoaded
from ticktape.store.repository import MarketDataRepository


def prefetch_receive(
    repository: MarketDataRepository,
    backfill: MarketDataRepository | None,
    extended_hours: bool,
    message: Any,
) -> list[Effect]:
    """A session's input, and for a session to stream its release stream and its backfill rows
    too: reading and planning here take that work off the coordinator and Upkeep, which are
    busy with the session before."""
    match message:
        case LoadSession(session=session, history=True):
            return [Tell(COORDINATOR, SessionLoaded(repository.load_session(session), True))]
        case LoadSession(session=session):
            data = repository.load_session(session)
            plan = plan_session(data, extended_hours)
            extra = None if backfill is None else backfill.load_session(session)
            return [Tell(COORDINATOR, SessionLoaded(data, False, plan, extra))]
    raise TypeError(f"Prefetch cannot handle {type(message).__name__}")


class Prefetch(Shell):
    """Owns the repository's reads, so file I/O overlaps with streaming on another thread.

    The coordinator asks for one session ahead, so at most two sessions of data are in memory: the
    one streaming and the one loaded here.
    """

    name = "Prefetch"

    def __init__(
        self,
        supervisor: Any,
        repository: MarketDataRepository,
        backfill: MarketDataRepository | None,
        extended_hours: bool,
    ) -> None:
        super().__init__(supervisor)
        self.repository = repository
        self.backfill = backfill
        self.extended_hours = extended_hours

    def handle(self, message: Any) -> None:
        self.carry_out(
            prefetch_receive(self.repository, self.backfill, self.extended_hours, message)
        )
