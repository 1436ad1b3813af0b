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
