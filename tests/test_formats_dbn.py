"""Databento DBN files through `ingest`, written here with `databento-dbn` itself.

Each file is metadata (schema, symbology mappings) plus records encoded by `databento_dbn`, plain
(`.dbn`) or zstd-compressed (`.dbn.zst`), from known values; the reference for every check is
those values, or the same values written as the project's own CSV.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from types import SimpleNamespace

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.helpers import config, run
from ticktape.store.catalog_ingest import ingest
from ticktape.store.formats import detect

dbn = pytest.importorskip("databento_dbn")

DAY = dt.date(2024, 1, 2)
OPEN = 1_704_205_800_000_000_000  # 2024-01-02 09:30 New York
MINUTE = 60 * 10**9
IDS = {"AAPL": 15144, "MSFT": 10888}


def _metadata(schema: object, *, end: int | None = OPEN + 390 * MINUTE) -> object:
    mappings = [
        SimpleNamespace(
            raw_symbol=symbol,
            intervals=[
                SimpleNamespace(
                    start_date=DAY, end_date=DAY + dt.timedelta(days=1), symbol=str(instrument)
                )
            ],
        )
        for symbol, instrument in IDS.items()
    ]
    return dbn.Metadata(
        dataset="XNAS.ITCH",
        start=OPEN - 6 * 3600 * 10**9,
        end=end,
        stype_in=dbn.SType.RAW_SYMBOL,
        stype_out=dbn.SType.INSTRUMENT_ID,
        schema=schema,
        symbols=list(IDS),
        mappings=mappings,
    )


def _write(path: Path, metadata: object, records: list[object], *, zstd: bool = False) -> bytes:
    data = metadata.encode() + b"".join(bytes(r) for r in records)  # type: ignore[attr-defined]
    if zstd:
        data = pa.compress(data, codec="zstd", asbytes=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return data


def _px(price: float) -> int:
    return round(price * 1e9)


def bars(minutes: int) -> list[tuple[str, int, float, float, float, float, int]]:
    rows = []
    for i in range(minutes):
        for symbol, base in (("AAPL", 185.25), ("MSFT", 370.5)):
            o, c = round(base + (i % 13) * 0.01, 2), round(base + (i % 7) * 0.01, 2)
            rows.append(
                (
                    symbol,
                    OPEN + i * MINUTE,
                    o,
                    round(max(o, c) + 0.05, 2),
                    round(min(o, c) - 0.05, 2),
                    c,
                    100 + i,
                )
            )
    return rows


def trades(count: int) -> list[tuple[str, int, float, int]]:
    return [
        (
            ("AAPL", "MSFT")[i % 2],
            OPEN + 250_000_000 + (i // 3) * 7_000_000_001,
            185.0 + (i % 5) * 0.25,
            1 + i,
        )
        for i in range(count)
    ]


def _ohlcv(rows: list, undefined: int = -1) -> list[object]:
    return [
        dbn.OHLCVMsg(
            dbn.RType.OHLCV_1M,
            2,
            IDS[s],
            t,
            _px(o),
            _px(h),
            _px(lo),
            dbn.UNDEF_PRICE if i == undefined else _px(c),
            v,
        )
        for i, (s, t, o, h, lo, c, v) in enumerate(rows)
    ]


def _trades(rows: list) -> list[object]:
    return [
        dbn.TradeMsg(2, IDS[s], t, _px(p), size, dbn.Action.TRADE, dbn.Side.NONE, 0, t + 1000)
        for s, t, p, size in rows
    ]


def write_dbn(folder: Path, csv: Path | None = None) -> Path:
    """ohlcv-1m (plain) and trades (zstd) of two symbols, and the same rows as CSV."""
    minute_bars, ticks = bars(390), trades(600)
    _write(
        folder / "xnas-20240102.ohlcv-1m.dbn", _metadata(dbn.Schema.OHLCV_1M), _ohlcv(minute_bars)
    )
    _write(
        folder / "xnas-20240102.trades.dbn.zst",
        _metadata(dbn.Schema.TRADES),
        _trades(ticks),
        zstd=True,
    )
    if csv is not None:
        csv.mkdir(parents=True)
        lines = [f"{s},{t},{o},{h},{lo},{c},{v}" for s, t, o, h, lo, c, v in minute_bars]
        (csv / "xnas-20240102.ohlcv-1m.csv").write_text(
            "symbol,timestamp,open,high,low,close,volume\n" + "\n".join(lines) + "\n"
        )
        lines = [f"{s},{t},{p},{size}" for s, t, p, size in ticks]
        (csv / "xnas-20240102.trades.csv").write_text(
            "symbol,timestamp,price,size\n" + "\n".join(lines) + "\n"
        )
    return folder


def test_a_run_over_a_dbn_catalog_is_the_run_over_the_same_rows_as_csv(tmp_path: Path) -> None:
    folder = write_dbn(tmp_path / "dbn", csv=tmp_path / "csv")
    assert detect(folder) == "dbn"
    summary = ingest([folder], tmp_path / "dbn_catalog")
    assert (summary.rows, summary.rejected) == (780 + 600, 0)
    settings = {"symbols": ("AAPL", "MSFT"), "start": "2024-01-02", "end": "2024-01-02"}
    dbn_digest = run(config(tmp_path / "dbn_catalog", tmp_path / "dbn.lmdb", **settings))
    csv_digest = run(config(tmp_path / "csv", tmp_path / "csv.lmdb", **settings))
    assert dbn_digest == csv_digest


def test_top_of_book_schemas_are_quotes_and_an_empty_side_is_absent(tmp_path: Path) -> None:
    def level(bid: float | None, ask: float) -> object:
        return dbn.BidAskPair(
            bid_px=dbn.UNDEF_PRICE if bid is None else _px(bid),
            ask_px=_px(ask),
            bid_sz=0 if bid is None else 300,
            ask_sz=200,
        )

    books = [(OPEN + i * 1_000_000, None if i == 1 else 185.0 + i * 0.01, 185.05) for i in range(4)]
    records = [
        dbn.MBP1Msg(
            2,
            IDS["AAPL"],
            t,
            _px(ask),
            1,
            dbn.Action.ADD,
            dbn.Side.ASK,
            0,
            t + 10,
            levels=level(bid, ask),
        )
        for t, bid, ask in books
    ]
    _write(tmp_path / "src" / "aapl.mbp-1.dbn.zst", _metadata(dbn.Schema.MBP_1), records, zstd=True)
    ingest([tmp_path / "src"], tmp_path / "catalog")
    quotes = pq.read_table(tmp_path / "catalog/quotes/session=2024-01-02/part.parquet").to_pylist()
    assert [(q["ts"], q["bid"], q["bid_size"], q["ask"], q["line"]) for q in quotes] == [
        (t, 0.0 if bid is None else bid, 0.0 if bid is None else 300.0, ask, i + 1)
        for i, (t, bid, ask) in enumerate(books)
    ]


def test_bad_dbn_input_costs_its_own_record_or_file(tmp_path: Path) -> None:
    src = tmp_path / "src"
    rows = bars(10)
    rows[3] = ("AAPL", *rows[3][1:])  # MSFT's second bar made AAPL's again: a duplicate
    records = _ohlcv(rows, undefined=5)
    records[7] = dbn.OHLCVMsg(dbn.RType.OHLCV_1M, 2, 99999, OPEN + 3 * MINUTE, 1, 1, 1, 1, 1)
    _write(src / "bars.dbn", _metadata(dbn.Schema.OHLCV_1M), records)
    cut = _write(
        src / "ticks.dbn.zst", _metadata(dbn.Schema.TRADES), _trades(trades(6000)), zstd=True
    )
    (src / "ticks.dbn.zst").write_bytes(cut[: len(cut) - 40])  # the zstd frame is cut off
    _write(src / "book.mbo.dbn", _metadata(dbn.Schema.MBO), [])
    future = bytearray(_write(src / "v9.dbn", _metadata(dbn.Schema.TRADES), _trades(trades(2))))
    future[3] = 9
    (src / "v9.dbn").write_bytes(bytes(future))
    summary = ingest([src], tmp_path / "catalog")

    manifest = json.loads((tmp_path / "catalog/catalog.json").read_text())
    assert {(r["file"], r["reason"]) for r in manifest["file_rejections"]} == {
        ("book.mbo.dbn", "unsupported DBN schema"),
        ("v9.dbn", "unsupported DBN version"),
    }
    rejected = [  # dated, and undated (the cut: no time of its own)
        *pq.read_table(tmp_path / "catalog/rejected/session=2024-01-02/part.parquet").to_pylist(),
        *pq.read_table(tmp_path / "catalog/rejected/undated.parquet").to_pylist(),
    ]
    found = {(r["file"], r["row"], r["reason"]) for r in rejected}
    damaged = [r for r in found if r[0] == "ticks.dbn.zst"]
    assert found - set(damaged) == {
        ("bars.dbn", 4, "duplicate timestamp"),
        ("bars.dbn", 6, "undefined price (DBN sentinel)"),
        ("bars.dbn", 8, "instrument not in the file's symbology mappings"),
    }
    assert len(damaged) == 1 and damaged[0][2] == "damaged or cut-off data from this record on"
    kept = damaged[0][1] - 1  # the records before the break are in
    assert 2000 < kept < 6000  # zstd blocks of 128 KiB: the cut costs the last block
    assert summary.rows == 20 - 3 + kept
