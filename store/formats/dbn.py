"""Databento DBN records to the project's columns.

- ohlcv-1m records are 1m bars (Databento stamps a bar with its start, as the project does);
  trades are trades; mbp-1, tbbo and bbo-1s/1m give the top of book as quotes;
- the time is `ts_event`; prices are DBN's fixed point (1e-9); sizes and volumes as they are;
- the symbol of a record is its instrument's raw symbol on the record's UTC date, from the file's
  symbology mappings; a record whose instrument is not mapped on that date is rejected;
- DBN's undefined price (the i64 maximum) in a bar or a trade is rejected; on a quote side it is
  an empty side when its size is 0 (the project's absent side, price 0 and size 0), and rejected
  when it has a size.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from ticktape.messages import rejections as why
from ticktape.store.formats.dbn_files import (
    Header,
    is_dbn_name,
    read_header,
    read_records,
    record_view,
)
from ticktape.store.formats.vendor import Decoded, Unusable, VendorFile
from ticktape.store.reading import READ_ERRORS

_NS_PER_DAY = 86_400 * 1_000_000_000
_DAY_BITS = 20  # days since 1970 fit 20 bits until the year 4840
_DENSE_IDS = 1 << 22  # a one-day file looks its instruments up in a table of this many at most
_PRICE_SCALE = 1e9
_EARLIEST_NS = 10**17  # as store.parsing: an earlier integer is not ns since the epoch
_UNDEF_PRICE = np.iinfo(np.int64).max
_UNDEF_TIMESTAMP = np.iinfo(np.uint64).max
# schema -> (kind, record class name in databento_dbn, record types of that schema)
_SCHEMAS = {
    "ohlcv-1m": ("bars", "OHLCVMsg", frozenset({0x21})),
    "trades": ("trades", "TradeMsg", frozenset({0x00})),
    "mbp-1": ("quotes", "MBP1Msg", frozenset({0x01})),
    "tbbo": ("quotes", "MBP1Msg", frozenset({0x01})),
    "bbo-1s": ("quotes", "BBOMsg", frozenset({0xC3})),
    "bbo-1m": ("quotes", "BBOMsg", frozenset({0xC4})),
}


class Dbn:
    """Databento DBN files (`--format dbn`)."""

    name = "DBN"

    def wanted(self, name: str) -> bool:
        return is_dbn_name(name)

    def scan(self, folder: Path, files: list[Path]) -> list[VendorFile]:
        return [self._scan(path.relative_to(folder).as_posix(), path) for path in files]

    def _scan(self, name: str, path: Path) -> VendorFile:
        try:
            header = read_header(path)
        except Unusable as exc:
            return VendorFile(name, path, reason=exc.reason)
        except OSError:
            return VendorFile(name, path, reason=why.UNREADABLE_FILE)
        schema = header.metadata.schema
        if schema is None or str(schema) not in _SCHEMAS:
            return VendorFile(name, path, reason=why.DBN_UNSUPPORTED_SCHEMA)
        kind = _SCHEMAS[str(schema)][0]
        symbology = Symbology(header.metadata)
        start, end = header.metadata.start, header.metadata.end
        if end is None or end == _UNDEF_TIMESTAMP:  # no stated range: read the records' own
            records = _records(path, header)[0]
            times = records["ts_event"].astype(np.int64)
            start, end = int(times.min(initial=start)), int(times.max(initial=start)) + 1
        return VendorFile(
            name,
            path,
            kind=kind,
            symbols=symbology.names,
            ts_min=int(start),
            ts_max=int(end) - 1,
            detail=(header, symbology),
        )

    def decode_many(self, files: Sequence[VendorFile]) -> list[Decoded | Exception]:
        results: list[Decoded | Exception] = []
        for file in files:
            header, symbology = file.detail
            try:
                records, (numbers, others, tail) = _records(file.path, header)
            except (Unusable, *READ_ERRORS) as exc:
                results.append(exc)
                continue
            results.append(decode_records(records, numbers, others, tail, file.kind, symbology))
        return results


def _records(path: Path, header: Header) -> tuple[np.ndarray, Any]:
    import databento_dbn

    _, record, rtypes = _SCHEMAS[str(header.metadata.schema)]
    fields = list(getattr(databento_dbn, record)._dtypes)
    if header.metadata.ts_out:
        fields.append(("ts_out", "u8"))
    data, damaged = read_records(path, header)
    records, found = record_view(data, np.dtype(fields), rtypes)
    if damaged and not found[2]:  # the stream broke off at a record boundary
        found = (found[0], found[1], len(found[0]) + len(found[1]) + 1)
    return records, found


class Symbology:
    """Instrument id and UTC date -> raw symbol, from the metadata's mapping intervals."""

    def __init__(self, metadata: Any) -> None:
        import databento_dbn

        out_is_id = metadata.stype_out == databento_dbn.SType.INSTRUMENT_ID
        rows: list[tuple[int, int, int, str]] = []
        for raw, intervals in (metadata.mappings or {}).items():
            for interval in intervals:
                instrument, name = raw, interval["symbol"]
                if out_is_id:
                    instrument, name = name, instrument
                if not str(instrument).isdigit() or not name:
                    continue
                start, end = _day(interval["start_date"]), _day(interval["end_date"])
                rows.append((int(instrument), start, end, name))
        rows.sort()
        self.names: tuple[str, ...] = tuple(sorted({r[3] for r in rows}))
        at = {name: i for i, name in enumerate(self.names)}
        self._id = np.array([r[0] for r in rows], dtype=np.int64)
        self._key = (self._id << _DAY_BITS) | np.array([r[1] for r in rows], dtype=np.int64)
        self._end = np.array([r[2] for r in rows], dtype=np.int64)
        self._name = np.array([at[r[3]] for r in rows], dtype=np.int32)

    def lookup(self, instrument: np.ndarray, ts: np.ndarray) -> np.ndarray:
        """Each record's index into `names`, -1 where its instrument is not mapped that day."""
        if not len(self._key):
            return np.full(len(instrument), -1, dtype=np.int32)
        day = ts // _NS_PER_DAY
        if len(day) and day.min() == day.max() and instrument.max() < _DENSE_IDS:  # one day
            ids = np.arange(int(instrument.max()) + 1, dtype=np.int64)
            return self._search(ids, np.full(len(ids), day[0]))[instrument]
        return self._search(instrument, day)

    def _search(self, instrument: np.ndarray, day: np.ndarray) -> np.ndarray:
        at = np.searchsorted(self._key, (instrument << _DAY_BITS) | day, side="right") - 1
        safe = np.maximum(at, 0)
        mapped = (at >= 0) & (self._id[safe] == instrument) & (day < self._end[safe])
        return np.where(mapped, self._name[safe], -1).astype(np.int32)


def _day(value: date) -> int:
    return (value - date(1970, 1, 1)).days


def decode_records(
    records: np.ndarray,
    numbers: np.ndarray,
    others: np.ndarray,
    tail: int,
    kind: str,
    symbology: Symbology,
) -> Decoded:
    """The records' columns; what the format itself rejects goes to `rejected`."""
    ts = np.ascontiguousarray(records["ts_event"]).view(np.int64)
    symbol = symbology.lookup(records["instrument_id"].astype(np.int64), ts)
    rejected: list[tuple[int, str, str, int | None]] = [
        (int(n), why.DBN_OTHER_RECORD, "", None) for n in others.tolist()
    ]
    values, undefined = _VALUES[kind](records)
    bad = (symbol < 0) | undefined
    if not bad.any():
        return Decoded(
            table=_table(symbol, ts, values, symbology),
            row=numbers,
            rejected=rejected,
            damaged_from=tail,
            damage=why.DAMAGED_FROM_RECORD,
        )
    for i in np.flatnonzero(bad).tolist():
        reason = why.DBN_UNMAPPED if symbol[i] < 0 else why.DBN_UNDEFINED_PRICE
        name = symbology.names[symbol[i]] if symbol[i] >= 0 else ""
        dated = int(ts[i]) if ts[i] >= _EARLIEST_NS else None
        if dated is None:  # a time is checked first, as for CSV
            reason = why.NOT_NS_TIMESTAMP
        rejected.append((int(numbers[i]), reason, name, dated))
    keep = ~bad
    values = {name: column[keep] for name, column in values.items()}
    return Decoded(
        table=_table(symbol[keep], ts[keep], values, symbology),
        row=numbers[keep],
        rejected=rejected,
        damaged_from=tail,
        damage=why.DAMAGED_FROM_RECORD,
    )


def _table(
    symbol: np.ndarray, ts: np.ndarray, values: dict[str, np.ndarray], symbology: Symbology
) -> pa.Table:
    names = pa.array(symbology.names, pa.string())
    return pa.table(
        {
            "symbol": pa.DictionaryArray.from_arrays(pa.array(symbol), names),
            "timestamp": ts,
            **values,
        }
    )


def _price(column: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Prices and where they are DBN's sentinel. The sentinel is looked for in the prices (one
    pass over the strided records saved), then confirmed in the fixed point."""
    price = column / _PRICE_SCALE
    undefined = price == _UNDEF_PRICE / _PRICE_SCALE
    if undefined.any():
        undefined &= column == _UNDEF_PRICE
    return price, undefined


def _bars(records: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    values, undefined = {}, np.zeros(len(records), dtype=bool)
    for name in ("open", "high", "low", "close"):
        values[name], missing = _price(records[name])
        undefined |= missing
    values["volume"] = records["volume"].astype(np.float64)
    return values, undefined


def _trades(records: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    price, undefined = _price(records["price"])
    return {"price": price, "size": records["size"].astype(np.float64)}, undefined


def _quotes(records: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    values, undefined = {}, np.zeros(len(records), dtype=bool)
    for side in ("bid", "ask"):
        price, missing = _price(records[f"{side}_px_00"])
        size = records[f"{side}_sz_00"].astype(np.float64)
        empty = missing & (size == 0)
        price[empty] = 0.0
        undefined |= missing & ~empty
        values[side], values[f"{side}_size"] = price, size
    return values, undefined


_VALUES = {"bars": _bars, "trades": _trades, "quotes": _quotes}
