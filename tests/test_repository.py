"""The market-data repository on real files: real market data, bad rows of every kind, config."""

from __future__ import annotations

import gzip
import hashlib
import shutil
from dataclasses import fields
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ticktape.messages.columns import SessionInput
from ticktape.messages.events import DataRejected
from ticktape.messages.session import NS_PER_MINUTE, Session
from ticktape.store.calendar import TradingCalendar
from ticktape.store.repository import DataConfigError, MarketDataRepository

REAL_SYMBOLS = ["SPY", "AIG", "BAC", "IBM"]
BAR_FILES = ["AIG.csv", "BAC.csv", "IBM.csv", "SPY.csv"]


def session(day: str) -> Session:
    return TradingCalendar("XNYS").sessions(day, day)[0]


def ns(iso: str) -> int:
    return pd.Timestamp(iso).value


def write_csv(path: Path, header: str, rows: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def rejections(rejected: tuple[DataRejected, ...]) -> list[tuple[str, int, str, str]]:
    return [(r.file, r.row, r.reason, r.symbol) for r in rejected]


def assert_same_columns(
    a: SessionInput,
    b: SessionInput,
    *,
    skip: tuple[str, ...] = (),
    kinds: tuple[str, ...] = ("bars", "trades", "quotes"),
) -> None:
    for kind in kinds:
        left, right = getattr(a, kind), getattr(b, kind)
        for f in fields(left):
            if f.name not in skip:
                np.testing.assert_array_equal(
                    getattr(left, f.name), getattr(right, f.name), err_msg=f"{kind}.{f.name}"
                )


def read_reference(path: Path) -> pd.DataFrame:
    """An independent reading of a data file: pandas, ISO-8601 parsed to ns UTC."""
    frame = pd.read_csv(path, dtype={"symbol": str, "timestamp": str})
    stamps = pd.to_datetime(frame["timestamp"], utc=True, format="ISO8601")
    frame["ns"] = pd.DatetimeIndex(stamps.array).as_unit("ns").asi8
    frame["row"] = np.arange(2, len(frame) + 2)  # line numbers: the header is line 1
    return frame


# ---- real data ---------------------------------------------------------------------------------


def test_real_bars_match_an_independent_read(realdata: Path) -> None:
    repo = MarketDataRepository(realdata, REAL_SYMBOLS)
    day = session("2013-10-07")
    loaded = repo.load_session(day)

    names = sorted(p.name for p in realdata.iterdir() if p.name.endswith((".csv", ".csv.gz")))
    frames = []
    for name in BAR_FILES:
        frame = read_reference(realdata / name)
        frame["file_index"] = names.index(name)
        frames.append(frame)
    expected = pd.concat(frames)
    expected = expected[(expected.ns >= day.window_start) & (expected.ns < day.window_end)].copy()
    expected["symbol_id"] = expected.symbol.map({s: i for i, s in enumerate(repo.symbols)})
    expected = expected.sort_values(["ns", "symbol_id", "file_index", "row"])

    bars = loaded.bars
    assert repo.symbols == ("AIG", "BAC", "IBM", "SPY")
    assert len(bars) == len(expected) > 0
    for symbol_id, symbol in enumerate(repo.symbols):
        assert (bars.symbol == symbol_id).sum() == (expected.symbol == symbol).sum()
    np.testing.assert_array_equal(bars.symbol, expected.symbol_id.to_numpy())
    np.testing.assert_array_equal(bars.ts_start, expected.ns.to_numpy())
    for column in ("open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(getattr(bars, column), expected[column].to_numpy(float))
    np.testing.assert_array_equal(
        bars.source, (expected.file_index.to_numpy() << 32) | expected.row.to_numpy()
    )
    assert bars.symbol.dtype == np.int32
    assert bars.ts_start.dtype == bars.source.dtype == np.int64
    assert bars.open.dtype == bars.volume.dtype == np.float64
    assert loaded.rejected == ()
    assert repo.file_rejections == ()


def test_real_ticks_load_with_the_right_counts(realdata: Path) -> None:
    repo = MarketDataRepository(realdata, REAL_SYMBOLS)
    day = session("2013-10-07")
    loaded = repo.load_session(day)

    def in_window(name: str) -> pd.DataFrame:
        frame = read_reference(realdata / name)
        return frame[(frame.ns >= day.window_start) & (frame.ns < day.window_end)]

    ibm_trades = in_window("IBM_20131007_tick_trades.csv.gz")
    spy_trades = in_window("SPY_20131007_tick_trades.csv.gz")
    quotes = in_window("IBM_20131007_tick_quotes.csv.gz")
    ibm, spy = repo.symbols.index("IBM"), repo.symbols.index("SPY")

    trades = loaded.trades
    assert (trades.symbol == ibm).sum() == len(ibm_trades) > 20_000
    assert (trades.symbol == spy).sum() == len(spy_trades) > 200_000
    assert len(loaded.quotes) == len(quotes) > 100_000
    assert np.all(np.diff(trades.ts) >= 0)
    same_time = np.diff(trades.ts) == 0
    assert np.all(np.diff(trades.symbol)[same_time] >= 0)
    np.testing.assert_array_equal(
        np.sort(trades.price[trades.symbol == spy]), np.sort(spy_trades.price.to_numpy(float))
    )
    np.testing.assert_array_equal(loaded.quotes.ts, quotes.ns.to_numpy())
    np.testing.assert_array_equal(loaded.quotes.bid, quotes.bid.to_numpy(float))
    one_sided = (loaded.quotes.bid == 0) & (loaded.quotes.bid_size == 0)
    assert one_sided.any()
    assert loaded.rejected == ()

    assert {f.name: f.kind for f in repo.files}["IBM_20131007_tick_quotes.csv.gz"] == "quotes"
    digests = sorted(hashlib.sha256(p.read_bytes()).hexdigest() for p in realdata.glob("*.csv*"))
    assert list(repo.input_digests()) == digests


def test_real_files_split_by_day_and_symbol_load_like_one_file(
    realdata: Path, tmp_path: Path
) -> None:
    combined, split = tmp_path / "combined", tmp_path / "split"
    trade_names = ["IBM_20131007_tick_trades.csv.gz", "SPY_20131007_tick_trades.csv.gz"]
    bars, trades = (
        pd.concat([read_reference(realdata / name) for name in names])
        .sort_values("ns", kind="stable")
        .drop(columns=["ns", "row"])
        for names in (BAR_FILES, trade_names)
    )
    combined.mkdir()
    bars.to_csv(combined / "bars.csv", index=False)
    trades.to_csv(combined / "trades.csv.gz", index=False)
    shutil.copy(realdata / "IBM_20131007_tick_quotes.csv.gz", combined / "quotes.csv.gz")
    for frame, kind in ((bars, "bars"), (trades, "trades")):
        day = frame.timestamp.str[:10]
        for (symbol, date), part in frame.groupby([frame.symbol, day]):
            folder = split / date
            folder.mkdir(parents=True, exist_ok=True)
            part.to_csv(folder / f"{symbol}_{kind}.csv", index=False)
    shutil.copy(realdata / "IBM_20131007_tick_quotes.csv.gz", split / "quotes.csv.gz")

    one = MarketDataRepository(combined, REAL_SYMBOLS)
    many = MarketDataRepository(split, REAL_SYMBOLS)
    assert len(many.files) > 20
    for day in TradingCalendar("XNYS").sessions("2013-10-04", "2013-10-11"):
        a, b = one.load_session(day), many.load_session(day)
        assert len(a.bars) > 1000
        assert a.rejected == b.rejected == ()
        assert_same_columns(a, b, skip=("source",))


# ---- time zones, integer timestamps, bar labels ----------------------------------------------


@pytest.fixture
def spy_bars(realdata: Path) -> pd.DataFrame:
    return read_reference(realdata / "SPY.csv")


def load_spy(
    folder: Path, frame: pd.DataFrame, stamps: list, *, label: str = "start"
) -> SessionInput:
    folder.mkdir()
    frame = frame[["symbol", "timestamp", "open", "high", "low", "close", "volume"]].copy()
    frame["timestamp"] = stamps
    frame.to_csv(folder / "SPY.csv", index=False)
    repo = MarketDataRepository(folder, ["SPY"], label=label)
    return repo.load_session(session("2013-10-07"))


def test_other_time_zone_and_integer_ns_load_to_identical_times(
    realdata: Path, spy_bars: pd.DataFrame, tmp_path: Path
) -> None:
    original = MarketDataRepository(realdata, ["SPY"]).load_session(session("2013-10-07"))
    utc = pd.to_datetime(spy_bars.timestamp, utc=True, format="ISO8601")
    chicago = [t.isoformat() for t in utc.dt.tz_convert("America/Chicago")]
    assert chicago[0].endswith("-05:00")
    in_chicago = load_spy(tmp_path / "chicago", spy_bars, chicago)
    as_integers = load_spy(tmp_path / "integers", spy_bars, list(spy_bars.ns))
    assert len(original.bars) > 500
    for loaded in (in_chicago, as_integers):
        assert_same_columns(original, loaded, skip=("source",), kinds=("bars",))
        np.testing.assert_array_equal(
            loaded.bars.source & 0xFFFFFFFF, original.bars.source & 0xFFFFFFFF
        )
        assert loaded.rejected == ()


def test_label_end_moves_bars_back_one_minute(spy_bars: pd.DataFrame, tmp_path: Path) -> None:
    starts = load_spy(tmp_path / "starts", spy_bars, list(spy_bars.timestamp))
    ends = [
        t.isoformat()
        for t in pd.to_datetime(spy_bars.timestamp, format="ISO8601") + pd.Timedelta(minutes=1)
    ]
    as_end = load_spy(tmp_path / "ends", spy_bars, ends, label="end")
    assert len(starts.bars) > 500
    assert_same_columns(starts, as_end)
    misread = load_spy(tmp_path / "misread", spy_bars, ends)
    np.testing.assert_array_equal(
        misread.bars.ts_start[:10], starts.bars.ts_start[:10] + NS_PER_MINUTE
    )


# ---- bad rows --------------------------------------------------------------------------------

BAR_HEADER = "symbol,timestamp,open,high,low,close,volume"
DAY = "2024-03-05"
NEXT_DAY = "2024-03-06"


def numbered(rows: list[tuple[str, str | None]]) -> tuple[list[str], list[tuple[int, str]]]:
    """CSV lines and the (line, reason) each bad one must get (the header is line 1)."""
    lines = [line for line, _ in rows]
    expected = [(i, reason) for i, (_, reason) in enumerate(rows, start=2) if reason]
    return lines, expected


def bar_rows() -> list[tuple[str, str | None]]:
    good = [f"AAA,{DAY}T14:{m:02d}:00Z,10,11,9,10.5,100" for m in range(30, 40) if m != 35]
    return [
        *[(line, None) for line in good[:3]],
        (f"BBB,{DAY}T14:30:00Z,20,21,19,20.5,5", None),
        ("AAA,not-a-time,10,11,9,10.5,100", "unparseable timestamp"),
        (f"AAA,{DAY}T14:45:00,10,11,9,10.5,100", "timestamp has no time zone"),
        (f" ,{DAY}T14:46:00Z,10,11,9,10.5,100", "missing symbol"),
        (f"AAA,{DAY}T14:47:00Z,ten,11,9,10.5,100", "unparseable open"),
        (f"AAA,{DAY}T14:48:00Z,10,11,9,1O.5,100", "unparseable close"),
        (f"AAA,{DAY}T14:49:00Z,10,11,9,10.5,lots", "unparseable volume"),
        (f"AAA,{DAY}T14:50:00Z,10,11,9,NaN,100", "NaN price"),
        (f"AAA,{DAY}T14:51:00Z,10,11,0,10.5,100", "non-positive price"),
        (f"AAA,{DAY}T14:52:00Z,10,9,9.5,9.2,100", "high below low"),
        (f"AAA,{DAY}T14:53:00Z,10,10.5,9,11,100", "high below max(open, close)"),
        (f"AAA,{DAY}T14:54:00Z,10,11,10.2,10.5,100", "low above min(open, close)"),
        (f"AAA,{DAY}T14:55:00Z,10,11,9,10.5,", "NaN volume"),
        (f"AAA,{DAY}T14:56:00Z,10,11,9,10.5,-5", "negative volume"),
        (f"AAA,{DAY}T14:57:30Z,10,11,9,10.5,100", "off the minute grid"),
        (f"AAA,{DAY}T14:58:00Z,10,11,9,10.5,100,extra", "malformed row (8 fields, header has 7)"),
        (f"ZZZ,{DAY}T14:59:00Z,-1,-1,-1,-1,-1", None),  # not asked for: ignored, not rejected
        *[(line, None) for line in good[3:]],
        (f"AAA,{DAY}T14:32:00Z,10,11,9,10.5,7", "out-of-order timestamp"),
        (f"AAA,{DAY}T14:35:00Z,10,11,9,10.5,100", "out-of-order timestamp"),
        (f"BBB,{DAY}T14:31:00Z,20,21,19,20.5,5", None),
        (f"AAA,{NEXT_DAY}T14:30:00Z,10,11,9,10.5,100", None),
        (f"AAA,{NEXT_DAY}T14:31:00Z,10,11,9,-1,100", "non-positive price"),
    ]


def test_every_bad_bar_is_rejected_once_with_its_reason(tmp_path: Path) -> None:
    lines, expected = numbered(bar_rows())
    write_csv(tmp_path / "bars.csv", BAR_HEADER, lines)
    repo = MarketDataRepository(tmp_path, ["AAA", "BBB"])
    loaded = repo.load_session(session(DAY))

    today = [(row, reason) for row, reason in expected if row <= len(lines)]
    got = rejections(loaded.rejected)
    assert [(row, reason) for _, row, reason, _ in got] == today
    assert {file for file, *_ in got} == {"bars.csv"}
    assert [symbol for *_, symbol in got if symbol != "AAA"] == [""]  # the blank one

    bars = loaded.bars
    minutes = [m for m in range(30, 40) if m != 35]
    aaa = bars.ts_start[bars.symbol == 0]
    np.testing.assert_array_equal(aaa, [ns(f"{DAY}T14:{m:02d}:00Z") for m in minutes])
    np.testing.assert_array_equal(
        bars.ts_start[bars.symbol == 1], [ns(f"{DAY}T14:30Z"), ns(f"{DAY}T14:31Z")]
    )
    assert np.all(bars.volume[bars.symbol == 0] == 100)  # the duplicate (volume 7) lost
    assert bars.symbol[:2].tolist() == [0, 1]  # ties at 14:30 in symbol order
    rows = {line: row for row, line in enumerate(lines, start=2)}
    later_good = f"AAA,{DAY}T14:39:00Z,10,11,9,10.5,100"
    assert bars.source[bars.ts_start == ns(f"{DAY}T14:39Z")].tolist() == [rows[later_good]]

    assert repo.load_session(session(DAY)).rejected == ()  # reported once
    tomorrow = repo.load_session(session(NEXT_DAY))
    assert rejections(tomorrow.rejected) == [
        ("bars.csv", len(lines) + 1, "non-positive price", "AAA")
    ]
    assert len(tomorrow.bars) == 1


TRADE_HEADER = "symbol,timestamp,price,size,exchange"


def test_every_bad_trade_is_rejected_once_with_its_reason(tmp_path: Path) -> None:
    t = f"{DAY}T09:30:00"
    lines, expected = numbered(
        [
            (f"AAA,{t}.100-05:00,10.5,100,P", None),
            (f"AAA,{t}.500-05:00,10.6,100,P", None),
            (f"AAA,{t}.500-05:00,10.7,0,Q", None),  # equal times are normal for ticks
            ("AAA,yesterday,10.5,100,P", "unparseable timestamp"),
            (f"AAA,{t}.600,10.5,100,P", "timestamp has no time zone"),
            (f",{t}.600-05:00,10.5,100,P", "missing symbol"),
            (f"AAA,{t}.600-05:00,$10,100,P", "unparseable price"),
            (f"AAA,{t}.600-05:00,10.5,1e,P", "unparseable size"),
            (f"AAA,{t}.600-05:00,nan,100,P", "NaN price"),
            (f"AAA,{t}.600-05:00,0,100,P", "non-positive price"),
            (f"AAA,{t}.600-05:00,10.5,,P", "NaN size"),
            (f"AAA,{t}.600-05:00,10.5,-3,P", "negative size"),
            (f"AAA,{t}.900-05:00,10.8,100,P", None),
            (f"AAA,{t}.200-05:00,10.5,100,P", "out-of-order timestamp"),
            (f"BBB,{t}.200-05:00,20.5,100,P", None),
        ]
    )
    write_csv(tmp_path / "trades.csv", TRADE_HEADER, lines)
    loaded = MarketDataRepository(tmp_path, ["AAA", "BBB"]).load_session(session(DAY))

    assert [(r.row, r.reason) for r in loaded.rejected] == expected
    trades = loaded.trades
    assert trades.price.tolist() == [10.5, 20.5, 10.6, 10.7, 10.8]
    assert trades.symbol.tolist() == [0, 1, 0, 0, 0]
    assert trades.ts[0] == ns(f"{DAY}T14:30:00.100Z")
    assert trades.source.tolist() == [2, 16, 3, 4, 14]


QUOTE_HEADER = "symbol,timestamp,bid,bid_size,ask,ask_size"


def test_every_bad_quote_is_rejected_once_with_its_reason(tmp_path: Path) -> None:
    t = f"{DAY}T14:30:00"
    lines, expected = numbered(
        [
            (f"AAA,{t}.1Z,10.5,100,0,0", None),  # bid only
            (f"AAA,{t}.2Z,0,0,10.7,300", None),  # ask only
            (f"AAA,{t}.3Z,10.5,100,10.7,300", None),
            (f"AAA,{t}.4,10.5,100,10.7,300", "timestamp has no time zone"),
            ("AAA,2024-02-30T14:30:00Z,10.5,100,10.7,300", "unparseable timestamp"),
            (f'"",{t}.4Z,10.5,100,10.7,300', "missing symbol"),
            (f"AAA,{t}.4Z,10.5,100,10.7,3OO", "unparseable ask_size"),
            (f"AAA,{t}.4Z,NaN,100,10.7,300", "NaN price"),
            (f"AAA,{t}.4Z,10.5,100,-10.7,300", "negative price"),
            (f"AAA,{t}.4Z,10.5,NaN,10.7,300", "NaN size"),
            (f"AAA,{t}.4Z,10.5,100,10.7,-300", "negative size"),
            (f"AAA,{t}.05Z,10.5,100,10.7,300", "out-of-order timestamp"),
        ]
    )
    with gzip.open(tmp_path / "quotes.csv.gz", "wt") as fh:
        fh.write("\n".join([QUOTE_HEADER, *lines]) + "\n")
    loaded = MarketDataRepository(tmp_path, ["AAA"]).load_session(session(DAY))

    assert [(r.row, r.reason) for r in loaded.rejected] == expected
    quotes = loaded.quotes
    assert quotes.bid.tolist() == [10.5, 0, 10.5]
    assert quotes.ask_size.tolist() == [0, 300, 300]
    assert quotes.bid_size.dtype == np.float64


def test_rejections_across_files_come_in_file_then_row_order(tmp_path: Path) -> None:
    write_csv(
        tmp_path / "b" / "more.csv",
        BAR_HEADER,
        [
            f"AAA,{DAY}T14:31:00Z,10,11,9,10.5,100",  # already in a.csv: a duplicate
            f"AAA,{DAY}T14:32:00Z,10,11,9,NaN,100",
            f"AAA,{DAY}T14:33:00Z,10,11,9,10.5,100",
        ],
    )
    write_csv(
        tmp_path / "a.csv",
        BAR_HEADER,
        [
            f"AAA,{DAY}T14:31:00Z,10,11,9,10.5,100",
            "AAA,garbage,10,11,9,10.5,100",
        ],
    )
    write_csv(tmp_path / "c.csv", TRADE_HEADER, [f"AAA,{DAY}T14:31:00Z,-1,100,P"])
    repo = MarketDataRepository(tmp_path, ["AAA"])
    loaded = repo.load_session(session(DAY))
    assert [f.name for f in repo.files] == ["a.csv", "b/more.csv", "c.csv"]
    assert rejections(loaded.rejected) == [
        ("a.csv", 3, "unparseable timestamp", "AAA"),
        ("b/more.csv", 2, "duplicate timestamp", "AAA"),
        ("b/more.csv", 3, "NaN price", "AAA"),
        ("c.csv", 2, "non-positive price", "AAA"),
    ]
    assert loaded.bars.source.tolist() == [2, (1 << 32) | 4]


def test_unparseable_timestamps_are_reported_by_the_first_load_only(tmp_path: Path) -> None:
    write_csv(
        tmp_path / "bars.csv",
        BAR_HEADER,
        [
            f"AAA,{NEXT_DAY}T14:31:00Z,10,11,9,10.5,100",
            "AAA,2024-03-06 09:32:00,10,11,9,10.5,100",
        ],
    )
    write_csv(tmp_path / "naive.csv", BAR_HEADER, ["AAA,2024-03-06T14:33:00,10,11,9,10.5,100"])
    repo = MarketDataRepository(tmp_path, ["AAA"])
    assert repo.files[1].ts_min is None
    first = repo.load_session(session(DAY))
    assert len(first.bars) == 0
    assert rejections(first.rejected) == [("naive.csv", 2, "timestamp has no time zone", "AAA")]
    second = repo.load_session(session(NEXT_DAY))
    assert rejections(second.rejected) == [("bars.csv", 3, "timestamp has no time zone", "AAA")]
    assert len(second.bars) == 1


def test_parquet_files_are_validated_like_csv(tmp_path: Path) -> None:
    new_york = pa.timestamp("ns", tz="America/New_York")
    stamps = [ns(f"{DAY}T14:{m}:00Z") for m in (30, 31, 32, 33, 31, 34)] + [
        None,
        ns(f"{DAY}T14:36Z"),
    ]
    table = pa.table(
        {
            "symbol": ["AAA", "AAA", "AAA", "AAA", "AAA", None, "AAA", "AAA"],
            "timestamp": pa.array(stamps, type=new_york),
            "open": [10.0] * 8,
            "high": [11.0, 11.0, 8.0, 11.0, 11.0, 11.0, 11.0, 11.0],
            "low": [9.0] * 8,
            "close": [10.5] * 8,
            "volume": pa.array([100, 100, 100, None, 100, 100, 100, 100], type=pa.int64()),
        }
    )
    pq.write_table(table, tmp_path / "aware.parquet")
    integer = table.slice(7).set_column(1, "timestamp", pa.array([ns(f"{DAY}T14:37Z")]))
    pq.write_table(integer, tmp_path / "integer.parquet")
    naive = table.slice(0, 1).set_column(
        1, "timestamp", pa.array([ns(f"{DAY}T14:38Z") // 1000], type=pa.timestamp("us"))
    )
    pq.write_table(naive, tmp_path / "naive.parquet")

    repo = MarketDataRepository(tmp_path, ["AAA"])
    loaded = repo.load_session(session(DAY))
    assert [(r.file, r.row, r.reason) for r in loaded.rejected] == [
        ("aware.parquet", 3, "high below low"),
        ("aware.parquet", 4, "NaN volume"),
        ("aware.parquet", 5, "duplicate timestamp"),
        ("aware.parquet", 6, "missing symbol"),
        ("aware.parquet", 7, "unparseable timestamp"),
        ("naive.parquet", 1, "timestamp has no time zone"),
    ]
    minutes = [30, 31, 36, 37]
    assert loaded.bars.ts_start.tolist() == [ns(f"{DAY}T14:{m}:00Z") for m in minutes]
    assert loaded.bars.volume.dtype == np.float64


# ---- config errors and whole-file problems ----------------------------------------------------


@pytest.fixture
def small_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    write_csv(folder / "AAA.csv", BAR_HEADER, [f"AAA,{DAY}T14:30:00Z,10,11,9,10.5,100"])
    return folder


@pytest.mark.parametrize(
    ("where", "symbols", "label", "message"),
    [
        ("missing", ["AAA"], "start", "does not exist"),
        ("file", ["AAA"], "start", "is not a directory"),
        ("empty", ["AAA"], "start", "holds no .csv, .csv.gz or .parquet files"),
        ("data", ["AAA", "XYZ"], "start", "no data for symbol XYZ in "),
        ("data", [], "start", "no symbols"),
        ("data", ["AAA"], "middle", "label must be 'start' or 'end'"),
    ],
)
def test_bad_config_is_one_sentence(
    small_folder: Path, where: str, symbols: list[str], label: str, message: str
) -> None:
    (small_folder.parent / "empty").mkdir()
    (small_folder.parent / "empty" / "notes.txt").write_text("no data here")
    (small_folder.parent / "file").write_text("")
    folder = small_folder.parent / where
    with pytest.raises(DataConfigError) as caught:
        MarketDataRepository(folder, symbols, label=label)
    text = str(caught.value)
    assert message in text
    assert "\n" not in text


def test_a_file_with_missing_columns_is_rejected_and_the_rest_loads(small_folder: Path) -> None:
    write_csv(small_folder / "broken.csv", "symbol,timestamp,open,close", ["AAA,1,2,3"])
    (small_folder / "corrupt.csv.gz").write_bytes(b"this is not gzip")
    repo = MarketDataRepository(small_folder, ["AAA"])
    assert [(r.file, r.row, r.reason) for r in repo.file_rejections] == [
        ("broken.csv", 0, "missing columns high, low, volume (closest kind: bars)"),
        ("corrupt.csv.gz", 0, repo.file_rejections[1].reason),
    ]
    # read as what its bytes are (text, not gzip): a header of no kind
    assert repo.file_rejections[1].reason.startswith("missing columns")
    assert [f.name for f in repo.files] == ["AAA.csv"]
    assert len(repo.input_digests()) == 3
    loaded = repo.load_session(session(DAY))
    assert len(loaded.bars) == 1
    assert loaded.bars.source.tolist() == [2]  # line 2 of AAA.csv, file 0 of all three


def test_when_every_file_is_unusable_the_error_says_why(tmp_path: Path) -> None:
    write_csv(tmp_path / "broken.csv", "symbol,timestamp,price", ["AAA,1,2"])
    with pytest.raises(DataConfigError, match=r"no data for symbol AAA .*missing column size"):
        MarketDataRepository(tmp_path, ["AAA"])


def test_rows_and_rejections_do_not_depend_on_the_block_size(tmp_path: Path) -> None:
    lines, _ = numbered(bar_rows())
    lines += ["AAA,2024-03-05T14:41:00Z,10,11,9,10.5,100\r", '"AAA,unclosed', "\xff"]
    path = write_csv(tmp_path / "plain" / "bars.csv", BAR_HEADER, lines)
    (tmp_path / "packed").mkdir()
    (tmp_path / "packed" / "bars.csv.gz").write_bytes(gzip.compress(path.read_bytes()))
    for folder in (path.parent, tmp_path / "packed"):
        whole = MarketDataRepository(path.parent, ["AAA", "BBB"])
        tiny = MarketDataRepository(folder, ["AAA", "BBB"], block_bytes=64)
        assert len(tiny.files) == 1 and tiny.file_rejections == ()
        for day in (DAY, NEXT_DAY):
            a, b = whole.load_session(session(day)), tiny.load_session(session(day))
            assert len(a.bars) and a.rejected
            assert [(r.row, r.reason) for r in a.rejected] == [
                (r.row, r.reason) for r in b.rejected
            ]
            assert_same_columns(a, b)


def test_the_folder_is_named_by_its_role(tmp_path: Path) -> None:
    with pytest.raises(DataConfigError, match=r"^backfill folder .*nope does not exist$"):
        MarketDataRepository(tmp_path / "nope", ["AAA"], role="backfill")


def test_integer_seconds_and_priceless_quote_sides_are_rejected_not_ignored(
    tmp_path: Path,
) -> None:
    open_ns = session("2013-10-07").open
    write_csv(
        tmp_path / "SPY.csv",
        "symbol,timestamp,open,high,low,close,volume",
        [f"SPY,{open_ns},10,11,9,10,5", f"SPY,{open_ns // 10**9 + 60},10,11,9,10,5"],
    )
    quote_rows = [f"SPY,{open_ns},10,1,0,0", f"SPY,{open_ns},0,3,11,2", f"SPY,{open_ns},10,1,0,4"]
    write_csv(tmp_path / "SPY_quotes.csv", "symbol,timestamp,bid,bid_size,ask,ask_size", quote_rows)
    loaded = MarketDataRepository(tmp_path, ["SPY"]).load_session(session("2013-10-07"))
    assert len(loaded.bars) == 1 and len(loaded.quotes) == 1
    assert rejections(loaded.rejected) == [
        ("SPY.csv", 3, "timestamp is not ns since the epoch", "SPY"),
        ("SPY_quotes.csv", 3, "quote side with size but no price", "SPY"),
        ("SPY_quotes.csv", 4, "quote side with size but no price", "SPY"),
    ]
