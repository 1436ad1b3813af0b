"""Scenario: several days across a holiday and an early close (Thanksgiving week 2024, XNYS).

The run covers Tue 26 Nov to Mon 2 Dec 2024 on the demo data set's own dates. Thursday 28 is a
holiday: no session, no data released for it. Friday 29 closes early at 13:00 New York time: the
session says so, no bar that starts at or after 13:00 is released (the generated files do hold
post-market bars that day), and the last derived bar of each interval ends at 13:00. The weekend
is skipped: Monday's session follows Friday's.

Run it with `ticktape run scenarios/scripts/holiday_and_early_close.py` (or `python` on this file).
"""

from __future__ import annotations

import pandas as pd

from ticktape import (
    Bar,
    DerivedBar,
    RunFinished,
    SessionClosed,
    SessionOpened,
    System,
    TimeAdvanced,
)
from ticktape.scenarios.demo_data import DEMO
from ticktape.scenarios.scripting import scenario

ET = "America/New_York"
NS_PER_MINUTE = 60_000_000_000
START, END = "2024-11-26", "2024-12-02"
SESSIONS = {  # label -> (open, close) local time, early close
    "2024-11-26": ("09:30", "16:00", False),
    "2024-11-27": ("09:30", "16:00", False),
    "2024-11-29": ("09:30", "13:00", True),
    "2024-12-02": ("09:30", "16:00", False),
}
DERIVED = (5, 15, 20)  # 20 minutes: 210 is not a multiple, so Friday's last one is short


def et(day: str, clock: str) -> int:
    return pd.Timestamp(f"{day} {clock}", tz=ET).value


def main() -> None:
    with scenario("holiday", DEMO) as setup:  # Thanksgiving week, with extended hours
        totals = System(setup.config(start=START, end=END, derived=DERIVED)).run(timeout=60)
        events = setup.events(digest=totals.digest)
        files = pd.concat([pd.read_csv(p) for p in sorted(setup.data.glob("*.csv"))])

    opened_ = [e for e in events if isinstance(e, SessionOpened)]
    closed = [e for e in events if isinstance(e, SessionClosed)]
    want = [(day, et(day, o), et(day, c), early) for day, (o, c, early) in SESSIONS.items()]
    assert [(e.session, e.open, e.close, e.early_close) for e in opened_] == want, opened_
    assert [e.session for e in closed] == list(SESSIONS)
    assert [e.ts for e in closed] == [close for _, _, close, _ in want]
    assert totals.sessions == 4 and events[-1] == RunFinished(
        ts=want[-1][2], sessions=4, bars=totals.bars
    )

    # Nothing happens on Thanksgiving or over the weekend: time goes from close to next open.
    thursday = (et("2024-11-28", "00:00"), et("2024-11-29", "00:00"))
    weekend = (et("2024-11-30", "00:00"), et("2024-12-02", "00:00"))
    for lo, hi in (thursday, weekend):
        assert not [e for e in events if lo <= e.ts < hi], "an event on a day with no session"
    for before, after in zip(closed, opened_[1:], strict=False):
        i, j = events.index(before), events.index(after)
        assert events[j - 1] == TimeAdvanced(ts=after.open), (
            "the next session did not open at its open"
        )
        assert all(e.ts in (before.ts, after.open) for e in events[i : j + 1])

    # Friday: the early close cuts both released bars and derived bars at 13:00.
    fri_open, fri_close = et("2024-11-29", "09:30"), et("2024-11-29", "13:00")
    [fri_opened] = [e for e in opened_ if e.session == "2024-11-29"]
    [fri_closed] = [e for e in closed if e.session == "2024-11-29"]
    friday = events[events.index(fri_opened) : events.index(fri_closed) + 1]
    fri_bars = [e for e in friday if isinstance(e, Bar)]
    assert fri_bars and all(fri_open <= b.ts_start < fri_close for b in fri_bars)
    assert not [e for e in events if isinstance(e, Bar) and fri_close <= e.ts_start < weekend[0]]
    assert fri_closed.ts == fri_close and fri_closed.bars == len(fri_bars)
    stamps = pd.to_datetime(files["timestamp"], utc=True, format="ISO8601").dt.as_unit("ns")
    stamps = stamps.astype("int64")
    late_rows = int(((stamps >= fri_close) & (stamps < weekend[0])).sum())
    assert late_rows > 0, "the files should hold Friday bars after 13:00 for this check"
    assert fri_closed.left_out >= late_rows

    fri_derived = [e for e in friday if isinstance(e, DerivedBar)]
    for interval in DERIVED:
        for symbol in DEMO.symbols:
            mine = [d for d in fri_derived if d.interval == interval and d.symbol == symbol]
            assert len(mine) == -(-210 // interval), (interval, symbol, len(mine))
            last = mine[-1]
            assert last.ts_start == max(d.ts_start for d in mine)
            assert last.ts == fri_close, "the last derived bar was not released at the close"
            if 210 % interval == 0:  # 5 and 15: the last one ends exactly at 13:00
                assert last.ts_start + interval * NS_PER_MINUTE == fri_close, (interval, symbol)
            else:  # 20: the last one starts at 12:50 and is cut short by the close
                assert last.ts_start == fri_close - (210 % interval) * NS_PER_MINUTE
                assert last.bars <= 210 % interval, last
            for d in mine:  # each released at its end, the close cutting the last one short
                assert d.ts == min(d.ts_start + interval * NS_PER_MINUTE, fri_close), d

    print(
        "holiday_and_early_close: sessions "
        + ", ".join(
            f"{e.session}{' (early close 13:00)' if e.early_close else ''}" for e in opened_
        )
        + f"; no Thanksgiving; {len(fri_bars)} Friday bars, none at/after 13:00; "
        f"digest {totals.digest[:16]}"
    )


if __name__ == "__main__":
    main()
