"""Every scenario script in `scenarios/scripts/` runs through `ticktape run SCRIPT.py` and passes.

Each script carries its own assertions (DESIGN §10) and prints a one-line summary that starts with
its name. A failed assertion propagates out of `main`, so it fails the test with the script's
message.
"""

from __future__ import annotations

from pathlib import Path

import pykka
import pytest

from tests.conftest import ROOT
from ticktape.scenarios.cli import main

SCRIPTS = sorted((ROOT / "scenarios" / "scripts").glob("*.py"))
EXPECTED = {
    "clock_60x",
    "flight_follower",
    "midday_start",
    "holiday_and_early_close",
    "lossy_feed",
    "normal_day",
    "pause_resume",
    "stream_exhaustion",
}


def test_the_scenarios_are_all_there() -> None:
    assert {p.stem for p in SCRIPTS} >= EXPECTED


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_scenario_script_passes(script: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(script)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"{script.stem}:"), out
    assert "Traceback" not in err
    assert pykka.ActorRegistry.get_all() == []  # the script stopped every actor it started
