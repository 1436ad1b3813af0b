"""Trading sessions from `exchange-calendars`, which knows holidays, early closes and late opens."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import exchange_calendars as xcals
import pandas as pd

from messages.session import Session


class CalendarError(ValueError):
    pass


@lru_cache(maxsize=8)
def _exchange_calendar(name: str) -> xcals.ExchangeCalendar:
    try:
        return xcals.get_calendar(name, start="1995-01-01")
    except xcals.errors.InvalidCalendarName:
        raise CalendarError(f"unknown calendar {name!r}") from None


class TradingCalendar:
    """Sessions of one exchange calendar (XNYS by default)."""

    def __init__(self, name: str = "XNYS") -> None:
        self.name = name
        self._cal = _exchange_calendar(name)
        self.tz = str(self._cal.tz)

    def _labels(self) -> pd.DatetimeIndex:
        return self._cal.sessions

    def _session_at(self, i: int) -> Session:
        labels = self._labels()
        opens = self._cal.schedule["open"]
        closes = self._cal.schedule["close"]
        label = labels[i]
        open_ns, close_ns = int(opens.iloc[i].value), int(closes.iloc[i].value)
        prev_close = int(closes.iloc[i - 1].value) if i > 0 else open_ns - 12 * 3600 * 10**9
        next_open = (
            int(opens.iloc[i + 1].value) if i + 1 < len(labels) else close_ns + 12 * 3600 * 10**9
        )
        return Session(
            label=label.strftime("%Y-%m-%d"),
            open=open_ns,
            close=close_ns,
            early_close=bool(label in self._cal.early_closes),
            window_start=(prev_close + open_ns) // 2,
            window_end=(close_ns + next_open) // 2,
        )

    def _index(self, day: str, side: str) -> int:
        try:
            when = pd.Timestamp(dt.date.fromisoformat(day))
        except ValueError:
            raise CalendarError(f"not a date (YYYY-MM-DD): {day!r}") from None
        labels = self._labels()
        if when < labels[0] or when > labels[-1]:
            raise CalendarError(
                f"{day} is outside the {self.name} calendar "
                f"({labels[0]:%Y-%m-%d} to {labels[-1]:%Y-%m-%d})"
            )
        return int(labels.searchsorted(when, side=side))

    def sessions(self, start: str, end: str) -> list[Session]:
        """Sessions with start <= label <= end, in order."""
        lo, hi = self._index(start, "left"), self._index(end, "right")
        return [self._session_at(i) for i in range(lo, hi)]

    def sessions_before(self, day: str, count: int) -> list[Session]:
        """The `count` sessions before `day`, oldest first (for trailing history)."""
        hi = self._index(day, "left")
        return [self._session_at(i) for i in range(max(0, hi - count), hi)]
