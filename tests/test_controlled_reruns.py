"""Runs that were paused, stepped or stopped are facts too (DESIGN §6, §7): `verify --rerun`
takes their control inputs again in their places and gets the same log; a run stopped by Ctrl-C
or killed while paused is continued by `resume`; a re-run finds the inputs where the run did."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.helpers import cli_process, read
from ticktape.actors.system import System
from ticktape.messages.config import RunConfig
from ticktape.messages.events import Paused, Resumed, RunFinished, Stepped, Stopped
from ticktape.scenarios.audit import rerun
from ticktape.scenarios.cli import main
from ticktape.scenarios.demo_data import DemoSpec, generate
from ticktape.store.eventlog import EventLog

SPEC = DemoSpec(extended_hours=False, trades_per_minute=2, quotes_per_minute=2)
CONTROLS = (Paused, Resumed, Stepped, Stopped)
DAYS = {"start": "2024-11-25", "end": "2024-11-26"}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list]:
    """Generated data, and the events of an uninterrupted run over it."""
    root = tmp_path_factory.mktemp("controlled")
    data = generate(root / "data", SPEC)
    System(_config(data, root / "whole.lmdb")).run()
    return data, read(root / "whole.lmdb")


def _config(data: Path, log: Path, **more: object) -> RunConfig:
    settings = {"data": str(data), "symbols": SPEC.symbols, "log": str(log), "sync": "none"}
    return RunConfig(**{**settings, **DAYS, **more})


def _facts(events: list) -> list:
    """A log's events without its control inputs: what an uninterrupted run writes."""
    return [e for e in events if not isinstance(e, CONTROLS)]


def _controls(events: list) -> list[str]:
    return [type(e).__name__ for e in events if isinstance(e, CONTROLS)]


@pytest.mark.parametrize("seed", range(4))
def test_a_paced_run_driven_at_random_moments_reruns_to_the_same_log(
    demo: tuple[Path, list], tmp_path: Path, seed: int
) -> None:
    """Pauses, steps and resumes at random wall times of a paced run: a paced step ends where
    the wall clock says, so the re-run (data-driven) must cut its steps where the controls were."""
    data, whole = demo
    chance = random.Random(seed)
    log = tmp_path / "driven.lmdb"
    with System(_config(data, log, speed=20_000.0)) as system:
        system.start()
        for _ in range(chance.randint(2, 4)):
            time.sleep(chance.uniform(0.05, 0.4))
            system.pause()
            for _ in range(chance.randint(0, 3)):
                system.step()
                time.sleep(0.02)
            system.resume()
        if seed % 2:
            time.sleep(chance.uniform(0.0, 0.3))
            system.stop()
        else:
            system.wait(timeout=60)
    events = read(log)
    assert "Paused" in _controls(events)
    if seed % 2 == 0:
        assert isinstance(events[-1], RunFinished)
        assert _facts(events) == whole  # controls add facts, they change none
    _, divergence, out = rerun(str(log))
    assert divergence is None, divergence
    assert _controls(read(out)) == _controls(events)


def test_a_consumer_that_pauses_and_steps_at_chosen_events_reruns_to_the_same_log(
    demo: tuple[Path, list], tmp_path: Path
) -> None:
    """Data-driven, through the CLI's `verify --rerun`: pause, two steps, resume, mid-session."""
    data, whole = demo
    log = tmp_path / "consumer.lmdb"
    with System(_config(data, log, output_queue=4)) as system:
        steps = 0
        for n, event in enumerate(system.events()):
            if n == 500:
                system.pause()
                system.step()
                system.step()
            steps += isinstance(event, Stepped)
            if steps == 2 and isinstance(event, Stepped):
                system.resume()
    events = read(log)
    assert _controls(events) == ["Paused", "Stepped", "Stepped", "Resumed"]
    assert _facts(events) == whole
    assert main(["log", "verify", str(log), "--rerun"]) == 0


def _run_args(data: str, log: Path, *more: str) -> list[str]:
    symbols = ",".join(SPEC.symbols)
    return ["run", "--data", data, "--symbols", symbols, "--start", DAYS["start"],
            "--end", DAYS["end"], "--log", str(log), "--sync", "none", *more]  # fmt: skip


def _committed(log: Path) -> int:
    if not (log / "data.mdb").exists():
        return 0
    with EventLog.open(log) as reader:
        return reader.committed()[0]


def test_a_run_stopped_by_ctrl_c_is_continued_by_resume_to_the_uninterrupted_log(
    demo: tuple[Path, list], tmp_path: Path
) -> None:
    data, whole = demo
    log = tmp_path / "interrupted.lmdb"
    process = cli_process(*_run_args(str(data), log, "--speed", "5000"))
    deadline = time.monotonic() + 60
    while _committed(log) < len(whole) // 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    stopped = read(log)
    assert isinstance(stopped[-1], Stopped) and len(stopped) < len(whole)

    assert main(["resume", str(log)]) == 0
    assert read(log) == whole  # the Stopped was where the run goes on
    with EventLog.open(log) as resumed:
        assert resumed.verify().ok
        (note,) = resumed.manifest()["resumes"]
    assert note["stopped_at_seq"] == len(stopped)
    assert main(["log", "verify", str(log), "--rerun"]) == 0


def test_a_run_killed_while_paused_resumes_unpaused_and_reruns_to_the_same_log(
    demo: tuple[Path, list], tmp_path: Path
) -> None:
    data, whole = demo
    log = tmp_path / "paused.lmdb"
    script = textwrap.dedent(f"""
        import os, signal, time
        from ticktape.actors.system import System
        from ticktape.messages.config import RunConfig
        config = RunConfig(data={str(data)!r}, symbols={SPEC.symbols!r}, log={str(log)!r},
                           sync="none", speed=5000.0, start={DAYS["start"]!r}, end={DAYS["end"]!r})
        system = System(config).start()
        time.sleep(0.5)
        system.pause()
        system.step()
        time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    killed = subprocess.run([sys.executable, "-c", script], cwd=ROOT, timeout=60)
    assert killed.returncode == -signal.SIGKILL
    assert _controls(read(log)) == ["Paused", "Stepped"]

    assert main(["resume", str(log)]) == 0
    events = read(log)
    assert _controls(events) == ["Paused", "Stepped", "Resumed"]
    assert isinstance(events[-1], RunFinished)
    assert _facts(events) == whole
    assert main(["log", "verify", str(log), "--rerun"]) == 0


def test_verify_rerun_finds_a_relative_data_folder_where_the_run_did(
    demo: tuple[Path, list], tmp_path: Path
) -> None:
    data, _ = demo
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    os.symlink(data, workdir / "data")
    log = tmp_path / "relative.lmdb"
    run = cli_process(*_run_args("data", log), cwd=workdir)
    _, err = run.communicate(timeout=120)
    assert run.returncode == 0, err
    check = cli_process("log", "verify", str(log), "--rerun")  # from another folder
    out, err = check.communicate(timeout=120)
    assert check.returncode == 0, err
    assert "agree" in out or "identical" in out or "same" in out, out
