"""`ticktape bench`: whole-process and streaming throughput, against baselines in the same run.

Every measurement is a fresh `python -m ticktape.scenarios.bench` process, so its wall time
includes the interpreter, the imports and the loading, and its peak RSS is its own (from
`wait4`). Engines:
- `ticktape`: a whole run, durable log on (sync=full, the default).
- `log ceiling`: the same bars, encoded by columns and appended to a fresh log with no actors;
  the best a run could do with the log on.
- `nautilus` (with `--peers`): NautilusTrader's BacktestEngine with a strategy that counts bars.
Figures are medians of `repeat` processes; ratios are against baselines of the same bench run.
Data is generated once per case into a cache folder and reused.

The streaming phase runs from the actors' start (the first session's load and open) to the end of
the run. The `replay` engine runs once more (not timed) and then replays its log twice: into
`events()` objects, and into numpy columns through the batch API (`replay_events_per_s`,
`replay_batch_events_per_s`); its whole-process figures are not a replay's and are not shown.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec

_CACHE = "ticktape-bench"  # under the temp folder, unless TICKTAPE_BENCH_CACHE names one
ENGINES = ("ticktape", "log ceiling", "replay", "nautilus")


class Case(msgspec.Struct, frozen=True):
    """Generated 1m bars, regular hours only, one CSV per symbol."""

    name: str
    symbols: int
    start: str
    end: str

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f"S{i:03d}" for i in range(self.symbols))

    def data(self) -> Path:
        """The case's folder in the cache, generated on first use."""
        cache = os.environ.get("TICKTAPE_BENCH_CACHE") or Path(tempfile.gettempdir()) / _CACHE
        folder = Path(cache) / f"{self.symbols}x{self.start}_{self.end}"
        done = folder / ".complete"
        if not done.exists():
            from ticktape.scenarios.demo_data import (  # the parent's; children only run
                DemoSpec,
                generate,
            )

            spec = DemoSpec(
                symbols=self.names, start=self.start, end=self.end, extended_hours=False
            )
            generate(folder, spec)
            done.touch()
        return folder


CASES = {
    "default": Case("100 symbols x 20 sessions", 100, "2024-03-04", "2024-04-01"),
    "quick": Case("10 symbols x 2 sessions", 10, "2024-03-04", "2024-03-05"),
}


class Measure(msgspec.Struct):
    """What one process reports (child side) plus what its parent saw of it."""

    bars: int
    events: int = 0
    stream_s: float = 0.0  # from the actors' start (first session's load and open) to the end
    log_bytes: int = 0  # size of data.mdb
    replay_events_per_s: float = 0.0  # Replay.events(): one object per event
    replay_batch_events_per_s: float = 0.0  # Replay.batches(): numpy columns
    wall_s: float = 0.0  # whole process, from spawn to exit
    peak_rss_mb: float = 0.0


class BenchRow(msgspec.Struct):
    case: str
    engine: str
    bars: int
    events: int
    wall_s: float  # medians over the repeats
    stream_s: float
    peak_rss_mb: float
    bars_per_s: float  # whole process
    stream_bars_per_s: float
    log_bytes_per_bar: float
    replay_events_per_s: float
    replay_batch_events_per_s: float
    vs_ticktape: float = 0.0  # this engine's whole-process time / ticktape's (>1: ticktape wins)


# -- child side: one measurement per process ------------------------------------------------------


def _run(data: Path, symbols: tuple[str, ...], start: str, end: str) -> tuple[Any, Path, float]:
    """One whole run, durable log on: its totals, its log, and its streaming seconds."""
    from ticktape.actors.system import System
    from ticktape.messages.config import RunConfig

    log = Path(tempfile.mkdtemp(prefix="ticktape-bench-log-")) / "run"
    config = RunConfig(data=str(data), symbols=symbols, start=start, end=end, log=str(log))
    system = System(config)
    began = time.perf_counter()
    try:
        totals = system.start().wait(timeout=3600)
    finally:
        system.close()
    return totals, log, time.perf_counter() - began


def _measure_ticktape(data: Path, symbols: tuple[str, ...], start: str, end: str) -> Measure:
    totals, log, stream_s = _run(data, symbols, start, end)
    log_bytes = (log / "data.mdb").stat().st_size
    shutil.rmtree(log.parent, ignore_errors=True)
    return Measure(totals.bars, totals.events, stream_s, log_bytes)


def _measure_replay(data: Path, symbols: tuple[str, ...], start: str, end: str) -> Measure:
    """A run first (not timed), then its log replayed into objects and into columns."""
    totals, log, _ = _run(data, symbols, start, end)
    objects, columns = _replay_rates(log, totals.events)
    shutil.rmtree(log.parent, ignore_errors=True)
    return Measure(totals.bars, totals.events, 0.0, 0, objects, columns)


def _replay_rates(log: Path, events: int) -> tuple[float, float]:
    """Events/s of a replay of `log` into event objects, and into columns."""
    from ticktape.actors.replay import Replay

    began = time.perf_counter()
    with Replay(log) as replay:
        for _ in replay.events():
            pass
    objects = events / (time.perf_counter() - began)
    began = time.perf_counter()
    with Replay(log) as replay:
        for _ in replay.batches():
            pass
    return objects, events / (time.perf_counter() - began)


def _measure_ceiling(data: Path, symbols: tuple[str, ...], start: str, end: str) -> Measure:
    """Read every session's bars, then encode and append them: the log's own speed."""
    from ticktape.messages.codec import encode_columns
    from ticktape.messages.events import Bar
    from ticktape.store.calendar import TradingCalendar
    from ticktape.store.eventlog import EventLog
    from ticktape.store.repository import MarketDataRepository

    repository = MarketDataRepository(data, symbols)
    sessions = [repository.load_session(s).bars for s in TradingCalendar().sessions(start, end)]
    log = Path(tempfile.mkdtemp(prefix="ticktape-bench-log-")) / "ceiling"
    began = time.perf_counter()
    with EventLog.create(log, {}) as writer:
        for b in sessions:
            columns = [b.ts_start + 60_000_000_000, b.ts_start, b.open, b.high, b.low, b.close]
            writer.append_batch(
                encode_columns(Bar, [*columns, b.volume], b.symbol, repository.symbols)
            )
    n = sum(len(b) for b in sessions)
    seconds, size = time.perf_counter() - began, (log / "data.mdb").stat().st_size
    shutil.rmtree(log.parent, ignore_errors=True)
    return Measure(n, n, seconds, size)


def _measure_nautilus(data: Path, symbols: tuple[str, ...], start: str, end: str) -> Measure:
    from ticktape.scenarios.peers import run_nautilus

    began = time.perf_counter()
    bars = run_nautilus(data, symbols)
    return Measure(bars, bars, time.perf_counter() - began)


_MEASURES = {
    "ticktape": _measure_ticktape,
    "log ceiling": _measure_ceiling,
    "replay": _measure_replay,
    "nautilus": _measure_nautilus,
}


# -- parent side ---------------------------------------------------------------------------------


def measure(engine: str, case: Case) -> Measure:
    """One fresh process: its wall time from spawn to exit and its peak RSS, plus its report."""
    data = case.data()
    argv = [
        sys.executable,
        "-m",
        "ticktape.scenarios.bench",
        engine,
        str(data),
        ",".join(case.names),
    ]
    began = time.perf_counter()
    child = subprocess.Popen([*argv, case.start, case.end], stdout=subprocess.PIPE)
    out = child.stdout.read() if child.stdout else b""
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - began
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise RuntimeError(f"bench process for {engine} exited with {child.returncode}")
    result = msgspec.json.decode(out.splitlines()[-1], type=Measure)
    result.wall_s, result.peak_rss_mb = wall, usage.ru_maxrss / 1024
    return result


def _median(measures: list[Measure], field: str) -> float:
    return statistics.median(getattr(m, field) for m in measures)


def bench(
    cases: tuple[Case, ...] = (CASES["quick"], CASES["default"]),
    repeat: int = 3,
    peers: bool = False,
) -> list[BenchRow]:
    engines = [e for e in ENGINES if peers or e != "nautilus"]
    rows: list[BenchRow] = []
    for case in cases:
        case_rows = []
        for engine in engines:
            runs = [measure(engine, case) for _ in range(repeat)]
            wall, stream = _median(runs, "wall_s"), _median(runs, "stream_s")
            bars = runs[0].bars
            case_rows.append(
                BenchRow(
                    case=case.name,
                    engine=engine,
                    bars=bars,
                    events=runs[0].events,
                    wall_s=wall,
                    stream_s=stream,
                    peak_rss_mb=_median(runs, "peak_rss_mb"),
                    bars_per_s=bars / wall,
                    stream_bars_per_s=bars / stream if stream else 0.0,
                    log_bytes_per_bar=_median(runs, "log_bytes") / bars if bars else 0.0,
                    replay_events_per_s=_median(runs, "replay_events_per_s"),
                    replay_batch_events_per_s=_median(runs, "replay_batch_events_per_s"),
                )
            )
        ticktape = case_rows[0].wall_s
        for row in case_rows:
            row.vs_ticktape = row.wall_s / ticktape
        rows += case_rows
    return rows


def main(argv: list[str]) -> None:
    """Child entry: `python -m ticktape.scenarios.bench ENGINE DATA SYMBOLS START END` prints
    one JSON."""
    engine, data, symbols, start, end = argv
    result = _MEASURES[engine](Path(data), tuple(symbols.split(",")), start, end)
    sys.stdout.write(json.dumps(msgspec.to_builtins(result)) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
