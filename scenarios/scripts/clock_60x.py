"""Scenario: clock-driven replay at 60x for one hour of a session (12:00 to the 13:00 early close
on the day after Thanksgiving 2024), and how late each release was.

Asserts: the hour takes a minute of wall time (60x); every release was on time to within
P99_BOUND at the 99th percentile; the log equals the data-driven run's.

Run it with `ticktape run scenarios/scripts/clock_60x.py` (or `python` on this file).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # runnable without an install

import msgspec

from actors.system import System
from messages.config import RunConfig
from scenarios.demo_data import DemoSpec, generate

DAY = "2024-11-29"  # closes at 13:00
SPEED = 60.0
P99_BOUND = 0.02  # seconds: holds on a busy CI machine; a quiet one does ~2 ms (README)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="ticktape-60x-") as tmp:
        spec = DemoSpec(start=DAY, end=DAY, extended_hours=False)
        data = generate(Path(tmp) / "data", spec)
        base = RunConfig(
            data=str(data), symbols=spec.symbols, start=DAY, end=DAY, log="", sync="none"
        )
        data_driven = System(msgspec.structs.replace(base, log=f"{tmp}/dd.lmdb")).run(60).digest
        config = msgspec.structs.replace(
            base, log=f"{tmp}/paced.lmdb", start=f"{DAY}T12:00", speed=SPEED
        )
        began = time.monotonic()
        totals = System(config).run(timeout=180)
        wall = time.monotonic() - began

    late = totals.lateness
    assert 55 < wall < 75, f"one hour at 60x took {wall:.1f} s"
    assert late["p99"] <= P99_BOUND, f"p99 lateness {late['p99'] * 1e3:.2f} ms"
    assert totals.digest == data_driven, "pacing changed the log"
    print(
        f"clock_60x: one hour in {wall:.1f} s, {int(late['releases'])} releases, lateness "
        f"p50 {late['p50'] * 1e3:.3f} ms p99 {late['p99'] * 1e3:.3f} ms "
        f"max {late['max'] * 1e3:.3f} ms"
    )


if __name__ == "__main__":
    main()
