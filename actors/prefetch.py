"""Prefetch: reads and validates the next session while the current one streams."""

from __future__ import annotations

from typing import Any

from actors.effects import Effect, Tell
from actors.shell import Shell
from messages.commands import COORDINATOR, LoadSession, SessionLoaded
from store.repository import MarketDataRepository


def prefetch_receive(repository: MarketDataRepository, message: Any) -> list[Effect]:
    match message:
        case LoadSession(session=session, history=history):
            return [Tell(COORDINATOR, SessionLoaded(repository.load_session(session), history))]
    raise TypeError(f"Prefetch cannot handle {type(message).__name__}")


class Prefetch(Shell):
    """Owns the repository's reads, so file I/O overlaps with streaming on another thread.

    The coordinator asks for one session ahead, so at most two sessions of data are in memory: the
    one streaming and the one loaded here.
    """

    name = "Prefetch"

    def __init__(self, supervisor: Any, repository: MarketDataRepository) -> None:
        super().__init__(supervisor)
        self.repository = repository

    def handle(self, message: Any) -> None:
        self.carry_out(prefetch_receive(self.repository, message))
