"""The `ticktape` command line, for real: no mocks, real files, real LMDB logs.

Commands run in-process through `scenarios.cli.main` (output read with capsys), plus one
subprocess run of `python -m ticktape.scenarios.cli demo`. Logs to inspect come from generated
data, so only the tests over the real bar files skip when `../shared/realdata` is absent.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import ROOT
from tests.helpers import ET, REAL_SYMBOLS, bar_files_only, read
from tests.test_eventlog import tamper
from ticktape.actors.system import System
from ticktape.messages.config import RunConfig
from ticktape.messages.events import EVENT_TYPES, Bar
from ticktape.scenarios.cli import main
from ticktape.scenarios.demo_data import DemoSpec, expected_bars, generate
from ticktape.store.eventlog import EventLog

DEMO_SPEC = DemoSpec(start="2024-11-26", end="2024-11-27")  # two sessions, three symbols, gaps
DEMO_SESSIONS = ("2024-11-26", "2024-11-27")
REAL_DAY = "2013-10-07"


def cli(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    """Run the command line in-process; returns (exit code, stdout, stderr)."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def run_args(data: Path, log: Path, symbols: tuple[str, ...], start: str, end: str) -> list:
    return [
        "run",
        "--data",
        data,
        "--symbols",
        ",".join(symbols),
        "--start",
        start,
        "--end",
        end,
        "--log",
        log,
        "--sync",
        "none",
    ]


def stats_json(capsys: pytest.CaptureFixture[str], log: Path) -> dict:
    code, out, err = cli(capsys, "log", "stats", log, "--json")
    assert (code, err) == (0, "")
    return json.loads(out)


@pytest.fixture(autouse=True)
def eighty_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tables for people are drawn to the console width: pin it, as a CI log or pipe would."""
    monkeypatch.setenv("COLUMNS", "80")


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("demo") / "data", DEMO_SPEC)


@pytest.fixture(scope="module")
def demo_log(demo_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished two-session log over the generated data; tests must not change it."""
    log = tmp_path_factory.mktemp("demo-log") / "run.lmdb"
    config = RunConfig(
        data=str(demo_data),
        symbols=DEMO_SPEC.symbols,
        start=DEMO_SPEC.start,
        end=DEMO_SPEC.end,
        log=str(log),
        sync="none",
    )
    System(config).run(timeout=60)
    return log


def regular_bars(spec: DemoSpec) -> pd.DataFrame:
    """The generator's regular-hours bars, with their session: the independent reference."""
    bars = expected_bars(spec)
    local = pd.to_datetime(bars["timestamp"], utc=True, format="ISO8601").dt.tz_convert(ET)
    minute = local.dt.hour * 60 + local.dt.minute
    bars["session"] = local.dt.strftime("%Y-%m-%d")
    return bars[(minute >= 9 * 60 + 30) & (minute < 16 * 60)]


# --- run, verify, re-run over the real bar files ----------------------------------------------


def test_run_over_real_bars_verifies_and_reruns_to_the_same_digest(
    realdata: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = bar_files_only(realdata, tmp_path / "data")
    first, second = tmp_path / "first.lmdb", tmp_path / "second.lmdb"

    code, out, err = cli(capsys, *run_args(data, first, REAL_SYMBOLS, REAL_DAY, REAL_DAY))
    assert code == 0, err
    assert "Traceback" not in err
    digest = stats_json(capsys, first)["digest"]
    assert len(digest) == 64
    assert "digest" in out and digest[:32] in out  # the summary table shows the run's digest
    assert "bars released" in out and "1,559" in out

    code, out, err = cli(capsys, "log", "verify", first)
    assert (code, err) == (0, "")
    assert out.startswith("ok:") and digest in out

    code, _, err = cli(capsys, *run_args(data, second, REAL_SYMBOLS, REAL_DAY, REAL_DAY))
    assert code == 0, err
    again = stats_json(capsys, second)
    assert again["digest"] == digest
    assert again["events"] == stats_json(capsys, first)["events"]


def test_run_prints_the_full_digest_on_an_80_column_console(
    demo_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "run.lmdb"
    args = run_args(demo_data, log, DEMO_SPEC.symbols, DEMO_SPEC.start, DEMO_SPEC.end)
    code, out, err = cli(capsys, *args)
    assert code == 0, err
    assert stats_json(capsys, log)["digest"] in out


# --- inspecting a log -----------------------------------------------------------------------


def test_stats_json_is_one_object_with_counts_digest_and_rows(
    demo_log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(capsys, "log", "stats", demo_log, "--json")
    assert (code, err) == (0, "")
    assert out.endswith("\n") and out.count("\n") == 1  # one line
    summary = json.loads(out)  # ONE JSON object, nothing around it
    assert isinstance(summary, dict)
    assert {"events", "digest", "kinds", "symbols"} <= set(summary)

    events = read(demo_log)
    assert summary["events"] == len(events) == sum(summary["kinds"].values())
    assert summary["kinds"] == dict(Counter(type(e).__name__ for e in events))
    with EventLog.open(demo_log) as opened:
        assert summary["digest"] == opened.verify().digest

    want = regular_bars(DEMO_SPEC).groupby(["symbol", "session"]).size().to_dict()
    rows = {(r["symbol"], r["session"]): r for r in summary["symbols"]}
    assert set(rows) == {(s, d) for s in DEMO_SPEC.symbols for d in DEMO_SESSIONS}
    for key, row in rows.items():
        assert {"bars", "gaps", "quality"} <= set(row), row
        assert row["bars"] == want[key], key
        assert row["gaps"] == 390 - want[key], key  # no backfill: every missing minute is a gap
        assert row["quality"] == pytest.approx(want[key] / 390), key
    assert sum(r["bars"] for r in rows.values()) == summary["kinds"]["Bar"]
    assert sum(r["gaps"] for r in rows.values()) == summary["kinds"]["GapDetected"] > 0


def test_stats_table_for_people(demo_log: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "log", "stats", demo_log)
    assert (code, err) == (0, "")
    for text in ("session", "quality", *DEMO_SPEC.symbols, *DEMO_SESSIONS):
        assert text in out


def test_export_jsonl_writes_every_event_with_seq_kind_and_fields(
    demo_log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_file = tmp_path / "all.jsonl"
    code, out, err = cli(capsys, "log", "export", demo_log, "--format", "jsonl", "--out", out_file)
    assert (code, out, err) == (0, "", "")
    lines = out_file.read_text().splitlines()
    events = read(demo_log)
    assert len(lines) == len(events) == stats_json(capsys, demo_log)["events"]

    for seq, (line, event) in enumerate(zip(lines, events, strict=True), start=1):
        row = json.loads(line)
        kind = type(event).__name__
        assert row["seq"] == seq and row["kind"] == kind
        assert set(row) == {"seq", "kind", *EVENT_TYPES[kind].__struct_fields__}, kind
        assert row["ts"] == event.ts
        if isinstance(event, Bar):
            got = [row[f] for f in Bar.__struct_fields__]
            assert got == [getattr(event, f) for f in Bar.__struct_fields__]


def test_export_filters_by_kind_and_symbol(
    demo_log: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    argv = ["log", "export", str(demo_log), "--format", "jsonl", "--kind", "Bar", "--symbol"]
    code = main([*argv, "ACME"])
    out, err = capsysbinary.readouterr()
    assert (code, err) == (0, b"")
    rows = [json.loads(line) for line in out.decode().splitlines()]
    want = regular_bars(DEMO_SPEC)
    assert len(rows) == int((want["symbol"] == "ACME").sum()) > 0
    assert all(r["kind"] == "Bar" and r["symbol"] == "ACME" for r in rows)
    seqs = [r["seq"] for r in rows]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


def test_show_limits_the_lines(demo_log: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gaps = stats_json(capsys, demo_log)["kinds"]["GapDetected"]
    assert gaps > 3
    code, out, err = cli(capsys, "log", "show", demo_log, "--kind", "GapDetected", "--limit", "3")
    assert code == 0 and err.startswith("ticktape: stopped at --limit 3; more events match")
    lines = out.splitlines()
    assert len(lines) == 3
    assert all("GapDetected" in line for line in lines)

    code, out, _ = cli(capsys, "log", "show", demo_log, "--kind", "GapDetected", "--limit", "1000")
    assert code == 0 and len(out.splitlines()) == gaps


# --- a tampered log ---------------------------------------------------------------------------


@pytest.mark.parametrize("change", ["flip", "cut"])
def test_verify_names_the_first_changed_record(
    demo_log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], change: str
) -> None:
    log = tmp_path / "tampered.lmdb"
    shutil.copytree(demo_log, log)
    with EventLog.open(log) as opened:
        bars = [seq for seq, event in opened.events() if isinstance(event, Bar)]
    seq = bars[len(bars) // 2]
    tamper(log, seq, change)

    code, out, err = cli(capsys, "log", "verify", log)
    assert code == 1
    assert "ok:" not in out
    with EventLog.open(demo_log) as opened:
        block = opened.block_events
    first = (seq - 1) // block * block + 1
    assert f"{first}-" in err and "Traceback" not in err  # the block holding the record
    if change == "cut":
        assert f"seq {seq}" in err  # the record that no longer decodes
    assert err.count("\n") == 1

    code, out, _ = cli(capsys, "log", "verify", demo_log)  # the original is untouched
    assert code == 0 and out.startswith("ok:")


# --- errors: one line, exit 2, no traceback -------------------------------------------------


def _run(data: Path, tmp: Path, **change: object) -> list[object]:
    """`run` with the demo settings, some of them changed, writing to a fresh log path."""
    settings = {
        "data": data,
        "symbols": ",".join(DEMO_SPEC.symbols),
        "start": DEMO_SPEC.start,
        "end": DEMO_SPEC.end,
        "log": tmp / "new.lmdb",
        **change,
    }
    return ["run", *[x for name, value in settings.items() for x in (f"--{name}", value)]]


# case -> (argv from (demo data, an existing log, a temp folder), text the message must name)
ERRORS = {
    "missing data folder": (lambda d, lg, t: _run(t / "no-such-folder", t), "no-such-folder"),
    "unknown symbol": (lambda d, lg, t: _run(d, t, symbols="ACME,NOPE"), "NOPE"),
    "bad date": (lambda d, lg, t: _run(d, t, start="2024-13-01"), "2024-13-01"),
    "end before start": (
        lambda d, lg, t: _run(d, t, start="2024-11-27", end="2024-11-26"),
        "after",
    ),
    "log already exists": (lambda d, lg, t: _run(d, t, log=lg), "already exists"),
    "run with no options": (lambda d, lg, t: ["run"], "--data"),
    "stats on a missing log": (lambda d, lg, t: ["log", "stats", t / "no-log", "--json"], "no-log"),
    "missing scenario script": (lambda d, lg, t: ["run", t / "nope.py"], "nope.py"),
    "log path is a file": (lambda d, lg, t: _run(d, t, log=_a_file(t / "afile")), "afile"),
    "log folder cannot be made": (
        lambda d, lg, t: _run(d, t, log=_a_file(t / "afile") / "run.lmdb"),
        "afile",
    ),
    "export to a missing folder": (
        lambda d, lg, t: ["log", "export", lg, "--out", t / "no-such-dir" / "out.jsonl"],
        "no-such-dir",
    ),
}


def _a_file(path: Path) -> Path:
    path.write_text("not a log\n")
    return path


@pytest.mark.parametrize(
    "case",
    sorted(ERRORS),
)
def test_errors_are_one_line_with_exit_code_2(
    case: str,
    demo_data: Path,
    demo_log: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    make, names = ERRORS[case]
    before = read(demo_log)
    code, out, err = cli(capsys, *make(demo_data, demo_log, tmp_path))
    assert code == 2, (out, err)
    assert err.startswith("ticktape: error: "), err
    assert err.endswith("\n") and err.count("\n") == 1, err  # one line
    assert "Traceback" not in err
    assert names in err, err
    assert out == ""
    assert not (tmp_path / "new.lmdb").exists()  # found before any log was written
    assert read(demo_log) == before  # an existing log is never touched


# --- the demo, as a user runs it --------------------------------------------------------------


def test_demo_as_a_subprocess(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = tmp_path / "demo"
    done = subprocess.run(
        [sys.executable, "-m", "ticktape.scenarios.cli", "demo", "--out", str(out_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "80"},
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    for text in ("ticktape run", "sessions", "bars released", "events logged", "digest"):
        assert text in done.stdout, text
    log = out_dir / "demo.lmdb"
    summary = stats_json(capsys, log)
    assert summary["digest"][:16] in done.stdout
    assert summary["finished"]
    assert summary["kinds"]["SessionOpened"] == 6  # Thanksgiving week 2024: no Thursday session
    code, out, _ = cli(capsys, "log", "verify", log)
    assert code == 0 and out.startswith("ok:")


def test_a_run_imports_no_pandas(tmp_path: Path) -> None:
    """pyarrow imports pandas (about 50 MB, a third of a second) on its first `pa.array` or
    `to_numpy`; a run needs none of it, on bars or ticks, with symbols filtered out of a file."""
    spec = DemoSpec(
        start="2024-11-25",
        end="2024-11-26",
        layout="single",
        trades_per_minute=5,
        quotes_per_minute=5,
    )
    data = generate(tmp_path / "data", spec)
    code = (
        "import sys; from ticktape.scenarios.cli import main;"
        f"done = main(['run', '--data', {str(data)!r}, '--symbols', 'ACME,CRUX',"
        f" '--start', '2024-11-25', '--end', '2024-11-26', '--log', {str(tmp_path / 'l')!r}]);"
        "sys.exit(3 if 'pandas' in sys.modules else done)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
