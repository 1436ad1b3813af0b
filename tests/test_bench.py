"""`ticktape bench`: one process per measurement, medians, ratios to ticktape; tiny sizes here."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from ticktape.scenarios.cli import main


def test_bench_measures_whole_processes_and_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TICKTAPE_BENCH_CACHE", str(tmp_path))
    args = ["bench", "--symbols", "2", "--start", "2024-03-04", "--end", "2024-03-05"]
    assert main([*args, "--repeat", "1", "--json"]) == 0
    rows = {r["engine"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == {"ticktape", "log ceiling", "replay"}  # the peers only with --peers
    run, ceiling = rows["ticktape"], rows["log ceiling"]
    assert run["bars"] == ceiling["bars"] > 2 * 2 * 380  # two symbols, two sessions, 1 % gaps
    assert run["events"] > run["bars"]  # time advances, sessions, upkeep findings
    assert run["vs_ticktape"] == 1.0
    for row in (run, ceiling):
        assert row["wall_s"] > row["stream_s"] > 0  # the whole process includes the start-up
        assert row["peak_rss_mb"] > 20  # an interpreter with numpy loaded, at least
        assert row["log_bytes_per_bar"] > 60  # a Bar record is about 70 bytes of msgpack
    replay = rows["replay"]
    assert replay["events"] == run["events"]  # the same run, replayed
    assert replay["replay_events_per_s"] > 0 and replay["replay_batch_events_per_s"] > 0
    assert len(list(tmp_path.glob("2x*/*.csv"))) == 2  # generated once into the cache


def test_the_optional_extras_stay_off_the_import_path_of_run_and_log() -> None:
    code = (
        "import sys, ticktape.scenarios.cli, ticktape.scenarios.commands.run;"
        "import ticktape.scenarios.commands.log, ticktape.actors.system, ticktape.actors.replay;"
        "extras = ('nautilus_trader', 'ticktape.scenarios.peers', 'ray',"
        " 'ticktape.scenarios.shards', 'ticktape.scenarios.sweep', 'plotly',"
        " 'ticktape.scenarios.report', 'pyarrow.flight', 'ticktape.scenarios.serve',"
        " 'databento_dbn');"
        "sys.exit(any(name in sys.modules for name in extras))"
    )
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


def test_peers_without_nautilus_is_one_sentence_and_exit_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    if importlib.util.find_spec("nautilus_trader") is not None:
        pytest.skip("NautilusTrader is installed here")
    assert main(["bench", "--peers", "--case", "quick"]) == 2
    assert "pip install 'ticktape[peers]'" in capsys.readouterr().err
