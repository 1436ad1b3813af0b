"""How a run fails, for callers: light to import (the CLI catches these before any run)."""

from __future__ import annotations

from ticktape.messages.errors import TicktapeError


class ConfigError(TicktapeError, ValueError):
    """A run that cannot start; the message is one sentence naming the problem."""


class ActorFailure(TicktapeError, RuntimeError):
    def __init__(self, actor: str, error: BaseException) -> None:
        super().__init__(f"{actor} failed: {type(error).__name__}: {error}")
        self.actor = actor
        self.error = error
