"""Reading a catalog: a run's sessions from their partitions, each proved by its size and hash."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ticktape.messages.columns import BarColumns, QuoteColumns, SessionInput, TradeColumns
from ticktape.messages.events import DataRejected
from ticktape.messages.session import Session
from ticktape.store.catalog import (
    COLUMN_TYPES,
    TIME_COLUMN,
    Manifest,
    plain_strings,
    positions,
)
from ticktape.store.parsing import strings, to_numpy
from ticktape.store.release import SOURCE_BITS
from ticktape.store.repository import (
    KIND_COLUMNS,
    LABELS,
    DataConfigError,
    InputFile,
)
from ticktape.store.validation import failing_values, widen


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

    def coverage(self) -> dict[str, tuple[int, int]]:
        """(first, last) time of each requested symbol's rows, any kind, from the manifest; a
        symbol with none is absent."""
        found: dict[str, tuple[int, int]] = {}
        for by_symbol in self.manifest.coverage.values():
            wanted = {s: by_symbol[s] for s in self.symbols if by_symbol.get(s, {}).get("rows")}
            widen(found, {s: (seen["first"], seen["last"]) for s, seen in wanted.items()})
        return found

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
        time, values = TIME_COLUMN[kind], KIND_COLUMNS[kind]
        wanted = {} if self._filter is None else {"symbol": self._filter}
        table = self._read(name, ["symbol", time, *values, "file", "line"], wanted)
        source = (positions(table["file"], self._ranks) << SOURCE_BITS) | to_numpy(table["line"])
        reason = failing_values(
            kind, {v: to_numpy(table[v]) for v in values}, to_numpy(table[time])
        )
        if reason:  # checked as the repository checks rows, whatever the hashes say
            raise self._changed(name, f"a row the repository rejects: {reason}")
        return COLUMN_TYPES[kind](
            symbol=positions(table["symbol"], self._universe).astype(np.int32),
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
                plain_strings(table["file"]),
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
