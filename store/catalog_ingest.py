"""Ingest: validate raw folders (or vendor files) once into the Parquet catalog, by session."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ticktape.messages import rejections as why
from ticktape.messages.columns import BarColumns, QuoteColumns, TradeColumns
from ticktape.messages.events import DataRejected
from ticktape.messages.session import Session
from ticktape.store.calendar import CalendarError, TradingCalendar
from ticktape.store.catalog import (
    _DELTA_COLUMNS,
    _DICTIONARY_COLUMNS,
    REJECTED_SCHEMA,
    ROW_GROUP_ROWS,
    TIME_COLUMN,
    Manifest,
    is_catalog,
    kind_schema,
    plain_strings,
    positions,
    sha256_of,
)
from ticktape.store.formats import VendorRepository, open_source
from ticktape.store.parsing import ReadAs, to_numpy
from ticktape.store.release import SOURCE_BITS, SOURCE_MASK
from ticktape.store.repository import (
    KIND_COLUMNS,
    DataConfigError,
    InputFile,
    MarketDataRepository,
)
from ticktape.store.writer_lock import Busy, WriterLock

_WRITE_SECONDS = 3600  # one partition's write; more means a stuck disk


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
    columns: Mapping[str, str] | None = None,
    tz: str | None = None,
    symbol_from_file: bool = False,
) -> IngestSummary:
    """Validate the files of each source folder and add the new ones to the catalog.

    A file already in the catalog with the same content is skipped, so ingesting the same files
    again changes nothing. A file of the same name with other content is refused: a changed
    history would silently change the digest of runs already made. `progress(done, total)` is
    called once per session written. `data_format` names the sources' format (`auto`: by
    content and layout; see `store.formats`). `columns` maps ticktape's column names to the
    sources' header names ({"timestamp": "Date", "close": "Last"}), and `tz` is the zone of
    timestamps written without an offset (by default they are rejected). `symbol_from_file`:
    a file with no symbol column holds one symbol, its name's (`spy.csv.gz`: SPY); a file with
    one keeps its own. All three are recorded with each file in the manifest.
    """
    read_as = ReadAs(dict(columns or {}), tz, symbol_from_file)
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
        return _ingest(sources, folder, calendar, label, progress, data_format, read_as)
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
    read_as: ReadAs,
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
        repository = open_source(source, data_format, label=label, read_as=read_as)
        new = _new_files(repository, manifest, read_as)
        summary.sources += len(repository.files) + len(repository.file_rejections)
        summary.new_files += len(new)
        if new:
            _ingest_folder(repository, new, manifest, trading, folder, summary, progress, read_as)
    if summary.new_files or not is_catalog(folder):
        manifest.write(folder)
    return summary


def _new_files(
    repository: MarketDataRepository | VendorRepository, manifest: Manifest, read_as: ReadAs
) -> set[str]:
    """Names not yet in the catalog; a known name with other content, or read otherwise (column
    map, time zone), is an error."""
    shas = {f.name: f.sha256 for f in repository.files}
    for rejection in repository.file_rejections:
        shas[rejection.file] = sha256_of(repository.folder / rejection.file)
    for name, sha in shas.items():
        known = manifest.sources.get(name)
        if known is not None and known["sha256"] != sha:
            raise DataConfigError(
                f"{name} in {repository.folder} differs from the file of that name already in "
                "the catalog; a catalog's files cannot change (ingest into a new catalog)"
            )
        if known is not None and ReadAs.of(known) != read_as:
            raise DataConfigError(
                f"{name} is in the catalog as read with {ReadAs.of(known).to_dict()}, not "
                f"{read_as.to_dict()}; ingest into a new catalog to read it otherwise"
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
    read_as: ReadAs,
) -> None:
    everything = {f.name for f in repository.files} | {r.file for r in repository.file_rejections}
    names = pa.array(sorted(everything))  # what the repository's source ids index
    for rejection in repository.file_rejections:
        if rejection.file in new:
            sha = sha256_of(repository.folder / rejection.file)
            manifest.sources[rejection.file] = {"sha256": sha, **read_as.to_dict()}
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
            **read_as.to_dict(),  # how it was read: a re-ingest reads it alike
        }
    ranks = pa.array(manifest.names())
    sessions = _sessions_covering(trading, added)
    undated: list[pa.Table] = []
    symbols: set[str] = set()
    with _Writer(progress, len(sessions)) as writer:
        for session in sessions:
            loaded = repository.load_session(session)
            tables = {
                kind: _new_rows(getattr(loaded, kind), kind, loaded.symbols, names, new)
                for kind in KIND_COLUMNS
            }
            dated, late = _split_rejections(loaded.rejected, new)
            undated.append(late)
            for table in (*tables.values(), dated, late):
                symbols.update(_symbols(table))
            written = any(t.num_rows for t in (*tables.values(), dated))
            writer.submit(
                partial(_write_partition, session, tables, dated, manifest, ranks, folder, summary)
                if written
                else None
            )
        writer.finish()
    _write_undated(pa.concat_tables(undated), manifest, folder, summary)
    manifest.symbols = sorted(set(manifest.symbols).union(symbols) - {""})
    for info in added:
        if manifest.sources[info.name]["undated"]:  # where a run places them: see rejections.py
            ranges = repository.dated_ranges(info.name)
            manifest.sources[info.name]["ranges"] = {s: list(r) for s, r in sorted(ranges.items())}


class _Writer:
    """Each session's partition is written on a thread of its own while the next session loads
    (pyarrow writes and hashes without the GIL): one write at a time, in session order, so the
    manifest changes as it would in one thread. `progress` is told as each session is done."""

    def __init__(self, progress: Callable[[int, int], None] | None, sessions: int) -> None:
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="ticktape-partition")
        self._pending: Future[None] | None = None
        self._progress, self._sessions = progress, sessions
        self._submitted = self._done = 0

    def __enter__(self) -> _Writer:
        return self

    def __exit__(self, *failure: object) -> None:
        self._pool.shutdown(wait=True)  # no writer outlives the ingest
        if self._pending is not None:
            self._pending.result()  # a failed write is raised, never dropped

    def submit(self, write: Callable[[], None] | None) -> None:
        """Write the next session's partition (None: it has nothing to write)."""
        self.finish()
        self._pending = None if write is None else self._pool.submit(write)
        self._submitted += 1

    def finish(self) -> None:
        """Wait for the write in flight."""
        if self._pending is not None:
            self._pending.result(timeout=_WRITE_SECONDS)
            self._pending = None
        if self._done < self._submitted:
            self._done = self._submitted
            if self._progress is not None:
                self._progress(self._done, self._sessions)


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
    file = source >> SOURCE_BITS
    fresh = np.array([name in new for name in names.to_pylist()], dtype=bool)
    keep = fresh[file]
    if not keep.all():
        columns, source, file = columns.take(keep), source[keep], file[keep]
    table = pa.table(
        {
            "symbol": _dictionary(columns.symbol, pa.array(symbols, type=pa.string())),
            TIME_COLUMN[kind]: getattr(columns, TIME_COLUMN[kind]),
            **{name: getattr(columns, name) for name in KIND_COLUMNS[kind]},
            "file": _dictionary(file, names),
            "line": source & SOURCE_MASK,
        }
    )
    return table.cast(kind_schema(kind))


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
            schema=REJECTED_SCHEMA,
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
            columns.append(positions(table["file"], ranks))
        elif key == "symbol":
            text = pc.cast(table["symbol"], pa.string())
            columns.append(positions(table["symbol"], pc.unique(text).sort()))
        else:
            columns.append(to_numpy(table[key]))
    return table.take(pa.array(np.lexsort(columns))) if columns else table


def _without_duplicate_bars(bars: pa.Table, ranks: pa.Array) -> tuple[pa.Table, pa.Table]:
    """A bar another file already gave (same symbol and start; the first file by name wins) is
    a duplicate, as the repository decides between the files of one folder."""
    ordered = _ordered(bars, ranks, ("symbol", "ts_start", "file", "line"))
    symbol = positions(ordered["symbol"], pc.unique(pc.cast(ordered["symbol"], pa.string())))
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
    ).cast(REJECTED_SCHEMA)
    return ordered.filter(pc.invert(pa.array(repeat))), rejected


def _write_table(table: pa.Table, folder: Path, name: str) -> dict[str, Any]:
    """Write one Parquet file of the catalog; its entry names it relative to the catalog.

    Statistics (min/max per row group) are kept for the times, values and lines, not for the
    text columns: a row group spans every symbol and file of its minutes, so theirs prune
    nothing, and they cost a third of the write."""
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
        write_statistics=[c for c in table.column_names if c not in _DICTIONARY_COLUMNS],
    )
    os.replace(partial, path)
    return {
        "path": name,
        "sha256": sha256_of(path),
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
        new, had, gone = table, set(), rejected.slice(0, 0)
        if old is not None:  # new rows are in order among themselves, not among the old
            before = pq.read_table(folder / old["path"]).cast(table.schema)
            had = _symbols(before)
            table = pa.concat_tables([before, table])
            if kind == "bars":
                table, gone = _without_duplicate_bars(table, ranks)
                rejected_parts.append(gone)
            table = _ordered(table, ranks, (TIME_COLUMN[kind], "symbol", "file", "line"))
        manifest.cover(kind, session.label, new, had, gone)
        ts = to_numpy(table[TIME_COLUMN[kind]])
        outside = int(((ts < session.open) | (ts >= session.close)).sum())
        written = _write_table(table, folder, _partition_name(kind, session.label))
        entry["kinds"][kind] = {**written, "outside_hours": outside}
        summary.rows += table.num_rows
        summary.outside_hours += outside
    rejected = pa.concat_tables([t.cast(REJECTED_SCHEMA) for t in rejected_parts])
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
        plain_strings(rejected["file"]), rejected["symbol"].to_pylist(), strict=True
    ):
        by_file.setdefault(name, set()).add(symbol)
    for name, symbols in by_file.items():  # a run that wants none of these reads none of them
        manifest.sources[name]["undated"] = sorted(symbols)
    if manifest.undated:
        rejected = pa.concat_tables([pq.read_table(folder / manifest.undated["path"]), rejected])
    rejected = _ordered(rejected.cast(REJECTED_SCHEMA), pa.array(manifest.names()), ("file", "row"))
    manifest.undated = _write_table(rejected, folder, "rejected/undated.parquet")


def _partition_name(kind: str, label: str) -> str:
    return f"{kind}/session={label}/part.parquet"
