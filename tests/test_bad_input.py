"""Bad input costs exactly the bad rows: a real run over every fault class of the corpus."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.bad_input_corpus import DAY, DECISIONS, FAULTS, KINDS, Fault, base, good_rows
from ticktape.actors.system import System
from ticktape.messages.config import RunConfig
from ticktape.messages.events import Bar, DataRejected, Quote, SessionClosed, Trade
from ticktape.store.eventlog import EventLog


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return base(tmp_path_factory.mktemp("clean") / "data")


def run(data: Path, log: Path) -> list:
    config = RunConfig(
        data=str(data), symbols=("AAA", "BBB"), start=DAY, end=DAY, log=str(log), sync="none"
    )
    System(config).run(timeout=60)
    opened = EventLog.open(log)
    assert opened.verify().ok
    events = [event for _, event in opened.events()]
    opened.close()
    return events


def released(events: list) -> dict[str, list[tuple[str, int]]]:
    return {
        "Bar": sorted((e.symbol, e.ts_start) for e in events if isinstance(e, Bar)),
        "Trade": sorted((e.symbol, e.ts) for e in events if isinstance(e, Trade)),
        "Quote": sorted((e.symbol, e.ts) for e in events if isinstance(e, Quote)),
    }


@pytest.mark.parametrize("name", sorted(FAULTS))
def test_a_fault_costs_exactly_its_rows(clean: Path, tmp_path: Path, name: str) -> None:
    data = tmp_path / "data"
    shutil.copytree(clean, data)
    fault: Fault = FAULTS[name](data)
    events = run(data, tmp_path / "log")
    rejected = [e for e in events if isinstance(e, DataRejected)]
    assert len(rejected) == fault.rejected, [(r.file, r.row, r.reason) for r in rejected]
    assert released(events) == good_rows(clean, fault)
    for r in rejected:
        lost = {n.removesuffix(".gz") for n in fault.lost}
        if r.row and lost:
            assert any(r.file.removesuffix(".gz").startswith(n.split(".")[0]) for n in lost)


def test_every_odd_input_is_decided_with_a_reason(tmp_path: Path, clean: Path) -> None:
    """The decision is the one the run makes: the corpus counts its rejections above."""
    for name, (decision, reason) in DECISIONS.items():
        assert decision in ("accept", "reject row", "reject file") and reason
        data = tmp_path / name.replace(" ", "_")
        shutil.copytree(clean, data)
        fault = FAULTS[name](data)
        assert (fault.rejected == 0) == (decision == "accept"), name
        assert bool(fault.gone) == (decision == "reject file"), name


@pytest.mark.parametrize("speed", ["1e300", "inf", "-1", "nan"])
def test_an_impossible_speed_is_one_line_and_exit_2(
    tmp_path: Path, clean: Path, speed: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from ticktape.scenarios.cli import main

    argv = ["run", "--data", str(clean), "--symbols", "AAA", "--start", DAY, "--end", DAY,
            "--log", str(tmp_path / "log"), "--speed", speed]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--speed" in err, err
    assert not (tmp_path / "log").exists()


MUTATIONS = st.sampled_from(["flip", "cut", "quote", "cr", "invalid", "repeat", "drop"])


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    changes=st.lists(
        st.tuples(MUTATIONS, st.sampled_from(sorted(KINDS)), st.integers(0, 10**9)),
        min_size=1,
        max_size=4,
    )
)
def test_random_damage_never_crashes_and_every_row_is_accounted_for(
    clean: Path, tmp_path_factory: pytest.TempPathFactory, changes: list
) -> None:
    """Every row of an asked symbol ends up released, rejected, or left out as outside regular
    hours. A flip inside a symbol name makes its row another symbol's, and one inside a date can
    move it to a day outside the run: such rows are not this run's, so they are not counted."""
    folder = tmp_path_factory.mktemp("fuzz")
    data = folder / "data"
    shutil.copytree(clean, data)
    for mutation, name, seed in changes:
        path = data / name
        raw = bytearray(path.read_bytes())
        at = len(raw) // 3 + seed % max(1, len(raw) - len(raw) // 3)
        if mutation == "flip":
            raw[at] ^= 1 << (seed % 8)
        elif mutation == "cut":
            del raw[at:]
        elif mutation == "quote":
            raw[at:at] = b'"'
        elif mutation == "cr":
            raw[at:at] = b"\r"
        elif mutation == "invalid":
            raw[at:at] = b"\xff"
        elif mutation == "repeat":
            start = raw.rfind(b"\n", 0, at) + 1
            end = raw.find(b"\n", at) + 1 or len(raw)
            raw[start:start] = raw[start:end]
        elif mutation == "drop":
            raw[at : at + 40] = b""
        path.write_bytes(bytes(raw))
    try:
        events = run(data, folder / "log")
    except Exception as exc:  # a damaged header may leave a symbol with no usable file
        assert "no data for symbol" in str(exc), exc
        return
    rows = 0
    for name in KINDS:
        text = (data / name).read_bytes().replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = [line.split(b",") for line in text.split(b"\n")[1:]]
        ours = [f for f in lines if f[0] in (b"AAA", b"BBB") and len(f) > 1]
        rows += sum(1 for f in ours if f[1].startswith(DAY.encode()))
    counted = sum(len(v) for v in released(events).values())
    counted += sum(1 for e in events if isinstance(e, DataRejected) and e.row > 0)
    counted += sum(e.left_out for e in events if isinstance(e, SessionClosed))
    assert counted >= rows - sum(1 for e in events if isinstance(e, DataRejected) and e.row == 0)
