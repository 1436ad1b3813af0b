"""The catalog: market data validated once and stored as Parquet, one partition per session.

`ingest` reads any folder of CSV/Parquet through `MarketDataRepository` (so validation is the
repository's, unchanged) and writes each session window's rows, kind by kind, sorted by
(time, symbol, file, line), with the original file name and line of every row. A run over the
catalog then reads only its sessions' partitions, symbols and columns (DESIGN §13), and
`CatalogRepository` hands it exactly what the raw folder would have: the same rows in the same
order, the same rejections at the same moments, so the digest is the same.

Layout of a catalog folder:
    catalog.json                                 the manifest (below)
    bars/session=YYYY-MM-DD/part.parquet         likewise trades/, quotes/
    rejected/session=YYYY-MM-DD/part.parquet     rows rejected with a timestamp in that window
    rejected/undated.parquet                     rows rejected with no usable timestamp
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ticktape.messages import rejections as why
from ticktape.messages.columns import BarColumns, QuoteColumns, SessionInput, TradeColumns
from ticktape.messages.events import DataRejected
from ticktape.messages.session import Session
from ticktape.store.calendar import CalendarError, TradingCalendar
from ticktape.store.formats import VendorRepository, open_source
from ticktape.store.parsing import strings, to_numpy
from ticktape.store.repository import (
    KIND_COLUMNS,
    LABELS,
    DataConfigError,
    InputFile,
    MarketDataRepository,
)
from ticktape.store.validation import failing_values
from ticktape.store.writer_lock import Busy, WriterLock

MANIFEST = "catalog.json"
FORMAT = "ticktape-catalog"
VERSION = 2  # 2: sources with undated rows keep their dated ranges by symbol
ROW_GROUP_ROWS = 128 * 1024
# Text columns repeat a few values; numbers are mostly distinct, so a dictionary tried on them
# only costs time and bytes before Parquet falls back to plain pages.
_DICTIONARY_COLUMNS = ["symbol", "file", "reason"]
# Times and line numbers rise through a partition: delta encoding stores their steps.
_DELTA_COLUMNS = {name: "DELTA_BINARY_PACKED" for name in ("ts_start", "ts", "line", "row")}

_ROW_BITS = 32
_ROW_MASK = (1 << _ROW_BITS) - 1
_TIME = {"bars": "ts_start", "trades": "ts", "quotes": "ts"}
_COLUMN_TYPES = {"bars": BarColumns, "trades": TradeColumns, "quotes": QuoteColumns}
_REJECTED_SCHEMA = pa.schema(
    [
        ("file", pa.dictionary(pa.int32(), pa.string())),
        ("row", pa.int64()),
        ("reason", pa.string()),
        ("symbol", pa.string()),
    ]
)


def is_catalog(folder: str | Path) -> bool:
    return (Path(folder) / MANIFEST).is_file()


def _sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _kind_schema(kind: str) -> pa.Schema:
    return pa.schema(
        [
            ("symbol", pa.dictionary(pa.int32(), pa.string())),
            (_TIME[kind], pa.int64()),
            *[(name, pa.float64()) for name in KIND_COLUMNS[kind]],
            ("file", pa.dictionary(pa.int32(), pa.string())),
            ("line", pa.int64()),
        ]
    )


def _positions(column: pa.ChunkedArray, values: pa.Array) -> np.ndarray:
    """Where each value of a (dictionary) string column sits in `values`; -1 if absent.

    A dictionary column is mapped through its dictionary, so the work is per distinct value.
    """
    parts = []
    for chunk in column.chunks:
        if pa.types.is_dictionary(chunk.type):
            parts.append(_index_in(chunk.dictionary, values)[to_numpy(chunk.indices)])
        else:
            parts.append(_index_in(chunk, values))
    if not parts:
        return np.empty(0, dtype=np.int64)
    return np.concatenate(parts).astype(np.int64)


def _index_in(column: pa.Array, values: pa.Array) -> np.ndarray:
    """Each value's position in `values`, -1 if absent (numpy fills the misses: `pc.fill_null`
    makes a pyarrow scalar, which imports pandas)."""
    found = pc.index_in(column, value_set=values)
    if not len(found):
        return np.empty(0, dtype=np.int64)
    position = np.frombuffer(found.buffers()[1], np.int32, len(found), found.offset * 4)
    return np.where(to_numpy(pc.is_valid(found)), position, -1)


def _plain_strings(column: pa.ChunkedArray) -> list[str]:
    if pa.types.is_dictionary(column.type):
        column = pc.cast(column, column.type.value_type)
    return column.to_pylist()


# --- the manifest ----------------------------------------------------------------------------


@dataclass
class Manifest:
    """What a catalog holds; written as sorted JSON so that equal content is equal bytes."""

    calendar: str
    label: str
    symbols: list[str] = field(default_factory=list)  # every symbol with a row in the catalog
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)  # original files by name
    file_rejections: list[dict[str, Any]] = field(default_factory=list)
    partitions: dict[str, dict[str, Any]] = field(default_factory=dict)  # by session label
    undated: dict[str, Any] | None = None

    @classmethod
    def read(cls, folder: Path) -> Manifest:
        try:
            data = json.loads((folder / MANIFEST).read_text())
        except (OSError, ValueError) as exc:
            message = f"catalog manifest {folder / MANIFEST} is unreadable ({exc})"
            raise DataConfigError(message) from None
        if data.get("format") != FORMAT or data.get("version") != VERSION:
            raise DataConfigError(f"{folder / MANIFEST} is not a version {VERSION} catalog")
        try:
            manifest = cls(
                calendar=data["calendar"],
                label=data["label"],
                symbols=data["symbols"],
                sources=data["sources"],
                file_rejections=data["file_rejections"],
                partitions=data["partitions"],
                undated=data["undated"],
            )
            parts = list(manifest.parts())
            for part in parts:
                if not (
                    isinstance(part["path"], str)
                    and isinstance(part["sha256"], str)
                    and isinstance(part["bytes"], int)
                ):
                    raise TypeError(f"partition entry {part!r}")
        except (KeyError, TypeError, AttributeError) as exc:
            what = f"lacks {exc}" if isinstance(exc, KeyError) else f"has a bad {exc}"
            raise DataConfigError(f"catalog manifest {folder / MANIFEST} {what}") from None
        root = folder.resolve()
        for part in parts:
            path = PurePosixPath(part["path"])
            inside = (folder / path).resolve().is_relative_to(root)
            if path.is_absolute() or ".." in path.parts or not inside:
                raise DataConfigError(f"catalog {folder} names {part['path']!r}, outside itself")
        return manifest

    def parts(self) -> Iterator[dict[str, Any]]:
        """The entry of every Parquet file the catalog holds: path, sha256, bytes, rows."""
        for entry in self.partitions.values():
            yield from entry["kinds"].values()
            if entry["rejected"]:
                yield entry["rejected"]
        if self.undated:
            yield self.undated

    def write(self, folder: Path) -> None:
        data = {"format": FORMAT, "version": VERSION, **self.__dict__}
        text = json.dumps(data, sort_keys=True, indent=1) + "\n"
        _write_atomically(folder / MANIFEST, text.encode())

    def names(self) -> list[str]:
        """Every original data file name, sorted: a row's file rank is its place here."""
        return sorted(self.sources)


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    os.replace(partial, path)


# --- ingest ----------------------------------------------------------------------------------


@dataclass
class IngestSummary:
    sources: int = 0  # data files found in the source folders
    new_files: int = 0  # of which were not in the catalog yet
    sessions: int = 0  # partitions written
    rows: int = 0  # rows written (new and carried over)
    rejected: int = 0  # rows ingest rejected, new files only
    outside_hours: int = 0


def ingest(
    sources: Sequence[str | Path],
    catalog: str | Path,
    *,
    calendar: str = "XNYS",
    label: str = "start",
    progress: Callable[[int, int], None] | None = None,
    data_format: str = "auto",
) -> IngestSummary:
    """Validate the files of each source folder and add the new ones to the catalog.

    A file already in the catalog with the same content is skipped, so ingesting the same files
    again changes nothing. A file of the same name with other content is refused: a changed
    history would silently change the digest of runs already made. `progress(done, total)` is
    called once per session written. `data_format` names the sources' format (`auto`: by
    content and layout; see `store.formats`).
    """
    folder = Path(catalog)
    for source in sources:
        if is_catalog(source) or folder.resolve().is_relative_to(Path(source).resolve()):
            raise DataConfigError(f"{source} is a catalog or holds {folder}; it is not ingested")
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        lock = WriterLock.take(folder, "catalog")
    except Busy as e:
        raise DataConfigError(str(e)) from None
    try:
        return _ingest(sources, folder, calendar, label, progress, data_format)
    except BaseException:
        if created and not is_catalog(folder):  # leave no half-made catalog behind
            shutil.rmtree(folder, ignore_errors=True)
        raise
    finally:
        lock.release()


def _ingest(
    sources: Sequence[str | Path],
    folder: Path,
    calendar: str,
    label: str,
    progress: Callable[[int, int], None] | None,
    data_format: str,
) -> IngestSummary:
    manifest = Manifest.read(folder) if is_catalog(folder) else Manifest(calendar, label)
    if (manifest.calendar, manifest.label) != (calendar, label):
        raise DataConfigError(
            f"catalog {folder} was ingested with calendar {manifest.calendar} and label "
            f"{manifest.label}, not {calendar} and {label}"
        )
    summary = IngestSummary()
    trading = TradingCalendar(calendar)
    for source in sources:
        repository = open_source(source, data_format, label=label)
        new = _new_files(repository, manifest)
        summary.sources += len(repository.files) + len(repository.file_rejections)
        summary.new_files += len(new)
        if new:
            _ingest_folder(repository, new, manifest, trading, folder, summary, progress)
    if summary.new_files or not is_catalog(folder):
        manifest.write(folder)
    return summary


def _new_files(repository: MarketDataRepository | VendorRepository, manifest: Manifest) -> set[str]:
    """Names not yet in the catalog; a known name with other content is an error."""
    shas = {f.name: f.sha256 for f in repository.files}
    for rejection in repository.file_rejections:
        shas[rejection.file] = _sha256(repository.folder / rejection.file)
    for name, sha in shas.items():
        known = manifest.sources.get(name)
        if known is not None and known["sha256"] != sha:
            raise DataConfigError(
                f"{name} in {repository.folder} differs from the file of that name already in "
                "the catalog; a catalog's files cannot change (ingest into a new catalog)"
            )
    return {name for name in shas if name not in manifest.sources}


def _ingest_folder(
    repository: MarketDataRepository | VendorRepository,
    new: set[str],
    manifest: Manifest,
    trading: TradingCalendar,
    folder: Path,
    summary: IngestSummary,
    progress: Callable[[int, int], None] | None,
) -> None:
    everything = {f.name for f in repository.files} | {r.file for r in repository.file_rejections}
    names = pa.array(sorted(everything))  # what the repository's source ids index
    for rejection in repository.file_rejections:
        if rejection.file in new:
            sha = _sha256(repository.folder / rejection.file)
            manifest.sources[rejection.file] = {"sha256": sha}
            manifest.file_rejections.append(
                {"file": rejection.file, "row": rejection.row, "reason": rejection.reason}
            )
    manifest.file_rejections.sort(key=lambda r: (r["file"], r["row"]))
    added = [f for f in repository.files if f.name in new]
    for info in added:
        manifest.sources[info.name] = {
            "kind": info.kind,
            "sha256": info.sha256,
            "ts_min": info.ts_min,
            "ts_max": info.ts_max,
            "undated": [],  # symbols of its rows rejected with no usable time
        }
    ranks = pa.array(manifest.names())
    sessions = _sessions_covering(trading, added)
    undated: list[pa.Table] = []
    symbols: set[str] = set()
    for done, session in enumerate(sessions, start=1):
        loaded = repository.load_session(session)
        tables = {
            kind: _new_rows(getattr(loaded, kind), kind, loaded.symbols, names, new)
            for kind in KIND_COLUMNS
        }
        dated, late = _split_rejections(loaded.rejected, new)
        undated.append(late)
        for table in (*tables.values(), dated, late):
            symbols.update(_symbols(table))
        if any(t.num_rows for t in (*tables.values(), dated)):
            _write_partition(session, tables, dated, manifest, ranks, folder, summary)
        if progress is not None:
            progress(done, len(sessions))
    _write_undated(pa.concat_tables(undated), manifest, folder, summary)
    manifest.symbols = sorted(set(manifest.symbols).union(symbols) - {""})
    for info in added:
        if manifest.sources[info.name]["undated"]:  # where a run places them: see rejections.py
            ranges = repository.dated_ranges(info.name)
            manifest.sources[info.name]["ranges"] = {s: list(r) for s, r in sorted(ranges.items())}


def _sessions_covering(trading: TradingCalendar, files: Iterable[InputFile]) -> list[Session]:
    """The sessions whose windows hold the files' dated rows; when no row is dated, one session,
    so that the files' undated rejections are still read."""
    ranges = [(f.ts_min, f.ts_max) for f in files if f.ts_min is not None and f.ts_max is not None]
    if not ranges:
        return trading.sessions_before("2000-01-10", 1)
    lo, hi = min(r[0] for r in ranges), max(r[1] for r in ranges)
    week = np.timedelta64(7, "D")
    start, end = (np.datetime64(t, "ns").astype("datetime64[D]") for t in (lo, hi))
    try:
        candidates = trading.sessions(str(start - week), str(end + week))
    except CalendarError as exc:
        raise DataConfigError(f"the data reaches outside the calendar: {exc}") from None
    return [s for s in candidates if s.window_start <= hi and s.window_end > lo]


def _new_rows(
    columns: BarColumns | TradeColumns | QuoteColumns,
    kind: str,
    symbols: tuple[str, ...],
    names: pa.Array,
    new: set[str],
) -> pa.Table:
    """A session's rows of the new files, with symbol and original file as text.

    They keep the repository's order, (time, symbol, source): the folder's names keep their
    order among the catalog's, so that is (time, symbol, file, line) in the catalog too.
    """
    source = columns.source
    file = source >> _ROW_BITS
    fresh = np.array([name in new for name in names.to_pylist()], dtype=bool)
    keep = fresh[file]
    if not keep.all():
        columns, source, file = columns.take(keep), source[keep], file[keep]
    table = pa.table(
        {
            "symbol": _dictionary(columns.symbol, pa.array(symbols, type=pa.string())),
            _TIME[kind]: getattr(columns, _TIME[kind]),
            **{name: getattr(columns, name) for name in KIND_COLUMNS[kind]},
            "file": _dictionary(file, names),
            "line": source & _ROW_MASK,
        }
    )
    return table.cast(_kind_schema(kind))


def _dictionary(codes: np.ndarray, values: pa.Array) -> pa.DictionaryArray:
    """`values.take(codes)` as a dictionary column without making a string per row: the
    dictionary holds the used values in order of first appearance, as a cast to it would."""
    encoded = pc.dictionary_encode(pa.array(codes))
    return pa.DictionaryArray.from_arrays(encoded.indices, values.take(encoded.dictionary))


def _split_rejections(rejected: Sequence[DataRejected], new: set[str]) -> tuple[pa.Table, pa.Table]:
    """The new files' rejections: those dated in the session window, and those of no time."""
    mine = [r for r in rejected if r.file in new]
    split = (
        [r for r in mine if not why.is_undated(r.reason)],
        [r for r in mine if why.is_undated(r.reason)],
    )
    return tuple(  # type: ignore[return-value]
        pa.table(
            {
                "file": [r.file for r in rows],
                "row": [r.row for r in rows],
                "reason": [r.reason for r in rows],
                "symbol": [r.symbol for r in rows],
            },
            schema=_REJECTED_SCHEMA,
        )
        for rows in split
    )


def _symbols(table: pa.Table) -> set[str]:
    """Symbols of a table's rows (of every reason but lines that could not be split)."""
    if not table.num_rows:
        return set()
    if "reason" in table.column_names:
        lines = pa.array([why.is_line(r) for r in table["reason"].to_pylist()], pa.bool_())
        table = table.filter(pc.invert(lines))
    column = table["symbol"]
    if not pa.types.is_dictionary(column.type):
        return set(pc.unique(column).to_pylist())
    return {
        symbol
        for chunk in column.chunks
        for symbol in chunk.dictionary.take(pc.unique(chunk.indices)).to_pylist()
    }


def _ordered(table: pa.Table, ranks: pa.Array, keys: Sequence[str]) -> pa.Table:
    """Rows sorted by `keys`, where "file" sorts by the file's rank among the catalog's names."""
    columns = []
    for key in reversed(keys):
        if key == "file":
            columns.append(_positions(table["file"], ranks))
        elif key == "symbol":
            text = pc.cast(table["symbol"], pa.string())
            columns.append(_positions(table["symbol"], pc.unique(text).sort()))
        else:
            columns.append(to_numpy(table[key]))
    return table.take(pa.array(np.lexsort(columns))) if columns else table


def _without_duplicate_bars(bars: pa.Table, ranks: pa.Array) -> tuple[pa.Table, pa.Table]:
    """A bar another file already gave (same symbol and start; the first file by name wins) is
    a duplicate, as the repository decides between the files of one folder."""
    ordered = _ordered(bars, ranks, ("symbol", "ts_start", "file", "line"))
    symbol = _positions(ordered["symbol"], pc.unique(pc.cast(ordered["symbol"], pa.string())))
    ts = to_numpy(ordered["ts_start"])
    repeat = np.zeros(ordered.num_rows, dtype=bool)
    repeat[1:] = (symbol[1:] == symbol[:-1]) & (ts[1:] == ts[:-1])
    duplicates = ordered.filter(repeat)
    rejected = pa.table(
        {
            "file": duplicates["file"],
            "row": duplicates["line"],
            "reason": pa.array([why.DUPLICATE] * duplicates.num_rows, pa.string()),
            "symbol": pc.cast(duplicates["symbol"], pa.string()),
        }
    ).cast(_REJECTED_SCHEMA)
    return ordered.filter(pc.invert(pa.array(repeat))), rejected


def _write_table(table: pa.Table, folder: Path, name: str) -> dict[str, Any]:
    """Write one Parquet file of the catalog; its entry names it relative to the catalog."""
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    pq.write_table(
        table,
        partial,
        row_group_size=ROW_GROUP_ROWS,
        compression="zstd",
        use_dictionary=_DICTIONARY_COLUMNS,
        column_encoding=_DELTA_COLUMNS,
        write_statistics=True,
    )
    os.replace(partial, path)
    return {
        "path": name,
        "sha256": _sha256(path),
        "bytes": path.stat().st_size,
        "rows": table.num_rows,
    }


def _write_partition(
    session: Session,
    tables: dict[str, pa.Table],
    rejected: pa.Table,
    manifest: Manifest,
    ranks: pa.Array,
    folder: Path,
    summary: IngestSummary,
) -> None:
    """Merge a session's new rows into its partition (rewritten whole) and record it."""
    entry = manifest.partitions.get(session.label) or {
        "window": [session.window_start, session.window_end],
        "open": session.open,
        "close": session.close,
        "kinds": {},
        "rejected": None,
    }
    if entry["window"] != [session.window_start, session.window_end]:
        raise DataConfigError(f"session {session.label} of the catalog has another window")
    rejected_parts = [rejected]
    if entry["rejected"]:
        rejected_parts.append(pq.read_table(folder / entry["rejected"]["path"]))
    for kind, table in tables.items():
        old = entry["kinds"].get(kind)
        if old is None and not table.num_rows:
            continue
        if old is not None:  # new rows are in order among themselves, not among the old
            table = pa.concat_tables(
                [pq.read_table(folder / old["path"]).cast(table.schema), table]
            )
            if kind == "bars":
                table, duplicates = _without_duplicate_bars(table, ranks)
                rejected_parts.append(duplicates)
            table = _ordered(table, ranks, (_TIME[kind], "symbol", "file", "line"))
        ts = to_numpy(table[_TIME[kind]])
        outside = int(((ts < session.open) | (ts >= session.close)).sum())
        written = _write_table(table, folder, _partition_name(kind, session.label))
        entry["kinds"][kind] = {**written, "outside_hours": outside}
        summary.rows += table.num_rows
        summary.outside_hours += outside
    rejected = pa.concat_tables([t.cast(_REJECTED_SCHEMA) for t in rejected_parts])
    summary.rejected += rejected.num_rows - (entry["rejected"] or {"rows": 0})["rows"]
    if rejected.num_rows:
        rejected = _ordered(rejected, ranks, ("file", "row"))
        entry["rejected"] = _write_table(
            rejected, folder, _partition_name("rejected", session.label)
        )
    manifest.partitions[session.label] = entry
    summary.sessions += 1


def _write_undated(
    rejected: pa.Table, manifest: Manifest, folder: Path, summary: IngestSummary
) -> None:
    if not rejected.num_rows:
        return
    summary.rejected += rejected.num_rows
    by_file: dict[str, set[str]] = {}
    for name, symbol in zip(
        _plain_strings(rejected["file"]), rejected["symbol"].to_pylist(), strict=True
    ):
        by_file.setdefault(name, set()).add(symbol)
    for name, symbols in by_file.items():  # a run that wants none of these reads none of them
        manifest.sources[name]["undated"] = sorted(symbols)
    if manifest.undated:
        rejected = pa.concat_tables([pq.read_table(folder / manifest.undated["path"]), rejected])
    rejected = _ordered(
        rejected.cast(_REJECTED_SCHEMA), pa.array(manifest.names()), ("file", "row")
    )
    manifest.undated = _write_table(rejected, folder, "rejected/undated.parquet")


def _partition_name(kind: str, label: str) -> str:
    return f"{kind}/session={label}/part.parquet"


# --- reading ---------------------------------------------------------------------------------


class CatalogRepository:
    """A catalog read like a raw folder: `MarketDataRepository`'s public API and semantics.

    Construction reads the manifest only. `load_session` reads the partitions of that session,
    the requested symbols' rows and the columns a run needs. `opened` lists the Parquet files
    read, so tests can see that a run touches only its own sessions. `files` lists the files of
    `sessions` (every session when None), for the run's manifest.
    """

    def __init__(
        self,
        folder: str | Path,
        symbols: Sequence[str] | None,
        *,
        label: str = "start",
        sessions: Sequence[Session] | None = None,
    ) -> None:
        if label not in LABELS:
            raise DataConfigError(f"label must be 'start' or 'end', not {label!r}")
        self.folder = Path(folder)
        self.manifest = Manifest.read(self.folder)
        if label != self.manifest.label:
            raise DataConfigError(
                f"catalog {self.folder} holds bars read with label {self.manifest.label}, "
                f"not {label}; ingest the files again with --label {label}"
            )
        self.label = label
        present = self.manifest.symbols
        if isinstance(symbols, str):
            symbols = [symbols]
        names = present if symbols is None else [s.strip() for s in symbols]
        if not names or not all(names):
            raise DataConfigError(
                "no symbols were given" if not names else "a symbol name is blank"
            )
        missing = sorted(set(names) - set(present))
        if missing:
            noun = "symbol" if len(missing) == 1 else "symbols"
            raise DataConfigError(f"no data for {noun} {', '.join(missing)} in {self.folder}")
        self.symbols: tuple[str, ...] = tuple(sorted(set(names)))
        self._universe = strings(self.symbols)
        self._wanted = frozenset(self.symbols) | {""}
        self._filter = None if len(self.symbols) == len(present) else list(self._wanted)
        self._ranks = strings(self.manifest.names())
        self._position = {name: i for i, name in enumerate(self.manifest.names())}
        self._by_window = {
            tuple(entry["window"]): entry for entry in self.manifest.partitions.values()
        }
        self.files: tuple[InputFile, ...] = tuple(self._partition_files(sessions))
        self._parts = {part["path"]: part for part in self.manifest.parts()}
        for input_file in self.files:  # a truncated or replaced partition, before any actor starts
            self._check_size(input_file.name)
        self.file_rejections: tuple[DataRejected, ...] = tuple(
            DataRejected(ts=0, reason=r["reason"], file=r["file"], row=r["row"])
            for r in self.manifest.file_rejections
        )
        for session in sessions or ():
            self._partition(session)  # another calendar is a config error, found before a run
        self.opened: list[str] = []
        self._lock = threading.Lock()
        self._windows_loaded: set[tuple[int, int]] = set()
        self._undated_files = {
            name: source for name, source in self.manifest.sources.items() if source.get("undated")
        }
        self._undated_reported: set[str] = set()

    def _partition_files(self, sessions: Sequence[Session] | None) -> Iterable[InputFile]:
        """Files of the partitions (rows and dated rejections) and of the undated rejections."""
        windows = None if sessions is None else {(s.window_start, s.window_end) for s in sessions}
        for entry in self.manifest.partitions.values():
            start, end = entry["window"]
            if windows is not None and (start, end) not in windows:
                continue
            written = {**entry["kinds"], "rejected": entry["rejected"]}
            for kind, part in sorted(written.items()):
                if part is not None:
                    yield InputFile(part["path"], kind, part["sha256"], start, end - 1)
        if self.manifest.undated is not None:
            undated = self.manifest.undated
            yield InputFile(undated["path"], "rejected", undated["sha256"], None, None)

    def input_digests(self) -> tuple[str, ...]:
        """sha256 of every original data file, as the raw folder's repository gives them."""
        return tuple(sorted(source["sha256"] for source in self.manifest.sources.values()))

    def load_session(self, session: Session) -> SessionInput:
        """The session's rows and rejections, as the raw folder's repository gives them."""
        window = (session.window_start, session.window_end)
        with self._lock:
            first_visit = window not in self._windows_loaded
            self._windows_loaded.add(window)
            entry = self._partition(session)
            kinds = entry["kinds"] if entry else {}
            columns = {
                kind: self._rows(kind, kinds[kind]["path"]) if kind in kinds else None
                for kind in KIND_COLUMNS
            }
            rejected: list[DataRejected] = []
            if first_visit and entry and entry["rejected"]:
                rejected += self._rejections(entry["rejected"]["path"], None)
            rejected += self._undated(*window)
            rejected.sort(key=lambda r: (self._position[r.file], r.row))
            return SessionInput(
                session=session,
                symbols=self.symbols,
                bars=columns["bars"] or BarColumns.empty(),
                trades=columns["trades"] or TradeColumns.empty(),
                quotes=columns["quotes"] or QuoteColumns.empty(),
                rejected=tuple(rejected),
            )

    def _partition(self, session: Session) -> dict[str, Any] | None:
        """The session's partition; a window that only overlaps partitions is another calendar."""
        start, end = session.window_start, session.window_end
        entry = self._by_window.get((start, end))
        if entry is None and any(s < end and e > start for s, e in self._by_window):
            raise DataConfigError(
                f"session {session.label} does not match the sessions of catalog {self.folder} "
                f"(ingested with calendar {self.manifest.calendar})"
            )
        return entry

    def _read(
        self, name: str, columns: list[str] | None, wanted: dict[str, Sequence[str]]
    ) -> pa.Table:
        """The rows whose `column` holds one of `wanted[column]`, for every column named there.

        A plain Parquet read and a filter: `pq.read_table(filters=...)` goes through the dataset
        layer, which costs a run about 60 MB of memory for nothing a partition needs."""
        self.opened.append(name)
        data = self._verified(name)
        table = pq.ParquetFile(pa.BufferReader(data)).read(columns=columns)
        for column, values in wanted.items():
            table = table.filter(pc.is_in(table[column], value_set=strings(values)))
        return table

    def _check_size(self, name: str) -> int:
        expected = self._parts[name]["bytes"]
        try:
            size = (self.folder / name).stat().st_size
        except OSError as e:
            raise DataConfigError(
                f"catalog partition {name} cannot be read: {e.strerror}"
            ) from None
        if size != expected:
            raise self._changed(name, f"{size} bytes, ingest wrote {expected}")
        return size

    def _verified(self, name: str) -> bytes:
        """The partition's bytes, when they are what ingest wrote (size, then sha256)."""
        self._check_size(name)
        data = (self.folder / name).read_bytes()
        if hashlib.sha256(data).hexdigest() != self._parts[name]["sha256"]:
            raise self._changed(name, "its sha256 differs")
        return data

    def _changed(self, name: str, how: str) -> DataConfigError:
        return DataConfigError(
            f"catalog partition {self.folder / name} changed since ingest ({how}); ingest again"
        )

    def _rows(self, kind: str, name: str) -> BarColumns | TradeColumns | QuoteColumns:
        """A partition's rows of the requested symbols, already in release order."""
        time, values = _TIME[kind], KIND_COLUMNS[kind]
        wanted = {} if self._filter is None else {"symbol": self._filter}
        table = self._read(name, ["symbol", time, *values, "file", "line"], wanted)
        source = (_positions(table["file"], self._ranks) << _ROW_BITS) | to_numpy(table["line"])
        reason = failing_values(
            kind, {v: to_numpy(table[v]) for v in values}, to_numpy(table[time])
        )
        if reason:  # checked as the repository checks rows, whatever the hashes say
            raise self._changed(name, f"a row the repository rejects: {reason}")
        return _COLUMN_TYPES[kind](
            symbol=_positions(table["symbol"], self._universe).astype(np.int32),
            **{name: to_numpy(table[name]) for name in (time, *values)},
            source=source,
        )

    def _rejections(self, name: str, files: list[str] | None) -> list[DataRejected]:
        wanted = {"symbol": list(self._wanted)}
        if files is not None:
            wanted["file"] = files
        table = self._read(name, None, wanted)
        return [
            DataRejected(ts=0, reason=reason, file=file, row=row, symbol=symbol)
            for file, row, reason, symbol in zip(
                _plain_strings(table["file"]),
                table["row"].to_pylist(),
                table["reason"].to_pylist(),
                table["symbol"].to_pylist(),
                strict=True,
            )
        ]

    def _undated(self, start: int, end: int) -> list[DataRejected]:
        """Rows of no time go out with the first session that reads their file: the first whose
        window overlaps the file's dated range (rows of the run's symbols or of none), or the
        first session if it has none (the rule of messages/rejections.py)."""
        due = []
        for name, source in self._undated_files.items():
            if name in self._undated_reported:
                continue
            if not self._wanted.intersection(source["undated"]):
                continue  # none of its undated rejections is of a symbol this run reads
            ranges = [r for s, r in source["ranges"].items() if s in self._wanted]
            if ranges:
                lo, hi = min(r[0] for r in ranges), max(r[1] for r in ranges)
                if not (lo < end and hi >= start):
                    continue
            self._undated_reported.add(name)
            due.append(name)
        if not due or self.manifest.undated is None:
            return []
        return self._rejections(self.manifest.undated["path"], due)
