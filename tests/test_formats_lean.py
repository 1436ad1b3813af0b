"""LEAN's data folders through `ingest`: LEAN's layout, zone and scale, read into the catalog.

The fixtures are written here the way LEAN lays out its data (its sample data folder was the
model: `equity/usa/minute/spy/20131007_trade.zip` holding `20131007_spy_minute_trade.csv`,
milliseconds since midnight, equity prices in 1/10,000 dollar, index prices plain, the zone from
`market-hours/market-hours-database.json`), from known values. The reference for every check is
those values, or the same values written as the project's own CSV.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow.parquet as pq
import pytest

from tests.helpers import config, run
from ticktape.scenarios.cli import main
from ticktape.store.calendar import TradingCalendar
from ticktape.store.catalog_ingest import ingest
from ticktape.store.catalog_reader import CatalogRepository
from ticktape.store.formats import detect, lean, lean_files

DAY = "20131007"
# the index's data zone is Chicago in LEAN's database, not New York: 08:30 there is the open
MARKET_HOURS = {
    "Equity-usa-[*]": {"dataTimeZone": "America/New_York", "exchangeTimeZone": "America/New_York"},
    "Index-usa-[*]": {"dataTimeZone": "America/Chicago", "exchangeTimeZone": "America/Chicago"},
}
OPEN_MS = {"America/New_York": 34_200_000, "America/Chicago": 30_600_000}  # 09:30 ET in each
NY = ZoneInfo("America/New_York")


def _zip(path: Path, member: str, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(member, "".join(f"{line}\r\n" for line in lines))
    return path


def _iso(ms_from_open: int) -> str:
    start = datetime(2013, 10, 7, 9, 30, tzinfo=NY).timestamp() * 1000
    return datetime.fromtimestamp((start + ms_from_open) / 1000, NY).isoformat()


def _price(i: int, base: float) -> float:
    return round(base + (i % 17) * 0.01, 2)


def write_lean(root: Path, csv: Path | None = None, minutes: int = 390) -> Path:
    """A LEAN data root (and, when `csv` is given, the same rows as the project's CSV files, at
    the same relative paths so that files sort alike)."""
    (root / "market-hours").mkdir(parents=True)
    (root / "market-hours" / "market-hours-database.json").write_text(
        json.dumps({"entries": MARKET_HOURS})
    )
    tables: dict[str, tuple[str, list[str], list[str]]] = {}  # rel -> (header, lean, ours)
    for security, symbol, base, scale, zone in (
        ("equity", "spy", 167.41, 10_000, "America/New_York"),
        ("index", "spx", 3764.61, 1, "America/Chicago"),
    ):
        lean, ours = [], []
        for i in range(minutes):
            o, c = _price(i, base), _price(i + 1, base)
            h, lo = round(max(o, c) + 0.02, 2), round(min(o, c) - 0.02, 2)
            ms = OPEN_MS[zone] + i * 60_000
            scaled = [round(v * scale) if scale > 1 else v for v in (o, h, lo, c)]
            lean.append(",".join(str(v) for v in (ms, *scaled, 100 + i)))
            ours.append(f"{symbol.upper()},{_iso(i * 60_000)},{o},{h},{lo},{c},{100 + i}")
        rel = f"{security}/usa/minute/{symbol}/{DAY}_trade"
        tables[rel] = ("symbol,timestamp,open,high,low,close,volume", lean, ours)
    lean, ours = [], []
    for i in range(minutes):  # one quote bar a minute: the closing quote, at the bar's end
        bid, ask = _price(i, 167.40), _price(i, 167.42)
        ms = OPEN_MS["America/New_York"] + i * 60_000
        b, a = round(bid * 10_000), round(ask * 10_000)
        lean.append(f"{ms},{b},{b},{b},{b},{300 + i},{a},{a},{a},{a},{200 + i}")
        ours.append(f"SPY,{_iso((i + 1) * 60_000)},{bid},{300 + i},{ask},{200 + i}")
    tables[f"equity/usa/minute/spy/{DAY}_quote"] = (
        "symbol,timestamp,bid,bid_size,ask,ask_size",
        lean,
        ours,
    )
    lean, ours = [], []
    for i in range(minutes * 3):  # ticks between the minutes, some sharing a millisecond
        ms = OPEN_MS["America/New_York"] + 250 + (i // 2) * 40_001
        price = _price(i, 167.41)
        lean.append(f"{ms},{round(price * 10_000)},{10 + i},P,00000000,0")
        ours.append(f"SPY,{_iso(ms - OPEN_MS['America/New_York'])},{price},{10 + i}")
    tables[f"equity/usa/tick/spy/{DAY}_trade"] = ("symbol,timestamp,price,size", lean, ours)
    for rel, (header, lean, ours) in tables.items():
        *_, resolution, symbol, name = rel.split("/")
        kind = name.split("_")[1]
        member = (
            f"{DAY}_{symbol}_{kind.title()}_Tick.csv"
            if resolution == "tick"
            else f"{DAY}_{symbol}_{resolution}_{kind}.csv"
        )
        _zip(root / f"{rel}.zip", member, lean)
        if csv is not None:
            (csv / rel).parent.mkdir(parents=True, exist_ok=True)
            (csv / f"{rel}.csv").write_text("\n".join([header, *ours]) + "\n")
    return root


def test_a_run_over_a_lean_catalog_is_the_run_over_the_same_rows_as_csv(tmp_path: Path) -> None:
    root = write_lean(tmp_path / "Data", csv=tmp_path / "csv")
    assert detect(root) == "lean" and detect(tmp_path / "csv") == "csv"
    ingest([root], tmp_path / "lean_catalog")
    ingest([tmp_path / "csv"], tmp_path / "csv_catalog")
    settings = {"symbols": ("SPX", "SPY"), "start": "2013-10-07", "end": "2013-10-07"}
    settings["extended_hours"] = True  # the closing quote of the last bar is at the close
    digests = {
        name: run(config(tmp_path / name, tmp_path / f"{name}.lmdb", **settings))
        for name in ("lean_catalog", "csv", "csv_catalog")
    }
    assert len(set(digests.values())) == 1, digests


def test_lean_zone_scale_and_quote_bars_land_where_lean_means_them(tmp_path: Path) -> None:
    ingest([write_lean(tmp_path / "Data", minutes=3)], tmp_path / "catalog")
    session = TradingCalendar().sessions("2013-10-07", "2013-10-07")[0]
    loaded = CatalogRepository(tmp_path / "catalog", None).load_session(session)
    spx, spy = loaded.symbols.index("SPX"), loaded.symbols.index("SPY")
    bars = loaded.bars
    first: dict[int, tuple[int, float]] = {}
    for s, t, o in zip(bars.symbol, bars.ts_start, bars.open, strict=True):
        first.setdefault(int(s), (int(t), float(o)))
    # 08:30 in Chicago (the index's data zone) and 09:30 in New York are one instant: the open
    assert first[spx] == (session.open, 3764.61)  # plain, not divided by 10,000
    assert first[spy] == (session.open, 167.41)  # 1674100 / 10,000
    quotes = loaded.quotes
    assert int(quotes.ts[0]) == session.open + 60 * 10**9  # at the end of the 09:30 quote bar
    assert (float(quotes.bid[0]), float(quotes.bid_size[0])) == (167.40, 300.0)
    assert set(quotes.symbol.tolist()) == {spy}


@pytest.mark.parametrize("zips", ["kept from the scan", "read again", "never read whole"])
def test_bad_lean_input_costs_its_own_row_or_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, zips: str
) -> None:
    """Whether the scan keeps a zip's bytes for its decode, or the decode opens it again (beyond
    the bytes kept, or a zip too large to read whole), the verdicts are the same."""
    if zips == "read again":
        monkeypatch.setattr(lean, "_KEPT_BYTES", 0)
    if zips == "never read whole":
        monkeypatch.setattr(lean_files, "READ_WHOLE", 0)
    root = write_lean(tmp_path / "Data", minutes=30)
    minute = root / "equity/usa/minute"
    good = (minute / f"spy/{DAY}_trade.zip").read_bytes()
    _zip(minute / f"qqq/{DAY}_trade.zip", f"{DAY}_spy_minute_trade.csv", ["34200000,1,1,1,1,1"])
    (minute / f"iwm/{DAY}_trade.zip").parent.mkdir()
    (minute / f"iwm/{DAY}_trade.zip").write_bytes(good[: len(good) // 2])  # cut off
    _zip(root / f"equity/usa/second/spy/{DAY}_trade.zip", f"{DAY}_spy_second_trade.csv", [])
    bad_rows = [
        "34200000,1000000,1010000,990000,1000000,5",
        "34260000,1000000,1010000,990000",  # a field short
        "34320000,1000000,abc,990000,1000000,5",
        "34380000,1000000,1010000,990000,1000000,5",
    ]
    _zip(minute / f"dia/{DAY}_trade.zip", f"{DAY}_dia_minute_trade.csv", bad_rows)
    ticks = ["34200250,1674100,10,P,0,0", "34200260,1674200,10,P,0,1", "34200270,1674300,10,P,0,0"]
    _zip(root / f"equity/usa/tick/dia/{DAY}_trade.zip", f"{DAY}_dia_Trade_Tick.csv", ticks)
    summary = ingest([root], tmp_path / "catalog")

    manifest = json.loads((tmp_path / "catalog" / "catalog.json").read_text())
    assert {(r["file"], r["reason"]) for r in manifest["file_rejections"]} == {
        ("equity/usa/minute/qqq/20131007_trade.zip", "zip does not hold the file its path names"),
        ("equity/usa/minute/iwm/20131007_trade.zip", "damaged or cut-off zip"),
        (
            "equity/usa/second/spy/20131007_trade.zip",
            "not a LEAN minute or tick file of trades or quotes",
        ),
    }
    rejected = pq.read_table(tmp_path / "catalog/rejected/session=2013-10-07/part.parquet")
    undated = pq.read_table(tmp_path / "catalog/rejected/undated.parquet")
    rows = [*rejected.to_pylist(), *undated.to_pylist()]
    found = {(r["file"], r["row"], r["reason"]) for r in rows}
    assert found == {
        ("equity/usa/minute/dia/20131007_trade.zip", 2, "malformed row (4 fields, header has 6)"),
        ("equity/usa/minute/dia/20131007_trade.zip", 3, "unparseable high"),
        ("equity/usa/tick/dia/20131007_trade.zip", 2, "tick flagged suspicious"),
    }
    # everything else is in: 30 bars each of SPY and SPX, 2 of DIA; 30 quotes; 90 + 2 ticks
    assert summary.rows == 30 + 30 + 2 + 30 + 90 + 2
    for name, source in manifest["sources"].items():
        assert source["sha256"] == hashlib.sha256((root / name).read_bytes()).hexdigest()


def test_ingest_format_option_reads_lean_and_refuses_a_mixed_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = write_lean(tmp_path / "Data", minutes=5)
    assert main(["ingest", str(root), "--catalog", str(tmp_path / "c1"), "--format", "lean"]) == 0
    (root / "equity" / "usa" / "map_files").mkdir()
    (root / "equity" / "usa" / "map_files" / "spy.csv").write_text("19980102,spy,P\n")
    assert detect(root) == "lean"  # LEAN keeps its map and factor files as CSV
    (root / "equity" / "extra.dbn").write_bytes(b"DBN\x03")
    assert main(["ingest", str(root), "--catalog", str(tmp_path / "c2")]) == 2
    assert "more than one format" in capsys.readouterr().err


def test_lean_times_follow_the_zone_across_a_daylight_saving_change(tmp_path: Path) -> None:
    """09:30 in New York is 13:30 UTC on Friday 2013-11-01 and 14:30 UTC on Monday 2013-11-04."""
    root = tmp_path / "Data"
    (root / "market-hours").mkdir(parents=True)
    (root / "market-hours" / "market-hours-database.json").write_text(
        json.dumps({"entries": MARKET_HOURS})
    )
    for day in ("20131101", "20131104"):
        bar = "34200000,1674100,1674200,1674000,1674100,10"
        _zip(root / f"equity/usa/minute/spy/{day}_trade.zip", f"{day}_spy_minute_trade.csv", [bar])
    ingest([root], tmp_path / "catalog")
    repository = CatalogRepository(tmp_path / "catalog", None)
    for session in TradingCalendar().sessions("2013-11-01", "2013-11-04"):
        bars = repository.load_session(session).bars
        assert bars.ts_start.tolist() == [session.open]
    utc = [
        s.open // 10**9 % 86_400 // 3600
        for s in TradingCalendar().sessions("2013-11-01", "2013-11-04")
    ]
    assert utc == [13, 14]


def test_milliseconds_of_many_files_become_utc_by_each_files_day_and_zone() -> None:
    """Rows of several files converted at once: each by its own day's offsets, including the
    hours on either side of a daylight saving change (the reference: zoneinfo per row)."""
    days = [
        (date(2013, 11, 3), "America/New_York"),  # 02:00 EDT -> 01:00 EST
        (date(2013, 3, 10), "America/New_York"),  # 02:00 EST -> 03:00 EDT
        (date(2013, 11, 4), "America/Chicago"),
        (date(2013, 11, 3), "UTC"),
    ]
    hours = [0, 3_599_999, 3_600_000, 7_199_999, 7_200_000, 10_800_001, 34_200_000, 86_399_999]
    ms = np.array(hours * len(days), dtype=np.float64)
    owner = np.repeat(np.arange(len(days)), len(hours))
    expected = []
    for m, k in zip(ms.tolist(), owner.tolist(), strict=True):
        day, zone = days[k]
        local = datetime(day.year, day.month, day.day, int(m // 3_600_000), tzinfo=ZoneInfo(zone))
        offset = local.utcoffset() or timedelta(0)
        wall = datetime(day.year, day.month, day.day) + timedelta(milliseconds=m) - offset
        expected.append(int(wall.replace(tzinfo=UTC).timestamp() * 1000) * 1_000_000)
    assert lean_files.ms_to_ns(ms, days, owner).tolist() == expected
