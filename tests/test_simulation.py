"""The deterministic simulation (DESIGN §12): many seeds, one digest, the threaded run's.

Runs on generated data with everything that could make order depend on timing: ticks, gaps filled
from a backfill folder with a bad row in it, forward-fill, bad input rows, trailing history, a
holiday and an early close.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from ticktape.actors.simulation import simulate
from ticktape.actors.system import System
from ticktape.messages.config import RunConfig
from ticktape.scenarios.audit import control_inputs
from ticktape.scenarios.demo_data import DemoSpec, generate
from ticktape.store.eventlog import EventLog

SEEDS = range(20)


@pytest.fixture(scope="module")
def busy_week(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("busy")
    spec = DemoSpec(
        symbols=("ACME", "BOLT"),
        start="2024-11-22",
        end="2024-11-29",
        gap_rate=0.03,
        trades_per_minute=2,
        quotes_per_minute=2,
        bad_rows=9,
        extended_hours=False,
    )
    data = generate(root / "data", spec)
    backfill = generate(root / "backfill", DemoSpec(symbols=spec.symbols, start="2024-11-25",
                                                      end="2024-11-29", gap_rate=0.0,
                                                      extended_hours=False))  # fmt: skip
    with (backfill / "ACME.csv").open("a") as fh:
        fh.write("ACME,2024-11-26T10:02:00-05:00,1,1,1,nan,5\n")  # a bad backfill row
    return {
        "data": str(data),
        "symbols": spec.symbols,
        "start": "2024-11-26",
        "end": "2024-11-29",
        "trailing_days": 1,
        "backfill": str(backfill),
        "gap_policy": "forward-fill",
        "sync": "none",
    }


def _config(settings: dict[str, object], log: Path, **more: object) -> RunConfig:
    return RunConfig(**{**settings, "log": str(log), **more})


def test_every_seed_gives_the_threaded_digest(busy_week: dict, tmp_path: Path) -> None:
    threaded = System(_config(busy_week, tmp_path / "threaded")).run(timeout=120)
    assert threaded.state == "finished"
    digests = {
        simulate(_config(busy_week, tmp_path / f"s{seed}", step_minutes=1 + seed % 9), seed).digest
        for seed in SEEDS
    }
    assert digests == {threaded.digest}
    with EventLog.open(tmp_path / "s0") as log:
        kinds = {type(e).__name__ for _, e in log.events()}
    # the run really had what could race
    assert {"GapFilled", "DataRejected", "TrailingBars", "Trade", "Quote", "DerivedBar"} <= kinds


def test_paced_steps_cut_anywhere_give_the_same_log(busy_week: dict, tmp_path: Path) -> None:
    """The real Clock core, paced from a virtual wall clock whose timer wakes late by random
    amounts, so paced steps end at random times; lateness is measured on that wall clock."""
    data_driven = simulate(_config(busy_week, tmp_path / "dd"), 0).digest
    runs = [
        simulate(_config(busy_week, tmp_path / f"p{seed}", speed=60.0), seed) for seed in range(8)
    ]
    paced = {run.digest for run in runs}
    assert all(run.lateness["max"] > 1.0 for run in runs)  # some wakes came seconds late
    midday = simulate(
        _config(busy_week, tmp_path / "midday", speed=60.0, start="2024-11-26T12:00"), 3
    ).digest
    assert paced == {data_driven}
    assert midday == data_driven


@pytest.mark.parametrize("stopped", [False, True])
def test_a_controlled_run_taken_again_gives_its_digest_in_every_order(
    busy_week: dict, tmp_path: Path, stopped: bool
) -> None:
    """A threaded paced run paused, stepped and resumed at random wall times (and stopped): its
    controls, taken again in simulations with messages in random orders and steps cut at random
    places, data-driven or paced, give its digest every time."""
    chance = random.Random(7 + stopped)
    with System(_config(busy_week, tmp_path / "driven", speed=20_000.0)) as system:
        system.start()
        for _ in range(3):
            time.sleep(chance.uniform(0.1, 0.5))
            system.pause()
            for _ in range(chance.randint(0, 2)):
                system.step()
            system.resume()
        driven = system.stop() if stopped else system.wait(timeout=120)
    with EventLog.open(tmp_path / "driven") as log:
        controls = control_inputs(log)
    assert {type(c.control).__name__ for c in controls} >= {"Pause", "Resume"}
    assert (driven.state == "stopped") is stopped
    runs = [
        simulate(_config(busy_week, tmp_path / f"c{seed}", **pacing), seed, controls)
        for seed, pacing in enumerate([{}, {"step_minutes": 3}, {"speed": 60.0}, {"speed": 600.0}])
    ]
    assert {run.digest for run in runs} == {driven.digest}
