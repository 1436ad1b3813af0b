"""Inputs as they come (issue 16): `ingest` sorts each session's rows by time, and a raw run over
an unsorted file says so once per file. Through the real CLI, on generated data; the expected
values come from how the test wrote its files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.helpers import of_kind, read, run_argv
from ticktape.scenarios.cli import main
from ticktape.scenarios.demo_data import DemoSpec, generate

# eight weeks of one symbol's bars: about 1.3 MB, so a raw run reads the file in three blocks
LONG = DemoSpec(symbols=("ACME",), start="2024-03-04", end="2024-04-26", gap_rate=0.0)
DAY = "2024-03-05"
NY = dt.timezone(dt.timedelta(hours=-5))  # March 5: EST


def _digest(log: Path) -> str:
    from ticktape.store.eventlog import EventLog

    with EventLog.open(log) as opened:
        return opened.digest


@pytest.fixture(scope="module")
def swapped(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[str]]:
    """The sorted file, and a copy with every 50th pair of neighbouring lines swapped; returns
    both folders and the timestamps of the rows the swaps put behind a later one."""
    base = tmp_path_factory.mktemp("unsorted")
    ordered = generate(base / "sorted", LONG)
    lines = (ordered / "ACME.csv").read_text().splitlines(keepends=True)
    late = []
    for i in range(1, len(lines) - 1, 50):
        lines[i], lines[i + 1] = lines[i + 1], lines[i]
        late.append(lines[i + 1].split(",")[1])
    (base / "unsorted").mkdir()
    (base / "unsorted" / "ACME.csv").write_text("".join(lines))
    return ordered, base / "unsorted", late


def _run(capsys, data: Path, log: Path, spec: DemoSpec = LONG, **dates: str) -> str:
    spec = DemoSpec(symbols=spec.symbols, start=dates.get("start", DAY), end=dates.get("end", DAY))
    assert main(run_argv(data, log, spec)) == 0
    return capsys.readouterr().err


def test_a_raw_run_over_an_unsorted_file_says_so_once_and_rejects_as_before(
    swapped, tmp_path, capsys
):
    _, unsorted, late = swapped
    err = _run(capsys, unsorted, tmp_path / "raw.lmdb")
    warnings = [line for line in err.splitlines() if "not sorted by time" in line]
    assert len(warnings) == 1, err  # one file read in three blocks: one warning
    assert str(unsorted / "ACME.csv") in warnings[0] and "ticktape ingest" in warnings[0]
    assert f" {len(late):,} of its rows" in warnings[0]

    rejected = of_kind(read(tmp_path / "raw.lmdb"), "DataRejected")
    on_day = [t for t in late if t.startswith(DAY)]
    assert len(on_day) > 5
    assert [r.reason for r in rejected] == ["out-of-order timestamp"] * len(on_day)


def test_ingest_sorts_an_unsorted_file_into_the_sorted_files_catalog(swapped, tmp_path, capsys):
    ordered, unsorted, _ = swapped
    for name, folder in (("sorted", ordered), ("unsorted", unsorted)):
        assert main(["ingest", str(folder), "--catalog", str(tmp_path / name)]) == 0
        out = capsys.readouterr()
        assert "not sorted" not in out.err
        assert "rows rejected" in out.out and " 0 " in out.out.split("rows rejected")[1][:40]
    parts = sorted(
        p.relative_to(tmp_path / "sorted") for p in (tmp_path / "sorted").rglob("*.parquet")
    )
    assert parts == sorted(
        p.relative_to(tmp_path / "unsorted") for p in (tmp_path / "unsorted").rglob("*.parquet")
    )
    for part in parts:  # the same rows; only their line numbers tell the files apart
        a = pq.read_table(tmp_path / "sorted" / part).drop_columns(["line"])
        b = pq.read_table(tmp_path / "unsorted" / part).drop_columns(["line"])
        assert a.equals(b), part

    _run(capsys, ordered, tmp_path / "want.lmdb", end="2024-03-08")
    _run(capsys, tmp_path / "unsorted", tmp_path / "got.lmdb", end="2024-03-08")
    assert _digest(tmp_path / "got.lmdb") == _digest(tmp_path / "want.lmdb")


def _stamp(minute: int, second: int = 0) -> str:
    return f"{DAY}T14:{minute:02d}:{second:02d}Z"


def test_ingest_keeps_the_first_of_repeated_bars_and_ties_in_file_order(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    bars = [  # (minute, close), in file order: lines 2..6
        (32, 10.2),
        (30, 10.0),
        (31, 10.1),
        (30, 99.0),  # 14:30 again, later in the file: the duplicate
        (33, 10.3),
    ]
    (src / "ACME.csv").write_text(
        "symbol,timestamp,open,high,low,close,volume\n"
        + "".join(f"ACME,{_stamp(m)},{c},{c},{c},{c},100\n" for m, c in bars)
    )
    trades = [(5, 1.0), (1, 2.0), (5, 3.0), (1, 4.0)]  # (second, price): lines 2..5
    (src / "ACME_trades.csv").write_text(
        "symbol,timestamp,price,size\n"
        + "".join(f"ACME,{_stamp(30, s)},{p},10\n" for s, p in trades)
    )
    assert main(["ingest", str(src), "--catalog", str(tmp_path / "catalog")]) == 0
    capsys.readouterr()

    partition = tmp_path / "catalog"
    got = pq.read_table(partition / f"bars/session={DAY}/part.parquet").to_pylist()
    assert [(b["close"], b["line"]) for b in got] == [(10.0, 3), (10.1, 4), (10.2, 2), (10.3, 6)]
    rejected = pq.read_table(partition / f"rejected/session={DAY}/part.parquet")
    assert rejected.select(["file", "row", "reason"]).to_pylist() == [
        {"file": "ACME.csv", "row": 5, "reason": "duplicate timestamp"}
    ]
    ticks = pq.read_table(partition / f"trades/session={DAY}/part.parquet")
    assert list(zip(ticks["price"].to_pylist(), ticks["line"].to_pylist(), strict=True)) == [
        (2.0, 3),
        (4.0, 5),
        (1.0, 2),
        (3.0, 4),
    ]
