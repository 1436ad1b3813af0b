"""The base of the errors ticktape raises to callers: `except TicktapeError` catches them all."""

from __future__ import annotations


class TicktapeError(Exception):
    """An error of ticktape's own; its message is one sentence for a person."""
