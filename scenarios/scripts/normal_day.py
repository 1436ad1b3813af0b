"""Scenario: a normal trading day.

One XNYS session of generated data (three symbols, pre- and post-market bars, trades and quotes of
the first symbol, the generator's own gaps). Every regular-hours bar is released once, in time
order, at the end of its minute; the session opens and closes once; the gaps are exactly the
regular minutes with no bar; the log verifies.

Run it with `ticktape run scenarios/scripts/normal_day.py` (or `python` on this file).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ticktape import (
    Bar,
    GapDetected,
    QualityUpdated,
    Quote,
    RunFinished,
    RunStarted,
    SessionClosed,
    SessionOpened,
    System,
    Trade,
)
from ticktape.scenarios.demo_data import DemoSpec
from ticktape.scenarios.scripting import scenario

ET = "America/New_York"
DAY = "2024-11-26"
NS_PER_MINUTE = 60_000_000_000
SPEC = DemoSpec(start=DAY, end=DAY, trades_per_minute=2, quotes_per_minute=2)


def et(clock: str) -> int:
    """ns UTC of a wall-clock time on DAY in New York."""
    return pd.Timestamp(f"{DAY} {clock}", tz=ET).value


def read_rows(data: Path) -> pd.DataFrame:
    """Every row of every generated file, with its instant in ns UTC (the independent view)."""
    frame = pd.concat([pd.read_csv(p) for p in sorted(data.glob("*.csv"))], ignore_index=True)
    frame["ns"] = (
        pd.to_datetime(frame["timestamp"], utc=True, format="ISO8601")
        .dt.as_unit("ns")
        .astype("int64")
    )
    return frame


def main() -> None:
    with scenario("normal-day", SPEC) as setup:
        with System(setup.config()) as system:
            system.start()
            totals = system.wait(timeout=60)
            metrics = {s: system.query("session_metrics", s) for s in SPEC.symbols}
        events = setup.events(digest=totals.digest)
        rows = read_rows(setup.data)

    open_, close = et("09:30"), et("16:00")
    assert isinstance(events[0], RunStarted) and isinstance(events[-1], RunFinished)

    opened_ = [e for e in events if isinstance(e, SessionOpened)]
    closed = [e for e in events if isinstance(e, SessionClosed)]
    assert [(e.session, e.open, e.close, e.early_close) for e in opened_] == [
        (DAY, open_, close, False)
    ]
    assert [e.session for e in closed] == [DAY]
    assert closed[0].ts == close

    # Every regular-hours bar, each once, in (release time, symbol) order, never before its end.
    bars = rows[rows["open"].notna() & (rows["ns"] >= open_) & (rows["ns"] < close)]
    bars = bars.sort_values(["ns", "symbol"], kind="stable")
    want = list(
        zip(
            bars["symbol"],
            bars["ns"],
            bars["open"],
            bars["high"],
            bars["low"],
            bars["close"],
            bars["volume"].astype(float),
            strict=True,
        )
    )
    released = [e for e in events if isinstance(e, Bar)]
    got = [(b.symbol, b.ts_start, b.open, b.high, b.low, b.close, b.volume) for b in released]
    assert got == want, f"{len(got)} bars released, {len(want)} in the files"
    assert all(b.ts == b.ts_start + NS_PER_MINUTE for b in released), "a bar came out early"
    assert closed[0].bars == len(released) == totals.bars
    first_bar = events.index(released[0])
    last_bar = events.index(released[-1])
    assert events.index(opened_[0]) < first_bar < last_bar < events.index(closed[0])

    # One time order for everything; ticks stay inside regular hours.
    times = [e.ts for e in events]
    assert times == sorted(times), "time went backwards in the log"
    ticks = [e for e in events if isinstance(e, Trade | Quote)]
    assert ticks and all(open_ <= t.ts < close for t in ticks)
    outside = int(((rows["ns"] < open_) | (rows["ns"] >= close)).sum())
    assert closed[0].left_out == totals.left_out == outside > 0

    # Gaps: exactly the regular minutes with no bar; final quality agrees with them.
    minutes = set(range(open_, close, NS_PER_MINUTE))
    for symbol in SPEC.symbols:
        have = set(bars.loc[bars["symbol"] == symbol, "ns"])
        gaps = [e.ts_start for e in events if isinstance(e, GapDetected) and e.symbol == symbol]
        assert gaps == sorted(minutes - have), symbol
        final = [e for e in events if isinstance(e, QualityUpdated) and e.symbol == symbol][-1]
        assert (final.expected, final.real, final.filled) == (390, len(have), 0), final
        assert final.quality == len(have) / 390
        assert metrics[symbol]["real"] == len(have), metrics[symbol]

    print(
        f"normal_day: {DAY}, {len(released)} bars, {len(ticks)} ticks, "
        f"{sum(isinstance(e, GapDetected) for e in events)} gaps, {len(events)} events, "
        f"digest {totals.digest[:16]}"
    )


if __name__ == "__main__":
    main()
