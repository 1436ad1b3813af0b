"""A catalog that proves itself, and a resume that refuses changed inputs (issue 15, point 3):
partitions are checked against their recorded size and sha256 and their rows re-validated,
paths stay inside the catalog, a damaged partition is refused before any actor starts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import ROOT
from tests.helpers import run_argv
from ticktape.scenarios.cli import main
from ticktape.scenarios.demo_data import DemoSpec, generate
from ticktape.store.catalog import MANIFEST, sha256_of
from ticktape.store.catalog_ingest import ingest
from ticktape.store.eventlog import EventLog

SPEC = DemoSpec(symbols=("ACME",), start="2024-11-26", end="2024-11-27", extended_hours=False)
FIRST = "bars/session=2024-11-26/part.parquet"


def run_args(data: Path, log: Path) -> list[str]:
    return run_argv(data, log, SPEC)


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    ingest([generate(tmp_path / "raw", SPEC)], tmp_path / "catalog")
    return tmp_path / "catalog"


def refused(argv: list[str], capsys: pytest.CaptureFixture[str], code: int = 2) -> str:
    assert main(argv) == code
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


def nan_close(path: Path) -> None:
    table = pq.read_table(path)
    close = table.column("close").to_pylist()
    close[10] = float("nan")
    at = table.schema.get_field_index("close")
    pq.write_table(table.set_column(at, "close", pa.array(close, pa.float64())), path)


def record(catalog: Path, name: str) -> None:
    """Make the manifest agree with the file again, as a careful hostile edit would."""
    manifest = json.loads((catalog / MANIFEST).read_text())
    for entry in manifest["partitions"].values():
        for part in entry["kinds"].values():
            if part["path"] == name:
                part["sha256"] = sha256_of(catalog / name)
                part["bytes"] = (catalog / name).stat().st_size
    (catalog / MANIFEST).write_text(json.dumps(manifest))


def test_a_partition_edited_after_ingest_is_refused_before_the_run(
    catalog: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nan_close(catalog / FIRST)
    err = refused(run_args(catalog, tmp_path / "log"), capsys)
    assert "changed since ingest" in err and FIRST in err
    assert not (tmp_path / "log").exists()  # refused before anything was written


def test_a_truncated_partition_is_refused_before_the_run(
    catalog: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    last = "bars/session=2024-11-27/part.parquet"
    data = (catalog / last).read_bytes()
    (catalog / last).write_bytes(data[: len(data) // 2])
    err = refused(run_args(catalog, tmp_path / "log"), capsys)
    assert "changed since ingest" in err and last in err
    assert not (tmp_path / "log").exists()


def test_rows_are_revalidated_even_when_the_hashes_were_forged(
    catalog: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nan_close(catalog / FIRST)
    record(catalog, FIRST)
    assert main(run_args(catalog, tmp_path / "log")) == 1  # found at the session's load
    [line] = capsys.readouterr().err.strip().splitlines()  # one line: not the actors' too
    assert line.startswith("ticktape: run failed") and "repository rejects: NaN price" in line
    assert main(["-v", *run_args(catalog, tmp_path / "verbose")]) == 1
    assert "INFO: Prefetch failed: " in capsys.readouterr().err  # the early notice, asked for
    with EventLog.open(tmp_path / "log") as log:  # it stopped where the bad row was
        assert log.verify().ok
        assert not any(type(e).__name__ == "Bar" for _, e in log.events())


@pytest.mark.parametrize("path", ["../../../../etc/passwd", "/etc/passwd", "bars/../../x"])
def test_paths_in_the_manifest_stay_inside_the_catalog(
    catalog: Path, tmp_path: Path, path: str, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = json.loads((catalog / MANIFEST).read_text())
    next(iter(manifest["partitions"].values()))["kinds"]["bars"]["path"] = path
    (catalog / MANIFEST).write_text(json.dumps(manifest))
    err = refused(run_args(catalog, tmp_path / "log"), capsys)
    assert "outside itself" in err and repr(path) in err


@pytest.mark.parametrize(
    ("edit", "said"),
    [
        (lambda m: m.pop("calendar"), "lacks 'calendar'"),
        (lambda m: next(iter(m["partitions"].values()))["kinds"]["bars"].pop("bytes"), "lacks"),
        (lambda m: next(iter(m["partitions"].values()))["kinds"].update(bars=7), "has a bad"),
        (lambda m: m.update(partitions=[]), "has a bad"),
    ],
)
def test_a_manifest_with_missing_or_mistyped_entries_is_one_line(
    catalog: Path, tmp_path: Path, edit: object, said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = json.loads((catalog / MANIFEST).read_text())
    edit(manifest)  # type: ignore[operator]
    (catalog / MANIFEST).write_text(json.dumps(manifest))
    err = refused(run_args(catalog, tmp_path / "log"), capsys)
    assert said in err and "manifest" in err


def test_resume_refuses_inputs_that_changed_since_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = generate(tmp_path / "raw", SPEC)
    log = tmp_path / "log"
    killed = subprocess.run(
        [sys.executable, "-m", "ticktape.scenarios.cli", *run_args(data, log)],
        cwd=ROOT,
        env={**os.environ, "TICKTAPE_CRASH_AT": "commit:2"},
        capture_output=True,
        timeout=120,
    )
    assert killed.returncode == -signal.SIGKILL
    with (data / "ACME.csv").open("ab") as fh:
        fh.write(b"ACME,2024-11-27T15:59:00-05:00,1,1,1,1,1\n")
    err = refused(["resume", str(log)], capsys)
    assert "changed since the run: ACME.csv" in err
    with EventLog.open(log) as opened:  # untouched: still the killed run's prefix
        assert opened.verify().ok and not opened.manifest()["resumes"]
