"""Scenario: a mid-session start. `start="2024-11-26T12:00"` opens the session at 09:30 and
streams the morning as catch-up, as fast as possible; from 12:00 the configured speed takes over.

Asserts: nothing released before 12:00 waited on the wall clock (the morning takes a fraction of
what pacing it would take); the afternoon is paced (it takes its simulated time / speed); the
start time is pacing, not a fact: the log's digest equals the data-driven full-day run's.

Run it with `ticktape run scenarios/scripts/midday_start.py` (or `python` on this file).
"""

from __future__ import annotations

import time

from ticktape import SessionOpened, System, TimeAdvanced
from ticktape.scenarios.demo_data import DemoSpec
from ticktape.scenarios.scripting import scenario

DAY = "2024-11-26"
SPEED = 7200.0  # the afternoon, 12:00 to 16:00, takes 2 s of wall time
AFTERNOON_S = 4 * 3600 / SPEED
MORNING_PACED_S = 2.5 * 3600 / SPEED  # what the morning would take if it were paced


def main() -> None:
    spec = DemoSpec(start=DAY, end=DAY, extended_hours=False, trades_per_minute=2)
    with scenario("midday", spec) as setup:
        full_day = System(setup.config("full")).run(60).digest
        config = setup.config("midday", start=f"{DAY}T12:00", speed=SPEED, output_queue=64)
        with System(config) as system:
            system.start()
            noon = opened = reached_noon = None
            for event in system.events():
                if isinstance(event, SessionOpened):
                    opened, noon = time.monotonic(), event.open + int(2.5 * 3600e9)
                elif isinstance(event, TimeAdvanced) and noon and event.ts >= noon:
                    reached_noon = reached_noon or time.monotonic()
            ended = time.monotonic()
            totals = system.wait(60)

    morning, afternoon = reached_noon - opened, ended - reached_noon
    assert morning < MORNING_PACED_S / 3, f"the morning waited on the clock: {morning:.2f} s"
    assert afternoon > AFTERNOON_S * 0.9, f"the afternoon was not paced: {afternoon:.2f} s"
    assert totals.digest == full_day, "a mid-session start changed the log"
    late = totals.lateness
    print(
        f"midday_start: morning caught up in {morning:.3f} s (paced it would take "
        f"{MORNING_PACED_S:.2f} s), afternoon paced in {afternoon:.2f} s at {SPEED:g}x, "
        f"lateness p50 {late['p50'] * 1e3:.2f} ms p99 {late['p99'] * 1e3:.2f} ms, "
        f"digest = full day's"
    )


if __name__ == "__main__":
    main()
