"""UpkeepCore on the real 2013-10-07 session: gaps, fills, derived bars, revisions and quality.

The reference values come straight from the CSV files through pandas, independently of the grid.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import msgspec
import numpy as np
import pandas as pd
import pytest

from tests.helpers import read
from ticktape.actors.system import System
from ticktape.actors.upkeep_core import UpkeepCore
from ticktape.messages.codec import decode, encode
from ticktape.messages.columns import BarColumns
from ticktape.messages.config import RunConfig
from ticktape.messages.events import (
    DataRejected,
    DerivedBar,
    DerivedBarRevised,
    Event,
    GapDetected,
    GapFilled,
    QualityUpdated,
    SessionClosed,
)
from ticktape.messages.session import NS_PER_MINUTE, Session
from ticktape.scenarios.demo_data import DemoSpec, generate
from ticktape.store.calendar import TradingCalendar
from ticktape.store.repository import MarketDataRepository

DAY = "2013-10-07"
UNIVERSE = ("AIG", "BAC", "IBM", "SPY")
KIND_RANK = {GapDetected: 0, GapFilled: 1, DerivedBar: 2, DerivedBarRevised: 2, QualityUpdated: 3}


def _session(day: str = DAY) -> Session:
    return TradingCalendar("XNYS").sessions(day, day)[0]


def _load(folder: Path, session: Session, symbols: tuple[str, ...]) -> pd.DataFrame:
    """Regular-hours rows of the session from the CSVs, with int ns `ts` and universe id `sid`."""
    frames = []
    for name in symbols:
        df = pd.read_csv(folder / f"{name}.csv")
        df["ts"] = pd.to_datetime(df["timestamp"], utc=True).dt.as_unit("ns").astype("int64")
        frames.append(df[(df["ts"] >= session.open) & (df["ts"] < session.close)])
    df = pd.concat(frames, ignore_index=True)
    df["sid"] = df["symbol"].map({s: i for i, s in enumerate(symbols)})
    return df.sort_values(["ts", "sid"], ignore_index=True)


def _columns(df: pd.DataFrame) -> BarColumns:
    return BarColumns(
        symbol=df["sid"].to_numpy(np.int32),
        ts_start=df["ts"].to_numpy(np.int64),
        open=df["open"].to_numpy(float),
        high=df["high"].to_numpy(float),
        low=df["low"].to_numpy(float),
        close=df["close"].to_numpy(float),
        volume=df["volume"].to_numpy(float),
        source=np.arange(len(df), dtype=np.int64),
    )


def _reference_derived(df: pd.DataFrame, session: Session, interval: int) -> list[tuple]:
    """(symbol, ts_start, interval, o, h, l, c, v, bars): pandas resample aligned to the open."""
    out = []
    origin = pd.Timestamp(session.open, tz="UTC")
    for name, g in df.groupby("symbol"):
        s = g.set_index(pd.to_datetime(g["ts"], utc=True))
        r = s.resample(f"{interval}min", origin=origin, closed="left", label="left").agg(
            {
                "open": "first",
                "high": "max",
                "low": "min",
                "close": "last",
                "volume": "sum",
                "ts": "count",
            }
        )
        r = r[r["ts"] > 0]
        for when, row in r.iterrows():
            out.append(
                (
                    name,
                    when.as_unit("ns").value,
                    interval,
                    row["open"],
                    row["high"],
                    row["low"],
                    row["close"],
                    float(row["volume"]),
                    int(row["ts"]),
                )
            )
    return sorted(out)


def _drive(
    core: UpkeepCore,
    session: Session,
    df: pd.DataFrame,
    step: int = 1,
    extra: tuple[int, ...] = (),
    clock: list[int] | None = None,
    backfill: Callable | None = None,
) -> tuple[list[tuple[int, list[Event]]], list[Event]]:
    """Open the session, advance every `step` minutes (and at the `extra` times) handing over the
    bars that ended since the last call, advance to the close and close the session. Each `now` is
    appended to `clock` before its call."""
    bars = _columns(df)
    end = bars.ts_start + NS_PER_MINUTE
    nows = set(range(session.open + step * NS_PER_MINUTE, session.close, step * NS_PER_MINUTE))
    nows = sorted(nows | set(extra) | {session.close})
    core.open_session(session, backfill)
    calls, prev = [], session.open
    for now in nows:
        if clock is not None:
            clock.append(now)
        calls.append((now, core.advance(now, bars.take((end > prev) & (end <= now)))))
        prev = now
    return calls, core.close_session(session.close, released=len(bars), left_out=17)


def _all(calls: list[tuple[int, list[Event]]], kind: type) -> list:
    return [e for _, events in calls for e in events if type(e) is kind]


def _derived_tuples(events: list) -> list[tuple]:
    return sorted(
        (e.symbol, e.ts_start, e.interval, e.open, e.high, e.low, e.close, e.volume, e.bars)
        for e in events
    )


def _check_call_shape(calls: list[tuple[int, list[Event]]]) -> None:
    """Every event carries ts=now; kinds come in order; gaps and fills by (minute, symbol id)."""
    for now, events in calls:
        assert all(e.ts == now for e in events)
        ranks = [KIND_RANK[type(e)] for e in events]
        assert ranks == sorted(ranks)
        for kind in (GapDetected, GapFilled):
            keys = [(e.ts_start, UNIVERSE.index(e.symbol)) for e in events if type(e) is kind]
            assert keys == sorted(keys)


@pytest.fixture
def day(realdata: Path) -> tuple[Session, pd.DataFrame]:
    session = _session()
    return session, _load(realdata, session, UNIVERSE)


def test_minute_by_minute_gaps_derived_bars_and_quality_match_the_files(day) -> None:
    session, df = day
    core = UpkeepCore(UNIVERSE)
    calls, closing = _drive(core, session, df)
    _check_call_shape(calls)

    every = {(s, session.open + m * NS_PER_MINUTE) for s in UNIVERSE for m in range(390)}
    present = set(zip(df["symbol"], df["ts"], strict=True))
    gaps = _all(calls, GapDetected)
    assert {(e.symbol, e.ts_start) for e in gaps} == every - present
    assert len(gaps) == len(every - present) >= 1
    assert all(e.ts == e.ts_start + NS_PER_MINUTE for e in gaps)
    assert _all(calls, GapFilled) == [] and _all(calls, DerivedBarRevised) == []

    derived = _all(calls, DerivedBar)
    for interval in (5, 15):
        mine = [e for e in derived if e.interval == interval]
        assert _derived_tuples(mine) == _reference_derived(df, session, interval)
        assert all(e.ts == e.ts_start + interval * NS_PER_MINUTE for e in mine)
        assert all(e.filled == 0 for e in mine)

    # A quality update in a call exactly for the symbols with a gap in it, counting bars so far.
    for now, events in calls:
        gap_symbols = sorted({e.symbol for e in events if type(e) is GapDetected})
        quality = [e for e in events if type(e) is QualityUpdated]
        assert [q.symbol for q in quality] == gap_symbols
        for q in quality:
            expected = (now - session.open) // NS_PER_MINUTE
            real = int(((df["symbol"] == q.symbol) & (df["ts"] < now)).sum())
            assert (q.expected, q.real, q.filled, q.synthetic) == (expected, real, 0, 0)
            assert q.quality == real / expected

    counts = df["symbol"].value_counts()
    final = [e for e in closing if type(e) is QualityUpdated]
    assert [q.symbol for q in final] == list(UNIVERSE)
    for q in final:
        assert (q.ts, q.session, q.expected) == (session.close, DAY, 390)
        assert (q.real, q.filled, q.synthetic) == (counts[q.symbol], 0, 0)
        assert q.quality == counts[q.symbol] / 390
    assert closing[-1] == SessionClosed(ts=session.close, session=DAY, bars=len(df), left_out=17)
    assert core.quality() == final
    assert core.grid.counts()[:, 1].tolist() == [counts[s] for s in UNIVERSE]


def test_coarse_jumps_give_the_same_gaps_and_derived_bars(day) -> None:
    session, df = day
    fine, fine_close = _drive(UpkeepCore(UNIVERSE), session, df)
    coarse, coarse_close = _drive(UpkeepCore(UNIVERSE), session, df, step=7)
    _check_call_shape(coarse)

    def facts(calls: list[tuple[int, list[Event]]]) -> tuple:
        gaps = sorted((e.symbol, e.ts_start) for e in _all(calls, GapDetected))
        return gaps, _derived_tuples(_all(calls, DerivedBar))

    assert facts(coarse) == facts(fine)
    assert len(_all(coarse, DerivedBar)) == len(_all(fine, DerivedBar))
    assert coarse_close == fine_close
    # 10:00 falls between two calls (09:58, 10:05): its bars come out with the next one.
    at_1005 = dict(coarse)[session.open + 35 * NS_PER_MINUTE]
    assert {(e.interval, e.ts_start) for e in at_1005 if type(e) is DerivedBar} == {
        (5, session.open + 25 * NS_PER_MINUTE),
        (5, session.open + 30 * NS_PER_MINUTE),
        (15, session.open + 15 * NS_PER_MINUTE),
    }


def _spy(realdata: Path) -> tuple[Session, pd.DataFrame]:
    session = _session()
    df = _load(realdata, session, ("SPY",))
    assert len(df) == 390
    return session, df


def _lookup(full: pd.DataFrame, answer: Callable[[int, int], bool] = lambda s, t: True):
    """A backfill over the full frame; `answer(symbol, ts_start)` decides what it admits to."""
    calls: list[list[tuple[int, int]]] = []
    index = {
        (int(s), int(t)): i for i, (s, t) in enumerate(zip(full["sid"], full["ts"], strict=True))
    }
    columns = _columns(full)

    def backfill(session: Session, symbols: np.ndarray, ts_starts: np.ndarray) -> BarColumns:
        asked = list(zip(symbols.tolist(), ts_starts.tolist(), strict=True))
        calls.append(asked)
        rows = [index[k] for k in asked if k in index and answer(*k)]
        return columns.take(np.array(rows[::-1], dtype=np.int64))

    return backfill, calls


def test_backfill_fills_every_dropped_bar_at_detection(realdata: Path) -> None:
    session, full = _spy(realdata)
    rng = np.random.default_rng(2013)
    dropped = np.sort(rng.choice(390, size=8, replace=False))
    lossy = full.drop(index=dropped)
    lookup, backfill_calls = _lookup(full)
    everything = _columns(full)

    def backfill(session: Session, symbols: np.ndarray, ts_starts: np.ndarray) -> BarColumns:
        """Answers with more than was asked (the whole day): upkeep keeps only the gaps."""
        asked = lookup(session, symbols, ts_starts)
        return BarColumns.concat([everything, asked])

    core = UpkeepCore(("SPY",))
    calls, closing = _drive(core, session, lossy, backfill=backfill)
    _check_call_shape(calls)

    dropped_ts = {int(full["ts"][m]) for m in dropped}
    assert {e.ts_start for e in _all(calls, GapDetected)} == dropped_ts
    fills = _all(calls, GapFilled)
    assert len(fills) == len(dropped)
    by_ts = full.set_index("ts")
    for f in fills:
        row = by_ts.loc[f.ts_start]
        assert not f.synthetic and f.ts == f.ts_start + NS_PER_MINUTE
        expected = (row["open"], row["high"], row["low"], row["close"], row["volume"])
        assert (f.open, f.high, f.low, f.close, f.volume) == expected
    assert sorted(t for asked in backfill_calls for _, t in asked) == sorted(dropped_ts)

    assert _all(calls, DerivedBarRevised) == []
    derived = _all(calls, DerivedBar)
    for interval in (5, 15):
        mine = [e for e in derived if e.interval == interval]
        assert _derived_tuples(mine) == _reference_derived(full, session, interval)
        assert sum(e.filled for e in mine) == len(dropped)

    (q,) = [e for e in closing if type(e) is QualityUpdated]
    assert (q.expected, q.real, q.filled, q.synthetic) == (390, 390 - len(dropped), len(dropped), 0)
    assert q.quality == 1.0
    assert core.pending_gaps() == 0


def test_a_late_fill_revises_the_released_derived_bar(realdata: Path) -> None:
    session, full = _spy(realdata)
    missing = session.open + 4 * NS_PER_MINUTE  # 09:34, last minute of the first 5m bar
    attempts = Counter()

    def second_time(symbol: int, ts_start: int) -> bool:
        attempts[ts_start] += 1
        return attempts[ts_start] >= 2

    backfill, backfill_calls = _lookup(full, second_time)
    core = UpkeepCore(("SPY",))
    calls, _ = _drive(core, session, full[full["ts"] != missing], backfill=backfill)
    _check_call_shape(calls)
    by_now = dict(calls)

    at_0935 = by_now[missing + NS_PER_MINUTE]
    assert [type(e) for e in at_0935] == [GapDetected, DerivedBar, QualityUpdated]
    assert (at_0935[1].bars, at_0935[1].filled, at_0935[1].interval) == (4, 0, 5)

    at_0936 = by_now[missing + 2 * NS_PER_MINUTE]
    assert [type(e) for e in at_0936] == [GapFilled, DerivedBarRevised, QualityUpdated]
    revised = at_0936[1]
    (reference,) = [r for r in _reference_derived(full, session, 5) if r[1] == session.open]
    assert _derived_tuples([revised]) == [reference]
    assert (revised.ts_start, revised.filled) == (session.open, 1)
    assert (at_0936[2].real, at_0936[2].filled, at_0936[2].quality) == (5, 1, 1.0)
    assert len(backfill_calls) == 2

    # The 15m bar was not out yet: it is released once, already with the fill, and never revised.
    fifteen = [e for e in _all(calls, DerivedBar) if e.interval == 15]
    assert _derived_tuples(fifteen) == _reference_derived(full, session, 15)
    assert len(_all(calls, DerivedBarRevised)) == 1


def test_a_bar_never_found_is_given_up_after_the_retries(realdata: Path) -> None:
    session, full = _spy(realdata)
    missing = session.open + 10 * NS_PER_MINUTE
    backfill, backfill_calls = _lookup(full, lambda s, t: False)
    asked_at: list[int] = []

    def counting(session: Session, symbols: np.ndarray, ts_starts: np.ndarray) -> BarColumns:
        asked_at.append(clock[-1])
        return backfill(session, symbols, ts_starts)

    clock: list[int] = []
    core = UpkeepCore(("SPY",), fill_retries=3)
    # Half-minute advances in between start no new minute, so they are no retry.
    halves = tuple(session.open + m * NS_PER_MINUTE + 30 * 10**9 for m in range(8, 20))
    calls, closing = _drive(
        core, session, full[full["ts"] != missing], extra=halves, clock=clock, backfill=counting
    )

    assert len(_all(calls, GapDetected)) == 1
    assert backfill_calls == [[(0, missing)]] * 4
    assert asked_at == [missing + k * NS_PER_MINUTE for k in (1, 2, 3, 4)]
    assert _all(calls, GapFilled) == []
    assert core.pending_gaps() == 0
    (q,) = [e for e in closing if type(e) is QualityUpdated]
    assert (q.real, q.filled, q.synthetic, q.quality) == (389, 0, 0, 389 / 390)


@pytest.mark.parametrize("with_backfill", [False, True], ids=["no-backfill", "backfill-gives-up"])
def test_forward_fill_makes_flat_synthetic_bars_that_quality_ignores(
    realdata: Path, with_backfill: bool
) -> None:
    session, full = _spy(realdata)
    dropped = [0, 100, 101, 204]  # 09:30 has no earlier bar: it stays a gap
    lossy = full.drop(index=dropped)
    backfill, backfill_calls = _lookup(full, lambda s, t: False) if with_backfill else (None, [])
    core = UpkeepCore(("SPY",), gap_policy="forward-fill", fill_retries=1)
    calls, closing = _drive(core, session, lossy, backfill=backfill)
    _check_call_shape(calls)

    fills = _all(calls, GapFilled)
    assert [f.ts_start for f in fills] == [int(full["ts"][m]) for m in (100, 101, 204)]
    delay = 2 if with_backfill else 1
    for f, previous in zip(fills, (99, 99, 203), strict=True):
        assert f.synthetic and f.volume == 0.0
        assert f.open == f.high == f.low == f.close == full["close"][previous]
        assert f.ts == f.ts_start + delay * NS_PER_MINUTE
    if with_backfill:
        assert sum(len(asked) for asked in backfill_calls) == 2 * len(dropped)

    (q,) = [e for e in closing if type(e) is QualityUpdated]
    assert (q.expected, q.real, q.filled, q.synthetic) == (390, 386, 0, 3)
    assert q.quality == 386 / 390

    five = {e.ts_start: e for e in _all(calls, DerivedBar) if e.interval == 5}
    bucket = five[session.open + 100 * NS_PER_MINUTE]  # 11:10-11:15 holds 100 and 101
    assert (bucket.bars, bucket.filled) == (5, 2)
    assert bucket.volume == full["volume"][102:105].sum()
    assert five[session.open].bars == 4

    # Minute 204 ends its 5m bar: a fill one retry later revises it; its 15m bar is not out yet.
    revisions = _all(calls, DerivedBarRevised)
    last_bucket = five[session.open + 200 * NS_PER_MINUTE]
    if with_backfill:
        assert (last_bucket.bars, last_bucket.filled) == (4, 0)
        (revised,) = revisions
        assert (revised.ts_start, revised.interval, revised.bars, revised.filled) == (
            last_bucket.ts_start,
            5,
            5,
            1,
        )
        assert revised.close == full["close"][203] and revised.volume == last_bucket.volume
    else:
        assert revisions == [] and (last_bucket.bars, last_bucket.filled) == (5, 1)


def test_a_session_with_no_bars_closes_with_zero_quality() -> None:
    session = _session()
    core = UpkeepCore(UNIVERSE)
    core.open_session(session)
    assert [q.quality for q in core.quality()] == [0.0] * 4
    events = core.advance(session.close, BarColumns.empty())
    assert sum(type(e) is GapDetected for e in events) == 4 * 390
    assert not any(isinstance(e, DerivedBar) for e in events)

    closing = core.close_session(session.close + 5, released=0, left_out=3)
    assert [type(e) for e in closing] == [QualityUpdated] * 4 + [SessionClosed]
    for q, name in zip(closing[:4], UNIVERSE, strict=True):
        assert (q.symbol, q.session, q.expected, q.real, q.quality) == (name, DAY, 390, 0, 0.0)
    assert closing[-1] == SessionClosed(ts=session.close + 5, session=DAY, bars=0, left_out=3)


def _flat_bars(session: Session, symbol: int, minutes: range, price: float = 10.0) -> BarColumns:
    n = len(minutes)
    return BarColumns(
        symbol=np.full(n, symbol, dtype=np.int32),
        ts_start=session.open + np.array(minutes, dtype=np.int64) * NS_PER_MINUTE,
        open=np.full(n, price),
        high=np.full(n, price),
        low=np.full(n, price),
        close=np.full(n, price),
        volume=np.full(n, 1.0),
        source=np.arange(n, dtype=np.int64),
    )


def test_open_session_starts_from_scratch() -> None:
    first, second = TradingCalendar("XNYS").sessions("2024-11-27", "2024-11-29")
    core = UpkeepCore(("A",), derived=(60,))
    core.open_session(first)
    core.advance(first.close, _flat_bars(first, 0, range(first.minutes - 1)))
    core.close_session(first.close, released=first.minutes - 1, left_out=0)

    core.open_session(second)
    assert core.grid.session == second and core.grid.minutes == 210
    events = core.advance(second.open + 60 * NS_PER_MINUTE, _flat_bars(second, 0, range(60)))
    assert [(type(e), e.ts_start) for e in events] == [(DerivedBar, second.open)]
    events = core.advance(second.close, _flat_bars(second, 0, range(60, 210)))
    starts = [e.ts_start for e in events if type(e) is DerivedBar]
    assert starts == [second.open + h * 60 * NS_PER_MINUTE for h in (1, 2, 3)]
    assert events[-1].bars == 30  # the early close cuts the last hour short
    (q, closed) = core.close_session(second.close, released=210, left_out=0)
    assert (q.expected, q.real, q.quality, closed.session) == (210, 210, 1.0, "2024-11-29")


def test_contract_violations_fail_loudly() -> None:
    session = _session()
    with pytest.raises(ValueError, match="gap_policy"):
        UpkeepCore(("A",), gap_policy="interpolate")
    core = UpkeepCore(("A",))
    with pytest.raises(RuntimeError, match="open_session"):
        core.advance(session.open, BarColumns.empty())
    core.open_session(session)
    at_0935 = session.open + 5 * NS_PER_MINUTE
    with pytest.raises(ValueError, match="look-ahead"):
        core.advance(at_0935, _flat_bars(session, 0, range(5, 6)))
    core.advance(at_0935, _flat_bars(session, 0, range(4)))
    with pytest.raises(ValueError, match="already been checked"):
        core.advance(at_0935 + NS_PER_MINUTE, _flat_bars(session, 0, range(4, 5)))
    with pytest.raises(ValueError, match="backwards"):
        core.advance(at_0935 - 1, BarColumns.empty())
    with pytest.raises(ValueError, match="advance\\(close"):
        core.close_session(session.close, released=4, left_out=0)
    core.advance(session.close, BarColumns.empty())
    core.close_session(session.close, released=4, left_out=0)
    with pytest.raises(RuntimeError, match="closed"):
        core.advance(session.close, BarColumns.empty())


def test_backfill_rejections_sit_where_the_backfill_was_consulted_whatever_the_step(
    tmp_path: Path,
) -> None:
    """A lossy feed, and a backfill with a bad row: the log is the same at every step size."""
    spec = DemoSpec(symbols=("ACME", "BOLT"), start="2024-03-04", end="2024-03-05", gap_rate=0.0)
    complete = pd.read_csv(generate(tmp_path / "complete", spec) / "BOLT.csv")
    lossy, backfill = tmp_path / "lossy", generate(tmp_path / "backfill", spec)
    generate(lossy, spec)
    regular = complete.index[complete.timestamp.str.contains("T1[0-5]:")]
    dropped = regular[::37]  # a lossy feed: gaps through both days
    complete.drop(index=dropped).to_csv(lossy / "BOLT.csv", index=False)
    bad = complete.loc[[dropped[3]]].assign(high=0.5 * complete.low[dropped[3]])
    pd.concat([complete.drop(index=dropped[3]), bad]).to_csv(backfill / "BOLT.csv", index=False)

    digests, logs = {}, {}
    for step in (1, 7, 390):
        log = tmp_path / f"log{step}"
        cfg = RunConfig(
            data=str(lossy),
            symbols=spec.symbols,
            start=spec.start,
            end=spec.end,
            log=str(log),
            backfill=str(backfill),
            gap_policy="forward-fill",
            sync="none",
            step_minutes=step,
        )
        digests[step] = System(cfg).run(timeout=120).digest
        logs[step] = read(log)
    assert digests[1] == digests[7] == digests[390]
    events = logs[7]
    rejected = [i for i, e in enumerate(events) if isinstance(e, DataRejected)]
    assert len(rejected) == 1 and events[rejected[0]].file == "BOLT.csv"
    first_gap = next(i for i, e in enumerate(events) if isinstance(e, GapDetected))
    # The backfill is first consulted for the first gap: its bad row is logged at that boundary,
    # right after that boundary's gaps and before its fills.
    assert events[rejected[0]].ts == events[first_gap].ts
    assert isinstance(events[rejected[0] + 1], GapFilled)
    assert sum(isinstance(e, GapFilled) and not e.synthetic for e in events) == len(dropped) - 1


@pytest.mark.parametrize("policy", ["leave", "forward-fill"])
def test_a_step_gives_per_boundary_what_advance_gives_encoded_as_msgspec_would(
    tmp_path: Path, policy: str
) -> None:
    """Columns in, one msgspec-canonical batch per boundary out, equal to minute-by-minute."""
    spec = DemoSpec(symbols=("ACME", "BOLT", "CRUX"), start="2024-11-29", end="2024-11-29")
    folder = generate(tmp_path, DemoSpec(**{**msgspec.structs.asdict(spec), "gap_rate": 0.05}))
    session = _session("2024-11-29")  # an early close: the last derived bars are short
    bars = MarketDataRepository(folder, spec.symbols).load_session(session).bars
    bars = bars.take((bars.ts_start >= session.open) & (bars.ts_start < session.close))
    bars = bars.take(np.lexsort((bars.symbol, bars.ts_start)))
    release = bars.ts_start + NS_PER_MINUTE
    boundaries = session.open + NS_PER_MINUTE * np.arange(1, session.minutes + 1)

    stepped, minutely = (UpkeepCore(spec.symbols, gap_policy=policy) for _ in range(2))
    stepped.open_session(session)
    minutely.open_session(session)
    expected, start = [], 0
    for boundary in boundaries.tolist():
        end = int(np.searchsorted(release, boundary, side="right"))
        expected.append(minutely.advance(boundary, bars.take(slice(start, end))))
        start = end
    findings = []
    for step in np.array_split(np.arange(len(boundaries)), 9):  # uneven steps
        inside = (release > boundaries[step[0]] - NS_PER_MINUTE) & (release <= boundaries[step[-1]])
        findings.append(stepped.advance_many(boundaries[step], bars.take(inside), release[inside]))

    got = [events for f in findings for events in f.events()]
    assert got == expected
    assert any(isinstance(e, GapDetected) for events in got for e in events)
    assert sum(isinstance(e, DerivedBar) for events in got for e in events) == 3 * (14 + 42)
    for batch in (b for f in findings for b in f.batches):
        for record in batch.records():
            assert encode(decode(record)) == bytes(record)  # msgspec's own bytes
    changes = [e for f in findings for e in f.changes]
    assert changes == [
        e for events in expected for e in events if isinstance(e, (GapFilled, QualityUpdated))
    ]
    closed = stepped.close(session.close, released=len(bars), left_out=0)
    assert closed.events() == [minutely.close_session(session.close, len(bars), 0)]
