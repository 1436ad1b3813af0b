"""Trading sessions from `exchange-calendars`, which knows holidays, early closes and late opens.

Importing exchange-calendars and building a calendar costs about a second, most of it holiday
rules. So a calendar is built only for the whole years a query needs (plus a year either side, for
the neighbouring sessions' windows), and kept as a small table of opens and closes: in memory, and
in a cache folder keyed by calendar, years and exchange-calendars version. A table read from the
cache gives the very sessions a fresh build gives.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from functools import lru_cache
from importlib.metadata import version
from pathlib import Path

import msgspec
import numpy as np

from ticktape.messages.errors import TicktapeError
from ticktape.messages.session import Session

FIRST_DAY = dt.date(1995, 1, 1)  # the earliest session a run may ask for
_LAST_YEARS = 1  # and the latest: this many years from today (exchange-calendars' own default)
_SESSIONS_PER_YEAR = 200  # fewer than any exchange has, to size the years a trailing window needs
_NS_PER_DAY = 86_400 * 10**9
_HALF_DAY = 12 * 3600 * 10**9
_TABLE_FORMAT = 2  # bump when _Table's columns change: cached tables of another format are rebuilt


class CalendarError(TicktapeError, ValueError):
    pass


class _Table(msgspec.Struct, frozen=True):
    """Every session of some whole years, as columns."""

    tz: str
    days: np.ndarray  # datetime64[D] session labels
    opens: np.ndarray  # int64 ns UTC
    closes: np.ndarray
    early: np.ndarray  # bool: an early close
    break_starts: np.ndarray  # int64 ns UTC; 0 where the session has no break
    break_ends: np.ndarray


def cache_folder() -> Path:
    base = os.environ.get("TICKTAPE_CACHE") or Path.home() / ".cache" / "ticktape"
    return Path(base) / "calendars"


@lru_cache(maxsize=32)
def _table(name: str, first_year: int, last_year: int) -> _Table:
    xcals = version("exchange-calendars")
    stem = f"{name.replace('/', '_')}-{first_year}-{last_year}-xcals{xcals}-t{_TABLE_FORMAT}"
    path = cache_folder() / f"{stem}.npz"
    columns = [f for f in _Table.__struct_fields__ if f != "tz"]
    try:
        with np.load(path) as stored:
            return _Table(str(stored["tz"]), *(stored[k] for k in columns))
    except FileNotFoundError:
        pass
    table = _build(name, first_year, last_year)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".npz", delete=False) as part:
        np.savez(part, **msgspec.structs.asdict(table))
    os.replace(part.name, path)  # readers never see a half-written table
    return table


def _build(name: str, first_year: int, last_year: int) -> _Table:
    import exchange_calendars as xcals
    import pandas as pd

    try:
        factory = xcals.calendar_utils.global_calendar_dispatcher._calendar_factories[
            xcals.resolve_alias(name)
        ]
    except (KeyError, xcals.errors.InvalidCalendarName):
        raise CalendarError(f"unknown calendar {name!r}") from None
    # Some calendars know their holidays only so far (XSHG: to 2026): stop the table there.
    bounds = factory.bound_min(), factory.bound_max()
    start = max(pd.Timestamp(f"{first_year}-01-01"), bounds[0] or pd.Timestamp.min)
    end = min(pd.Timestamp(f"{last_year}-12-31"), bounds[1] or pd.Timestamp.max)
    cal = xcals.get_calendar(name, start=start, end=end)
    labels, schedule = cal.sessions, cal.schedule

    def instants(column: str) -> np.ndarray:  # NaT (no break) becomes 0
        values = schedule[column].values.astype("datetime64[ns]")
        return np.where(np.isnat(values), 0, values.astype(np.int64))

    return _Table(
        tz=str(cal.tz),
        days=labels.values.astype("datetime64[D]"),
        opens=instants("open"),
        closes=instants("close"),
        early=np.asarray(labels.isin(cal.early_closes), dtype=bool),
        break_starts=instants("break_start"),
        break_ends=instants("break_end"),
    )


def _date(day: str) -> dt.date:
    try:
        return dt.date.fromisoformat(day)
    except (TypeError, ValueError):
        raise CalendarError(f"not a date (YYYY-MM-DD): {day!r}") from None


class TradingCalendar:
    """Sessions of one exchange calendar (XNYS by default)."""

    def __init__(self, name: str = "XNYS") -> None:
        self.name = name
        today = dt.date.today()
        self.last_day = today.replace(year=today.year + _LAST_YEARS, day=min(today.day, 28))

    @property
    def tz(self) -> str:
        """The exchange's time zone, for printing times to people."""
        year = dt.date.today().year
        return _table(self.name, year - 1, year + 1).tz

    def _years(self, first: dt.date, last: dt.date, before: int = 0) -> _Table:
        for day in (first, last):
            if not FIRST_DAY <= day <= self.last_day:
                raise CalendarError(
                    f"{day} is outside the {self.name} calendar ({FIRST_DAY} to {self.last_day})"
                )
        first_year = max(FIRST_DAY.year, first.year - 1 - before // _SESSIONS_PER_YEAR)
        return _table(self.name, first_year, last.year + 1)

    def _sessions(self, table: _Table, lo: int, hi: int) -> list[Session]:
        """Sessions lo..hi-1 of `table`; each window runs from the middle of the night before
        to the middle of the night after (a quarter day beyond the table's ends)."""
        opens, closes = table.opens, table.closes
        prev_close = np.concatenate(([opens[0] - _HALF_DAY], closes[:-1]))
        next_open = np.concatenate((opens[1:], [closes[-1] + _HALF_DAY]))
        labels = np.datetime_as_string(table.days[lo:hi])
        return [
            Session(
                label=str(label),
                open=int(opens[i]),
                close=int(closes[i]),
                early_close=bool(table.early[i]),
                window_start=(int(prev_close[i]) + int(opens[i])) // 2,
                window_end=(int(closes[i]) + int(next_open[i])) // 2,
                break_start=int(table.break_starts[i]),
                break_end=int(table.break_ends[i]),
            )
            for label, i in zip(labels, range(lo, hi), strict=True)
        ]

    def sessions(self, start: str, end: str) -> list[Session]:
        """Sessions with start <= label <= end, in order."""
        first, last = _date(start), _date(end)
        table = self._years(first, last)
        lo = int(table.days.searchsorted(np.datetime64(first), side="left"))
        hi = int(table.days.searchsorted(np.datetime64(last), side="right"))
        return self._sessions(table, lo, hi)

    def sessions_before(self, day: str, count: int) -> list[Session]:
        """The `count` sessions before `day`, oldest first (for trailing history)."""
        when = _date(day)
        table = self._years(when, when, before=count)
        hi = int(table.days.searchsorted(np.datetime64(when), side="left"))
        return self._sessions(table, max(0, hi - count), hi)
