"""What every command shares: one-line usage errors and the console."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import Progress, ProgressColumn
from rich.table import Table

if TYPE_CHECKING:
    from ticktape.store.eventlog import EventLog

console = Console()


def stderr_progress(*columns: ProgressColumn) -> Progress:
    """A progress display on stderr that vanishes when done, and stays off when not a terminal."""
    return Progress(
        *columns,
        console=Console(stderr=True),
        transient=True,
        disable=not sys.stderr.isatty(),
    )


def key_values(title: str, rows: dict[str, str]) -> Table:
    """A two-column summary table, as `run`, `demo` and `ingest` print at the end."""
    table = Table(title=title, show_header=False)
    for key, value in rows.items():
        table.add_row(key, value)
    return table


class UsageError(Exception):
    """A command used wrongly; the message is one sentence, shown as `ticktape: error: ...`."""


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad option in one line, through `main`, instead of usage text,
    and shows every option's default in its help."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("formatter_class", argparse.ArgumentDefaultsHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def csv_list(text: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in text.split(",") if s.strip())


def exchange_tz(log: EventLog) -> str:
    """The time zone people read a log's times in: its calendar's."""
    from ticktape.store.calendar import TradingCalendar

    return TradingCalendar(log.manifest().get("config", {}).get("calendar", "XNYS")).tz


def local_time(text: str | None, tz: str, option: str) -> int | None:
    """A simulated time given in the exchange's time zone (or with an offset), as ns UTC."""
    if text is None:
        return None
    import pandas as pd

    try:
        stamp = pd.Timestamp(text)
    except ValueError:
        raise UsageError(f"{option} {text!r} is not a time like 2013-10-07T10:00") from None
    stamp = stamp.tz_localize(tz) if stamp.tzinfo is None else stamp
    return int(stamp.tz_convert("UTC").value)
