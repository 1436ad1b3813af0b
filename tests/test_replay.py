"""Replay from the log alone: what a consumer observes live, it observes again in the replay."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pyarrow as pa
import pytest

from ticktape.actors.replay import Replay
from ticktape.actors.system import System
from ticktape.messages.codec import encode
from ticktape.messages.config import RunConfig
from ticktape.messages.events import Bar, GapDetected, SessionOpened
from ticktape.scenarios.cli import main
from ticktape.scenarios.demo_data import DemoSpec, generate
from ticktape.store.eventlog import EventLog


@pytest.fixture(scope="module")
def week(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunConfig, Path]:
    root = tmp_path_factory.mktemp("week")
    spec = DemoSpec(
        start="2024-11-20", end="2024-12-03", trades_per_minute=1, quotes_per_minute=1, bad_rows=9
    )
    data = generate(root / "data", spec)
    config = RunConfig(
        data=str(data),
        symbols=spec.symbols,
        start="2024-11-25",
        end="2024-12-03",
        log=str(root / "live.lmdb"),
        trailing_days=2,
        sync="none",
        output_queue=16,
    )
    return config, root


def observe(run: Any, default_symbol: str = "ACME") -> list[object]:
    """A consumer written for a live run: it reads the stream and asks SessionData as it goes."""
    seen: list[object] = []
    for event in run.events():
        seen.append(encode(event))
        at = event.ts
        if isinstance(event, GapDetected | SessionOpened) or (
            isinstance(event, Bar) and event.ts_start % (37 * 60_000_000_000) == 0
        ):
            symbol = getattr(event, "symbol", default_symbol)
            last = run.query("last_bars", symbol, 30, as_of=at)  # reaches into trailing history
            derived = run.query("bars", symbol, interval=15, as_of=at)
            seen.append((last.ts_start.tolist(), last.close.tolist(), derived.close.tolist()))
    return seen


def test_a_consumer_sees_the_same_stream_and_answers_in_the_replay(
    week: tuple[RunConfig, Path],
) -> None:
    config, _ = week
    with System(config) as system:
        system.start()
        live = observe(system)
        totals = system.wait(timeout=120)
    with Replay(config.log) as replay:
        again = observe(replay)
        replayed = replay.wait()
    diff = next((i for i, (a, b) in enumerate(zip(again, live, strict=False)) if a != b), None)
    assert diff is None, (diff, again[diff], live[diff])
    assert len(again) == len(live)
    assert any(isinstance(x, tuple) and len(x[0]) == 30 for x in live)  # history was queried
    assert replayed.digest == totals.digest  # an untouched log: the digest of what was delivered
    assert replayed.events == totals.events


def test_replay_needs_no_input_files_and_a_time_range_delivers_a_part(
    week: tuple[RunConfig, Path], tmp_path: Path
) -> None:
    config, _ = week
    log = tmp_path / "copy.lmdb"
    System(msgspec.structs.replace(config, log=str(log), output_queue=0)).run(timeout=120)
    with EventLog.open(log) as opened:
        events = [e for _, e in opened.events()]
    day = [e for e in events if isinstance(e, SessionOpened)][1]
    start, end = day.open, day.close
    with Replay(log, start_ts=start, end_ts=end) as replay:
        part = list(replay.events())
        query = replay.query("last_bars", "ACME", 3, as_of=end)
    assert part == [e for e in events if start <= e.ts < end]
    assert query.ts_start.tolist()[-1] < end
    with Replay(log, start_ts=start, end_ts=end) as replay:
        tables = [tables for _, tables in replay.batches(arrow=True)]
    bars = pa.Table.from_batches([t["Bar"] for t in tables if "Bar" in t])
    expected = [e for e in part if isinstance(e, Bar)]
    assert bars.column("symbol").to_pylist() == [e.symbol for e in expected]  # names, not ids
    assert bars.schema.field("ts_start").type == pa.timestamp("ns", tz="UTC")
    assert bars.column("ts_start").cast(pa.int64()).to_pylist() == [e.ts_start for e in expected]
    assert bars.column("close").to_pylist() == [e.close for e in expected]


def test_replay_command_prints_the_digest_of_what_it_delivered(
    week: tuple[RunConfig, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, _ = week
    log = str(tmp_path / "cli.lmdb")
    digest = System(msgspec.structs.replace(config, log=log, output_queue=0)).run(120).digest
    assert main(["replay", log]) == 0
    assert f"digest {digest}" in capsys.readouterr().out
    assert main(["replay", log, "--from", "2024-11-26T10:00", "--to", "2024-11-26T10:05"]) == 0
    out = capsys.readouterr().out
    assert "digest" in out and f"digest {digest}" not in out  # a part has a digest of its own


def test_the_real_tick_day_replays_to_its_digest_through_both_apis(
    realdata: Path, tmp_path: Path
) -> None:
    log = tmp_path / "ticks.lmdb"
    config = RunConfig(
        data=str(realdata), symbols=("AIG", "BAC", "IBM", "SPY"), start="2013-10-07",
        end="2013-10-07", log=str(log), sync="none",
    )  # fmt: skip
    totals = System(config).run(timeout=300)
    with Replay(log) as replay:
        counted = sum(1 for _ in replay.events())
        replayed = replay.wait()
    assert (counted, replayed.digest) == (totals.events, totals.digest)
    with Replay(log) as replay:
        kinds: dict[str, int] = {}
        for _, columns in replay.batches():
            for kind, fields in columns.items():
                kinds[kind] = kinds.get(kind, 0) + len(fields["ts"])
        assert replay.wait().digest == totals.digest
    with EventLog.open(log) as opened:
        by_kind = {}
        for _, event in opened.events():
            by_kind[type(event).__name__] = by_kind.get(type(event).__name__, 0) + 1
    assert kinds == by_kind


def test_a_consumer_on_the_real_week_sees_the_same_in_the_replay(
    realdata: Path, tmp_path: Path
) -> None:
    data = tmp_path / "bars"
    data.mkdir()
    for symbol in ("SPY", "IBM"):
        (data / f"{symbol}.csv").write_bytes((realdata / f"{symbol}.csv").read_bytes())
    config = RunConfig(
        data=str(data), symbols=("IBM", "SPY"), start="2013-10-07", end="2013-10-11",
        trailing_days=1, log=str(tmp_path / "week.lmdb"), sync="none", output_queue=8,
    )  # fmt: skip
    with System(config) as system:
        system.start()
        live = observe(system, "SPY")
        system.wait(timeout=300)
    with Replay(config.log) as replay:
        assert observe(replay, "SPY") == live
