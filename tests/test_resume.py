"""Resume after kill -9 (DESIGN §7): the finished log equals an uninterrupted run's, record for
record; and `verify --rerun` re-runs a log from its inputs and names the first divergence."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT
from ticktape.scenarios.cli import main
from ticktape.scenarios.demo_data import DemoSpec, generate
from ticktape.store.eventlog import EventLog
from ticktape.store.inspect import diff

SPEC = DemoSpec(start="2024-11-25", end="2024-12-03", trades_per_minute=2, quotes_per_minute=2)


@pytest.fixture(scope="module")
def week(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Generated data, and the log of an uninterrupted run over it."""
    root = tmp_path_factory.mktemp("resume")
    data = generate(root / "data", SPEC)
    whole = root / "whole.lmdb"
    assert main(_run_args(data, whole)) == 0
    return data, whole


def _run_args(data: Path, log: Path) -> list[str]:
    symbols = ",".join(SPEC.symbols)
    dates = ["--start", "2024-11-25", "--end", "2024-12-03", "--trailing-days", "1"]
    return ["run", "--data", str(data), "--symbols", symbols, *dates, "--log", str(log),
            "--sync", "none"]  # fmt: skip


def _killed_run(data: Path, log: Path, crash_at: str | None, past: int | None = None) -> None:
    """Run in a subprocess that dies by SIGKILL: at a crash point, or once more than `past`
    events are committed (watched from here, as a reader beside the writer)."""
    env = {**os.environ, "TICKTAPE_CRASH_AT": crash_at or ""}
    process = subprocess.Popen(
        [sys.executable, "-m", "ticktape.scenarios.cli", *_run_args(data, log)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    if past is not None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            if (log / "data.mdb").exists():
                with EventLog.open(log) as reader:
                    if reader.committed()[0] > past:
                        break
            time.sleep(0.002)
        process.send_signal(signal.SIGKILL)
    process.communicate(timeout=120)
    assert process.returncode == -signal.SIGKILL, "the run was not killed"


# Named points: inside a commit's transaction, between the writes of a session open, of a step,
# and of a session close; then kills at random wall times.
POINTS = ["commit:2", "open:1", "open:3", "step:3", "step:8", "close:1", "close:4"]


@pytest.mark.parametrize("point", [*POINTS, "random:1", "random:2"])
def test_a_run_killed_anywhere_resumes_to_the_uninterrupted_log(
    week: tuple[Path, Path], tmp_path: Path, point: str
) -> None:
    data, whole = week
    log = tmp_path / "killed.lmdb"
    if point.startswith("random"):
        with EventLog.open(whole) as complete:
            total = complete.committed()[0]
        _killed_run(data, log, None, past=int(random.Random(point).uniform(0.1, 0.7) * total))
    else:
        _killed_run(data, log, point)
    with EventLog.open(log) as killed, EventLog.open(whole) as complete:
        prefix = killed.committed()[0]
        assert prefix < complete.committed()[0]  # it really died before the end
    assert main(["resume", str(log)]) == 0
    with EventLog.open(log) as resumed, EventLog.open(whole) as complete:
        assert diff(resumed, complete) is None  # byte for byte, the same records
        assert resumed.committed() == complete.committed()  # and the same digest
        assert resumed.verify().ok
        notes = resumed.manifest()["resumes"]
    assert [n["from_seq"] for n in notes] == [prefix]  # noted in the manifest, not the chain


def test_a_finished_log_has_nothing_to_resume(
    week: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, whole = week
    assert main(["resume", str(whole)]) == 2
    assert "nothing to resume" in capsys.readouterr().err


def test_verify_rerun_agrees_then_names_the_first_divergence(
    week: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, whole = week
    assert main(["log", "verify", str(whole), "--rerun"]) == 0
    assert "the re-run gave the same" in capsys.readouterr().out

    moved = tmp_path / "moved"
    moved.mkdir()
    for path in data.iterdir():
        text = path.read_text()
        if path.name == "BOLT.csv":  # one price changed in the inputs
            lines = text.splitlines(keepends=True)
            row = next(i for i, x in enumerate(lines) if "T10:30:00" in x)
            fields = lines[row].split(",")
            fields[5] = f"{float(fields[5]) + 0.01:.2f}"  # close, still inside high/low?
            fields[3] = str(max(float(fields[3]), float(fields[5])))
            fields[4] = str(min(float(fields[4]), float(fields[5])))
            lines[row] = ",".join(fields)
            text = "".join(lines)
        (moved / path.name).write_text(text)
    assert main(["log", "verify", str(whole), "--rerun", "--data", str(moved)]) == 1
    out = capsys.readouterr().out
    assert "input file(s) changed since the run: BOLT.csv" in out


def test_the_real_week_killed_at_a_close_resumes_to_the_same_log(
    realdata: Path, tmp_path: Path
) -> None:
    data = tmp_path / "bars"
    data.mkdir()
    for symbol in ("AIG", "BAC", "IBM", "SPY"):
        (data / f"{symbol}.csv").write_bytes((realdata / f"{symbol}.csv").read_bytes())
    args = ["--symbols", "AIG,BAC,IBM,SPY", "--start", "2013-10-04", "--end", "2013-10-11"]
    whole, killed = tmp_path / "whole.lmdb", tmp_path / "killed.lmdb"
    assert main(["run", "--data", str(data), *args, "--log", str(whole), "--sync", "none"]) == 0
    process = subprocess.run(
        [sys.executable, "-m", "ticktape.scenarios.cli", "run", "--data", str(data), *args,
         "--log", str(killed), "--sync", "none"],
        cwd=ROOT, env={**os.environ, "TICKTAPE_CRASH_AT": "close:3"}, capture_output=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert process.returncode == -signal.SIGKILL
    assert main(["resume", str(killed)]) == 0
    with EventLog.open(killed) as resumed, EventLog.open(whole) as complete:
        assert diff(resumed, complete) is None
        assert resumed.committed() == complete.committed()
