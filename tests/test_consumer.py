"""The consumer's view, through `import ticktape`: queries answer as of the last event taken,
live and on replay alike, never with anything stamped after it; filters and callbacks; results
as Arrow and pandas."""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ticktape
from ticktape.scenarios.demo_data import DemoSpec, generate

MINUTE = 60_000_000_000
SPEC = DemoSpec(
    symbols=("ACME", "BOLT"),
    start="2024-11-25",
    end="2024-11-27",
    gap_rate=0.03,
    extended_hours=False,
    trades_per_minute=1,
    quotes_per_minute=1,
)
QUERY_NAMES = ("bars", "derived", "last_bars", "trades", "quotes", "metrics", "quality", "updated")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A lossy feed (3 % of minutes missing) and a complete backfill of other prices."""
    root = tmp_path_factory.mktemp("consumer")
    generate(root / "data", SPEC)
    generate(root / "backfill", DemoSpec(**{**_spec_fields(), "gap_rate": 0.0, "seed": 11}))
    return root


def _spec_fields() -> dict[str, Any]:
    return {f: getattr(SPEC, f) for f in SPEC.__struct_fields__}


def config(inputs: Path, log: Path, **overrides: Any) -> ticktape.RunConfig:
    settings_: dict[str, Any] = {
        "data": str(inputs / "data"),
        "symbols": SPEC.symbols,
        "start": "2024-11-26",
        "end": "2024-11-27",
        "log": str(log),
        "backfill": str(inputs / "backfill"),
        "trailing_days": 1,
        "sync": "none",
        "output_queue": 2,  # small: the pipeline runs ahead of the consumer by little
    }
    return ticktape.RunConfig(**{**settings_, **overrides})


@pytest.fixture(scope="module")
def recorded(inputs: Path) -> tuple[Path, list[ticktape.Event]]:
    log = inputs / "recorded.lmdb"
    with ticktape.System(config(inputs, log)) as system:
        system.start()
        events = list(system.events())
        system.wait(timeout=120)
    return log, events


def _plain(value: Any) -> Any:
    """An answer as comparable plain data (NaN as None)."""
    if hasattr(value, "fields"):
        return {f: _plain(getattr(value, f).tolist()) for f in value.fields}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def ask(run: Any, name: str, symbol: str, as_of: int | None) -> Any:
    match name:
        case "bars":
            return run.bars(symbol, as_of=as_of)
        case "derived":
            return run.bars(symbol, interval=5, as_of=as_of)
        case "last_bars":
            return run.last_bars(symbol, 30, as_of=as_of)
        case "trades":
            return run.trades(symbol, as_of=as_of)
        case "quotes":
            return run.quotes(symbol, as_of=as_of)
        case "metrics":
            return run.session_metrics(symbol, as_of=as_of)
        case "quality":
            return run.quality(symbol, as_of=as_of)
        case "updated":
            return run.updated(symbol, as_of=as_of)
    raise AssertionError(name)


def assert_nothing_after(name: str, answer: Any, present: int) -> None:
    """Nothing in an answer is stamped after the consumer's present."""
    if name in ("bars", "last_bars"):
        assert (answer.ts_start + MINUTE <= present).all(), name
    elif name == "derived":
        assert (answer.ts_end <= present).all(), name
    elif name in ("trades", "quotes"):
        assert (answer.ts <= present).all(), name


def consume(run: Any, asks: dict[int, list[tuple[str, str, int]]], pause: float) -> list[Any]:
    """A consumer that asks some queries at some events (`asks`: event index -> queries, each
    with how many minutes before its present to ask as of, or -1 for its present)."""
    seen: list[Any] = []
    for index, event in enumerate(run.events()):
        for name, symbol, back in asks.get(index, ()):
            as_of = None if back < 0 else event.ts - back * MINUTE
            answer = ask(run, name, symbol, as_of)
            assert_nothing_after(name, answer, event.ts if as_of is None else as_of)
            seen.append((index, name, symbol, back, _plain(answer)))
        if pause and index % 97 == 0:
            time.sleep(pause)  # the pipeline runs ahead meanwhile
    return seen


def plans(n_events: int) -> st.SearchStrategy[dict[int, list[tuple[str, str, int]]]]:
    one = st.tuples(
        st.sampled_from(QUERY_NAMES),
        st.sampled_from(SPEC.symbols),
        st.sampled_from((-1, -1, 0, 1, 7, 400)),
    )
    return st.dictionaries(st.integers(0, n_events - 1), st.lists(one, min_size=1, max_size=3),
                           min_size=1, max_size=25)  # fmt: skip


def test_queries_answer_as_of_the_event_taken_live_and_on_replay(
    inputs: Path, recorded: tuple[Path, list[ticktape.Event]]
) -> None:
    """Random queries at random events: the live consumer (with random pauses, so the pipeline
    runs ahead of it) and the replay's give the same answers, and none holds anything stamped
    after the event."""
    _, events = recorded
    n = len(events)

    @settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
    @given(asks=plans(n), pause=st.sampled_from((0.0, 0.002, 0.02)))
    def prop(asks: dict[int, list[tuple[str, str, int]]], pause: float) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            live_log = Path(tmp) / "live.lmdb"
            with ticktape.System(config(inputs, live_log)) as system:
                system.start()
                live = consume(system, asks, pause)
                system.wait(timeout=120)
            with ticktape.Replay(live_log) as replay:
                again = consume(replay, asks, 0.0)
        assert again == live

    prop()


def test_a_query_sees_only_the_events_taken(recorded: tuple[Path, list[ticktape.Event]]) -> None:
    """The reference is the log itself: at each event, today's trades and 1m bars of a symbol
    are exactly the `Trade`, `Bar` and `GapFilled` events of it taken so far today."""
    log, events = recorded
    opens = [i for i, e in enumerate(events) if isinstance(e, ticktape.SessionOpened)]
    checks = set(range(opens[-1], len(events), 173)) | {opens[-1] + 2, len(events) - 1}
    with ticktape.Replay(log) as replay:
        for index, _ in enumerate(replay.events()):
            if index not in checks:
                continue
            today = events[opens[-1] : index + 1]
            trades = [e.ts for e in today if isinstance(e, ticktape.Trade) and e.symbol == "ACME"]
            assert replay.trades("ACME").ts.tolist() == trades
            bars = sorted(
                e.ts_start
                for e in today
                if isinstance(e, ticktape.Bar | ticktape.GapFilled) and e.symbol == "BOLT"
            )
            session_open = events[opens[-1]].open
            assert replay.bars("BOLT", start=session_open).ts_start.tolist() == bars
    assert any(isinstance(e, ticktape.GapFilled) for e in events)  # fills were exercised


def test_a_typo_lists_the_queries_and_kinds(recorded: tuple[Path, list[ticktape.Event]]) -> None:
    log, _ = recorded
    with ticktape.Replay(log) as replay:
        next(replay.events())
        with pytest.raises(ValueError, match="the queries are: bars, last_bars"):
            replay.query("last_bar", "ACME", 3)
        with pytest.raises(ValueError, match=r"the kinds are: .*Bar, DataRejected"):
            next(replay.events(kinds=["Bars"]))


def test_a_fill_found_later_stays_invisible_before_it_was_found() -> None:
    """A backfill that came in three minutes after its gap: an earlier present does not see it,
    not in the 1m bars, the derived bars or the session metrics."""
    import numpy as np

    from ticktape.actors.session_data import SessionDataCore
    from ticktape.messages.columns import BarColumns, QuoteColumns, TradeColumns
    from ticktape.messages.session import Session

    open_ = 1_732_631_400 * 1_000_000_000  # 2024-11-26 09:30 ET
    core = SessionDataCore(("ACME",))
    core.begin(Session("2024-11-26", open_, open_ + 390 * MINUTE, False, open_, open_))
    starts = open_ + np.array([0, 2, 3, 4]) * MINUTE  # 09:31 is missing
    n = len(starts)
    bars = BarColumns(np.zeros(n, np.int32), starts, *[np.full(n, 10.0)] * 5, np.full(n, -1))
    no_trades, no_quotes = TradeColumns.empty(), QuoteColumns.empty()
    core.released(open_ + 5 * MINUTE, bars, no_trades, no_quotes)
    found = open_ + 8 * MINUTE
    core.released(found, BarColumns.empty(), no_trades, no_quotes)
    fill = ticktape.GapFilled(found, "ACME", open_ + MINUTE, 10.0, 11.0, 9.0, 10.5, 7.0, False)
    core.upkept([fill])
    before, after = open_ + 6 * MINUTE, open_ + 9 * MINUTE
    assert len(core.bars("ACME", as_of=before)) == 4 and len(core.bars("ACME", as_of=after)) == 5
    assert core.bars("ACME", interval=5, as_of=before).bars.tolist() == [4]
    assert core.bars("ACME", interval=5, as_of=after).filled.tolist() == [1]
    metrics = core.session_metrics("ACME", as_of=before)
    assert (metrics["real"], metrics["filled"]) == (4, 0)
    assert core.session_metrics("ACME")["filled"] == 1


def test_filters_narrow_what_a_consumer_sees_never_the_log(
    inputs: Path, recorded: tuple[Path, list[ticktape.Event]], tmp_path: Path
) -> None:
    log, events = recorded
    with ticktape.System(config(inputs, tmp_path / "live.lmdb")) as system:
        system.start()
        seen = list(system.events(kinds=[ticktape.Bar, "SessionOpened"], symbols=["BOLT"]))
        totals = system.wait(timeout=120)
    expected = [
        e
        for e in events
        if isinstance(e, ticktape.SessionOpened)  # carries no symbol: passes a symbol filter
        or (isinstance(e, ticktape.Bar) and e.symbol == "BOLT")
    ]
    assert seen == expected
    with ticktape.Replay(log) as replay:
        assert totals.digest == replay.run().digest  # the log is the unfiltered run's


def test_handlers_per_kind_on_a_replay(recorded: tuple[Path, list[ticktape.Event]]) -> None:
    log, events = recorded
    bars: list[ticktape.Bar] = []
    gaps: list[ticktape.GapDetected] = []
    last_close: list[float] = []

    def on_gap(event: ticktape.GapDetected) -> None:
        gaps.append(event)
        last_close.append(float(replay.last_bars(event.symbol, 1).close[-1]))

    with ticktape.Replay(log) as replay:
        totals = replay.subscribe({ticktape.Bar: bars.append, "GapDetected": on_gap})
    assert bars == [e for e in events if isinstance(e, ticktape.Bar)]
    assert gaps == [e for e in events if isinstance(e, ticktape.GapDetected)] and gaps
    assert totals.state == "finished" and totals.events == len(events)


def test_results_convert_to_arrow_and_pandas_with_names_and_zones(
    recorded: tuple[Path, list[ticktape.Event]],
) -> None:
    import pyarrow as pa

    log, events = recorded
    last_trade = next(e for e in reversed(events) if isinstance(e, ticktape.Trade))
    with ticktape.Replay(log) as replay:
        replay.wait()
        bars = replay.last_bars("BOLT", 3)
        table = bars.to_arrow()
        frame = replay.trades("ACME").to_pandas(tz="America/New_York")
        derived = replay.bars("ACME", interval=15).to_pandas()
    assert table.column_names == ["symbol", "ts_start", "open", "high", "low", "close", "volume"]
    assert table.schema.field("ts_start").type == pa.timestamp("ns", tz="UTC")
    assert table.column("symbol").to_pylist() == ["BOLT"] * 3
    assert table.column("ts_start").cast(pa.int64()).to_pylist() == bars.ts_start.tolist()
    assert str(frame["ts"].dt.tz) == "America/New_York" and set(frame["symbol"]) == {"ACME"}
    assert frame["ts"].iloc[-1] == ticktape.timestamp(last_trade.ts, "America/New_York")
    assert (derived["ts_end"] - derived["ts_start"]).max().total_seconds() == 15 * 60


def test_a_partial_range_counts_what_it_delivered(
    recorded: tuple[Path, list[ticktape.Event]],
) -> None:
    log, events = recorded
    opened = next(e for e in events if isinstance(e, ticktape.SessionOpened))
    start, end = opened.open + 30 * MINUTE, opened.open + 90 * MINUTE
    inside = [e for e in events if start <= e.ts < end]
    with ticktape.Replay(log, start_ts=start, end_ts=end) as replay:
        delivered = list(replay.events())
        totals = replay.wait()
    assert delivered == inside
    assert totals.events == len(inside)
    assert totals.bars == sum(isinstance(e, ticktape.Bar) for e in inside) > 0


def test_replay_pauses_steps_one_slice_at_a_time_and_changes_speed(
    recorded: tuple[Path, list[ticktape.Event]],
) -> None:
    """Paused, a replay shows the run's start and holds; each step lets exactly one slice (one
    release time) through; resumed at a speed, it paces."""
    import threading

    log, events = recorded
    slices = [i for i, e in enumerate(events) if isinstance(e, ticktape.TimeAdvanced)]
    got: list[ticktape.Event] = []
    seen_at: list[int] = []

    def drive(replay: ticktape.Replay) -> None:
        for _ in range(3):
            time.sleep(0.2)
            seen_at.append(len(got))  # the consumer is held: what it has is final
            replay.step()
        time.sleep(0.2)
        seen_at.append(len(got))
        replay.set_speed(0)
        replay.resume()

    with ticktape.Replay(log) as replay:
        replay.pause()
        driver = threading.Thread(target=drive, args=(replay,))
        driver.start()
        got.extend(replay.events())
        driver.join(5)
    assert seen_at == [slices[0], slices[1], slices[2], slices[3]]
    assert got == events
    with pytest.raises(ValueError, match="speed"):
        replay.set_speed(-1)
    window = events[slices[200]].ts, events[slices[200]].ts + 10 * MINUTE  # ten minutes
    with ticktape.Replay(log, start_ts=window[0], end_ts=window[1]) as paced:
        paced.set_speed(1200)  # half a second
        began = time.perf_counter()
        paced.run()
    assert time.perf_counter() - began >= 0.4


def test_run_refuses_an_unread_bounded_queue(inputs: Path, tmp_path: Path) -> None:
    began = time.perf_counter()
    with pytest.raises(ticktape.ConfigError, match=r"iterate events\(\)"):
        ticktape.System(config(inputs, tmp_path / "log")).run(timeout=60)
    assert time.perf_counter() - began < 10


def test_a_plain_python_run_prints_nothing(inputs: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    code = (
        "import ticktape;"
        f"c = ticktape.RunConfig(data={str(inputs / 'data')!r}, symbols=('ACME',),"
        f" start='2024-11-26', end='2024-11-26', log={str(tmp_path / 'log')!r}, sync='none');"
        "ticktape.System(c).run(timeout=60)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout == "" and done.stderr == "", done.stderr
