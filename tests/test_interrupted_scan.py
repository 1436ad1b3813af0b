"""Ctrl-C or SIGTERM during a long input scan (DESIGN §10): the command exits 130/143 promptly
with one line, instead of waiting for every file to be read. The scan is made long by one big gzip
file of generated rows (about 470 MB of lines in 6 MB on disk, made in a fraction of a second):
about 11 s of reading on a 2-core machine; the old scan ran to its end before exiting."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.helpers import run_argv
from ticktape.scenarios.demo_data import DemoSpec, generate

SPEC = DemoSpec(symbols=("ACME",), start="2024-11-25", end="2024-11-26", extended_hours=False)
ROWS, MEMBERS = 100_000, 8  # ten rows repeated: 470 MB of lines


@pytest.fixture(scope="module")
def big_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = generate(tmp_path_factory.mktemp("scan") / "data", SPEC)
    header, _, rows = next(data.glob("*.csv")).read_bytes().partition(b"\n")
    member = gzip.compress(b"\n".join(rows.split(b"\n")[:10]) * ROWS, compresslevel=1)
    with (data / "ACME-big.csv.gz").open("wb") as fh:
        fh.write(gzip.compress(header + b"\n"))
        for _ in range(MEMBERS):
            fh.write(member)
    return data


def _reading(pid: int, folder: Path) -> bool:
    """Whether the process has the big file open (its scan has begun)."""
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            if os.readlink(fd).startswith(str(folder)) and os.readlink(fd).endswith(".gz"):
                return True
        except OSError:
            continue
    return False


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="needs /proc to see the scan")
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_the_scan_stops_it_promptly(
    big_folder: Path, tmp_path: Path, signum: int
) -> None:
    log = tmp_path / "log"
    process = subprocess.Popen(
        [sys.executable, "-m", "ticktape.scenarios.cli", *run_argv(big_folder, log, SPEC)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not _reading(process.pid, big_folder):
            assert process.poll() is None and time.monotonic() < deadline, "no scan was seen"
            time.sleep(0.005)
        time.sleep(0.5)  # well inside its scan
        sent = time.monotonic()
        process.send_signal(signum)
        out, err = process.communicate(timeout=60)
        took = time.monotonic() - sent
    finally:
        process.kill()
    assert process.returncode == 128 + signum, (out, err)
    assert err.splitlines() == [f"ticktape: stopped by {signal.Signals(signum).name}"]
    # The whole scan takes ~11 s on an idle 2-core machine; 4 s leaves room for a loaded one.
    assert took < 4.0, f"the scan went on for {took:.1f} s after the signal"
    assert not (log / "data.mdb").exists()  # no run had begun
