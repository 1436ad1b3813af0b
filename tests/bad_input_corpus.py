"""A corpus of bad inputs built from the project's own generated data, and an independent reading.

`base(folder)` writes one regular-hours session of AAA and BBB bars plus AAA trades and quotes.
Each fault class damages a copy of it and says how many rows must be rejected and which data
lines are lost with them. `good_rows` reads the rows that must still be released with the csv
module and `datetime`, not with the repository's code.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import os
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ticktape.scenarios.demo_data import DemoSpec, generate

DAY = "2024-03-05"
SPEC = DemoSpec(
    symbols=("AAA", "BBB"),
    start=DAY,
    end=DAY,
    extended_hours=False,
    trades_per_minute=1,
    quotes_per_minute=1,
)
KINDS = {"AAA.csv": "Bar", "BBB.csv": "Bar", "AAA_trades.csv": "Trade", "AAA_quotes.csv": "Quote"}
LINE = 100  # the data line that a row fault damages (the header is line 1)


def base(folder: Path) -> Path:
    return generate(folder, SPEC)


@dataclass
class Fault:
    """What a fault did: rejections it must cause, and the data lines whose rows are lost."""

    rejected: int
    lost: dict[str, set[int]] = field(default_factory=dict)  # file -> lost line numbers
    gone: set[str] = field(default_factory=set)  # files whose every row is lost
    copies: dict[str, str] = field(default_factory=dict)  # a copy's name -> the file it copies


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().split(b"\n")[:-1]


def _write(path: Path, lines: list[bytes], end: bytes = b"\n") -> None:
    path.write_bytes(end.join(lines) + end)


def _row_fault(name: str, change: Callable[[list[bytes]], bytes], rejected: int = 1):
    """Replace data line LINE of `name` (its fields split on commas) by `change(fields)`."""

    def apply(folder: Path) -> Fault:
        lines = _lines(folder / name)
        lines[LINE - 1] = change(lines[LINE - 1].split(b","))
        _write(folder / name, lines)
        return Fault(rejected, {name: {LINE}} if rejected else {})

    return apply


def _set(i: int, value: bytes) -> Callable[[list[bytes]], bytes]:
    return lambda f: b",".join([*f[:i], value, *f[i + 1 :]])


def _stamp(change: Callable[[bytes], bytes]) -> Callable[[list[bytes]], bytes]:
    return lambda f: b",".join([f[0], change(f[1]), *f[2:]])


def _whole_file(change: Callable[[Path], None], rejected: int, lost_files: set[str] = frozenset()):
    def apply(folder: Path) -> Fault:
        change(folder)
        return Fault(rejected, gone=set(lost_files))

    return apply


def _copy_line(offset: int) -> Callable[[Path], Fault]:
    """Line LINE of AAA.csv becomes a copy of the line `offset` before it."""

    def apply(folder: Path) -> Fault:
        lines = _lines(folder / "AAA.csv")
        lines[LINE - 1] = lines[LINE - 1 - offset]
        _write(folder / "AAA.csv", lines)
        return Fault(1, {"AAA.csv": {LINE}})

    return apply


def _endings(end: bytes) -> Callable[[Path], Fault]:
    def apply(folder: Path) -> Fault:
        _write(folder / "AAA.csv", _lines(folder / "AAA.csv"), end)
        return Fault(0)

    return apply


def _blank_lines(folder: Path) -> Fault:
    lines = _lines(folder / "AAA.csv")
    _write(folder / "AAA.csv", [*lines[:50], b"", b"", *lines[50:], b""])
    return Fault(0)


def _bom(folder: Path) -> Fault:
    (folder / "AAA.csv").write_bytes(b"\xef\xbb\xbf" + (folder / "AAA.csv").read_bytes())
    return Fault(0)


def _extra_column(long_line: bool) -> Callable[[Path], Fault]:
    def apply(folder: Path) -> Fault:
        lines = _lines(folder / "AAA.csv")
        lines = [lines[0] + b",note"] + [line + b"," for line in lines[1:]]
        if long_line:
            lines[LINE - 1] += b"x" * 3_500_000
        _write(folder / "AAA.csv", lines)
        return Fault(0)

    return apply


def _truncated_gzip(folder: Path) -> Fault:
    data = (folder / "AAA_trades.csv").read_bytes()
    (folder / "AAA_trades.csv").unlink()
    packed = gzip.compress(data, mtime=0)
    (folder / "AAA_trades.csv.gz").write_bytes(packed[: len(packed) * 6 // 10])
    readable = zlib.decompressobj(wbits=47).decompress(packed[: len(packed) * 6 // 10])
    complete = readable.count(b"\n")  # lines 1..complete survive whole
    total = data.count(b"\n")
    return Fault(1, {"AAA_trades.csv": set(range(complete + 1, total + 1))})


def _extra_file(name: str, content: bytes | None, rejected: int) -> Callable[[Path], Fault]:
    def apply(folder: Path) -> Fault:
        (folder / name).write_bytes(content or b"")
        return Fault(rejected)

    return apply


def _link(name: str, target: str) -> Callable[[Path], Fault]:
    def apply(folder: Path) -> Fault:
        os.symlink(target, folder / name)
        return Fault(1)

    return apply


def _fifo(folder: Path) -> Fault:
    os.mkfifo(folder / "pipe.csv")
    return Fault(1)


def _folder_named_csv(folder: Path) -> Fault:
    (folder / "odd.csv").mkdir()  # a folder is walked, not read as a file: nothing to report
    return Fault(0)


def _unknown_symbol(folder: Path) -> Fault:
    lines = _lines(folder / "AAA.csv")
    lines[LINE - 1] = lines[LINE - 1].replace(b"AAA", b"ZZZ", 1)
    _write(folder / "AAA.csv", lines)
    return Fault(0, {"AAA.csv": {LINE}})


def _cross_file_duplicate(folder: Path) -> Fault:
    lines = _lines(folder / "BBB.csv")
    _write(folder / "zz_more.csv", [lines[0], lines[LINE - 1]])
    return Fault(1)


def _parquet(bad: Callable[[pa.Table], pa.Table]) -> Callable[[Path], Fault]:
    """BBB's bars as Parquet, with `bad` applied (to row LINE - 1, 0-based data row)."""

    def apply(folder: Path) -> Fault:
        table = pacsv.read_csv(folder / "BBB.csv")
        (folder / "BBB.csv").unlink()
        pq.write_table(bad(table), folder / "BBB.parquet", row_group_size=100)
        return Fault(1, {"BBB.csv": {LINE}})

    return apply


def _parquet_value(column: str, value: object, kind: pa.DataType | None = None):
    def bad(table: pa.Table) -> pa.Table:
        values = table.column(column).to_pylist()
        values[LINE - 2] = value
        at = table.schema.get_field_index(column)
        return table.set_column(at, column, pa.array(values, kind or table.schema.field(at).type))

    return bad


def _string_price(table: pa.Table) -> pa.Table:
    at = table.schema.get_field_index("open")
    values = [str(v) for v in table.column("open").to_pylist()]
    values[LINE - 2] = "abc"
    return table.set_column(at, "open", pa.array(values))


def _renamed(name: str, new: str, pack: bool) -> Callable[[Path], Fault]:
    """`name` under a `new` name, gzip-compressed or not whatever the name says."""

    def apply(folder: Path) -> Fault:
        data = (folder / name).read_bytes()
        (folder / name).unlink()
        (folder / new).write_bytes(gzip.compress(data, mtime=0) if pack else data)
        return Fault(0)

    return apply


def _duplicate_column(folder: Path) -> Fault:
    lines = _lines(folder / "AAA_quotes.csv")
    _write(folder / "AAA_quotes.csv", [lines[0] + b",bid", *(line + b",1" for line in lines[1:])])
    return Fault(1, gone={"AAA_quotes.csv"})


def _same_trades_twice(folder: Path) -> Fault:
    (folder / "AAA_trades_copy.csv").write_bytes((folder / "AAA_trades.csv").read_bytes())
    return Fault(0, copies={"AAA_trades_copy.csv": "AAA_trades.csv"})


def _symbol_as(spelling: bytes) -> Callable[[Path], Fault]:
    def apply(folder: Path) -> Fault:
        lines = _lines(folder / "AAA.csv")
        lines[LINE - 1] = lines[LINE - 1].replace(b"AAA", spelling, 1)
        _write(folder / "AAA.csv", lines)
        return Fault(0, {"AAA.csv": {LINE}})

    return apply


def _latin1_note(folder: Path) -> Fault:
    lines = _lines(folder / "AAA.csv")
    _write(folder / "AAA.csv", [lines[0] + b",note", *(line + b",caf\xe9" for line in lines[1:])])
    return Fault(0)


def _missing_column(folder: Path) -> Fault:
    lines = _lines(folder / "BBB.csv")
    _write(folder / "less.csv", [b",".join(line.split(b",")[:-1]) for line in lines[:20]])
    return Fault(1)


BAR = "AAA.csv"
FAULTS: dict[str, Callable[[Path], Fault]] = {
    "nan price": _row_fault(BAR, _set(5, b"NaN")),
    "non-positive price": _row_fault(
        BAR, lambda f: b",".join([*f[:2], b"0", b"0", b"0", b"0", f[6]])
    ),
    "high below low": _row_fault(
        BAR, lambda f: b",".join([f[0], f[1], f[2], f[4], f[3], f[5], f[6]])
    ),
    "high below body": _row_fault(
        BAR, lambda f: b",".join([*f[:3], f[4], f[4], b"%.2f" % (float(f[3]) + 1), f[6]])
    ),
    "low above body": _row_fault(
        BAR, lambda f: b",".join([*f[:4], f[3], b"%.2f" % (float(f[4]) - 1), f[6]])
    ),
    "negative volume": _row_fault(BAR, _set(6, b"-100")),
    "nan volume": _row_fault(BAR, _set(6, b"")),
    "unparseable price": _row_fault(BAR, _set(2, b"abc")),
    "infinite price": _row_fault(BAR, _set(3, b"inf")),
    "missing symbol": _row_fault(BAR, _set(0, b"")),
    "off grid": _row_fault(BAR, _stamp(lambda t: t[:17] + b"30" + t[19:])),
    "naive timestamp": _row_fault(BAR, _stamp(lambda t: t[:19])),
    "offset beyond a day": _row_fault(BAR, _stamp(lambda t: t[:19] + b"-85:00")),
    "unparseable timestamp": _row_fault(BAR, _stamp(lambda t: b"yesterday")),
    "impossible date": _row_fault(BAR, _stamp(lambda t: b"2024-02-30" + t[10:])),
    "seconds not ns": _row_fault(BAR, _stamp(lambda t: b"1709649000")),
    "year 2300": _row_fault(BAR, _stamp(lambda t: b"2300" + t[4:])),
    "year 9999": _row_fault(BAR, _stamp(lambda t: b"9999" + t[4:])),
    "year 0001": _row_fault(BAR, _stamp(lambda t: b"0001" + t[4:])),
    "integer beyond int64": _row_fault(BAR, _stamp(lambda t: b"9999999999999999999")),
    "invalid UTF-8 in symbol": _row_fault(BAR, _set(0, b"AA\xff")),
    "invalid UTF-8 in price": _row_fault(BAR, _set(5, b"1\xff2")),
    "unclosed quote": _row_fault(BAR, _set(2, b'"182.5')),
    "too many fields": _row_fault(BAR, lambda f: b",".join([*f, b"x"])),
    "too few fields": _row_fault(BAR, lambda f: b",".join(f[:-1])),
    "duplicate": _copy_line(1),
    "out of order": _copy_line(5),
    "quote size without price": _row_fault(
        "AAA_quotes.csv", lambda f: b",".join([f[0], f[1], b"0", b"500", *f[4:]])
    ),
    "negative quote size": _row_fault("AAA_quotes.csv", _set(3, b"-5")),
    "negative trade size": _row_fault("AAA_trades.csv", _set(3, b"-5")),
    "trade price zero": _row_fault("AAA_trades.csv", _set(2, b"0")),
    "unknown symbol row": _unknown_symbol,
    "CR line ends": _endings(b"\r"),
    "CRLF line ends": _endings(b"\r\n"),
    "blank lines": _blank_lines,
    "BOM": _bom,
    "extra column": _extra_column(False),
    "3 MB line": _extra_column(True),
    "truncated gzip": _truncated_gzip,
    "not gzip": _extra_file("junk.csv.gz", b"this is not gzip", 1),
    "empty file": _extra_file("empty.csv", None, 1),
    "header only": _extra_file("header.csv", b"symbol,timestamp,price,size\n", 0),
    "missing column": _missing_column,
    "dangling link": _link("gone.csv", "nowhere.csv"),
    "link loop": _link("loop.csv", "loop.csv"),
    "folder loop": _link("again", "."),
    "FIFO named .csv": _fifo,
    "folder named .csv": _folder_named_csv,
    "cross-file duplicate": _cross_file_duplicate,
    "Parquet high below low": _parquet(_parquet_value("high", 1.0)),
    "Parquet null volume": _parquet(_parquet_value("volume", None)),
    "Parquet string price": _parquet(_string_price),
}

# Issue 15, point 8: each odd input with its decision and the reason for it.
DECISIONS: dict[str, tuple[str, str]] = {
    "plain text named .csv.gz": ("accept", "a file is read as what its bytes are, not its name"),
    "gzip named .csv": ("accept", "a file is read as what its bytes are, not its name"),
    "duplicate column name": ("reject file", "which of the two columns is meant cannot be known"),
    "price 1e300": ("reject row", "no instrument trades there; sums overflow to inf"),
    "price 1e-300": ("reject row", "below any tick size; ratios lose all precision"),
    "volume 1e30": ("reject row", "more than every share ever issued; sums lose precision"),
    "fractional volume": ("accept", "real in crypto, FX and some consolidated feeds"),
    "trade size 0": ("accept", "real: venues print zero-size reports (e.g. corrections)"),
    "crossed quote": ("accept", "real: quotes of different venues cross for moments"),
    "quote side price and size 0": ("accept", "an absent side (a one-sided quote)"),
    "same trades in two files": ("accept", "identical prints at one time are real in tick data"),
    "lowercase symbol": ("accept", "symbols are case-sensitive names: another instrument"),
    "look-alike symbol": ("accept", "another instrument; ticktape does not guess identities"),
    "Latin-1 in an unused column": ("accept", "a column no kind reads is never decoded"),
}
_QUOTES, _TRADES = "AAA_quotes.csv", "AAA_trades.csv"
FAULTS.update(
    {
        "plain text named .csv.gz": _renamed(_TRADES, _TRADES + ".gz", pack=False),
        "gzip named .csv": _renamed(_TRADES, _TRADES, pack=True),
        "duplicate column name": _duplicate_column,
        "price 1e300": _row_fault(BAR, _set(3, b"1e300")),
        "price 1e-300": _row_fault(
            BAR, lambda f: b",".join([*f[:2], b"1e-300", b"1e-300", b"1e-300", b"1e-300", f[6]])
        ),
        "volume 1e30": _row_fault(BAR, _set(6, b"1e30")),
        "fractional volume": _row_fault(BAR, _set(6, b"12.5"), rejected=0),
        "trade size 0": _row_fault(_TRADES, _set(3, b"0"), rejected=0),
        "crossed quote": _row_fault(
            _QUOTES, lambda f: b",".join([f[0], f[1], b"300.0", b"100", b"299.0", b"100"]), 0
        ),
        "quote side price and size 0": _row_fault(
            _QUOTES, lambda f: b",".join([f[0], f[1], b"0", b"0", b"299.0", b"100"]), 0
        ),
        "same trades in two files": _same_trades_twice,
        "lowercase symbol": _symbol_as(b"aaa"),
        "look-alike symbol": _symbol_as("ААА".encode()),  # Cyrillic capital A, three times
        "Latin-1 in an unused column": _latin1_note,
    }
)


def _ns(text: str) -> int:
    stamp = dt.datetime.fromisoformat(text)
    return (stamp - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1) * 1000


def good_rows(original: Path, fault: Fault) -> dict[str, list[tuple[str, int]]]:
    """(symbol, time) of every row that must be released, by event kind, from the clean files."""
    rows: dict[str, list[tuple[str, int]]] = {"Bar": [], "Trade": [], "Quote": []}
    for name, kind in KINDS.items():
        if name in fault.gone:
            continue
        text = (original / name).read_text()
        copies = 1 + sum(1 for original in fault.copies.values() if original == name)
        for line, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
            if line not in fault.lost.get(name, set()):
                rows[kind].extend([(row["symbol"], _ns(row["timestamp"]))] * copies)
    return {kind: sorted(found) for kind, found in rows.items()}
