"""The market-data repository: CSV and Parquet files in, validated session columns out.

The folder is scanned once, at construction, for digests, kinds, symbols and time ranges, so a bad
config fails with one sentence before anything runs (DESIGN §8). `load_session` then parses only
the files whose time range overlaps the session, and keeps each one cached while later sessions
still need it. Every bad row becomes one `DataRejected` and stays out of the columns.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import threading
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TypeVar

import msgspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from messages.columns import BarColumns, QuoteColumns, SessionInput, TradeColumns
from messages.events import DataRejected
from messages.session import NS_PER_MINUTE, Session

LABELS = ("start", "end")
KEY_COLUMNS = ("symbol", "timestamp")
KIND_COLUMNS: dict[str, tuple[str, ...]] = {
    "bars": ("open", "high", "low", "close", "volume"),
    "trades": ("price", "size"),
    "quotes": ("bid", "bid_size", "ask", "ask_size"),
}

_ROW_BITS = 32
_ROW_MASK = (1 << _ROW_BITS) - 1

_TS_OK, _TS_UNPARSEABLE, _TS_NAIVE, _TS_NOT_NS = 0, 1, 2, 3
_EARLIEST_NS = 10**17  # 1973-03-03: an integer below this is seconds or millis, not ns
_ISO_ZONED = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}(:?\d{2})?)$"
_ISO_NAIVE = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?$"
_INTEGER_NS = r"^-?(\d{1,18}|[1-8]\d{18})$"  # stays inside int64
_MISSING_NUMBER = pa.array(["", "nan", "na", "n/a", "null", "none"])

_C = TypeVar("_C", BarColumns, TradeColumns, QuoteColumns)

_READ_ERRORS = (OSError, ValueError, EOFError, csv.Error, zlib.error, pa.ArrowException)


class DataConfigError(ValueError):
    """A bad data config; str(e) is one clear sentence naming the problem, shown as-is."""


class InputFile(msgspec.Struct, frozen=True):
    """A usable data file as found by the scan. Times are ns UTC; for bars, bar starts."""

    name: str  # path relative to the data folder, posix style
    kind: str  # "bars" | "trades" | "quotes"
    sha256: str
    ts_min: int | None  # min/max parseable timestamp seen at scan; None if none parse
    ts_max: int | None


@dataclass(frozen=True, slots=True)
class _Source:
    """What the scan learned about one usable file, enough to decide when to parse it."""

    index: int
    path: Path
    info: InputFile
    header: tuple[str, ...]
    columns: dict[str, str]  # canonical column name -> name in the file
    symbols: frozenset[str]  # "" when some rows have a blank symbol
    has_undated: bool  # some rows have no usable timestamp


@dataclass(frozen=True, slots=True)
class _ParsedFile:
    """One file's accepted rows, sorted by (time, symbol, source), and its rejected rows."""

    columns: BarColumns | TradeColumns | QuoteColumns
    ts: np.ndarray  # time of each accepted row (bar start for bars), sorted
    dated: tuple[DataRejected, ...]  # rejected rows whose timestamp parsed
    dated_ts: np.ndarray
    undated: tuple[DataRejected, ...]  # rejected rows with no usable timestamp


class _Verdicts:
    """The first failing reason of every row: reasons are checked in a fixed order."""

    def __init__(self, rows: int) -> None:
        self.code = np.zeros(rows, dtype=np.int16)
        self.reasons: list[str] = []

    def flag(self, reason: str, bad: np.ndarray) -> None:
        self.reasons.append(reason)
        self.code[(self.code == 0) & bad] = len(self.reasons)

    @property
    def ok(self) -> np.ndarray:
        return self.code == 0

    def reason(self, code: int) -> str:
        return self.reasons[code - 1]


class MarketDataRepository:
    """Validated market data of a folder of CSV/Parquet files, one session at a time.

    Thread-safe: Prefetch and Upkeep (backfill) may both load sessions. Sessions should be loaded
    in increasing order; a file leaves the cache once the sessions being loaded have passed it.
    """

    def __init__(
        self, folder: str | Path, symbols: Sequence[str] | None, *, label: str = "start"
    ) -> None:
        """`symbols=None` takes every symbol the folder holds (what ingest wants)."""
        if label not in LABELS:
            raise DataConfigError(f"label must be 'start' or 'end', not {label!r}")
        if isinstance(symbols, str):
            symbols = [symbols]
        names = None if symbols is None else [s.strip() for s in symbols]
        if names is not None and not names:
            raise DataConfigError("no symbols were given")
        if names is not None and not all(names):
            raise DataConfigError("a symbol name is blank")
        self.folder = Path(folder)
        if not self.folder.exists():
            raise DataConfigError(f"data folder {self.folder} does not exist")
        if not self.folder.is_dir():
            raise DataConfigError(f"data folder {self.folder} is not a directory")
        paths = _data_files(self.folder)
        if not paths:
            raise DataConfigError(
                f"data folder {self.folder} holds no .csv, .csv.gz or .parquet files"
            )

        self.label = label
        self._names = [p.relative_to(self.folder).as_posix() for p in paths]
        self._digests: list[str] = []
        sources: list[_Source] = []
        rejections: list[DataRejected] = []
        for index, path in enumerate(paths):
            scanned = self._scan(index, path)
            if isinstance(scanned, DataRejected):
                rejections.append(scanned)
            else:
                sources.append(scanned)
        self._sources = tuple(sources)
        if names is None:
            names = sorted(frozenset().union(*(s.symbols for s in sources)) - {""})
        self.symbols: tuple[str, ...] = tuple(sorted(set(names)))
        self._universe = pa.array(self.symbols, type=pa.string())
        self._wanted = frozenset(self.symbols) | {""}
        self._source_at = {s.index: s for s in sources}
        self.files: tuple[InputFile, ...] = tuple(s.info for s in sources)
        self.file_rejections: tuple[DataRejected, ...] = tuple(rejections)
        self._check_every_symbol_has_data()

        self._lock = threading.Lock()
        self._cache: dict[int, _ParsedFile] = {}
        self._broken: set[int] = set()
        self._undated_reported: set[int] = set()
        self._windows_loaded: set[tuple[int, int]] = set()

    def input_digests(self) -> tuple[str, ...]:
        """sha256 of every data file in the folder, rejected ones too: what the digest sees."""
        return tuple(sorted(self._digests))

    def load_session(self, session: Session) -> SessionInput:
        """The requested symbols' rows in the session's window, validated and sorted.

        Rejections come back once per repository: rows dated in this window the first time the
        window is loaded, undated rows the first time their file is parsed.
        """
        start, end = session.window_start, session.window_end
        with self._lock:
            first_visit = (start, end) not in self._windows_loaded
            self._windows_loaded.add((start, end))
            for index in [i for i in self._cache if self._source_at[i].info.ts_max < start]:
                del self._cache[index]

            parts: dict[str, list] = {kind: [] for kind in KIND_COLUMNS}
            rejected: list[DataRejected] = []
            for source in self._sources:
                if not self._needed(source, start, end):
                    continue
                parsed = self._cache.get(source.index)
                if parsed is None:
                    parsed = self._parse(source, rejected)
                    if parsed is None:
                        continue
                    if source.info.ts_max is not None:
                        self._cache[source.index] = parsed
                lo, hi = np.searchsorted(parsed.ts, (start, end))
                if hi > lo:
                    parts[source.info.kind].append(_rows_between(parsed.columns, lo, hi))
                if first_visit:
                    in_window = (parsed.dated_ts >= start) & (parsed.dated_ts < end)
                    rejected.extend(parsed.dated[i] for i in np.flatnonzero(in_window))

            bars = BarColumns.concat(parts["bars"])
            if len(parts["bars"]) > 1:
                bars = self._drop_duplicates_across_files(bars, rejected if first_visit else None)
            position = {name: i for i, name in enumerate(self._names)}
            rejected.sort(key=lambda r: (position[r.file], r.row))
            return SessionInput(
                session=session,
                symbols=self.symbols,
                bars=_merged(bars, bars.ts_start, len(parts["bars"])),
                trades=_merged(TradeColumns.concat(parts["trades"]), None, len(parts["trades"])),
                quotes=_merged(QuoteColumns.concat(parts["quotes"]), None, len(parts["quotes"])),
                rejected=tuple(rejected),
            )

    def _needed(self, source: _Source, start: int, end: int) -> bool:
        if source.index in self._broken or not (source.symbols & self._wanted):
            return False
        info = source.info
        if info.ts_min is None or info.ts_max is None:
            return source.has_undated and source.index not in self._undated_reported
        return info.ts_min < end and info.ts_max >= start

    def _scan(self, index: int, path: Path) -> _Source | DataRejected:
        """Digest, kind, symbols and time range of one file; a whole-file problem is a rejection."""
        name = self._names[index]
        try:
            with path.open("rb") as fh:
                self._digests.append(hashlib.file_digest(fh, "sha256").hexdigest())
            digest = self._digests[-1]
            header = _header(path)
            kind, columns, problem = _classify(header)
            if kind is None:
                return DataRejected(ts=0, reason=problem, file=name, row=0)
            table, _, malformed = _read(path, [columns[c] for c in KEY_COLUMNS])
            symbols = _symbol_text(table.column(columns["symbol"]))
            ts, status = _parse_timestamps(table.column(columns["timestamp"]))
        except _READ_ERRORS as exc:
            return DataRejected(ts=0, reason=_unreadable(exc, path, name), file=name, row=0)
        if kind == "bars" and self.label == "end":
            ts -= NS_PER_MINUTE
        dated = ts[status == _TS_OK]
        return _Source(
            index=index,
            path=path,
            info=InputFile(
                name=name,
                kind=kind,
                sha256=digest,
                ts_min=int(dated.min()) if len(dated) else None,
                ts_max=int(dated.max()) if len(dated) else None,
            ),
            header=header,
            columns=columns,
            symbols=frozenset(pc.unique(symbols).to_pylist()),
            has_undated=bool(malformed) or len(dated) < len(ts),
        )

    def _check_every_symbol_has_data(self) -> None:
        present = frozenset().union(*(s.symbols for s in self._sources))
        missing = [s for s in self.symbols if s not in present]
        if not missing:
            return
        noun = "symbol" if len(missing) == 1 else "symbols"
        hint = ""
        if self.file_rejections:
            first = self.file_rejections[0]
            hint = (
                f" ({len(self.file_rejections)} file(s) could not be used,"
                f" e.g. {first.file}: {first.reason})"
            )
        raise DataConfigError(f"no data for {noun} {', '.join(missing)} in {self.folder}{hint}")

    def _parse(self, source: _Source, rejected: list[DataRejected]) -> _ParsedFile | None:
        """Parse and validate one file; its undated rejections (or its failure) go to `rejected`."""
        try:
            parsed = _parse_file(source, self._universe, self.symbols, self.label)
        except _READ_ERRORS as exc:
            self._broken.add(source.index)
            reason = _unreadable(exc, source.path, source.info.name)
            rejected.append(DataRejected(ts=0, reason=reason, file=source.info.name, row=0))
            return None
        if source.index not in self._undated_reported:
            self._undated_reported.add(source.index)
            rejected.extend(parsed.undated)
        return parsed

    def _drop_duplicates_across_files(
        self, bars: BarColumns, rejected: list[DataRejected] | None
    ) -> BarColumns:
        """A bar that another file already gave (same symbol and start) is a duplicate."""
        order = np.lexsort((bars.source, bars.ts_start, bars.symbol))
        symbol, ts = bars.symbol[order], bars.ts_start[order]
        repeat = (symbol[1:] == symbol[:-1]) & (ts[1:] == ts[:-1])
        duplicates = order[1:][repeat]
        if rejected is not None:
            for i in duplicates:
                source = int(bars.source[i])
                rejected.append(
                    DataRejected(
                        ts=0,
                        reason="duplicate timestamp",
                        file=self._names[source >> _ROW_BITS],
                        row=source & _ROW_MASK,
                        symbol=self.symbols[bars.symbol[i]],
                    )
                )
        keep = np.ones(len(bars), dtype=bool)
        keep[duplicates] = False
        return bars.take(keep)


def _data_files(folder: Path) -> list[Path]:
    found = [
        p
        for p in folder.rglob("*")
        if p.name.lower().endswith((".csv", ".csv.gz", ".parquet")) and p.is_file()
    ]
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def _is_gzip(path: Path) -> bool:
    return path.name.lower().endswith(".gz")


def _is_parquet(path: Path) -> bool:
    return path.name.lower().endswith(".parquet")


def _header(path: Path) -> tuple[str, ...]:
    if _is_parquet(path):
        return tuple(pq.read_schema(path).names)
    opener = gzip.open if _is_gzip(path) else open
    with opener(path, "rb") as fh:
        line = fh.readline().decode("utf-8-sig")
    first = next(csv.reader([line]), None)
    if not first:
        raise ValueError("no header row")
    return tuple(first)


def _classify(header: tuple[str, ...]) -> tuple[str | None, dict[str, str], str]:
    """The kind whose columns the header has (extra columns are fine), else the closest miss:
    the kind with most of its own fields present."""
    columns: dict[str, str] = {}
    for raw in header:
        columns.setdefault(raw.strip().lower(), raw)
    missing = {
        kind: [c for c in (*KEY_COLUMNS, *fields) if c not in columns]
        for kind, fields in KIND_COLUMNS.items()
    }
    for kind, gaps in missing.items():
        if not gaps:
            wanted = (*KEY_COLUMNS, *KIND_COLUMNS[kind])
            return kind, {c: columns[c] for c in wanted}, ""
    closest = min(
        missing,
        key=lambda kind: (len(missing[kind]) - len(KIND_COLUMNS[kind]), len(missing[kind])),
    )
    gaps = missing[closest]
    noun = "column" if len(gaps) == 1 else "columns"
    return None, {}, f"missing {noun} {', '.join(gaps)} (closest kind: {closest})"


def _unreadable(exc: BaseException, path: Path, name: str) -> str:
    detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    detail = detail.replace(str(path), name)[:200]
    return f"unreadable file ({detail})"


def _read(path: Path, columns: list[str]) -> tuple[pa.Table, np.ndarray, list[tuple[int, str]]]:
    """The named columns, the 1-based data row of each table row, and malformed CSV lines.

    CSV columns come back as strings so that one bad value cannot fail the whole file; a line
    with the wrong number of fields is skipped by pyarrow and returned as (row, text).
    """
    if _is_parquet(path):
        table = pq.read_table(path, columns=columns)
        return table, np.arange(1, table.num_rows + 1, dtype=np.int64), []
    table, malformed = _read_csv(path, columns, use_threads=True)
    if any(number is None for number, _ in malformed):
        table, malformed = _read_csv(path, columns, use_threads=False)
    bad_rows = np.array([number - 1 for number, _ in malformed], dtype=np.int64)
    rows = np.arange(1, table.num_rows + len(malformed) + 1, dtype=np.int64)
    if len(bad_rows):
        rows = np.setdiff1d(rows, bad_rows, assume_unique=True)
    return table, rows, [(number - 1, text) for number, text in malformed]


def _read_csv(
    path: Path, columns: list[str], *, use_threads: bool
) -> tuple[pa.Table, list[tuple[int | None, str]]]:
    malformed: list[tuple[int | None, str]] = []

    def skip(row: pacsv.InvalidRow) -> str:
        malformed.append((row.number, row.text))
        return "skip"

    stream = pa.input_stream(str(path), compression="gzip" if _is_gzip(path) else None)
    with stream:
        table = pacsv.read_csv(
            stream,
            read_options=pacsv.ReadOptions(use_threads=use_threads),
            parse_options=pacsv.ParseOptions(invalid_row_handler=skip),
            convert_options=pacsv.ConvertOptions(
                include_columns=columns,
                column_types=dict.fromkeys(columns, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    return table, malformed


def _is_text(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def _plain(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Dictionary-encoded Parquet columns read as their values."""
    if pa.types.is_dictionary(column.type):
        return pc.cast(column, column.type.value_type)
    return column


def _symbol_text(column: pa.ChunkedArray) -> pa.ChunkedArray:
    text = pc.cast(_plain(column), pa.string())
    return pc.utf8_trim_whitespace(pc.fill_null(text, ""))


def _parse_timestamps(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """ns UTC of each row, and its status: ok, unparseable, naive, or too early to be ns."""
    ts, status = _parse_timestamp_values(column)
    status[(status == _TS_OK) & (ts < _EARLIEST_NS)] = _TS_NOT_NS
    return ts, status


def _parse_timestamp_values(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    column = _plain(column)
    rows = len(column)
    ts = np.zeros(rows, dtype=np.int64)
    status = np.full(rows, _TS_UNPARSEABLE, dtype=np.int8)
    valid = pc.is_valid(column).to_numpy(zero_copy_only=False)
    kind = column.type
    if pa.types.is_timestamp(kind):
        if kind.tz is None:
            status[valid] = _TS_NAIVE
        else:
            ns = pc.cast(pc.cast(column, pa.timestamp("ns", tz="UTC")), pa.int64())
            ts[:] = pc.fill_null(ns, 0).to_numpy()
            status[valid] = _TS_OK
    elif pa.types.is_integer(kind):
        ts[:] = pc.fill_null(pc.cast(column, pa.int64()), 0).to_numpy()
        status[valid] = _TS_OK
    elif _is_text(kind):
        text = pc.fill_null(pc.cast(column, pa.string()), "")
        for whole in (pa.timestamp("ns", tz="UTC"), pa.int64()):
            try:
                ts[:] = pc.cast(pc.cast(text, whole), pa.int64()).to_numpy()
            except pa.ArrowInvalid:
                continue
            status[:] = _TS_OK
            return ts, status
        _classify_timestamps(pc.utf8_trim_whitespace(text), ts, status)
    return ts, status


def _classify_timestamps(text: pa.ChunkedArray, ts: np.ndarray, status: np.ndarray) -> None:
    """Row by row kinds of timestamp text, when the column as a whole does not parse."""
    integer = pc.match_substring_regex(text, _INTEGER_NS).to_numpy(zero_copy_only=False)
    if integer.any():
        ts[integer] = pc.cast(text.filter(integer), pa.int64()).to_numpy()
        status[integer] = _TS_OK
    zoned = pc.match_substring_regex(text, _ISO_ZONED).to_numpy(zero_copy_only=False)
    if zoned.any():
        parsed, ok = _parse_zoned(text.filter(zoned))
        where = np.flatnonzero(zoned)[ok]
        ts[where] = parsed[ok]
        status[where] = _TS_OK
    naive = pc.match_substring_regex(text, _ISO_NAIVE).to_numpy(zero_copy_only=False)
    status[naive] = _TS_NAIVE


def _parse_zoned(text: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """ISO-8601 strings with an offset to ns UTC; pandas takes over when pyarrow refuses one."""
    try:
        ns = pc.cast(pc.cast(text, pa.timestamp("ns", tz="UTC")), pa.int64()).to_numpy()
        return ns, np.ones(len(ns), dtype=bool)
    except pa.ArrowInvalid:
        pass
    upper_z = pc.replace_substring_regex(text, "z$", "Z").to_numpy(zero_copy_only=False)
    parsed = pd.to_datetime(
        pd.Series(upper_z, dtype=object), utc=True, format="ISO8601", errors="coerce"
    )
    index = pd.DatetimeIndex(parsed).as_unit("ns")
    return index.asi8.copy(), ~index.isna()


def _parse_numbers(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """float64 values (missing is NaN), and which rows held text that is not a number.

    Infinity is not a price or a size either, so it counts as unparseable.
    """
    column = _plain(column)
    kind = column.type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        values = pc.fill_null(pc.cast(column, pa.float64()), np.nan).to_numpy()
        return values, np.isinf(values)
    if not _is_text(kind):
        return np.full(len(column), np.nan), np.ones(len(column), dtype=bool)
    text = pc.fill_null(pc.cast(column, pa.string()), "")
    try:
        values = pc.cast(text, pa.float64()).to_numpy()
        return values, np.isinf(values)
    except pa.ArrowInvalid:
        pass
    raw = pd.Series(text.to_numpy(zero_copy_only=False), dtype=object)
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    missing = pc.is_in(pc.utf8_lower(pc.utf8_trim_whitespace(text)), value_set=_MISSING_NUMBER)
    garbage = np.isnan(values) & ~missing.to_numpy(zero_copy_only=False)
    return values, garbage | np.isinf(values)


def _parse_file(
    source: _Source, universe: pa.Array, symbols: tuple[str, ...], label: str
) -> _ParsedFile:
    """Read one file, keep the requested symbols' rows, and give each bad row its first reason."""
    kind = source.info.kind
    fields = KIND_COLUMNS[kind]
    wanted = (*KEY_COLUMNS, *fields)
    table, rows, malformed = _read(source.path, [source.columns[c] for c in wanted])
    table = table.select([source.columns[c] for c in wanted]).rename_columns(list(wanted))

    symbol_text = _symbol_text(table.column("symbol"))
    symbol = pc.fill_null(pc.index_in(symbol_text, value_set=universe), -1).to_numpy()
    blank = pc.equal(symbol_text, "").to_numpy(zero_copy_only=False)
    requested = (symbol >= 0) | blank
    if not requested.all():
        table, rows = table.filter(requested), rows[requested]
        symbol_text = symbol_text.filter(requested)
        symbol, blank = symbol[requested], blank[requested]
    symbol = symbol.astype(np.int32)

    ts, status = _parse_timestamps(table.column("timestamp"))
    if kind == "bars" and label == "end":
        ts[status == _TS_OK] -= NS_PER_MINUTE
    verdicts = _Verdicts(len(ts))
    verdicts.flag("unparseable timestamp", status == _TS_UNPARSEABLE)
    verdicts.flag("timestamp has no time zone", status == _TS_NAIVE)
    verdicts.flag("timestamp is not ns since the epoch", status == _TS_NOT_NS)
    verdicts.flag("missing symbol", blank)
    values: dict[str, np.ndarray] = {}
    for name in fields:
        values[name], garbage = _parse_numbers(table.column(name))
        verdicts.flag(f"unparseable {name}", garbage)
    _CHECKS[kind](verdicts, symbol, ts, values)

    accepted = verdicts.ok
    order = np.flatnonzero(accepted)
    order = order[np.lexsort((rows[order], symbol[order], ts[order]))]
    source_ids = (np.int64(source.index) << _ROW_BITS) | rows[order]
    time_field = "ts_start" if kind == "bars" else "ts"
    columns = _COLUMN_TYPES[kind](
        symbol=symbol[order],
        **{time_field: ts[order]},
        **{name: values[name][order] for name in fields},
        source=source_ids,
    )

    bad = np.flatnonzero(~accepted)
    bad_symbols = symbol_text.take(pa.array(bad, type=pa.int64())).to_pylist()
    name = source.info.name
    dated: list[DataRejected] = []
    undated: list[DataRejected] = []
    for i, symbol_name in zip(bad.tolist(), bad_symbols, strict=True):
        row = DataRejected(
            ts=0,
            reason=verdicts.reason(int(verdicts.code[i])),
            file=name,
            row=int(rows[i]),
            symbol=symbol_name,
        )
        (dated if status[i] == _TS_OK else undated).append(row)
    undated.extend(_malformed_rows(source, malformed, frozenset(symbols)))
    undated.sort(key=lambda r: r.row)
    return _ParsedFile(
        columns=columns,
        ts=ts[order],
        dated=tuple(dated),
        dated_ts=ts[bad[status[bad] == _TS_OK]],
        undated=tuple(undated),
    )


def _malformed_rows(
    source: _Source, malformed: list[tuple[int, str]], symbols: frozenset[str]
) -> list[DataRejected]:
    """Lines with the wrong number of fields; those of symbols not asked for are ignored."""
    at = source.header.index(source.columns["symbol"])
    found = []
    for row, text in malformed:
        fields = next(csv.reader(io.StringIO(text)), [])
        symbol = fields[at].strip() if len(fields) > at else ""
        if symbol and symbol not in symbols:
            continue
        reason = f"malformed row ({len(fields)} fields, header has {len(source.header)})"
        found.append(
            DataRejected(ts=0, reason=reason, file=source.info.name, row=row, symbol=symbol)
        )
    return found


def _check_bars(
    verdicts: _Verdicts, symbol: np.ndarray, ts: np.ndarray, v: dict[str, np.ndarray]
) -> None:
    o, h, lo, c, volume = v["open"], v["high"], v["low"], v["close"], v["volume"]
    with np.errstate(invalid="ignore"):
        verdicts.flag("NaN price", np.isnan(o) | np.isnan(h) | np.isnan(lo) | np.isnan(c))
        verdicts.flag("non-positive price", (o <= 0) | (h <= 0) | (lo <= 0) | (c <= 0))
        verdicts.flag("high below low", h < lo)
        verdicts.flag("high below max(open, close)", h < np.maximum(o, c))
        verdicts.flag("low above min(open, close)", lo > np.minimum(o, c))
        verdicts.flag("NaN volume", np.isnan(volume))
        verdicts.flag("negative volume", volume < 0)
    verdicts.flag("off the minute grid", ts % NS_PER_MINUTE != 0)
    verdicts.flag("duplicate timestamp", _repeats(verdicts.ok, symbol, ts))
    verdicts.flag("out-of-order timestamp", _out_of_order(verdicts.ok, symbol, ts))


def _check_trades(
    verdicts: _Verdicts, symbol: np.ndarray, ts: np.ndarray, v: dict[str, np.ndarray]
) -> None:
    price, size = v["price"], v["size"]
    with np.errstate(invalid="ignore"):
        verdicts.flag("NaN price", np.isnan(price))
        verdicts.flag("non-positive price", price <= 0)
        verdicts.flag("NaN size", np.isnan(size))
        verdicts.flag("negative size", size < 0)
    verdicts.flag("out-of-order timestamp", _out_of_order(verdicts.ok, symbol, ts))


def _check_quotes(
    verdicts: _Verdicts, symbol: np.ndarray, ts: np.ndarray, v: dict[str, np.ndarray]
) -> None:
    """A side at price 0 and size 0 is absent (a one-sided update), so zero is not an error."""
    bid, bid_size, ask, ask_size = v["bid"], v["bid_size"], v["ask"], v["ask_size"]
    with np.errstate(invalid="ignore"):
        verdicts.flag("NaN price", np.isnan(bid) | np.isnan(ask))
        verdicts.flag("negative price", (bid < 0) | (ask < 0))
        verdicts.flag("NaN size", np.isnan(bid_size) | np.isnan(ask_size))
        verdicts.flag("negative size", (bid_size < 0) | (ask_size < 0))
        verdicts.flag("quote side with size but no price", (bid == 0) & (bid_size > 0))
        verdicts.flag("quote side with size but no price", (ask == 0) & (ask_size > 0))
    verdicts.flag("out-of-order timestamp", _out_of_order(verdicts.ok, symbol, ts))


_CHECKS = {"bars": _check_bars, "trades": _check_trades, "quotes": _check_quotes}
_COLUMN_TYPES = {"bars": BarColumns, "trades": TradeColumns, "quotes": QuoteColumns}


def _repeats(candidate: np.ndarray, symbol: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """Candidate rows whose (symbol, time) an earlier candidate row of the file already had."""
    index = np.flatnonzero(candidate)
    index = index[np.lexsort((ts[index], symbol[index]))]  # stable: file order within a key
    same = (symbol[index][1:] == symbol[index][:-1]) & (ts[index][1:] == ts[index][:-1])
    repeated = np.zeros(len(ts), dtype=bool)
    repeated[index[1:][same]] = True
    return repeated


def _out_of_order(candidate: np.ndarray, symbol: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """Candidate rows earlier than an earlier candidate row of the same symbol in the file.

    The running maximum over all candidates equals the previous accepted time: a row that is
    rejected here is below the maximum, so it never raises it.
    """
    index = np.flatnonzero(candidate)
    late = np.zeros(len(ts), dtype=bool)
    if len(index):
        running = pd.Series(ts[index]).groupby(symbol[index]).cummax().to_numpy()
        late[index] = ts[index] < running
    return late


def _rows_between(columns: _C, lo: int, hi: int) -> _C:
    """A window of a cached file as views; concatenation copies them out of the cache."""
    return type(columns)(**{f.name: getattr(columns, f.name)[lo:hi] for f in fields(columns)})


def _merged(columns: _C, time: np.ndarray | None, parts: int) -> _C:
    """Rows in release order: time, then symbol id, then source.

    Each part is already in that order and parts come in file order, so a stable sort on
    (time, symbol) is enough to merge them.
    """
    if parts <= 1:
        return columns
    time = columns.ts if time is None else time
    return columns.take(np.lexsort((columns.symbol, time)))
