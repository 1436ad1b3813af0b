"""One writer per log and per catalog (issue 15, point 1): a second writer, in this process or
another, is refused with one line and exit 2 before it writes anything."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.helpers import run_argv
from tests.test_catalog import files_hashes
from tests.test_eventlog import bars
from ticktape.messages.events import ActorFailed, RunFinished
from ticktape.scenarios.demo_data import DemoSpec, generate
from ticktape.store.catalog_ingest import ingest
from ticktape.store.eventlog import EventLog, LogError
from ticktape.store.writer_lock import WriterLock

SPEC = DemoSpec(symbols=("ACME",), start="2024-11-26", end="2024-11-27", extended_hours=False)
BUSY = "is being written by another process"


def ticktape(*args: object, wait: bool = True) -> subprocess.Popen | subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "ticktape.scenarios.cli", *map(str, args)]
    if not wait:
        return subprocess.Popen(
            argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)


def run_args(data: Path, log: Path, *more: object) -> list[str]:
    return run_argv(data, log, SPEC, *more)


def refused(done: subprocess.CompletedProcess | tuple[int, str]) -> str:
    """The one line of a refused second writer (exit 2, no traceback)."""
    code, err = (done.returncode, done.stderr) if not isinstance(done, tuple) else done
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("writers") / "data", SPEC)


def test_a_log_has_one_writer_in_a_process_too(tmp_path: Path) -> None:
    path = tmp_path / "log"
    with EventLog.create(path, {}, block_events=16) as log:
        log.append_batch(bars(40))
        for second in (
            lambda: EventLog.open(path, writable=True),
            lambda: EventLog.open_for_resume(path),
        ):
            with pytest.raises(LogError, match=BUSY):
                second()
        log.append_batch(bars(2, start=40))  # the refused writers changed nothing
    with EventLog.open(path, writable=True) as log:  # closed: the lock is free again
        assert log.next_seq == 43
    with EventLog.open(path) as log:
        assert log.verify().ok and log.verify().events == 42


def test_resume_beside_a_live_run_is_refused_and_touches_nothing(
    tmp_path: Path, data: Path
) -> None:
    """The probe's case: `resume LOG` while the run still writes LOG."""
    log = tmp_path / "run.lmdb"
    live = ticktape(*run_args(data, log, "--speed", 3000), wait=False)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if (log / "data.mdb").exists():
                with EventLog.open(log) as reader:
                    if reader.committed()[0] > 0:
                        break
            time.sleep(0.01)
        err = refused(ticktape("resume", log))
        assert BUSY in err and str(log) in err
        assert live.poll() is None, "the live run must still be going"
    finally:
        live.send_signal(signal.SIGKILL)
        live.communicate(timeout=60)
    with EventLog.open(log) as opened:
        assert opened.verify().ok
        assert not any(isinstance(e, ActorFailed) for _, e in opened.events())
    assert ticktape("resume", log).returncode == 0  # the killed run's lock died with it
    with EventLog.open(log) as opened:
        assert opened.verify().ok
        assert isinstance(list(opened.events())[-1][1], RunFinished)


def test_two_runs_racing_for_one_log_one_wins(tmp_path: Path, data: Path) -> None:
    log = tmp_path / "race.lmdb"
    racers = [ticktape(*run_args(data, log), wait=False) for _ in range(2)]
    results = [(r.wait(timeout=120), r.communicate()[1]) for r in racers]
    assert sorted(code for code, _ in results) == [0, 2], results
    loser = next(r for r in results if r[0] == 2)
    err = refused(loser)
    assert BUSY in err or "already exists" in err
    with EventLog.open(log) as opened:
        result = opened.verify()
        assert result.ok and result.events == opened.committed()[0] > 0
        assert sum(isinstance(e, RunFinished) for _, e in opened.events()) == 1


def test_an_ingest_beside_another_is_refused_and_touches_nothing(
    tmp_path: Path, data: Path
) -> None:
    catalog = tmp_path / "catalog"
    ingest([data], catalog)
    before = files_hashes(catalog)
    lock = WriterLock.take(catalog, "catalog")  # another ingest, as far as the CLI can tell
    try:
        err = refused(ticktape("ingest", data, "--catalog", catalog))
        assert f"catalog {catalog} {BUSY} (pid {os.getpid()})" in err
    finally:
        lock.release()
    assert files_hashes(catalog) == before
