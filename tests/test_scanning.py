"""Scanning wide lines (issue 15, point 6): linear in the line's length, memory bounded by
MAX_LINE_BYTES, and a wide line costs its own row (or, beyond the bound, the file from there on),
never a crash."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.bad_input_corpus import DAY, base
from ticktape.messages import rejections as why
from ticktape.store import reading
from ticktape.store.calendar import TradingCalendar
from ticktape.store.repository import MarketDataRepository

SESSION = TradingCalendar().sessions(DAY, DAY)[0]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return base(tmp_path / "data")


def _rejected(folder: Path) -> tuple[MarketDataRepository, list]:
    repository = MarketDataRepository(folder, ["AAA", "BBB"])
    return repository, [*repository.file_rejections, *repository.load_session(SESSION).rejected]


def test_a_wide_first_line_is_one_rejection(data: Path) -> None:
    (data / "wide.csv").write_bytes(b"symbol,timestamp," + b"x" * 200_000 + b"\nAAA,1,2\n")
    repository, rejected = _rejected(data)
    assert [(r.file, r.row, r.reason) for r in rejected] == [("wide.csv", 0, why.HEADER_UNREADABLE)]
    assert len(repository.load_session(SESSION).bars) > 0  # the other files load


def test_a_wide_data_line_costs_its_row(data: Path) -> None:
    lines = (data / "AAA.csv").read_bytes().split(b"\n")
    lines[5] = lines[5] + b"," + b"y" * 300_000  # one field too many, and wide
    (data / "AAA.csv").write_bytes(b"\n".join(lines))
    _, rejected = _rejected(data)
    assert [(r.file, r.row) for r in rejected] == [("AAA.csv", 6)]
    assert why.code(rejected[0].reason) == "malformed_row"


def test_a_line_beyond_the_bound_ends_the_file_there(
    data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reading, "MAX_LINE_BYTES", 2 << 20)
    lines = (data / "AAA.csv").read_bytes().split(b"\n")
    lines[200] = b"z" * (5 << 20)
    (data / "AAA.csv").write_bytes(b"\n".join(lines))
    repository, rejected = _rejected(data)
    assert [(r.file, r.row, r.reason) for r in rejected] == [
        ("AAA.csv", 201, why.DAMAGED_FROM_HERE)
    ]
    bars = repository.load_session(SESSION).bars
    assert 0 < int((bars.symbol == 0).sum()) < 200  # AAA's rows before the line


def _scan_seconds(path: Path, line_bytes: int) -> float:
    path.write_bytes(b"symbol,timestamp,price,size\nAAA," + b"9" * line_bytes + b"\n")
    started = time.perf_counter()
    for _ in reading.blocks(path)[0]:
        pass
    return time.perf_counter() - started


def test_scanning_a_long_line_is_linear(tmp_path: Path) -> None:
    """Quadratic cutting took 34.6 s for a 200 MB line; four times the line, about four times
    the time (sixteen if quadratic), measured as the best of three on a shared machine."""
    short = min(_scan_seconds(tmp_path / "a.csv", 8 << 20) for _ in range(3))
    long = min(_scan_seconds(tmp_path / "b.csv", 32 << 20) for _ in range(3))
    assert long < 8 * short + 0.05, (short, long)
