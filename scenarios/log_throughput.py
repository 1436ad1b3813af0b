"""Event-log throughput: append 1M Bar records, then read them back as batches, columns, events.

    .venv/bin/python -m ticktape.scenarios.log_throughput [--events 1000000] [--repeat 5]

Prints the median of `--repeat` runs for each step (events per second).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ticktape.messages.codec import encode_columns
from ticktape.messages.events import Bar
from ticktape.store.eventlog import EventLog

SYMBOLS = ("AIG", "BAC", "IBM", "SPY")
CHUNK = 4096  # records per append_batch, about one coordinator step


def columns(n: int) -> tuple[list[np.ndarray], np.ndarray]:
    rng = np.random.default_rng(7)
    start = np.int64(1_381_152_600_000_000_000) + np.arange(n, dtype=np.int64) * 60_000_000_000
    price = 100 + rng.random(n)
    cols = [start + 60_000_000_000, start, price, price + 1, price - 1, price, rng.random(n) * 1e4]
    return cols, (np.arange(n) % len(SYMBOLS)).astype(np.int32)


def median_rate(n: int, repeat: int, step: Callable[[int], None]) -> str:
    """Events per second, wall clock and CPU time (CPU time holds up on a busy machine)."""
    wall, cpu = [], []
    for i in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        step(i)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    wall_rate, cpu_rate = n / statistics.median(wall), n / statistics.median(cpu)
    return f"{wall_rate:>12,.0f} ev/s wall {cpu_rate:>12,.0f} ev/s cpu"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    n = args.events
    cols, ids = columns(n)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)

        def append(i: int) -> None:
            with EventLog.create(work / f"log{i}", {}, sync="none") as log:
                for lo in range(0, n, CHUNK):
                    part = [c[lo : lo + CHUNK] for c in cols]
                    log.append_batch(encode_columns(Bar, part, ids[lo : lo + CHUNK], SYMBOLS))

        print(f"append (encode_columns + append_batch): {median_rate(n, args.repeat, append)}")
        log = EventLog.open(work / "log0")
        if hasattr(log, "batches"):
            from ticktape.messages.codec import decode_columns, decode_many

            def to_columns(_: int) -> None:
                for first, batch in log.batches(blocks=64):
                    decode_columns(batch, first)

            def to_events(_: int) -> None:
                for _, batch in log.batches():
                    decode_many(batch)

            print(f"batches -> columns:   {median_rate(n, args.repeat, to_columns)}")
            print(f"batches -> events:    {median_rate(n, args.repeat, to_events)}")

        def events(_: int) -> None:
            for _ in log.events():
                pass

        print(f"events() one by one:  {median_rate(n, args.repeat, events)}")
        log.close()


if __name__ == "__main__":
    main()
