"""A folder of a vendor's files read like a raw folder of CSV: the repository `ingest` reads.

A format (LEAN, DBN) knows its container and its records: `scan` finds each file's kind, symbols
and time bounds without reading its rows, `decode` turns one file into the project's columns
(symbol, timestamp in ns UTC, the kind's values) with each row's line or record number. Everything
after that is the project's: `store.validation.check` gives the verdicts, and this class hands
`ingest` the same `load_session` answers that `MarketDataRepository` gives for CSV, so the catalog
and every run after it are format-blind.

A file is decoded once, by the first load whose session window overlaps its bounds, and kept
until the loads have passed its bounds (`ingest` loads sessions in order): memory holds the files
of about one session. Rejections are placed as the CSV repository places them: a dated one with
the first load of its window; an undated one (no usable time, a cut-off tail, a row outside the
bounds its file names) with the load that decoded the file.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
from loguru import logger

from ticktape.messages import rejections as why
from ticktape.messages.columns import BarColumns, SessionInput
from ticktape.messages.events import DataRejected
from ticktape.messages.session import Session
from ticktape.store.parsing import KIND_COLUMNS, to_numpy
from ticktape.store.reading import SCAN_THREADS, walk
from ticktape.store.release import (
    SOURCE_BITS,
    SOURCE_MASK,
    Rows,
    drop_duplicate_bars,
    in_release_order,
    rows_between,
    session_input,
)
from ticktape.store.repository import DataConfigError, InputFile
from ticktape.store.validation import check, widen

_KEY = "\x1f"  # joins a file's index to a symbol: the order checks run per file and symbol

Rejection = tuple[int, str, str, int | None]  # (line or record, reason, symbol, ts if dated)


class Unusable(Exception):
    """A file that cannot be used as a whole; `reason` is its stable rejection reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class VendorFile:
    """A file as a format's scan found it: what it holds, or why it cannot be used."""

    name: str  # relative to the source folder, posix
    path: Path
    kind: str = ""  # bars | trades | quotes
    symbols: tuple[str, ...] = ()
    ts_min: int | None = None  # bounds of its rows (inclusive), ns UTC
    ts_max: int | None = None
    reason: str = ""  # a whole-file rejection
    detail: Any = None  # what the format's decode needs (layout, zone, metadata)
    sha256: str = ""  # when the scan read the whole file anyway ("": the repository hashes it)


@dataclass(slots=True)
class Decoded:
    """One file's rows as the project's columns, not yet validated."""

    table: pa.Table  # symbol (string), timestamp (int64 ns UTC), the kind's value columns
    row: np.ndarray  # line or record number of each row (int64)
    rejected: list[Rejection] = field(default_factory=list)  # the format's own verdicts
    damaged_from: int = 0  # first line or record lost to a cut-off stream; 0 if none
    damage: str = ""


class Format(Protocol):
    name: str

    def wanted(self, name: str) -> bool:
        """Whether a file name is one of the format's (the folder walk keeps those)."""

    def scan(self, folder: Path, files: list[Path]) -> list[VendorFile]:
        """Kind, symbols and bounds of each file, from its path and header only."""

    def decode_many(self, files: Sequence[VendorFile]) -> list[Decoded | Exception]:
        """Each file's rows, or why it cannot be read (`Unusable`, an OSError/ValueError)."""


@dataclass(slots=True)
class _Batch:
    """The checked rows of the files one load decoded, of one kind."""

    kind: str
    ts_max: int
    ids: np.ndarray  # universe id of each accepted row
    ts: np.ndarray
    values: dict[str, np.ndarray]
    source: np.ndarray
    dated: list[tuple[int, str, str, int]]  # (source, reason, symbol, ts)
    in_order: bool  # rows in time order: a session's rows are a slice of them

    def rows_in(self, start: int, end: int) -> slice | np.ndarray | None:
        """The rows with start <= ts < end (a slice, no copies, when in order), None if none."""
        inside = rows_between(self.ts, self.in_order, start, end)
        found = inside.stop > inside.start if isinstance(inside, slice) else inside.any()
        return inside if found else None


class VendorRepository:
    """The rows of a folder of one vendor format, one session at a time (what `ingest` needs of
    `MarketDataRepository`: `folder`, `files`, `file_rejections`, `symbols`, `load_session`)."""

    def __init__(self, folder: str | Path, fmt: Format) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise DataConfigError(f"source folder {self.folder} does not exist")
        self.format = fmt
        found = walk(self.folder, fmt.wanted)
        if (".", why.UNREADABLE_FOLDER) in found.skipped:
            raise DataConfigError(f"source folder {self.folder} cannot be read")
        if not found.files:
            raise DataConfigError(f"source folder {self.folder} holds no {fmt.name} files")
        scanned = fmt.scan(self.folder, found.files)
        unread = [f.path for f in scanned if not f.sha256]
        with ThreadPoolExecutor(SCAN_THREADS) as pool:
            hashed = dict(zip(unread, pool.map(_sha256, unread), strict=True))
        self.digests = {f.name: f.sha256 or hashed[f.path] for f in scanned}
        usable = [f for f in scanned if not f.reason]
        rejections = [DataRejected(ts=0, reason=r, file=n, row=0) for n, r in found.skipped]
        rejections += [
            DataRejected(ts=0, reason=f.reason, file=f.name, row=0) for f in scanned if f.reason
        ]
        self.file_rejections = tuple(r for r in sorted(rejections, key=_by_file) if r.reason)
        names = sorted({f.name for f in scanned} | {n for n, _ in found.skipped})
        self._index = {name: i for i, name in enumerate(names)}
        self._names = names
        self._files = usable
        self._ts_min = np.array([f.ts_min for f in usable], dtype=np.int64)
        self._ts_max = np.array([f.ts_max for f in usable], dtype=np.int64)
        self._bound = {f.name: f.ts_max for f in usable}
        self.files = tuple(
            InputFile(f.name, f.kind, self.digests[f.name], f.ts_min, f.ts_max) for f in usable
        )
        self.symbols: tuple[str, ...] = tuple(sorted({s for f in usable for s in f.symbols}))
        self._symbol_id = {name: i for i, name in enumerate(self.symbols)}
        self._lock = threading.Lock()
        self._batches: list[_Batch] = []
        self._decoded: set[str] = set()  # files whose rows are in a batch
        self._reported: set[str] = set()  # files whose undated rejections went out
        self._windows_loaded: set[tuple[int, int]] = set()
        self._ranges: dict[str, dict[str, tuple[int, int]]] = {}

    def dated_ranges(self, name: str) -> dict[str, tuple[int, int]]:
        """(first, last) time of the dated rows of file `name` read so far, by symbol: the
        catalog places a file's undated rejections with these."""
        return self._ranges.get(name, {})

    def input_digests(self) -> tuple[str, ...]:
        return tuple(sorted(self.digests.values()))

    def load_session(self, session: Session) -> SessionInput:
        start, end = session.window_start, session.window_end
        with self._lock:
            first_visit = (start, end) not in self._windows_loaded
            self._windows_loaded.add((start, end))
            self._batches = [b for b in self._batches if b.ts_max >= start]
            self._decoded = {n for n in self._decoded if self._bound[n] >= start}
            rejected: list[DataRejected] = []
            overlapping = np.flatnonzero((self._ts_min < end) & (self._ts_max >= start))
            due = [self._files[i] for i in overlapping.tolist()]
            due = [f for f in due if f.name not in self._decoded]
            self._decode(due, rejected)
            parts: dict[str, list[Rows]] = {kind: [] for kind in KIND_COLUMNS}
            for batch in self._batches:
                inside = batch.rows_in(start, end)
                if inside is not None:
                    parts[batch.kind].append(
                        Rows(
                            symbol=batch.ids[inside],
                            ts=batch.ts[inside],
                            values={k: v[inside] for k, v in batch.values.items()},
                            source=batch.source[inside],
                        )
                    )
                if first_visit:
                    rejected += [
                        self._rejection(source, reason, symbol)
                        for source, reason, symbol, ts in batch.dated
                        if start <= ts < end
                    ]
            bars = in_release_order(BarColumns, parts["bars"])
            bars = drop_duplicate_bars(
                bars, self._names, self.symbols, rejected if first_visit else None
            )
            return session_input(session, self.symbols, bars, parts, rejected, self._index)

    def _rejection(self, source: int, reason: str, symbol: str) -> DataRejected:
        return DataRejected(
            ts=0,
            reason=reason,
            file=self._names[source >> SOURCE_BITS],
            row=source & SOURCE_MASK,
            symbol=symbol,
        )

    def _decode(self, due: Sequence[VendorFile], rejected: list[DataRejected]) -> None:
        """Decode the due files and check their rows, kind by kind, in one call each."""
        by_kind: dict[str, list[tuple[VendorFile, Decoded]]] = {}
        for file, decoded in zip(due, self.format.decode_many(due), strict=True):
            self._decoded.add(file.name)
            report = file.name not in self._reported
            self._reported.add(file.name)
            if isinstance(decoded, Exception):
                logger.warning("cannot read {}: {}", file.path, decoded)
                reason = decoded.reason if isinstance(decoded, Unusable) else why.UNREADABLE_FILE
                if report:
                    rejected.append(DataRejected(ts=0, reason=reason, file=file.name, row=0))
                continue
            decoded = _within_bounds(decoded, file)
            if report:
                rejected += [
                    DataRejected(ts=0, reason=reason, file=file.name, row=row, symbol=symbol)
                    for row, reason, symbol, ts in decoded.rejected
                    if ts is None
                ]
                if decoded.damaged_from:
                    rejected.append(
                        DataRejected(
                            ts=0, reason=decoded.damage, file=file.name, row=decoded.damaged_from
                        )
                    )
            by_kind.setdefault(file.kind, []).append((file, decoded))
        for kind, files in by_kind.items():
            self._batches.append(self._checked(kind, files, rejected))

    def _checked(
        self, kind: str, files: list[tuple[VendorFile, Decoded]], rejected: list[DataRejected]
    ) -> _Batch:
        keyed, source, dated = [], [], []
        for file, decoded in files:
            index = self._index[file.name]
            symbols = decoded.table.column("symbol").combine_chunks().dictionary_encode()
            names = [f"{index}{_KEY}{s}" for s in symbols.dictionary.to_pylist()]
            keyed.append(
                decoded.table.set_column(
                    0,
                    "symbol",
                    pa.DictionaryArray.from_arrays(symbols.indices, pa.array(names, pa.string())),
                )
            )
            source.append((np.int64(index) << SOURCE_BITS) | decoded.row)
            dated += [
                ((index << SOURCE_BITS) | row, reason, symbol, ts)
                for row, reason, symbol, ts in decoded.rejected
                if ts is not None
            ]
        table = pa.concat_tables(keyed, promote_options="permissive")
        checked = check(kind, table, np.concatenate(source), None, "start", None)  # sorted later
        universe = np.array(
            [self._symbol_id.get(n.split(_KEY, 1)[1], -1) for n in checked.names], np.int32
        )
        for source_row, reason, symbol, ts in checked.rejected:
            symbol = symbol.split(_KEY, 1)[-1]
            if ts is None:
                rejected.append(self._rejection(source_row, reason, symbol))
            else:
                dated.append((source_row, reason, symbol, ts))
        for code, lo, hi in _ranges(checked.dated_symbol, checked.dated):
            index, symbol = checked.names[code].split(_KEY, 1)
            widen(self._ranges.setdefault(self._names[int(index)], {}), {symbol: (lo, hi)})
        for source_row, _, symbol, ts in dated:
            name = self._names[source_row >> SOURCE_BITS]
            widen(self._ranges.setdefault(name, {}), {symbol: (ts, ts)})
        return _Batch(
            kind=kind,
            ts_max=max(f.ts_max for f, _ in files),  # type: ignore[type-var]
            ids=universe[checked.symbol] if len(universe) else checked.symbol,
            ts=checked.ts,
            values=checked.values,
            source=checked.line,
            dated=dated,
            in_order=bool((checked.ts[1:] >= checked.ts[:-1]).all()),
        )


def _ranges(codes: np.ndarray, ts: np.ndarray) -> Iterable[tuple[int, int, int]]:
    """(code, first, last) of the times of each code, in one pass each (no sort)."""
    if not len(ts):
        return []
    rows = np.bincount(codes)
    used = np.flatnonzero(rows)
    lo = np.full(len(rows), np.iinfo(np.int64).max)
    hi = np.full(len(rows), np.iinfo(np.int64).min)
    np.minimum.at(lo, codes, ts)
    np.maximum.at(hi, codes, ts)
    return zip(used.tolist(), lo[used].tolist(), hi[used].tolist(), strict=True)


def _within_bounds(decoded: Decoded, file: VendorFile) -> Decoded:
    """Rows outside the bounds the file names are rejected: no session would load them."""
    ts = to_numpy(decoded.table.column("timestamp"))
    outside = (ts < file.ts_min) | (ts > file.ts_max)
    if not outside.any():
        return decoded
    symbols = decoded.table.column("symbol")
    for i in np.flatnonzero(outside).tolist():
        decoded.rejected.append(
            (int(decoded.row[i]), why.TIME_OUTSIDE_FILE, symbols[i].as_py() or "", None)
        )
    keep = ~outside
    decoded.table = decoded.table.filter(pa.array(keep))
    decoded.row = decoded.row[keep]
    return decoded


def _sha256(path: Path) -> str:
    try:
        with path.open("rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest()
    except OSError:
        return ""


def _by_file(rejection: DataRejected) -> str:
    return rejection.file
