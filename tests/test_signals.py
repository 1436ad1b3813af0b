"""Ctrl-C and SIGTERM at every moment of a run (DESIGN §10): a sweep of signal times over the
whole timeline of a real `ticktape run` subprocess, from the input scan through session loads and
closes to the summary. Each ends with exit 130 or 143 (or 0 once the run had finished), no
traceback, no `ActorFailed`, and a log that verifies and ends with `Stopped` (or `RunFinished`)."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers import cli_process, read
from ticktape.messages.events import ActorFailed, RunFinished, Stopped
from ticktape.scenarios.demo_data import DemoSpec, generate
from ticktape.store.eventlog import EventLog, LogError

# Many short sessions, bars only: most of a data-driven run's time is spent around session
# loads, opens and closes, the moments a signal used to hit badly.
SPEC = DemoSpec(symbols=("ACME", "BOLT"), start="2024-10-01", end="2024-10-31",
                extended_hours=False)  # fmt: skip
EARLY, CLOSES, TIMED = 4, 12, 8  # signal points: start-up, session closes, run time
AT_ONCE = 3


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("signals") / "data", SPEC)


def _start(data: Path, log: Path) -> subprocess.Popen[str]:
    args = ["run", "--data", str(data), "--symbols", ",".join(SPEC.symbols), "--start", SPEC.start,
            "--end", SPEC.end, "--log", str(log), "--sync", "none"]  # fmt: skip
    return cli_process(*args)


def _outcome(process: subprocess.Popen[str], log: Path, signum: int) -> str:
    """What one interrupted run left; fails on anything a user should never see."""
    out, err = process.communicate(timeout=60)
    said = f"signal {signum}, exit {process.returncode}:\n{out}\n{err}"
    if not log.exists() and (process.returncode == -signum or "init_import_site" in err):
        # Python itself was still starting (its own handler, or its fatal start-up error)
        return "before start-up"
    if process.returncode == 1 and "Fatal Python error: init_" in err and not log.exists():
        return "before start-up"  # the interpreter's own init took it (no ticktape code ran yet)
    if process.returncode == -signum:  # Python was ending: the run was over, its digest out
        assert "digest" in out and isinstance(read(log)[-1], RunFinished), said
        return "after the end"
    assert process.returncode in (0, 128 + signum), said
    assert "Traceback" not in err and "Error" not in err, said
    if not (log / "data.mdb").exists():
        assert process.returncode == 128 + signum, said
        return "before the log"
    events = read(log)  # a log is put in place whole (made beside it, then renamed)
    assert not any(isinstance(e, ActorFailed) for e in events), said
    with EventLog.open(log) as opened:
        assert opened.verify().ok, said
    if not events:
        return "before the first event"
    last = events[-1]
    assert isinstance(last, Stopped | RunFinished), f"{said}\nlast event: {last}"
    if process.returncode == 0:
        assert isinstance(last, RunFinished), said
        return "after the end"
    return type(last).__name__


class _Probe:
    """One run to interrupt with `signum`: `delay` seconds after the process started; or, with
    `in_run`, that long after its log appeared; or, with `committed`, as soon as the log holds
    that many committed events (the close of a session: the next one is loading)."""

    def __init__(self, data: Path, log: Path, signum: int, point: tuple[str, float]) -> None:
        self.log, self.signum = log, signum
        self.kind, self.value = point
        self.process = _start(data, log)
        self.since = time.monotonic()
        self.sent = False

    def tick(self) -> None:
        """Send the signal once it is due."""
        if self.sent:
            return
        logged = (self.log / "data.mdb").exists()
        if self.kind == "in_run" and logged:
            self.kind, self.since = "delay", time.monotonic()
        due = self.kind == "delay" and time.monotonic() >= self.since + self.value
        if self.kind == "committed" and logged:
            with contextlib.suppress(LogError), EventLog.open(self.log) as reader:
                due = reader.committed()[0] >= self.value  # (a log still being created: later)
        if due or self.process.poll() is not None:
            self.process.send_signal(self.signum)
            self.sent = True


def test_a_signal_at_any_moment_stops_the_run_gracefully(month: Path, tmp_path: Path) -> None:
    began = time.monotonic()
    whole = _start(month, tmp_path / "whole")
    while not (tmp_path / "whole" / "data.mdb").exists() and whole.poll() is None:
        time.sleep(0.001)
    logged = time.monotonic()
    assert whole.wait(timeout=120) == 0
    startup, run = logged - began, time.monotonic() - logged
    closes = [
        seq
        for seq, e in enumerate(read(tmp_path / "whole"), 1)
        if type(e).__name__ == "SessionClosed"
    ]
    # Points before the log exists (start-up, the input scan), at session closes (the next
    # session loads), and over the run's wall time.
    points = [("delay", i * startup / EARLY) for i in range(EARLY)]
    points += [("committed", closes[i * len(closes) // CLOSES]) for i in range(CLOSES)]
    points += [("in_run", i * 1.2 * run / TIMED) for i in range(TIMED)]
    outcomes: list[str] = []
    for first in range(0, len(points), AT_ONCE):
        probes = [
            _Probe(month, tmp_path / f"log{i}", (signal.SIGINT, signal.SIGTERM)[i % 2], point)
            for i, point in enumerate(points[first : first + AT_ONCE], start=first)
        ]
        while not all(probe.sent for probe in probes):
            for probe in probes:
                probe.tick()
            time.sleep(0.001)
        outcomes += [_outcome(probe.process, probe.log, probe.signum) for probe in probes]
    # The sweep really landed inside runs, not only before or after them.
    assert outcomes.count("Stopped") >= CLOSES, outcomes
