"""Inputs as they come (issue 16): `ingest` sorts each session's rows by time, and a raw run over
an unsorted file says so once per file. Through the real CLI, on generated data; the expected
values come from how the test wrote its files."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from tests.helpers import of_kind, read, run_argv
from ticktape.scenarios.cli import main
from ticktape.scenarios.demo_data import DemoSpec, generate
from ticktape.store.catalog_ingest import ingest
from ticktape.store.parsing import ReadAs
from ticktape.store.reading import BLOCK_BYTES
from ticktape.store.repository import DataConfigError

# eight weeks of one symbol's bars: about 1.3 MB, so a raw run reads the file in three blocks
LONG = DemoSpec(symbols=("ACME",), start="2024-03-04", end="2024-04-26", gap_rate=0.0)
DAY = "2024-03-05"


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
    assert (unsorted / "ACME.csv").stat().st_size > 2 * BLOCK_BYTES  # read in three blocks
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


# -- a column map and a time zone for naive timestamps --------------------------------------------

# across the start of daylight saving time (Sunday 2024-03-10): offsets -05:00, then -04:00
DST = DemoSpec(symbols=("ACME", "BOLT"), start="2024-03-07", end="2024-03-12")


def _vendor_copy(source: Path, target: Path) -> None:
    """The files as a vendor writes them: other header names, local times without an offset."""
    target.mkdir()
    for path in sorted(source.glob("*.csv")):
        lines = path.read_text().splitlines()
        header = lines[0].replace("timestamp", "Date").replace("close", "Last")
        rows = [line.split(",") for line in lines[1:]]
        assert {r[1][-6:] for r in rows} == {"-05:00", "-04:00"}  # both sides of the change
        text = "\n".join([header, *(",".join([r[0], r[1][:-6], *r[2:]]) for r in rows)])
        (target / path.name).write_text(text + "\n")


def test_a_column_map_and_a_zone_read_a_vendors_naive_local_times(tmp_path, capsys):
    zoned = generate(tmp_path / "zoned", DST)
    _vendor_copy(zoned, tmp_path / "vendor")
    catalog = tmp_path / "catalog"
    options = ["--columns", "timestamp=Date,close=Last", "--tz", "America/New_York"]
    assert main(["ingest", str(tmp_path / "vendor"), "--catalog", str(catalog), *options]) == 0
    assert "rows rejected" in capsys.readouterr().out

    manifest = json.loads((catalog / "catalog.json").read_text())
    assert {name: (s["columns"], s["tz"]) for name, s in manifest["sources"].items()} == {
        name: ({"close": "Last", "timestamp": "Date"}, "America/New_York")
        for name in ("ACME.csv", "BOLT.csv")
    }
    spec = DemoSpec(symbols=DST.symbols, start=DST.start, end=DST.end)
    assert main(run_argv(zoned, tmp_path / "want.lmdb", spec)) == 0
    assert main(run_argv(catalog, tmp_path / "got.lmdb", spec)) == 0
    assert _digest(tmp_path / "got.lmdb") == _digest(tmp_path / "want.lmdb")
    assert not of_kind(read(tmp_path / "got.lmdb"), "DataRejected")

    # the same files again without the map or zone: refused, the catalog read them otherwise
    assert main(["ingest", str(tmp_path / "vendor"), "--catalog", str(catalog)]) == 2
    err = capsys.readouterr().err.strip()
    assert "new catalog" in err and len(err.splitlines()) == 1


def test_a_local_time_a_dst_change_skips_or_repeats_is_rejected_with_its_line(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    stamps = [  # lines 2..6, New York wall clock
        "2024-03-08T09:30:00",
        "2024-03-10T02:30:00",  # skipped: 02:00 became 03:00
        "2024-03-10T03:30:00",  # daylight time: 07:30 UTC
        "2024-11-03T01:30:00",  # passed twice: 01:00 EDT and 01:00 EST
        "2024-11-04T09:30:00",
    ]
    (src / "ACME.csv").write_text(
        "symbol,timestamp,open,high,low,close,volume\n"
        + "".join(f"ACME,{t},10,10,10,10,100\n" for t in stamps)
    )
    main(["ingest", str(src), "--catalog", str(tmp_path / "catalog"), "--tz", "America/New_York"])
    capsys.readouterr()
    undated = pq.read_table(tmp_path / "catalog" / "rejected" / "undated.parquet")
    assert undated.select(["row", "reason"]).to_pylist() == [
        {"row": 3, "reason": "local time does not exist (skipped by a DST change)"},
        {"row": 5, "reason": "local time occurs twice (a DST change): no unique instant"},
    ]
    bars = pq.read_table(tmp_path / "catalog" / "bars" / "session=2024-03-08" / "part.parquet")
    utc = dt.datetime(2024, 3, 8, 14, 30, tzinfo=dt.UTC)  # 09:30 EST
    assert bars["ts_start"].to_pylist() == [int(utc.timestamp()) * 10**9]
    assert manifest_rows(tmp_path / "catalog") == 3


def manifest_rows(catalog: Path) -> int:
    manifest = json.loads((catalog / "catalog.json").read_text())
    return sum(k["rows"] for p in manifest["partitions"].values() for k in p["kinds"].values())


@pytest.mark.parametrize(
    ("options", "says"),
    [
        (["--columns", "timestamp=Datum"], "no file in"),
        (["--columns", "time=Date"], "not a column of ticktape's"),
        (["--columns", "timestamp"], "NAME=HEADER"),
        (["--tz", "Mars/Olympus"], "unknown time zone"),
    ],
)
def test_a_bad_column_map_or_zone_is_one_line(tmp_path, capsys, options, says):
    src = generate(tmp_path / "src", DemoSpec(symbols=("ACME",), start=DAY, end=DAY))
    assert main(["ingest", str(src), "--catalog", str(tmp_path / "catalog"), *options]) == 2
    err = capsys.readouterr().err.strip()
    assert says in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "catalog").exists()


def test_a_column_map_naming_no_files_column_is_a_data_config_error(tmp_path):
    src = generate(tmp_path / "src", DemoSpec(symbols=("ACME",), start=DAY, end=DAY))
    with pytest.raises(DataConfigError, match="column map close=Last"):
        ingest([src], tmp_path / "catalog", columns={"close": "Last"})


# -- a run window where a symbol has no data ------------------------------------------------------


def test_a_symbol_with_no_data_in_the_run_is_named_with_its_coverage(tmp_path, capsys):
    raw = generate(
        tmp_path / "raw", DemoSpec(symbols=("ACME",), start="2024-06-03", end="2024-06-07")
    )
    generate(raw, DemoSpec(symbols=("XYZ",), start="2024-03-04", end="2024-03-08"))
    (raw / "NIL.csv").write_text(  # rows, but none with a usable time
        "symbol,timestamp,open,high,low,close,volume\nNIL,2024-06-04T10:00:00,1,1,1,1,1\n"
    )
    assert main(["ingest", str(raw), "--catalog", str(tmp_path / "catalog")]) == 0
    capsys.readouterr()

    spec = DemoSpec(symbols=("ACME", "NIL", "XYZ"), start="2024-06-04", end="2024-06-05")
    for source in (raw, tmp_path / "catalog"):
        assert main(run_argv(source, tmp_path / f"{source.name}.lmdb", spec)) == 0
        err = capsys.readouterr().err
        said = [line for line in err.splitlines() if "no data in the run" in line]
        window = "has no data in the run's sessions (2024-06-04 to 2024-06-05)"
        assert said == [
            f"WARNING: NIL {window}: {source} has no dated rows at all",
            f"WARNING: XYZ {window}: {source} has data from 2024-03-04 to 2024-03-08 only",
        ], err
    raw_digest = _digest(tmp_path / "raw.lmdb")
    assert _digest(tmp_path / "catalog.lmdb") == raw_digest

    # a plain Python run warns nobody, and its log is the one the warned run wrote
    script = (
        "import sys, ticktape\n"
        f"config = ticktape.RunConfig(data={str(raw)!r}, symbols={spec.symbols!r}, "
        f"start={spec.start!r}, end={spec.end!r}, log={str(tmp_path / 'py.lmdb')!r}, "
        "sync='none')\n"
        "print(ticktape.System(config).run(timeout=120).digest)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True
    )
    assert (done.stdout.strip(), done.stderr) == (raw_digest, "")


def test_a_catalog_of_an_older_version_is_refused_in_one_line(tmp_path, capsys):
    src = generate(tmp_path / "src", DemoSpec(symbols=("ACME",), start=DAY, end=DAY))
    ingest([src], tmp_path / "catalog")
    manifest = json.loads((tmp_path / "catalog" / "catalog.json").read_text())
    manifest["version"] = 2
    del manifest["coverage"]
    (tmp_path / "catalog" / "catalog.json").write_text(json.dumps(manifest))
    spec = DemoSpec(symbols=("ACME",), start=DAY, end=DAY)
    assert main(run_argv(tmp_path / "catalog", tmp_path / "run.lmdb", spec)) == 2
    err = capsys.readouterr().err.strip()
    assert "not a version 3 catalog" in err and "ingest" in err and len(err.splitlines()) == 1


def test_a_catalogs_coverage_counts_each_bar_once_across_ingests(tmp_path, capsys):
    """Two ingests whose files share a session: the second's bars at minutes the first had are
    duplicates, and `data info` (from the manifest) counts what the partitions hold."""
    first = generate(
        tmp_path / "a", DemoSpec(symbols=("ACME",), start="2024-11-25", end="2024-11-26")
    )
    second = generate(
        tmp_path / "b", DemoSpec(symbols=("ACME",), start="2024-11-26", end="2024-11-27")
    )
    (second / "ACME.csv").rename(second / "ACME_more.csv")
    catalog = str(tmp_path / "catalog")
    for folder in (first, second):
        assert main(["ingest", str(folder), "--catalog", catalog]) == 0
    capsys.readouterr()
    assert main(["data", "info", catalog, "--json"]) == 0
    (got,) = json.loads(capsys.readouterr().out)

    stamps = set()
    for path in (first / "ACME.csv", second / "ACME_more.csv"):
        stamps |= {line.split(",")[1] for line in path.read_text().splitlines()[1:]}
    utc = sorted(int(dt.datetime.fromisoformat(t).timestamp()) * 10**9 for t in stamps)
    assert (got["rows"], got["first"], got["last"]) == (len(utc), utc[0], utc[-1])
    assert (got["sessions"], got["first_session"], got["last_session"]) == (
        3,
        "2024-11-25",
        "2024-11-27",
    )
    rows = sum(
        pq.read_table(p).num_rows for p in (tmp_path / "catalog" / "bars").rglob("*.parquet")
    )
    assert rows == len(utc)


def test_local_times_read_alike_in_one_cast_and_row_by_row(tmp_path, capsys):
    """A bad row sends its block to the row-by-row reading: every other row reads the same."""
    _vendor_copy(generate(tmp_path / "zoned", DST), tmp_path / "clean")
    _vendor_copy(tmp_path / "zoned", tmp_path / "bad")
    with (tmp_path / "bad" / "ACME.csv").open("a") as fh:
        fh.write("ACME,yesterday,1,1,1,1,1\n")
    options = ["--columns", "timestamp=Date,close=Last", "--tz", "America/New_York"]
    for name in ("clean", "bad"):
        folder, catalog = tmp_path / name, tmp_path / f"{name}.catalog"
        assert main(["ingest", str(folder), "--catalog", str(catalog), *options]) == 0
    capsys.readouterr()
    parts = sorted(
        p.relative_to(tmp_path / "clean.catalog")
        for p in (tmp_path / "clean.catalog").rglob("bars/*/*.parquet")
    )
    assert len(parts) == 4  # the sessions of March 7, 8, 11 and 12
    for part in parts:
        assert pq.read_table(tmp_path / "bad.catalog" / part).equals(
            pq.read_table(tmp_path / "clean.catalog" / part)
        )
    undated = pq.read_table(tmp_path / "bad.catalog" / "rejected" / "undated.parquet").to_pylist()
    assert [(r["file"], r["reason"]) for r in undated] == [("ACME.csv", "unparseable timestamp")]


def test_data_info_reads_a_raw_folder_with_the_column_map_and_zone(tmp_path, capsys):
    _vendor_copy(generate(tmp_path / "zoned", DST), tmp_path / "vendor")
    assert main(["data", "info", str(tmp_path / "zoned"), "--json"]) == 0
    want = json.loads(capsys.readouterr().out)
    options = ["--columns", "timestamp=Date,close=Last", "--tz", "America/New_York", "--json"]
    assert main(["data", "info", str(tmp_path / "vendor"), *options]) == 0
    assert json.loads(capsys.readouterr().out) == want
    assert [r["symbol"] for r in want] == ["ACME", "BOLT"]

    assert main(["ingest", str(tmp_path / "zoned"), "--catalog", str(tmp_path / "catalog")]) == 0
    capsys.readouterr()
    assert main(["data", "info", str(tmp_path / "catalog"), "--tz", "America/New_York"]) == 2
    assert "is a catalog" in capsys.readouterr().err


# -- one file per symbol, no symbol column ---------------------------------------------------------

ONE_EACH = DemoSpec(symbols=("ACME", "BOLT", "CRUX"), start=DAY, end=DAY)


def _without_symbol(path: Path) -> str:
    """The CSV text of `path` as a one-file-per-symbol vendor writes it: no symbol column."""
    lines = path.read_text().splitlines()
    assert lines[0].startswith("symbol,")
    return "".join(line.partition(",")[2] + "\n" for line in lines)


def test_files_of_one_symbol_take_it_from_their_names(tmp_path, capsys):
    """acme.csv.gz and bolt.parquet have no symbol column; crux_all.csv keeps its own."""
    named = generate(tmp_path / "named", ONE_EACH)
    files = tmp_path / "files"
    files.mkdir()
    with gzip.open(files / "acme.csv.gz", "wt") as fh:
        fh.write(_without_symbol(named / "ACME.csv"))
    text = pa.py_buffer(_without_symbol(named / "BOLT.csv").encode())
    bolt = pacsv.read_csv(text, convert_options=pacsv.ConvertOptions(strings_can_be_null=False))
    bolt = bolt.set_column(0, "timestamp", pa.array([str(t) for t in _stamps(named / "BOLT.csv")]))
    pq.write_table(bolt, files / "bolt.parquet")
    (files / "crux_all.csv").write_text((named / "CRUX.csv").read_text())

    catalog = tmp_path / "catalog"
    assert main(["ingest", str(files), "--catalog", str(catalog), "--symbol-from-file"]) == 0
    capsys.readouterr()
    manifest = json.loads((catalog / "catalog.json").read_text())
    assert manifest["file_rejections"] == []
    assert {name: s["symbol_from_file"] for name, s in manifest["sources"].items()} == {
        "acme.csv.gz": True,
        "bolt.parquet": True,
        "crux_all.csv": True,
    }
    assert main(run_argv(named, tmp_path / "want.lmdb", ONE_EACH)) == 0
    assert main(run_argv(catalog, tmp_path / "got.lmdb", ONE_EACH)) == 0
    assert _digest(tmp_path / "got.lmdb") == _digest(tmp_path / "want.lmdb")
    assert not of_kind(read(tmp_path / "got.lmdb"), "DataRejected")
    capsys.readouterr()

    assert main(["data", "info", str(named), "--json"]) == 0
    want = json.loads(capsys.readouterr().out)
    assert main(["data", "info", str(files), "--symbol-from-file", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == want

    # without the option: the catalog read these files otherwise; a new one rejects them as today
    assert main(["ingest", str(files), "--catalog", str(catalog)]) == 2
    err = capsys.readouterr().err.strip()
    assert "new catalog" in err and len(err.splitlines()) == 1
    assert main(["ingest", str(files), "--catalog", str(tmp_path / "plain")]) == 0
    capsys.readouterr()
    manifest = json.loads((tmp_path / "plain" / "catalog.json").read_text())
    missing = "missing column symbol (closest kind: bars)"
    assert manifest["file_rejections"] == [
        {"file": "acme.csv.gz", "row": 0, "reason": missing},
        {"file": "bolt.parquet", "row": 0, "reason": missing},
    ]


def _stamps(path: Path) -> list[str]:
    return [line.split(",")[1] for line in path.read_text().splitlines()[1:]]


def test_a_bad_row_of_a_file_of_one_symbol_is_rejected_with_its_file_and_line(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    (src / " spy .csv").write_text(  # lines 2..5; the name is trimmed and upper-cased
        "timestamp,open,high,low,close,volume\n"
        f"{_stamp(30)},10,10,10,10,100\n"
        f"{_stamp(31)},10,10,10,ten,100\n"
        f"{_stamp(32)},10,10,10,100\n"
        f"{_stamp(33)},11,11,11,11,100\n"
    )
    catalog = tmp_path / "catalog"
    assert main(["ingest", str(src), "--catalog", str(catalog), "--symbol-from-file"]) == 0
    capsys.readouterr()
    bars = pq.read_table(catalog / f"bars/session={DAY}/part.parquet")
    assert bars.select(["symbol", "close", "file", "line"]).to_pylist() == [
        {"symbol": "SPY", "close": 10.0, "file": " spy .csv", "line": 2},
        {"symbol": "SPY", "close": 11.0, "file": " spy .csv", "line": 5},
    ]
    rejected = pq.read_table(catalog / f"rejected/session={DAY}/part.parquet")
    undated = pq.read_table(catalog / "rejected" / "undated.parquet")
    assert [
        r.select(["file", "row", "reason", "symbol"]).to_pylist() for r in (rejected, undated)
    ] == [
        [{"file": " spy .csv", "row": 3, "reason": "unparseable close", "symbol": "SPY"}],
        [
            {
                "file": " spy .csv",
                "row": 4,
                "reason": "malformed row (5 fields, header has 6)",
                "symbol": "SPY",
            }
        ],
    ]


@pytest.mark.parametrize(
    ("name", "symbol"),
    [
        ("SPY.csv", "SPY"),
        ("by_symbol/spy.csv.gz", "SPY"),
        ("spy.PARQUET", "SPY"),
        ("BRK.B.csv", "BRK.B"),  # only the data extension goes
    ],
)
def test_a_files_symbol_is_its_name_without_the_data_extension(name, symbol):
    header = ("timestamp", "open", "high", "low", "close", "volume")
    assert ReadAs(symbol_from_file=True).file_symbol(name, header) == symbol
    assert ReadAs(symbol_from_file=True).file_symbol(name, (" Symbol", *header)) is None
    assert ReadAs().file_symbol(name, header) is None
