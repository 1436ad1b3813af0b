"""How a run fails, for callers: light to import (the CLI catches these before any run)."""

from __future__ import annotations


class ConfigError(ValueError):
    """A run that cannot start; the message is one sentence naming the problem."""


class ActorFailure(RuntimeError):
    def __init__(self, actor: str, error: BaseException) -> None:
        super().__init__(f"{actor} failed: {type(error).__name__}: {error}")
        self.actor = actor
        self.error = error
