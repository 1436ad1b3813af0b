"""Sweeps on a real local Ray (DESIGN §14): one task per run, one log each, a summary of every
run's settings, digest and figures; a run that fails is reported and the others finish."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from ticktape.actors.system import System
from ticktape.messages.config import RunConfig
from ticktape.scenarios.cli import main
from ticktape.scenarios.demo_data import DemoSpec, generate
from ticktape.scenarios.sweep import sweep_script

SPEC = DemoSpec(start="2024-11-25", end="2024-11-26", extended_hours=False)

SCRIPT = """
from ticktape.actors.system import System
from ticktape.messages.config import RunConfig

def run(log, data, derived):
    config = RunConfig(data=data, symbols=("ACME",), start="2024-11-25", end="2024-11-26",
                       log=log, derived=(derived,), sync="none")
    totals = System(config).run(timeout=60)
    return {"bars": totals.bars}
"""


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("sweep") / "data", SPEC)


def _direct_digest(data: Path, log: Path, **settings: object) -> str:
    """The same run, not swept: the reference each swept digest must equal."""
    base = {"data": str(data), "start": SPEC.start, "end": SPEC.end, "log": str(log)}
    return System(RunConfig(**{**base, "sync": "none", **settings})).run(timeout=60).digest


def test_a_sweep_over_universes_and_settings_reports_the_failed_run_and_finishes_the_others(
    data: Path, tmp_path: Path, local_ray, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sweep"
    args = ["sweep", "--out", str(out), "--data", str(data), "--start", SPEC.start, "--end",
            SPEC.end, "--sync", "none", "--universe", "ACME,BOLT", "--universe", "NOPE",
            "--grid", "trailing_days=0,1"]  # fmt: skip
    assert main(args) == 1
    err = capsys.readouterr().err
    rows = json.loads((out / "summary.json").read_text())
    assert [(r["settings"]["symbols"], r["settings"]["trailing_days"]) for r in rows] == [
        (["ACME", "BOLT"], 0), (["NOPE"], 0), (["ACME", "BOLT"], 1), (["NOPE"], 1),
    ]  # fmt: skip
    assert [r["state"] for r in rows] == ["done", "failed", "done", "failed"]
    for row in rows[1::2]:
        assert "no data for symbol NOPE" in row["error"]
        assert f"{row['run']} " in err
        assert not (out / row["log"]).exists()
    for row in rows[::2]:
        reference = _direct_digest(
            data, tmp_path / f"{row['run']}.lmdb", symbols=("ACME", "BOLT"),
            trailing_days=row["settings"]["trailing_days"],
        )  # fmt: skip
        assert row["digest"] == reference
        assert row["figures"]["bars"] > 2 * 2 * 380 and row["seconds"] > 0
        assert (out / row["log"] / "data.mdb").exists()
    with (out / "summary.csv").open() as fh:
        table = list(csv.DictReader(fh))
    assert [t["state"] for t in table] == ["done", "failed", "done", "failed"]
    assert table[0]["symbols"] == "ACME+BOLT" and table[0]["digest"] == rows[0]["digest"]


def test_a_script_swept_over_a_grid_reports_the_failed_run(
    data: Path, tmp_path: Path, local_ray
) -> None:
    script = tmp_path / "derived.py"
    script.write_text(SCRIPT)
    rows = sweep_script(script, {"data": [str(data)], "derived": [5, 0, 30]}, tmp_path / "out")
    assert [r["state"] for r in rows] == ["done", "failed", "done"]
    assert "`derived` intervals must be whole minutes" in rows[1]["error"]
    for row in (rows[0], rows[2]):
        derived = row["settings"]["derived"]
        reference = _direct_digest(
            data, tmp_path / f"{derived}.lmdb", symbols=("ACME",), derived=(derived,)
        )
        assert row["digest"] == reference and row["figures"]["bars"] > 2 * 380
    assert rows[0]["digest"] != rows[2]["digest"]  # the interval is a fact of the run
