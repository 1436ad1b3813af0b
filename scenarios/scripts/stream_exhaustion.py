"""Scenario: stream exhaustion.

The data of the day ends at 14:00 New York time: the last bar is the 13:59 bar. Once every stream
is exhausted, time moves straight to the close (16:00) before the session is closed, and each
minute from 14:00 to 15:59 is reported as a gap once its end has passed, i.e. at the close.

A second symbol whose data runs the whole day checks the other half: while one stream still has
data, time keeps moving minute by minute, and the short symbol's missing minutes are reported as
they pass, not all at once at the close.

Run it with `ticktape run scenarios/scripts/stream_exhaustion.py` (or `python` on this file).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ticktape import (
    Bar,
    GapDetected,
    QualityUpdated,
    SessionClosed,
    SessionOpened,
    System,
    TimeAdvanced,
)
from ticktape.scenarios.demo_data import DemoSpec
from ticktape.scenarios.scripting import Scenario, scenario

ET = "America/New_York"
DAY = "2024-11-26"
NS_PER_MINUTE = 60_000_000_000
SHORT, FULL = "ACME", "BOLT"


def et(clock: str) -> int:
    return pd.Timestamp(f"{DAY} {clock}", tz=ET).value


def cut_at(path: Path, end: int) -> None:
    """Keep only the rows of a bar file that start before `end` (ns UTC)."""
    frame = pd.read_csv(path)
    ns = pd.to_datetime(frame["timestamp"], utc=True, format="ISO8601").dt.as_unit("ns")
    frame[ns.astype("int64") < end].to_csv(path, index=False, lineterminator="\n")


def run(setup: Scenario, name: str, symbols: tuple[str, ...]) -> list:
    digest = System(setup.config(name, symbols=symbols)).run(timeout=60).digest
    return setup.events(name, digest)


def main() -> None:
    open_, two_pm, close = et("09:30"), et("14:00"), et("16:00")
    spec = DemoSpec(symbols=(SHORT, FULL), start=DAY, end=DAY, gap_rate=0.0)
    with scenario("exhaustion", spec) as setup:
        cut_at(setup.data / f"{SHORT}.csv", two_pm)
        alone = run(setup, "alone", (SHORT,))
        both = run(setup, "both", (SHORT, FULL))

    # Alone: the stream is exhausted at 14:00, so time jumps to the close, then the session closes.
    bars = [e for e in alone if isinstance(e, Bar)]
    assert len(bars) == (two_pm - open_) // NS_PER_MINUTE == 270
    assert bars[-1].ts_start == two_pm - NS_PER_MINUTE and bars[-1].ts == two_pm
    [opened] = [e for e in alone if isinstance(e, SessionOpened)]
    assert (opened.open, opened.close) == (open_, close)
    [closed] = [e for e in alone if isinstance(e, SessionClosed)]
    at_close = alone.index(closed)
    advances = [e.ts for e in alone[:at_close] if isinstance(e, TimeAdvanced)]
    assert advances[-2:] == [two_pm, close], "time did not move from the last data to the close"
    assert closed.ts == close and closed.bars == 270
    last_bar = alone.index(bars[-1])
    moved = alone.index(TimeAdvanced(ts=close))
    assert last_bar < moved < at_close

    missing = list(range(two_pm, close, NS_PER_MINUTE))
    gaps = [e for e in alone if isinstance(e, GapDetected)]
    assert [g.ts_start for g in gaps] == missing, f"{len(gaps)} gaps, want {len(missing)}"
    assert all(g.ts == close and g.symbol == SHORT for g in gaps)
    assert all(moved < alone.index(g) < at_close for g in gaps)
    final = [e for e in alone if isinstance(e, QualityUpdated)][-1]
    assert (final.expected, final.real) == (390, 270) and final.quality == 270 / 390, final

    # Beside a full stream: time goes on minute by minute, the short symbol's gaps come as due.
    short_gaps = [e for e in both if isinstance(e, GapDetected) and e.symbol == SHORT]
    assert [g.ts_start for g in short_gaps] == missing
    assert all(g.ts == g.ts_start + NS_PER_MINUTE for g in short_gaps), "gaps were not on time"
    assert not any(isinstance(e, GapDetected) and e.symbol == FULL for e in both)
    assert sum(isinstance(e, Bar) and e.symbol == FULL for e in both) == 390

    print(
        f"stream_exhaustion: data ends 14:00 ET; time moved 14:00 -> 16:00 before SessionClosed; "
        f"{len(gaps)} gaps reported at the close; {len(short_gaps)} as due beside a full stream"
    )


if __name__ == "__main__":
    main()
