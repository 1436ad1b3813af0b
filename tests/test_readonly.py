"""Read-only logs (issue 15, point 7): a log the user can read but not write is verified,
replayed and tailed (LMDB's lock file cannot be opened, so the log is read without it); a
writer is refused with one line.

The log lies in a folder without write permission. Root passes every permission check, so as
root the tools run without CAP_DAC_OVERRIDE (`setpriv`): a real permission boundary, no mocks.
(On a read-only mount LMDB itself reads without its lock; permissions were what failed.)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.helpers import run_argv
from tests.test_tamper import SPEC
from ticktape.scenarios.cli import main
from ticktape.scenarios.demo_data import generate

# root passes every permission check through CAP_DAC_OVERRIDE: the reader runs without it
WITHOUT_OVERRIDE = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]
AS_READER = WITHOUT_OVERRIDE if os.geteuid() == 0 else []


def as_reader(*argv: object) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*AS_READER, sys.executable, "-m", "ticktape.scenarios.cli", *map(str, argv)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def read_only_log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A finished run's log in a folder its reader may read but not write."""
    if AS_READER and shutil.which("setpriv") is None:
        pytest.skip("as root, reading without write permission needs setpriv (util-linux)")
    root = tmp_path_factory.mktemp("readonly")
    data = generate(root / "data", SPEC)
    log = root / "run.lmdb"
    assert main(run_argv(data, log, SPEC)) == 0
    shared = Path(tempfile.mkdtemp(prefix="ticktape-readonly-"))
    try:
        shutil.copytree(log, shared / "log")
        (shared / "log" / "lock.mdb").unlink(missing_ok=True)  # as a log copied from elsewhere
        for path in (shared / "log").iterdir():
            path.chmod(0o444)
        for folder in (shared / "log", shared):
            folder.chmod(0o555)
        yield shared / "log"
    finally:
        for folder in (shared, shared / "log"):
            folder.chmod(0o755)
        shutil.rmtree(shared, ignore_errors=True)


@pytest.mark.parametrize(
    "tool", [["log", "verify"], ["log", "stats"], ["log", "tail", "-n", "3"], ["replay"]]
)
def test_a_log_that_cannot_be_written_can_be_read(read_only_log: Path, tool: list[str]) -> None:
    done = as_reader(*tool, read_only_log)
    assert done.returncode == 0, done.stderr
    assert "live writer is not excluded" in done.stderr  # said once, as a warning
    assert "Traceback" not in done.stderr
    assert not (read_only_log / "lock.mdb").exists()


def test_a_folder_that_cannot_be_written_refuses_a_writer(read_only_log: Path) -> None:
    data = read_only_log.parent.parent  # any folder: the log path is what is refused
    done = as_reader(
        "run", "--data", data, "--symbols", "ACME", "--log", read_only_log.parent / "new"
    )
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
