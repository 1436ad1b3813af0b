"""The command line's manners, through the real CLI (a subprocess) where it matters."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import ticktape
from tests.conftest import ROOT
from ticktape.scenarios.commands.controls import KeyReader
from ticktape.scenarios.demo_data import DemoSpec, generate

SPEC = DemoSpec(symbols=("ACME", "BOLT"), start="2024-11-26", end="2024-11-26",
                extended_hours=False)  # fmt: skip


def ticktape_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ticktape.scenarios.cli", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("manners")
    data = generate(root / "data", SPEC)
    done = ticktape_cli("run", "--data", str(data), "--symbols", "ACME,BOLT", "--start",
                        SPEC.start, "--end", SPEC.end, "--log", str(root / "day.lmdb"),
                        "--sync", "none")  # fmt: skip
    assert done.returncode == 0, done.stderr
    return root / "day.lmdb"


def test_version_and_verbose_after_the_command(day: Path) -> None:
    done = ticktape_cli("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"ticktape {_installed()}"
    quiet = ticktape_cli("replay", str(day))
    loud = ticktape_cli("replay", str(day), "-v")  # -v after the command, as before it
    assert quiet.returncode == loud.returncode == 0
    assert quiet.stdout.splitlines()[-1] == loud.stdout.splitlines()[-1]  # the digest
    shown = ticktape_cli("log", "show", str(day), "--limit", "1", "-v")
    assert shown.returncode == 0, shown.stderr


def _installed() -> str:
    from importlib.metadata import version

    return version("ticktape")


def test_a_paced_replay_takes_the_keys_of_run(day: Path, tmp_path: Path) -> None:
    """p pauses, s steps one slice, + doubles the speed, q stops: the same keys as `run`."""
    notes: list[str] = []
    with ticktape.Replay(day, speed=600.0) as replay:
        keys = KeyReader(replay, notes.append)
        taken: list[ticktape.Event] = []

        def press() -> None:
            keys.press("p")
            time.sleep(0.3)
            held = len(taken)
            keys.press("s")
            time.sleep(0.3)
            notes.append(f"held {held} then {len(taken)}")
            keys.press("+")
            keys.press("q")

        presser = threading.Thread(target=press)
        presser.start()
        taken.extend(replay.events())
        presser.join(5)
        totals = replay.wait()
    held, stepped = (int(n) for n in notes[2].split()[1::2])
    slice_of_step = taken[held:stepped]
    assert stepped > held and len({e.ts for e in slice_of_step}) == 1  # exactly one slice
    assert notes[:2] == ["paused", "stepped one slice"] and notes[3] == "speed 1200x"
    assert replay.speed == 1200.0 and totals.state == "stopped"


def test_a_paced_replay_of_a_range_prints_its_digest(day: Path) -> None:
    done = ticktape_cli("replay", str(day), "--speed", "3600", "--from", "2024-11-26T10:00",
                        "--to", "2024-11-26T10:10")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1].startswith("digest ")


def test_errors_name_arguments_in_python_and_options_on_the_command_line(
    day: Path, tmp_path: Path
) -> None:
    from typing import Literal, get_args, get_type_hints

    data = str(day.parent / "data")
    config = ticktape.RunConfig(data=data, symbols=("ACME",), start=SPEC.start, end=SPEC.end,
                                log=str(tmp_path / "py.lmdb"), trailing_days=-1)  # fmt: skip
    with pytest.raises(ticktape.ConfigError, match=r"^`trailing_days` must be 0 or more$"):
        ticktape.System(config)
    done = ticktape_cli("run", "--data", data, "--symbols", "ACME", "--start", SPEC.start,
                        "--end", SPEC.end, "--log", str(tmp_path / "cli.lmdb"),
                        "--trailing-days", "-1")  # fmt: skip
    assert done.returncode == 2
    assert done.stderr == "ticktape: error: --trailing-days must be 0 or more\n"
    hints = get_type_hints(ticktape.RunConfig)
    assert get_args(hints["gap_policy"]) == ("leave", "forward-fill")
    assert hints["sync"].__origin__ is Literal and "output_queue" in ticktape.RunConfig.__doc__


def test_every_option_has_help_and_its_default() -> None:
    import argparse

    from ticktape.scenarios.cli import _parser

    missing = []

    def walk(parser: argparse.ArgumentParser, name: str) -> None:
        assert parser.formatter_class is argparse.ArgumentDefaultsHelpFormatter, name
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for command, sub in action.choices.items():
                    walk(sub, f"{name} {command}")
            elif not action.help:
                missing.append(f"{name} {action.option_strings or action.dest}")

    walk(_parser([]), "ticktape")
    assert missing == []


def test_show_says_when_it_stops_at_its_limit_and_a_symbol_keeps_unsymbolled_events(
    day: Path,
) -> None:
    shown = ticktape_cli("log", "show", str(day), "--kind", "SessionOpened,Bar", "--symbol",
                         "BOLT", "--limit", "3")  # fmt: skip
    lines = shown.stdout.splitlines()
    assert shown.returncode == 0 and len(lines) == 3
    assert "SessionOpened" in lines[0] and all("symbol=BOLT" in x for x in lines[1:])
    assert shown.stderr.startswith("ticktape: stopped at --limit 3; more events match")
    everything = ticktape_cli("log", "show", str(day), "--kind", "SessionOpened")
    assert everything.returncode == 0 and everything.stderr == ""


def test_tail_filters_and_follows_a_log_that_does_not_exist_yet(day: Path, tmp_path: Path) -> None:
    tail = ticktape_cli("log", "tail", str(day), "-n", "2", "--kind", "Bar", "--symbol", "ACME")
    assert tail.returncode == 0
    assert len(tail.stdout.splitlines()) == 2 and all(
        " Bar " in x and "symbol=ACME" in x for x in tail.stdout.splitlines()
    )
    later = tmp_path / "later.lmdb"
    follower = subprocess.Popen(
        [sys.executable, "-m", "ticktape.scenarios.cli", "log", "tail", str(later), "--follow",
         "--kind", "RunFinished", "--timeout", "60"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(1.0)  # the follower waits for the log to appear
    assert follower.poll() is None
    done = ticktape_cli("run", "--data", str(day.parent / "data"), "--symbols", "ACME",
                        "--start", SPEC.start, "--end", SPEC.end, "--log", str(later),
                        "--sync", "none")  # fmt: skip
    assert done.returncode == 0, done.stderr
    out, err = follower.communicate(timeout=60)
    assert follower.returncode == 0, err
    assert [x.split()[1] for x in out.splitlines()] == ["RunFinished"]


def test_run_from_a_toml_config_with_a_default_log_and_force(day: Path, tmp_path: Path) -> None:
    data = day.parent / "data"
    (tmp_path / "run.toml").write_text(
        f'data = "{data}"\nsymbols = ["ACME", "BOLT"]\nstart = "{SPEC.start}"\n'
        f'end = "{SPEC.end}"\nsync = "none"\ntrailing_days = 3\n'
    )
    cwd = tmp_path / "work"
    cwd.mkdir()

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ticktape.scenarios.cli", "run", "--config",
             str(tmp_path / "run.toml"), *extra],
            cwd=cwd, capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    first = run("--trailing-days", "0")  # an option given here overrides the file
    assert first.returncode == 0, first.stderr
    log = cwd / "runs" / f"{SPEC.start}_{SPEC.end}.lmdb"
    assert f"log: runs/{SPEC.start}_{SPEC.end}.lmdb" in first.stdout
    with ticktape.open_log(log) as opened:
        started = next(e for _, e in opened.events() if isinstance(e, ticktape.RunStarted))
    assert started.trailing_days == 0 and started.symbols == ("ACME", "BOLT")
    again = run("--trailing-days", "0")
    assert again.returncode == 2 and "already exists" in again.stderr
    forced = run("--trailing-days", "0", "--force")
    assert forced.returncode == 0, forced.stderr
    assert forced.stdout.splitlines()[-1] == first.stdout.splitlines()[-1]  # the same digest


def test_options_beside_a_scenario_script_are_refused(tmp_path: Path) -> None:
    script = tmp_path / "scenario.py"
    script.write_text("print('ran')\n")
    refused = ticktape_cli("run", str(script), "--speed", "60", "--symbols", "SPY")
    assert refused.returncode == 2
    assert refused.stderr.startswith("ticktape: error: --speed, --symbols would not reach")
    ran = ticktape_cli("run", str(script))
    assert ran.returncode == 0 and ran.stdout == "ran\n"


def test_verify_rerun_leaves_no_temp_folder(day: Path, tmp_path: Path) -> None:
    import os

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "ticktape.scenarios.cli", "log", "verify", str(day), "--rerun"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "TMPDIR": str(scratch)},
    )  # fmt: skip
    assert done.returncode == 0 and done.stdout.startswith("ok: the re-run gave the same")
    assert list(scratch.iterdir()) == []


def test_the_bench_tables_fit_80_columns() -> None:
    from rich.console import Console

    from ticktape.scenarios.bench import CASES, BenchRow
    from ticktape.scenarios.commands.bench import bench_tables

    def row(case: str, engine: str) -> BenchRow:  # the widest figures a bench prints
        return BenchRow(case, engine, 780_000, 1_500_000, 123.45, 99.9, 12_345.0, 9_999_999.0,
                        99_999_999.0, 123.4, 9_999_999.0, 99_999_999.0, 123.4)  # fmt: skip

    engines = ("ticktape", "log ceiling", "replay", "nautilus")
    rows = [row(case.name, engine) for case in CASES.values() for engine in engines]
    tables = bench_tables(rows)
    assert len(tables) == len(CASES)
    wide = Console(width=200)
    for table in tables:
        assert wide.measure(table).maximum <= 80
        with wide.capture() as shown:
            wide.print(table)
        assert max(len(x) for x in shown.get().splitlines()) <= 80
        assert "replay: 9,999,999 events/s" in shown.get() and "nautilus" in shown.get()
