"""The README's Python examples run as they stand, on the demo data, and print what they say."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT


def _examples() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## A scenario script") : text.index("## The command line")]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("readme")
    done = subprocess.run(
        [sys.executable, "-m", "ticktape.scenarios.cli", "demo", "--out", str(root / "demo")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return root


def test_the_consumer_examples_run_and_print_what_they_promise(workdir: Path) -> None:
    examples = _examples()
    assert len(examples) == 3
    said = []
    for code in examples:  # in order: the first writes the log the others replay
        done = subprocess.run([sys.executable, "-c", code], cwd=workdir, capture_output=True,
                              text=True, timeout=300)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert done.stderr == ""  # a plain Python run prints nothing it was not asked to
        said.append(done.stdout)
    gaps = [line for line in said[0].splitlines() if line.startswith("gap at")]
    assert gaps and said[0].splitlines()[-1].startswith("finished ")
    assert re.search(r"^\d+ events replayed, \d+ bars handed to on_bar$", said[1], re.M)
    assert "BOLT bars known at 10:30, the last from 2024-11-27 10:29:00-05:00" in said[2]
