"""MinuteGrid: placing 1m bars, counting them by state, and building derived bars."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from ticktape.actors.minute_grid import FILLED, MISSING, REAL, SYNTHETIC, MinuteGrid
from ticktape.messages.columns import BarColumns
from ticktape.messages.session import NS_PER_MINUTE, Session
from ticktape.store.calendar import TradingCalendar

ET = "America/New_York"


def _session(day: str) -> Session:
    return TradingCalendar("XNYS").sessions(day, day)[0]


def _bars(session: Session, symbol, minute, open_, high, low, close, volume) -> BarColumns:
    minute = np.asarray(minute, dtype=np.int64)
    return BarColumns(
        symbol=np.asarray(symbol, dtype=np.int32),
        ts_start=session.open + minute * NS_PER_MINUTE,
        open=np.asarray(open_, dtype=float),
        high=np.asarray(high, dtype=float),
        low=np.asarray(low, dtype=float),
        close=np.asarray(close, dtype=float),
        volume=np.asarray(volume, dtype=float),
        source=np.arange(len(minute), dtype=np.int64),
    )


def _flat(session: Session, symbol, minute, price, volume=100.0) -> BarColumns:
    n = len(minute)
    p = np.broadcast_to(np.asarray(price, dtype=float), (n,))
    return _bars(session, np.broadcast_to(symbol, (n,)), minute, p, p, p, p, np.full(n, volume))


def _et(ts: int) -> str:
    return pd.Timestamp(ts, tz="UTC").tz_convert(ET).strftime("%H:%M")


def test_shape_and_minute_of() -> None:
    session = _session("2013-10-07")
    grid = MinuteGrid(session, 3)
    assert grid.minutes == 390
    assert grid.close.shape == (3, 390) and grid.state.dtype == np.int8
    assert np.isnan(grid.open).all() and (grid.state == MISSING).all()
    starts = session.open + np.array([0, 1, 389]) * NS_PER_MINUTE
    assert grid.minute_of(starts).tolist() == [0, 1, 389]


def test_put_places_values_and_counts_by_state() -> None:
    session = _session("2013-10-07")
    grid = MinuteGrid(session, 2)
    grid.put(
        _bars(
            session,
            [0, 1, 0],
            [0, 0, 2],
            [10, 20, 11],
            [12, 21, 13],
            [9, 19, 10],
            [11, 20.5, 12],
            [100, 200, 300],
        )
    )
    grid.put(_flat(session, 0, [1], 11.0, volume=50), FILLED)
    grid.put(_flat(session, 1, [1, 2], 20.5, volume=0), SYNTHETIC)

    assert grid.open[0, :3].tolist() == [10, 11, 11]
    assert grid.high[1, 0] == 21 and grid.low[1, 0] == 19 and grid.close[1, 0] == 20.5
    assert grid.volume[0, :3].tolist() == [100, 50, 300]
    assert grid.state[0, :4].tolist() == [REAL, FILLED, REAL, MISSING]
    assert grid.state[1, :3].tolist() == [REAL, SYNTHETIC, SYNTHETIC]
    assert np.isnan(grid.close[0, 3])
    counts = grid.counts()
    assert counts.dtype == np.int64
    assert counts.tolist() == [[387, 2, 1, 0], [387, 1, 0, 2]]
    assert grid.counts_until(2).tolist() == [[0, 1, 1, 0], [0, 1, 0, 1]]


@pytest.mark.parametrize(
    "ts_offset",
    [-NS_PER_MINUTE, 390 * NS_PER_MINUTE, 30 * 10**9, 5 * NS_PER_MINUTE + 1],
    ids=["before-open", "at-close", "half-minute", "off-by-1ns"],
)
def test_put_rejects_bars_off_the_session_grid(ts_offset: int) -> None:
    session = _session("2013-10-07")
    grid = MinuteGrid(session, 1)
    bars = _flat(session, 0, [0], 1.0)
    bad = dataclasses.replace(bars, ts_start=np.array([session.open + ts_offset]))
    with pytest.raises(ValueError, match="off the 1m grid"):
        grid.put(bad)
    assert (grid.state == MISSING).all()


def test_put_rejects_a_second_bar_for_the_same_minute_and_unknown_symbols() -> None:
    session = _session("2013-10-07")
    grid = MinuteGrid(session, 2)
    grid.put(_flat(session, 0, [3], 1.0))
    with pytest.raises(ValueError, match="already has one"):
        grid.put(_flat(session, 0, [3], 2.0), FILLED)
    with pytest.raises(ValueError, match="twice"):
        grid.put(_flat(session, 1, [4, 4], 2.0))
    with pytest.raises(ValueError, match="symbol id"):
        grid.put(_flat(session, 2, [4], 2.0))
    assert grid.close[0, 3] == 1.0 and grid.state[1, 4] == MISSING


def test_derived_aggregates_ohlcv_and_counts_filled_bars() -> None:
    session = _session("2013-10-07")
    grid = MinuteGrid(session, 2)
    # Symbol 0: minutes 0..4 real except 2 (filled) and 3 (synthetic); minute 6 alone in bucket 1.
    grid.put(
        _bars(
            session,
            [0, 0, 0, 0],
            [0, 1, 4, 6],
            [10, 11, 9, 20],
            [12, 15, 10, 21],
            [9.5, 10, 8, 19],
            [11, 14, 9.5, 20.5],
            [100, 200, 300, 400],
        )
    )
    grid.put(_bars(session, [0], [2], [14], [14.5], [7], [13], [50]), FILLED)
    grid.put(_flat(session, 0, [3], 13.0, volume=0), SYNTHETIC)
    # Symbol 1: only minute 12, i.e. bucket 2; its buckets 0 and 1 are empty.
    grid.put(_flat(session, 1, [12], 30.0, volume=7))

    d = grid.derived(5)
    assert len(d) == 3
    assert d.symbol.tolist() == [0, 0, 1]
    assert d.ts_start.tolist() == [session.open + k * 5 * NS_PER_MINUTE for k in (0, 1, 2)]
    assert (d.ts_end - d.ts_start).tolist() == [5 * NS_PER_MINUTE] * 3
    assert d.interval.tolist() == [5, 5, 5]
    assert d.open.tolist() == [10, 20, 30]
    assert d.high.tolist() == [15, 21, 30]
    assert d.low.tolist() == [7, 19, 30]
    assert d.close.tolist() == [9.5, 20.5, 30]
    assert d.volume.tolist() == [650, 400, 7]
    assert d.bars.tolist() == [5, 1, 1]
    assert d.filled.tolist() == [2, 0, 0]


def test_derived_orders_by_end_then_symbol_and_applies_filters() -> None:
    session = _session("2013-10-07")
    grid = MinuteGrid(session, 3)
    for s in (2, 0, 1):
        grid.put(_flat(session, s, np.arange(390), 10.0 + s))
    d = grid.derived(15)
    assert len(d) == 3 * 26
    key = list(zip(d.ts_end.tolist(), d.symbol.tolist(), strict=True))
    assert key == sorted(key)
    assert d.symbol[:3].tolist() == [0, 1, 2]
    assert _et(int(d.ts_end[-1])) == "16:00"

    some = grid.derived(15, symbols=np.array([2, 0]), buckets=np.array([25, 3]))
    assert some.symbol.tolist() == [0, 2, 0, 2]
    starts = [_et(t) for t in some.ts_start.tolist()]
    assert starts == ["10:15", "10:15", "15:45", "15:45"]
    assert len(grid.derived(15, buckets=np.array([], dtype=np.int64))) == 0
    with pytest.raises(ValueError, match="bucket index"):
        grid.derived(15, buckets=np.array([26]))


def test_early_close_makes_the_last_bucket_short() -> None:
    session = _session("2024-11-29")
    assert session.early_close
    grid = MinuteGrid(session, 1)
    assert grid.minutes == 210
    grid.put(
        _bars(
            session,
            np.zeros(210),
            np.arange(210),
            np.arange(210) + 100.0,
            np.arange(210) + 101.0,
            np.arange(210) + 99.0,
            np.arange(210) + 100.5,
            np.ones(210),
        )
    )

    d15 = grid.derived(15)
    assert len(d15) == 14
    assert _et(int(d15.ts_end[-1])) == "13:00" and int(d15.ts_end[-1]) == session.close

    d60 = grid.derived(60)
    assert [_et(t) for t in d60.ts_start.tolist()] == ["09:30", "10:30", "11:30", "12:30"]
    assert [_et(t) for t in d60.ts_end.tolist()] == ["10:30", "11:30", "12:30", "13:00"]
    assert d60.bars.tolist() == [60, 60, 60, 30]
    assert d60.open[-1] == 280.0 and d60.close[-1] == 309.5
    assert d60.high[-1] == 310.0 and d60.low[-1] == 279.0 and d60.volume[-1] == 30.0


def test_derived_matches_a_bar_by_bar_reference_on_a_sparse_grid() -> None:
    """A random sparse grid against a per-bucket loop: odd interval, short last bucket."""
    session = _session("2024-11-29")
    rng = np.random.default_rng(7)
    n_symbols, interval = 4, 7
    grid = MinuteGrid(session, n_symbols)
    for s in range(n_symbols):
        minute = np.flatnonzero(rng.random(grid.minutes) < 0.3)
        price = rng.uniform(10, 20, len(minute))
        grid.put(
            _bars(
                session,
                np.full(len(minute), s),
                minute,
                price,
                price + 1,
                price - 1,
                price + 0.5,
                rng.integers(1, 1000, len(minute)),
            ),
            REAL if s % 2 else FILLED,
        )

    d = grid.derived(interval)
    expected = []
    for k in range(-(-grid.minutes // interval)):
        for s in range(n_symbols):
            m = [
                i
                for i in range(k * interval, min((k + 1) * interval, grid.minutes))
                if grid.state[s, i] != MISSING
            ]
            if m:
                expected.append(
                    (
                        s,
                        grid.open[s, m[0]],
                        grid.high[s, m].max(),
                        grid.low[s, m].min(),
                        grid.close[s, m[-1]],
                        grid.volume[s, m].sum(),
                        len(m),
                        0 if s % 2 else len(m),
                    )
                )
    got = list(
        zip(
            d.symbol.tolist(),
            d.open.tolist(),
            d.high.tolist(),
            d.low.tolist(),
            d.close.tolist(),
            d.volume.tolist(),
            d.bars.tolist(),
            d.filled.tolist(),
            strict=True,
        )
    )
    assert got == expected
