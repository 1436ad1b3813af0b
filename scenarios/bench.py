"""`ticktape bench`: throughput of whole runs, against baselines measured in the same process.

Baselines:
- `log ceiling`: the same bars, encoded by columns and appended to a fresh log with no actors;
  the best a run could do with the log on.
- `object per bar`: the same bars built as msgspec Structs and appended one by one; what the
  hot path would cost without columns.
Every figure is the median of `repeat` runs on generated data (and on the real data when present).
"""

from __future__ import annotations

import itertools
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import msgspec

from actors.system import System
from messages.codec import encode_columns
from messages.config import RunConfig
from messages.events import Bar
from scenarios.demo_data import DemoSpec, generate
from store.calendar import TradingCalendar
from store.eventlog import EventLog
from store.repository import MarketDataRepository

REALDATA = (
    Path(__file__).resolve().parent.parent.parent / "shared" / "realdata" / "us_equities_2013-10"
)


class BenchRow(msgspec.Struct):
    case: str
    bars: int
    events: int
    seconds: float  # median
    bars_per_s: float
    events_per_s: float
    ratio: float = 0.0  # events/s relative to the log ceiling of the same data


def _median_seconds(action: Callable[[int], object], repeat: int) -> tuple[float, object]:
    """Median wall seconds of `repeat` calls, and what the last call returned."""
    times, result = [], None
    for i in range(repeat):
        began = time.perf_counter()
        result = action(i)
        times.append(time.perf_counter() - began)
    return statistics.median(times), result


def _row(case: str, bars: int, events: int, seconds: float) -> BenchRow:
    return BenchRow(case, bars, events, seconds, bars / seconds, events / seconds)


def _bars_of(data: Path, symbols: tuple[str, ...], start: str, end: str):
    repository = MarketDataRepository(data, symbols)
    sessions = TradingCalendar().sessions(start, end)
    return repository.symbols, [repository.load_session(s).bars for s in sessions]


def bench(
    symbols: int = 20, start: str = "2024-03-04", end: str = "2024-03-15", repeat: int = 5
) -> list[BenchRow]:
    work = Path(tempfile.mkdtemp(prefix="ticktape-bench-"))
    spec = DemoSpec(
        symbols=tuple(f"S{i:03d}" for i in range(symbols)),
        start=start,
        end=end,
        extended_hours=False,
    )
    data = generate(work / "data", spec)
    cases = [("generated", data, spec.symbols, start, end, "none")]
    cases.append(("generated, sync=full", data, spec.symbols, start, end, "full"))
    if (REALDATA / "SPY.csv").exists():
        real = ("SPY", "AIG", "BAC", "IBM")
        cases.append(
            ("real 2013-10-07 with ticks", REALDATA, real, "2013-10-07", "2013-10-07", "none")
        )

    rows: list[BenchRow] = []
    logs = itertools.count()
    ceilings: dict[Path, float] = {}
    for case, folder, names, first, last, sync in cases:

        def one_run(_: int, folder=folder, names=names, first=first, last=last, sync=sync):
            log = str(work / f"run{next(logs)}")
            config = RunConfig(
                data=str(folder), symbols=names, start=first, end=last, log=log, sync=sync
            )
            return System(config).run(timeout=600)

        seconds, totals = _median_seconds(one_run, repeat)
        run_row = _row(f"run: {case}", totals.bars, totals.events, seconds)
        if folder in ceilings:
            run_row.ratio = run_row.events_per_s / ceilings[folder]
            rows.append(run_row)
            continue

        universe, sessions = _bars_of(folder, names, first, last)
        bars = [b for b in sessions if len(b)]
        n = sum(len(b) for b in bars)

        def ceiling(i: int, bars=bars, universe=universe, tag=case) -> None:
            with EventLog.create(work / f"ceiling-{tag}-{i}", {}, sync="none") as log:
                for b in bars:
                    columns = [b.ts_start + 60_000_000_000, b.ts_start, b.open, b.high, b.low]
                    columns += [b.close, b.volume]
                    log.append_batch(encode_columns(Bar, columns, b.symbol, universe))

        def per_object(i: int, bars=bars, universe=universe, tag=case) -> None:
            with EventLog.create(work / f"objects-{tag}-{i}", {}, sync="none") as log:
                for b in bars:
                    for row in zip(
                        b.symbol.tolist(), b.ts_start.tolist(), b.open.tolist(), b.high.tolist(),
                        b.low.tolist(), b.close.tolist(), b.volume.tolist(), strict=True,
                    ):  # fmt: skip
                        sid, ts, o, h, lo, c, v = row
                        log.append(Bar(ts + 60_000_000_000, universe[sid], ts, o, h, lo, c, v))

        ceiling_row = _row(f"log ceiling: {case}", n, n, _median_seconds(ceiling, repeat)[0])
        object_row = _row(f"object per bar: {case}", n, n, _median_seconds(per_object, repeat)[0])
        ceilings[folder] = ceiling_row.events_per_s
        for row in (run_row, ceiling_row, object_row):
            row.ratio = row.events_per_s / ceilings[folder]
        rows += [run_row, ceiling_row, object_row]
    return rows
