"""LEAN's minute and tick CSVs to the project's columns.

How LEAN's rows become the project's (DESIGN §2, §11):
- a minute trade bar is a 1m bar stamped with its start, as LEAN stamps it (`Time`; LEAN emits it
  at `EndTime`, a minute later, which is when the project releases a bar too);
- a minute quote bar is one quote at the bar's end (start + 1 minute), with the closing bid and
  ask and the last sizes: the close is the only top of book the bar knows for sure, and it is not
  known before the bar ends (a quote at its start would look ahead). The bar that ends at the
  close is therefore outside regular hours, like any quote stamped at the close;
- a tick is a trade or a quote at its own millisecond; a tick LEAN flags suspicious is rejected;
- a missing quote side (empty fields, or price and size 0) is an absent side (price 0, size 0);
- equity prices are in 1/10,000 of a dollar and are divided by 10,000; index, crypto, forex and
  CFD prices are plain.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa

from ticktape.messages import rejections as why
from ticktape.store.formats.lean_files import (
    SCALED,
    LeanPath,
    ZipCheck,
    check_zip,
    data_root,
    data_zone,
    day_bounds,
    ms_to_ns,
    parse_path,
    read_member,
    resolved,
)
from ticktape.store.formats.vendor import Decoded, Unusable, VendorFile
from ticktape.store.parsing import DataConfigError, csv_rows, numbers
from ticktape.store.reading import READ_ERRORS, Block, count_lines, split_lines

_MINUTE_NS = 60 * 1_000_000_000
_CR, _LF = 13, 10
_KEPT_BYTES = 256 << 20  # zips the scan read, kept for their decode: at most this many bytes
_PRICES = frozenset({"open", "high", "low", "close", "price", "bid", "ask"})
# (resolution, tick type, fields) -> the kind and where its columns are; LEAN's own column order
_LAYOUTS: dict[tuple[str, str, int], tuple[str, dict[str, int]]] = {
    ("minute", "trade", 6): (
        "bars",
        {"open": 1, "high": 2, "low": 3, "close": 4, "volume": 5},
    ),
    # time, bid open/high/low/close, last bid size, ask open/high/low/close, last ask size
    ("minute", "quote", 11): ("quotes", {"bid": 4, "bid_size": 5, "ask": 9, "ask_size": 10}),
    ("minute", "quote", 9): ("quotes", {"bid": 4, "ask": 8}),  # forex: no sizes
    # time, price, quantity, exchange, sale condition, suspicious
    ("tick", "trade", 6): ("trades", {"price": 1, "size": 2, "suspicious": 5}),
    ("tick", "trade", 3): ("trades", {"price": 1, "size": 2}),
    # time, bid, bid size, ask, ask size, exchange, condition, suspicious
    ("tick", "quote", 8): (
        "quotes",
        {"bid": 1, "bid_size": 2, "ask": 3, "ask_size": 4, "suspicious": 7},
    ),
    ("tick", "quote", 5): ("quotes", {"bid": 1, "bid_size": 2, "ask": 3, "ask_size": 4}),
    ("tick", "quote", 3): ("quotes", {"bid": 1, "ask": 2}),  # forex: no sizes
}
_KINDS = {
    ("minute", "trade"): "bars",
    ("minute", "quote"): "quotes",
    ("tick", "trade"): "trades",
    ("tick", "quote"): "quotes",
}
_VALUES = {
    "bars": ("open", "high", "low", "close", "volume"),
    "trades": ("price", "size"),
    "quotes": ("bid", "bid_size", "ask", "ask_size"),
}


class Lean:
    """LEAN's data folders (`--format lean`)."""

    name = "LEAN"

    def __init__(self) -> None:
        self._kept: dict[Path, zipfile.ZipFile] = {}  # archives the scan read, until decoded
        self._room = _KEPT_BYTES

    def wanted(self, name: str) -> bool:
        return name.lower().endswith(".zip")

    def scan(self, folder: Path, files: list[Path]) -> list[VendorFile]:
        root = data_root(folder)
        if root is None:
            raise DataConfigError(
                f"{folder} is not inside a LEAN data root (no market-hours/"
                "market-hours-database.json in it or above it)"
            )
        return [
            self._scan(folder, root, path, real)
            for path, real in zip(files, resolved(files), strict=True)
        ]

    def _scan(self, folder: Path, root: Path, path: Path, real: Path) -> VendorFile:
        name = path.relative_to(folder).as_posix()
        where = parse_path(real.relative_to(root).parts)
        if where is None:
            return VendorFile(name, path, reason=why.LEAN_UNSUPPORTED)
        zone = data_zone(root, where)
        if zone is None:
            return VendorFile(name, path, reason=why.LEAN_NO_MARKET_HOURS)
        checked = check_zip(path, where)
        if checked.reason:
            return VendorFile(name, path, reason=checked.reason, sha256=checked.sha256)
        self._keep(path, checked)
        start, end = day_bounds(where.day, zone)
        bar_quotes = where.resolution == "minute" and where.tick_type == "quote"
        return VendorFile(
            name,
            path,
            kind=_KINDS[where.resolution, where.tick_type],
            symbols=(where.symbol,),
            ts_min=start + (_MINUTE_NS if bar_quotes else 0),
            ts_max=end if bar_quotes else end - 1,
            detail=(where, zone),
            sha256=checked.sha256,
        )

    def _keep(self, path: Path, checked: ZipCheck) -> None:
        """Keep a zip the scan read for its decode, while the bytes kept stay within bounds."""
        if checked.archive is None:
            return
        if checked.size > self._room:
            checked.archive.close()
            return
        self._room -= checked.size
        self._kept[path] = checked.archive

    def decode_many(self, files: Sequence[VendorFile]) -> list[Decoded | Exception]:
        """The files' rows; files of one column layout are parsed as one text (a parser call
        costs more than a day of minute bars)."""
        results: list[Decoded | Exception] = [Unusable(why.LEAN_UNKNOWN_COLUMNS)] * len(files)
        groups: dict[tuple[str, str, int], list[tuple[int, bytes, LeanPath, str]]] = {}
        for i, file in enumerate(files):
            where, zone = file.detail
            try:
                data = read_member(self._kept.pop(file.path, None) or file.path, where)
            except (Unusable, *READ_ERRORS) as exc:
                results[i] = exc
                continue
            end = data.find(b"\n")
            fields = (data[:end] if end >= 0 else data).count(b",") + 1
            key = (where.resolution, where.tick_type, fields)
            if key in _LAYOUTS:
                groups.setdefault(key, []).append((i, _terminated(data), where, zone))
        for (_, _, fields), members in groups.items():
            decoded = decode_csv(fields, [(d, w, z) for _, d, w, z in members])
            for (i, *_), one in zip(members, decoded, strict=True):
                results[i] = one
        return results


def _terminated(data: bytes) -> bytes:
    """The text with a line feed at its end, so that texts joined keep their own lines."""
    return data if data.endswith(b"\n") or not data else data + b"\n"


def _lf_only(text: bytes) -> tuple[bytes, bool]:
    """The text without its CRs when each is the first half of a CRLF (LEAN writes those): the
    same lines, which `split_lines` then cuts without its passes for lone CRs; and whether
    every line now ends in an LF (not when a CR ends a line of its own)."""
    if b"\r" not in text:
        return text, True
    data = np.frombuffer(text, np.uint8)
    returns = data == _CR
    at = np.flatnonzero(returns)
    if at[-1] + 1 == len(data) or not (data[at + 1] == _LF).all():
        return text, False
    return data[~returns].tobytes(), True


def _lf_count(data: bytes) -> int:
    """Lines of a text whose every CR is part of a CRLF (`count_lines`, without its CR passes)."""
    return data.count(b"\n")


def decode_csv(fields: int, files: list[tuple[bytes, LeanPath, str]]) -> list[Decoded]:
    """The rows of LEAN CSVs of one layout (each ending in a line feed), parsed as one text and
    converted as one set of columns; each file's rows are then a slice of them. A line that
    cannot be split is rejected alone (as for CSV)."""
    resolution, tick_type = files[0][1].resolution, files[0][1].tick_type
    kind, at = _LAYOUTS[resolution, tick_type, fields]
    text, lf_only = _lf_only(b"".join(d for d, _, _ in files))
    count = _lf_count if lf_only else count_lines
    firsts = np.cumsum([1] + [count(data) for data, _, _ in files])  # each file's line 1
    lines = split_lines(Block(0, 0, 1, text), 0, fields, 0)
    table, line = csv_rows(lines, fields, {"ms": 0, **at})
    rows = np.searchsorted(line, firsts)  # file k's rows are rows[k]:rows[k + 1]
    owner = np.repeat(np.arange(len(files)), np.diff(rows))  # the file of each row
    ms, bad_ms = numbers(table.column("ms"))
    good_ms = ~(bad_ms | np.isnan(ms))
    ms = np.where(good_ms, ms, 0)
    ts = ms_to_ns(ms, [(where.day, zone) for _, where, zone in files], owner)
    if kind == "quotes" and resolution == "minute":
        ts += _MINUTE_NS  # the bar's closing quote, known at its end
    scaled = np.array([where.security in SCALED for _, where, _ in files])[owner]
    values = {name: _value(table, name, scaled) for name in _VALUES[kind]}
    if kind == "quotes":
        for side in ("bid", "ask"):
            absent = np.isnan(values[side]) & np.isnan(values[f"{side}_size"])
            values[side][absent] = 0.0
            values[f"{side}_size"][absent] = 0.0
    suspicious = np.zeros(len(line), dtype=bool)
    if "suspicious" in at:
        suspicious = (numbers(table.column("suspicious"))[0] == 1) & good_ms  # time first
    line = line - (firsts[:-1] - 1)[owner]  # the line in its own file
    rejected: list[list[tuple[int, str, str, int | None]]] = [[] for _ in files]
    for i in np.flatnonzero(suspicious).tolist():
        symbol = files[owner[i]][1].symbol
        rejected[owner[i]].append((int(line[i]), why.LEAN_SUSPICIOUS, symbol, int(ts[i])))
    for number, reason, _ in lines.bad:
        k = int(np.searchsorted(firsts, number, side="right")) - 1
        rejected[k].append((number - int(firsts[k]) + 1, reason, files[k][1].symbol, None))
    keep = ~suspicious
    if not keep.all():
        ts, good_ms, line, owner = ts[keep], good_ms[keep], line[keep], owner[keep]
        values = {name: column[keep] for name, column in values.items()}
    columns = pa.table({"timestamp": pa.array(ts, mask=~good_ms), **values})
    bounds = np.searchsorted(owner, np.arange(len(files) + 1))  # the rows kept, by file
    zeros = pa.array(np.zeros(int(np.diff(bounds).max(initial=0)), dtype=np.int32))
    decoded = []
    for k, (_, where, _) in enumerate(files):
        lo, count = int(bounds[k]), int(bounds[k + 1] - bounds[k])
        symbol = pa.DictionaryArray.from_arrays(zeros.slice(0, count), pa.array([where.symbol]))
        own = columns.slice(lo, count).add_column(0, "symbol", symbol)
        decoded.append(Decoded(table=own, row=line[lo : lo + count], rejected=rejected[k]))
    return decoded


def _value(table: pa.Table, name: str, scaled: np.ndarray) -> np.ndarray:
    """A column as float64; a value that is not a number is +inf, which validation calls
    unparseable (NaN would be a missing value); a column the layout lacks is 0 (no size). A
    price of a `scaled` row (LEAN's equity scale) is divided by 10,000."""
    if name not in table.column_names:
        return np.zeros(table.num_rows)
    values, garbage = numbers(table.column(name))
    values = values.copy()
    values[garbage] = np.inf
    if name in _PRICES and scaled.any():
        values = np.where(scaled, values / 10_000, values)
    return values
