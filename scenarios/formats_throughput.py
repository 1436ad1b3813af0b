"""Ingest throughput of the vendor formats: the reader alone, and the whole `ingest`.

    .venv/bin/python -m ticktape.scenarios.formats_throughput [--repeat 3]

Writes, in a temporary folder: a LEAN data root of minute trade zips (200 symbols x 5 days x 390
bars), and one DBN ohlcv-1m and one trades file of 2M records each (records laid out with
`databento_dbn`'s own record dtypes, from numpy). Prints the median rows per second of `--repeat`
runs: the reader (`decode` of every file, the columns before validation) and the whole ingest into
a new catalog (validation, partitions, manifest).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import zipfile
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pyarrow as pa

from ticktape.store.catalog_ingest import ingest
from ticktape.store.formats import open_source

OPEN_NS = 1_704_205_800_000_000_000  # 2024-01-02 09:30 New York
MINUTE_NS = 60 * 10**9


def write_lean(root: Path, symbols: int = 200, days: int = 5) -> int:
    (root / "market-hours").mkdir(parents=True)
    (root / "market-hours" / "market-hours-database.json").write_text(
        '{"entries": {"Equity-usa-[*]": {"dataTimeZone": "America/New_York"}}}'
    )
    ms = 34_200_000 + np.arange(390) * 60_000
    rng = np.random.default_rng(1)
    day, written = date(2024, 1, 2), 0
    for _ in range(days):
        stamp = day.strftime("%Y%m%d")
        for s in range(symbols):
            close = 1_000_000 + rng.integers(0, 1000, 390)
            lines = "".join(
                f"{t},{c},{c + 100},{c - 100},{c},{v}\r\n"
                for t, c, v in zip(ms.tolist(), close.tolist(), range(390), strict=True)
            )
            folder = root / "equity" / "usa" / "minute" / f"s{s:03d}"
            folder.mkdir(parents=True, exist_ok=True)
            with zipfile.ZipFile(folder / f"{stamp}_trade.zip", "w", zipfile.ZIP_DEFLATED) as z:
                z.writestr(f"{stamp}_s{s:03d}_minute_trade.csv", lines)
            written += 390
        day += timedelta(days=1 if day.weekday() < 4 else 3)
    return written


def write_dbn(folder: Path, schema: str, records: int, symbols: int = 500) -> int:
    import databento_dbn as dbn

    kind = {"ohlcv-1m": dbn.OHLCVMsg, "trades": dbn.TradeMsg}[schema]
    if schema == "ohlcv-1m":  # one session of bars: 390 a symbol
        symbols = -(-records // 390)
    day = date(2024, 1, 2)
    mappings = [
        SimpleNamespace(
            raw_symbol=f"S{i:03d}",
            intervals=[SimpleNamespace(start_date=day, end_date=day + timedelta(1), symbol=str(i))],
        )
        for i in range(1, symbols + 1)
    ]
    metadata = dbn.Metadata(
        dataset="XNAS.ITCH",
        start=OPEN_NS,
        end=OPEN_NS + 390 * MINUTE_NS,
        stype_in=dbn.SType.RAW_SYMBOL,
        stype_out=dbn.SType.INSTRUMENT_ID,
        schema=dbn.Schema.from_str(schema),
        mappings=mappings,
    )
    rows = np.zeros(records, dtype=np.dtype(kind._dtypes))
    rows["length"] = rows.dtype.itemsize // 4
    per_symbol = -(-records // symbols)
    rows["instrument_id"] = np.arange(records) % symbols + 1
    step = 390 * MINUTE_NS // per_symbol if schema == "trades" else MINUTE_NS
    rows["ts_event"] = OPEN_NS + (np.arange(records) // symbols) * step
    price = (100 + (np.arange(records) % 97) * 0.01) * 1e9
    if schema == "ohlcv-1m":
        rows["rtype"] = 0x21
        for name in ("open", "high", "low", "close"):
            rows[name] = price
        rows["volume"] = 100
    else:
        rows["price"], rows["size"], rows["action"], rows["side"] = price, 10, b"T", b"N"
    path = folder / f"bench.{schema}.dbn"
    path.write_bytes(metadata.encode() + rows.tobytes())
    return records


def write_csv(dbn_folder: Path, folder: Path) -> int:
    """The DBN trades as the project's own CSV: the baseline of the whole ingest."""
    import pyarrow.csv as pacsv

    from ticktape.store.formats.dbn import Dbn

    reader = Dbn()
    (file,) = reader.scan(dbn_folder, sorted(dbn_folder.glob("*.dbn")))
    (decoded,) = reader.decode_many([file])
    table = decoded.table.set_column(0, "symbol", decoded.table["symbol"].cast(pa.string()))
    folder.mkdir()
    pacsv.write_csv(table, folder / "trades.csv")
    return table.num_rows


def median_rate(rows: int, repeat: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return rows / statistics.median(times)


def ingest_anew(folder: Path, base: Path) -> None:
    catalog = Path(tempfile.mkdtemp(dir=base)) / "catalog"
    ingest([folder], catalog)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        sources = {"LEAN minute zips": (base / "lean", write_lean(base / "lean"))}
        for schema in ("ohlcv-1m", "trades"):
            folder = base / schema
            folder.mkdir()
            sources[f"DBN {schema}"] = (folder, write_dbn(folder, schema, 2_000_000))
        sources["CSV, same as trades"] = (base / "csv", write_csv(base / "trades", base / "csv"))
        print(f"{'source':<18} {'rows':>10} {'reader rows/s':>15} {'ingest rows/s':>15}")
        for name, (folder, rows) in sources.items():
            repository = open_source(folder)
            if not hasattr(repository, "format"):  # the CSV baseline: whole ingest only
                whole = median_rate(rows, args.repeat, lambda f=folder: ingest_anew(f, base))
                print(f"{name:<18} {rows:>10,} {'':>15} {whole:>15,.0f}")
                continue

            def read(repository: object = repository) -> None:
                files = repository._files  # type: ignore[attr-defined]
                repository.format.decode_many(files)  # type: ignore[attr-defined]

            reader = median_rate(rows, args.repeat, read)
            whole = median_rate(rows, args.repeat, lambda f=folder: ingest_anew(f, base))
            print(f"{name:<18} {rows:>10,} {reader:>15,.0f} {whole:>15,.0f}")


if __name__ == "__main__":
    main()
