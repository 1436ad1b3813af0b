"""What every command shares: one-line usage errors and the console."""

from __future__ import annotations

import argparse

from rich.console import Console

console = Console()


class UsageError(Exception):
    """A command used wrongly; the message is one sentence, shown as `ticktape: error: ...`."""


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad option in one line, through `main`, instead of usage text."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def csv_list(text: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in text.split(",") if s.strip())


def local_time(text: str, tz: str) -> int:
    """`YYYY-MM-DD` or `YYYY-MM-DDTHH:MM[:SS]` in the exchange's time zone, as ns UTC."""
    import pandas as pd

    try:
        when = pd.Timestamp(text)
    except ValueError:
        raise UsageError(f"not a time (YYYY-MM-DDTHH:MM): {text!r}") from None
    if when.tzinfo is None:
        when = when.tz_localize(tz)
    return int(when.value)
