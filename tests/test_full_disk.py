"""A full disk (issue 15, point 5): the run stops with one line naming the disk and the last
committed seq, exit 1; the committed prefix verifies, and `resume` finishes it into the log an
uninterrupted run writes.

The disk fills for real, as the kernel sees it: the run's process may not grow a file past
400 KB (RLIMIT_FSIZE, with SIGXFSZ ignored), so LMDB's commit fails inside the kernel's write,
as on a full device. Portable: no mount, no privileges."""

from __future__ import annotations

import resource
import signal
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT
from tests.helpers import config, run, run_argv
from ticktape.scenarios.cli import main
from ticktape.scenarios.demo_data import DemoSpec, generate
from ticktape.store.eventlog import EventLog

SPEC = DemoSpec(
    symbols=("ACME", "BOLT"),
    start="2024-11-26",
    end="2024-11-27",
    extended_hours=False,
    trades_per_minute=3,
)
SETTINGS = {"symbols": SPEC.symbols, "start": SPEC.start, "end": SPEC.end, "sync": "full"}


def _small_disk() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (400_000, 400_000))


def test_a_full_disk_stops_the_run_with_one_line_and_the_prefix_resumes(tmp_path: Path) -> None:
    data = generate(tmp_path / "data", SPEC)
    log = tmp_path / "log"
    argv = run_argv(data, log, SPEC, "--sync", "full")
    done = subprocess.run(
        [sys.executable, "-m", "ticktape.scenarios.cli", *map(str, argv)],
        cwd=ROOT,
        preexec_fn=_small_disk,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    [last] = done.stderr.strip().splitlines()  # one line: not the actors' too
    assert last.startswith("ticktape: log ") and "the disk at /" in last, done.stderr
    assert "refused the write" in last and "ticktape resume" in last
    committed = int(last.split("events up to seq ")[1].split()[0])
    with EventLog.open(log) as opened:
        assert opened.verify().ok and opened.committed()[0] == committed > 0
    assert main(["resume", str(log)]) == 0
    want = run(config(data, tmp_path / "whole", **SETTINGS))
    with EventLog.open(log) as resumed:
        assert resumed.verify().ok and resumed.committed()[1] == want
