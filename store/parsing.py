"""Text and typed columns to numbers: which kind a header is, and each row's time and values.

Every function here works on whole columns (pyarrow compute, numpy) and gives a per-row status,
so one bad value costs only its row. pyarrow's own parse errors never reach a rejection.

`ReadAs` is how one source's files are read when they are not in the project's own terms: a
column map from the project's names to the file's header (`timestamp=Date,close=Last`), and the
time zone of timestamps that carry none (by default such a timestamp is rejected, DESIGN §8),
and, for vendors that write one file per symbol, the symbol of a file without a symbol column
taken from its name.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ticktape.messages import rejections as why
from ticktape.messages.errors import TicktapeError
from ticktape.store.reading import DATA_SUFFIXES, Lines

KEY_COLUMNS = ("symbol", "timestamp")
KIND_COLUMNS: dict[str, tuple[str, ...]] = {
    "bars": ("open", "high", "low", "close", "volume"),
    "trades": ("price", "size"),
    "quotes": ("bid", "bid_size", "ask", "ask_size"),
}

COLUMNS = (*KEY_COLUMNS, *dict.fromkeys(c for cs in KIND_COLUMNS.values() for c in cs))
TS_OK, TS_UNPARSEABLE, TS_NAIVE, TS_NOT_NS, TS_OUT_OF_RANGE = 0, 1, 2, 3, 4
TS_AMBIGUOUS, TS_NONEXISTENT = 5, 6
TS_REASONS = {
    TS_UNPARSEABLE: why.UNPARSEABLE_TIMESTAMP,
    TS_NAIVE: why.NAIVE_TIMESTAMP,
    TS_NOT_NS: why.NOT_NS_TIMESTAMP,
    TS_OUT_OF_RANGE: why.TIMESTAMP_OUT_OF_RANGE,
    TS_AMBIGUOUS: why.AMBIGUOUS_LOCAL_TIME,
    TS_NONEXISTENT: why.NONEXISTENT_LOCAL_TIME,
}
_EARLIEST_NS = 10**17  # 1973-03-03: an integer below this is seconds or millis, not ns
_NS_PER_S = 10**9
_MAX_S = (2**63 - 1) // _NS_PER_S - 1  # whole seconds that still fit int64 ns (to 2262)
_ISO = (
    r"^(?P<wall>\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?)?)"
    r"(?:\.(?P<frac>\d{1,9}))?(?P<zone>[Zz]|[+-](?:[01]\d|2[0-3])(?::?[0-5]\d)?)?$"
)
_NAIVE_ISO = r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)?$"
_INTEGER = r"^[+-]?\d{1,19}$"
_NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
_MISSING_NUMBER = r"^(|[+-]?nan|na|n/a|null|none)$"  # lower-cased; read as NaN


class DataConfigError(TicktapeError, ValueError):
    """A bad data config; str(e) is one clear sentence naming the problem, shown as-is."""


@dataclass(frozen=True, slots=True)
class ReadAs:
    """How a source's files are read: `columns` maps the project's column names to the file's
    header names (matched as the header is: trimmed, any case); `tz` is the IANA zone in which
    timestamps without an offset are read (None: they are rejected); `symbol_from_file`: a file
    with no symbol column is one symbol's, named by the file (a symbol column, if any, wins)."""

    columns: Mapping[str, str] = field(default_factory=dict)
    tz: str | None = None
    symbol_from_file: bool = False

    def __post_init__(self) -> None:
        unknown = [name for name in self.columns if name not in COLUMNS]
        if unknown:
            raise DataConfigError(
                f"column map: {unknown[0]!r} is not a column of ticktape's "
                f"(one of {', '.join(COLUMNS)})"
            )
        header = [h.strip().lower() for h in self.columns.values()]
        if not all(header):
            raise DataConfigError("column map: a header name is blank")
        if len(set(header)) < len(header):
            raise DataConfigError("column map: one header name is given for two columns")
        if self.tz is not None:
            zone(self.tz)

    @property
    def given(self) -> bool:
        return bool(self.columns) or self.tz is not None or self.symbol_from_file

    def header(self, fields: Sequence[str]) -> tuple[str, ...]:
        """The header in the project's names: mapped fields renamed, and a field that already
        bears a mapped-to name hidden (the map says which column that is)."""
        if not self.columns:
            return tuple(fields)
        renamed = {h.strip().lower(): name for name, h in self.columns.items()}
        return tuple(
            renamed.get(f.strip().lower(), "" if f.strip().lower() in self.columns else f)
            for f in fields
        )

    def file_symbol(self, name: str, header: Sequence[str]) -> str | None:
        """The symbol of every row of file `name` (a relative path) whose `header` (in the
        project's names) has no symbol column; None when its rows name their own."""
        if not self.symbol_from_file or "symbol" in (f.strip().lower() for f in header):
            return None
        base = name.rpartition("/")[2]
        suffix = next(s for s in DATA_SUFFIXES if base.lower().endswith(s))
        return base[: -len(suffix)].strip().upper()

    @classmethod
    def of(cls, entry: Mapping[str, Any]) -> ReadAs:
        """How a catalog's manifest says a file was read (the defaults for older entries)."""
        columns, tz = dict(entry.get("columns", {})), entry.get("tz")
        return cls(columns, tz, entry.get("symbol_from_file", False))

    def to_dict(self) -> dict[str, object]:
        return {
            "columns": dict(sorted(self.columns.items())),
            "tz": self.tz,
            "symbol_from_file": self.symbol_from_file,
        }


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        message = f"unknown time zone {name!r} (an IANA name, e.g. America/New_York)"
        raise DataConfigError(message) from None


def classify(header: tuple[str, ...]) -> tuple[str, dict[str, int]] | str:
    """The kind whose columns the header has (extra columns are fine) and where each column is,
    else the reason: what the closest kind (the one with most of its own fields) lacks."""
    at: dict[str, int] = {}
    twice: list[str] = []
    for i, raw in enumerate(header):
        name = raw.strip().lower()
        if name in at:
            twice.append(name)
        at.setdefault(name, i)
    missing = {
        kind: [c for c in (*KEY_COLUMNS, *fields) if c not in at]
        for kind, fields in KIND_COLUMNS.items()
    }
    for kind, gaps in missing.items():
        if not gaps:
            used = (*KEY_COLUMNS, *KIND_COLUMNS[kind])
            ambiguous = [name for name in twice if name in used]
            if ambiguous:
                return why.duplicate_column(ambiguous[0])
            return kind, {c: at[c] for c in used}
    closest = min(
        missing,
        key=lambda kind: (len(missing[kind]) - len(KIND_COLUMNS[kind]), len(missing[kind])),
    )
    return why.missing_columns(missing[closest], closest)


def csv_rows(lines: Lines, width: int, at: dict[str, int]) -> tuple[pa.Table, np.ndarray]:
    """The canonical columns of the good lines, and each row's line number.

    The common case, every number well formed, is converted by pyarrow directly to float64; a
    block with any other value is read as text, for row-by-row verdicts.
    Both read the same values the same way. Every line has already been checked for its field
    count and quotes, so pyarrow skips none; if it ever did, that line is dropped here rather
    than shifting the line numbers.
    """
    if not lines.good:
        empty = pa.table({name: pa.nulls(0, pa.string()) for name in at})
        return empty, lines.good_lines
    typed = {name: pa.string() if name in KEY_COLUMNS else _FLOAT for name in at}
    try:
        table, skipped = _read_csv(lines, width, at, typed, _TYPED_MISSING)
    except pa.ArrowInvalid:
        table, skipped = _read_csv(lines, width, at, dict.fromkeys(at, pa.string()), [])
    line = lines.good_lines
    if skipped:
        keep = np.ones(len(line), dtype=bool)
        keep[np.array(skipped) - 1] = False
        line = line[keep]
    return table, line


_FLOAT = pa.float64()
_TYPED_MISSING = ["", "nan", "NaN", "NAN", "null", "NULL", "none", "None", "na", "NA", "n/a"]


def _read_csv(
    lines: Lines,
    width: int,
    at: dict[str, int],
    types: dict[str, pa.DataType],
    missing: list[str],
) -> tuple[pa.Table, list[int]]:
    skipped: list[int] = []

    def skip(row: pacsv.InvalidRow) -> str:
        skipped.append(row.number)
        return "skip"

    wanted = [f"c{i}" for i in at.values()]
    table = pacsv.read_csv(
        pa.py_buffer(lines.good),
        read_options=pacsv.ReadOptions(
            column_names=[f"c{i}" for i in range(width)],
            block_size=max(1 << 20, 2 * lines.longest + 2),
            use_threads=False,
        ),
        parse_options=pacsv.ParseOptions(invalid_row_handler=skip),
        convert_options=pacsv.ConvertOptions(
            include_columns=wanted,
            column_types={f"c{i}": types[name] for name, i in at.items()},
            null_values=missing,
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    return table.rename_columns(list(at)), skipped


_NUMPY_TYPES = {
    pa.int8(): np.int8,
    pa.uint8(): np.uint8,
    pa.int32(): np.int32,
    pa.int64(): np.int64,
    pa.float64(): np.float64,
}


def to_numpy(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A numeric or boolean column as numpy, viewed from its buffer when it has no nulls.

    pyarrow's own `to_numpy` goes through its pandas conversion, which imports pandas (about a
    third of a second) the first time; reading a clean file needs none of it.
    """
    if isinstance(column, pa.ChunkedArray):
        chunks = column.chunks or [pa.nulls(0, column.type)]  # (pa.array imports pandas)
        column = chunks[0] if len(chunks) == 1 else pa.concat_arrays(chunks)
    if pa.types.is_boolean(column.type):
        return to_numpy(pc.cast(column, pa.uint8())).view(np.bool_)
    dtype = _NUMPY_TYPES.get(column.type)
    if dtype is None or column.null_count:
        return column.to_numpy(zero_copy_only=False)
    if not len(column):
        return np.empty(0, dtype=dtype)
    size = np.dtype(dtype).itemsize
    return np.frombuffer(
        column.buffers()[1], dtype=dtype, count=len(column), offset=column.offset * size
    )


def strings(values: Sequence[str]) -> pa.Array:
    """A string array built from its buffers: `pa.array` imports pandas the first time (about
    50 MB and a quarter of a second), and a run from a catalog needs nothing else of it."""
    data = [v.encode("utf-8") for v in values]
    offsets = np.zeros(len(data) + 1, dtype=np.int32)
    np.cumsum([len(d) for d in data], out=offsets[1:])
    return pa.StringArray.from_buffers(
        len(data), pa.py_buffer(offsets.tobytes()), pa.py_buffer(b"".join(data))
    )


def mask(values: np.ndarray) -> pa.Array:
    """A boolean array built from its bits, for `filter`, like `strings` (no `pa.array`)."""
    bits = np.packbits(np.asarray(values, dtype=bool), bitorder="little")
    return pa.BooleanArray.from_buffers(pa.bool_(), len(values), [None, pa.py_buffer(bits)])


def plain(column: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """Dictionary-encoded Parquet columns read as their values."""
    if pa.types.is_dictionary(column.type):
        return pc.cast(column, column.type.value_type)
    return column


def _is_text(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def symbol_text(column: pa.ChunkedArray) -> pa.ChunkedArray:
    return pc.utf8_trim_whitespace(_filled(pc.cast(plain(column), pa.string())))


def repeated(text: str, rows: int) -> pa.DictionaryArray:
    """`text` on every row as one dictionary value (the symbol column of a file of one symbol)."""
    zeros = pa.py_buffer(np.zeros(rows, dtype=np.int32))
    indices = pa.Array.from_buffers(pa.int32(), rows, [None, zeros])
    return pa.DictionaryArray.from_arrays(indices, strings([text]))


def symbol_codes(column: pa.ChunkedArray) -> tuple[list[str], np.ndarray]:
    """The distinct symbols (trimmed, in order of first appearance) and each row's index into
    them. A block usually holds one symbol, which needs no hashing."""
    if pa.types.is_dictionary(column.type):
        chunks = column.chunks
        one = len(chunks) == 1 and len(chunks[0].dictionary) == 1
        if one and len(column) and not column.null_count:
            return symbol_text(chunks[0].dictionary).to_pylist(), np.zeros(len(column), np.int32)
        return _dictionary_codes(column)
    if len(column) and not column.null_count and _is_text(column.type):
        first = column.slice(0, 1)
        if pc.all(pc.equal(column, first[0])).as_py():
            return symbol_text(first).to_pylist(), np.zeros(len(column), dtype=np.int32)
    encoded = pc.dictionary_encode(symbol_text(column)).combine_chunks()
    codes = to_numpy(encoded.indices).astype(np.int32)
    return encoded.dictionary.to_pylist(), codes


def _dictionary_codes(column: pa.ChunkedArray) -> tuple[list[str], np.ndarray]:
    """`symbol_codes` of a dictionary column, trimming per distinct value, not per row.

    Every chunk's dictionary goes into one pool (with a "" for missing rows); rows become
    positions in the pool, then the distinct trimmed text of their position, numbered in order
    of first appearance as for a text column."""
    chunks = column.chunks
    pool = pa.concat_arrays([c.dictionary.cast(pa.string()) for c in chunks] + [strings([""])])
    distinct = pc.dictionary_encode(symbol_text(pool))
    of_pool = to_numpy(distinct.indices)
    rows, offset = [], 0
    for chunk in chunks:
        wide = pc.cast(chunk.indices, pa.int64())  # values under nulls are overwritten below
        indices = np.frombuffer(wide.buffers()[1], np.int64, len(wide), wide.offset * 8) + offset
        if chunk.null_count:
            indices[~to_numpy(pc.is_valid(chunk))] = len(pool) - 1
        rows.append(of_pool[indices])
        offset += len(chunk.dictionary)
    row = np.concatenate(rows) if rows else np.empty(0, dtype=of_pool.dtype)
    first = pc.dictionary_encode(
        pa.Array.from_buffers(pa.int32(), len(row), [None, pa.py_buffer(row.astype(np.int32))])
    )
    names = distinct.dictionary.take(first.dictionary).to_pylist()
    return names, to_numpy(first.indices).astype(np.int32)


def _filled(text: pa.ChunkedArray) -> pa.ChunkedArray:
    """Missing text as "" (CSV text columns have no nulls: nothing to do)."""
    return pc.fill_null(text, "") if text.null_count else text


def timestamps(column: pa.ChunkedArray, tz: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """ns UTC of each row, and its status (TS_OK, or why it has no usable time). A timestamp
    without an offset is read in zone `tz`, or rejected when there is none."""
    column = plain(column)
    rows = len(column)
    ts = np.zeros(rows, dtype=np.int64)
    status = np.full(rows, TS_UNPARSEABLE, dtype=np.int8)
    valid = to_numpy(pc.is_valid(column))
    kind = column.type
    if pa.types.is_timestamp(kind):
        per_second = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}[kind.unit]
        raw = to_numpy(pc.fill_null(column.cast(pa.int64()), 0))
        seconds, nanos = raw // per_second, raw % per_second * (10**9 // per_second)
        if kind.tz is not None:
            _set_ns(ts, status, valid, seconds, nanos)
        elif tz is None:
            status[valid] = TS_NAIVE
        else:
            _set_local(ts, status, valid, seconds, nanos, tz)
    elif pa.types.is_integer(kind):
        ts[:] = to_numpy(pc.fill_null(pc.cast(column, pa.int64()), 0))
        status[valid] = TS_OK
    elif _is_text(kind):
        text = pc.utf8_trim_whitespace(_filled(column))
        if tz is not None and _local_times(text, ts, status, tz):  # local times, as was said
            pass
        else:
            try:  # the common case: every row is ISO-8601 with an offset
                as_utc = pc.cast(text, pa.timestamp("ns", tz="UTC"))
                ts[:] = to_numpy(pc.cast(as_utc, pa.int64()))
                status[:] = TS_OK
            except pa.ArrowInvalid:
                _text_timestamps(text, ts, status, tz)
    status[(status == TS_OK) & (ts < _EARLIEST_NS)] = TS_NOT_NS
    return ts, status


def _local_times(text: pa.ChunkedArray, ts: np.ndarray, status: np.ndarray, tz: str) -> bool:
    """A block of local times, every row ISO-8601 without an offset, read in one cast (the
    row-by-row reading gives the same values, some thirty times slower); False if some row is
    of another form."""
    for rows in (text.slice(0, 1), text):  # the first row tells most files apart
        if not pc.all(pc.match_substring_regex(rows, _NAIVE_ISO)).as_py():
            return False
    try:
        wall = to_numpy(pc.cast(pc.cast(text, pa.timestamp("ns")), pa.int64()))
    except pa.ArrowInvalid:  # e.g. February 30th
        return False
    _set_local(ts, status, np.ones(len(ts), dtype=bool), wall // _NS_PER_S, wall % _NS_PER_S, tz)
    return True


def _text_timestamps(
    text: pa.ChunkedArray, ts: np.ndarray, status: np.ndarray, tz: str | None
) -> None:
    """ISO-8601 with an offset (or without, given `tz`), or integer ns; rows of any other form
    keep TS_UNPARSEABLE."""
    integer = to_numpy(pc.match_substring_regex(text, _INTEGER))
    if integer.any():
        where = np.flatnonzero(integer)
        try:
            ts[where] = to_numpy(pc.cast(text.filter(integer), pa.int64()))
            status[where] = TS_OK
        except pa.ArrowInvalid:  # some have 19 digits beyond int64: sort them out one by one
            values = [int(d) for d in text.filter(integer).to_pylist()]
            fits = np.array([-(2**63) <= v < 2**63 for v in values], dtype=bool)
            ts[where[fits]] = [v for v, f in zip(values, fits, strict=True) if f]
            status[where] = np.where(fits, TS_OK, TS_OUT_OF_RANGE)
    parts = pc.extract_regex(text, _ISO)
    iso = to_numpy(pc.is_valid(parts))
    if not iso.any():
        return
    where = np.flatnonzero(iso)
    parts = parts.filter(iso)
    wall = pc.struct_field(parts, "wall")
    zone = pc.struct_field(parts, "zone").to_numpy(zero_copy_only=False)
    naive = zone == ""
    status[where[naive]] = TS_NAIVE
    seconds = _wall_seconds(wall)
    frac = pc.utf8_rpad(pc.struct_field(parts, "frac"), 9, "0")
    nanos = to_numpy(pc.cast(pc.if_else(pc.equal(frac, "000000000"), "0", frac), pa.int64()))
    offset = _offset_seconds(zone)
    real = seconds != np.iinfo(np.int64).min
    zoned = ~naive & real
    _set_ns(
        ts,
        status,
        np.isin(np.arange(len(ts)), where[zoned]),
        _scatter(len(ts), where, seconds - offset),
        _scatter(len(ts), where, nanos),
    )
    if tz is not None and (naive & real).any():
        _set_local(
            ts,
            status,
            np.isin(np.arange(len(ts)), where[naive & real]),
            _scatter(len(ts), where, seconds),
            _scatter(len(ts), where, nanos),
            tz,
        )


def _scatter(rows: int, where: np.ndarray, values: np.ndarray) -> np.ndarray:
    out = np.zeros(rows, dtype=np.int64)
    out[where] = values
    return out


def _wall_seconds(wall: pa.Array) -> np.ndarray:
    """Seconds since the epoch of `YYYY-MM-DD[THH:MM[:SS]]` read as UTC; int64 min if invalid."""
    text = pc.cast(pc.replace_substring(wall, " ", "T"), pa.string())  # large_string in Parquet
    length = pc.utf8_length(text)
    padded = pc.if_else(
        pc.equal(length, 10),
        pc.binary_join_element_wise(text, "T00:00:00", ""),
        pc.if_else(pc.equal(length, 16), pc.binary_join_element_wise(text, ":00", ""), text),
    )
    form = "%Y-%m-%dT%H:%M:%S"
    parsed = pc.strptime(padded, format=form, unit="s", error_is_null=True)
    real = pc.equal(pc.strftime(parsed, format=form), padded)  # strptime takes 02-30 as 03-01
    seconds = pc.if_else(real, pc.cast(parsed, pa.int64()), None)
    return to_numpy(pc.fill_null(seconds, np.iinfo(np.int64).min))


def _offset_seconds(zone: np.ndarray) -> np.ndarray:
    """`Z`, `+HH`, `+HHMM` or `+HH:MM` to seconds east of UTC (0 for none); few distinct zones."""
    distinct, which = np.unique(zone.astype(str), return_inverse=True)
    seconds = np.zeros(len(distinct), dtype=np.int64)
    for i, text in enumerate(distinct):
        digits = text.replace(":", "")
        if len(digits) > 1:
            sign = -1 if digits[0] == "-" else 1
            seconds[i] = sign * (int(digits[1:3]) * 3600 + int(digits[3:5] or 0) * 60)
    return seconds[which]


def _set_ns(
    ts: np.ndarray, status: np.ndarray, valid: np.ndarray, seconds: np.ndarray, nanos: np.ndarray
) -> None:
    """ns = seconds * 1e9 + nanos where that fits int64; out of range otherwise."""
    fits = valid & (np.abs(seconds) <= _MAX_S)
    ts[fits] = seconds[fits] * _NS_PER_S + nanos[fits]
    status[fits] = TS_OK
    status[valid & ~fits] = TS_OUT_OF_RANGE


def _set_local(
    ts: np.ndarray,
    status: np.ndarray,
    valid: np.ndarray,
    wall: np.ndarray,
    nanos: np.ndarray,
    tz: str,
) -> None:
    """`_set_ns` of wall-clock seconds in zone `tz`. A wall time that a DST change skips, or
    passes twice, names no instant: its row is rejected, never guessed."""
    rows = np.flatnonzero(valid & (np.abs(wall) <= _MAX_S))
    if not len(rows):
        _set_ns(ts, status, valid, wall, nanos)  # out of range, all of them
        return
    local = wall[rows]
    starts, offsets = _offsets(tz, int(local.min()), int(local.max()))
    fits = np.zeros(len(rows), dtype=np.int64)  # offsets under which the wall time is real
    chosen = np.zeros(len(rows), dtype=np.int64)
    for offset in np.unique(offsets).tolist():  # a zone has few: e.g. -5 h and -4 h
        at = offsets[np.searchsorted(starts, local - offset, side="right") - 1]
        real = at == offset
        fits += real
        chosen[real] = offset
    utc = wall.copy()
    utc[rows] = local - chosen
    _set_ns(ts, status, valid, utc, nanos)
    status[rows[fits == 0]] = TS_NONEXISTENT
    status[rows[fits > 1]] = TS_AMBIGUOUS


def _offsets(tz: str, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    """The zone's UTC offsets (s) over wall seconds lo..hi: from `starts[i]` (s UTC) on, the
    offset is `offsets[i]`; the first start lies before lo."""
    first, last = (dt.datetime.fromtimestamp(t, dt.UTC).year for t in (lo - 86_400, hi + 86_400))
    years = [_year_offsets(tz, year) for year in range(first, last + 1)]
    return np.concatenate([y[0] for y in years]), np.concatenate([y[1] for y in years])


@functools.lru_cache(maxsize=256)
def _year_offsets(tz: str, year: int) -> tuple[np.ndarray, np.ndarray]:
    """The offsets of zone `tz` through one year (UTC): its start, then each change, found to
    the second by bisecting the day it happens in."""
    where = ZoneInfo(tz)

    def offset(t: int) -> int:
        return int(dt.datetime.fromtimestamp(t, where).utcoffset().total_seconds())  # type: ignore[union-attr]

    start = int(dt.datetime(year, 1, 1, tzinfo=dt.UTC).timestamp())
    end = int(dt.datetime(year + 1, 1, 1, tzinfo=dt.UTC).timestamp())
    starts, offsets = [start], [offset(start)]
    for day in range(start + 86_400, end + 1, 86_400):
        if offset(day) != offsets[-1]:
            before, after = day - 86_400, day
            while after - before > 1:
                middle = (before + after) // 2
                before, after = (
                    (middle, after) if offset(middle) == offsets[-1] else (before, middle)
                )
            starts.append(after)
            offsets.append(offset(after))
    return np.array(starts, dtype=np.int64), np.array(offsets, dtype=np.int64)


def numbers(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """float64 values (missing is NaN), and which rows held something that is not a number.

    Infinity is not a price or a size either, so it counts as unparseable.
    """
    column = plain(column)
    kind = column.type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        values = pc.cast(column, pa.float64())
        if values.null_count:
            values = pc.fill_null(values, np.nan)
        values = to_numpy(values)
        return values, np.isinf(values)
    if not _is_text(kind):
        return np.full(len(column), np.nan), np.ones(len(column), dtype=bool)
    text = pc.utf8_trim_whitespace(_filled(column))
    try:  # the common case: every row is a number
        values = to_numpy(pc.cast(text, pa.float64()))
        return values, np.isinf(values)
    except pa.ArrowInvalid:
        pass
    values = np.full(len(text), np.nan)
    number = to_numpy(pc.match_substring_regex(text, _NUMBER))
    if number.any():
        values[number] = to_numpy(pc.cast(text.filter(number), pa.float64()))
    missing = pc.match_substring_regex(pc.utf8_lower(text), _MISSING_NUMBER)
    garbage = ~number & ~to_numpy(missing)
    return values, garbage | np.isinf(values)
