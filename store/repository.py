"""The market-data repository: a folder of CSV and Parquet files in, validated session columns out.

The folder is scanned once, at construction: digests, kinds, symbols, and a small index per file
(block or row group -> time range, and the order-check state at its start), so that a bad config
fails with one sentence before anything runs (DESIGN §8) and `load_session` reads only the blocks
that overlap the session. Nothing holds a whole file (DESIGN §13). Reading bytes and lines is
`store.reading`, values `store.parsing`, verdicts `store.validation`; this module decides which
rows and rejections each session gets. Every bad row becomes one `DataRejected`, reported once:

- a rejected row with a usable time, with the first load of the session window it falls in;
- one without (bad time, malformed line, damaged tail), with the first loaded session whose window
  overlaps the file's dated time range, or the first session if the file has no dated row;
- a file that cannot be used, or a folder entry the walk skipped, in `file_rejections` (row 0);
- a bar another file already gave (same symbol and minute), in the later file.

A run takes each file's rows in file order: a row behind its symbol's latest accepted time is
out of order, and a file that has any is named once, in a warning that points to `ingest`.
`ingest` opens the folder with `sort=True`: each session's rows are sorted by time instead
(ties keep file order), so an unsorted file costs nothing; a bar repeated at the same minute is
still a duplicate, the first in file order kept.

Each row keeps its `source` (`store.release`: the file's place among the folder's sorted data
files, and the row's physical line, the header being line 1; for Parquet, the 1-based row).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from loguru import logger

from ticktape.messages import rejections as why
from ticktape.messages.columns import BarColumns, SessionInput
from ticktape.messages.events import DataRejected
from ticktape.messages.session import Session
from ticktape.store import stopping
from ticktape.store.parsing import (
    KIND_COLUMNS,
    DataConfigError,
    ReadAs,
    classify,
    csv_rows,
    repeated,
)
from ticktape.store.reading import (
    BLOCK_BYTES,
    READ_ERRORS,
    SCAN_THREADS,
    Lines,
    blocks,
    header_fields,
    is_gzip,
    is_parquet,
    read_block,
    split_lines,
    walk,
)
from ticktape.store.release import (
    SOURCE_BITS,
    Rows,
    drop_duplicate_bars,
    in_release_order,
    rows_between,
    session_input,
)
from ticktape.store.validation import Carry, Checked, check, widen

LABELS = ("start", "end")


class InputFile(msgspec.Struct, frozen=True):
    """A usable data file as found by the scan. Times are ns UTC; for bars, bar starts."""

    name: str  # path relative to the data folder, posix style
    kind: str  # "bars" | "trades" | "quotes"
    sha256: str
    ts_min: int | None  # min/max parseable timestamp seen at scan; None if none parse
    ts_max: int | None


@dataclass(frozen=True, slots=True)
class _Block:
    """One block (CSV) or row group (Parquet) of a file, as the scan saw it."""

    number: int
    offset: int
    size: int
    first_line: int
    ts_min: int | None
    ts_max: int | None
    undated: bool  # holds rows or lines rejected with no usable time
    carry: Carry  # the order-check state at its start


@dataclass(slots=True)
class _Read:
    """A block as read and checked, kept while sessions still need it: its verdicts, its bad
    lines, and what every load of it would otherwise derive again."""

    block: _Block
    checked: Checked
    bad_lines: list[DataRejected]
    ids: np.ndarray | None = None  # run symbol id of each accepted row (-1: not asked for)
    in_order: bool = False  # accepted rows in time order: a session is a slice of them

    def prepared(self, symbol_id: dict[str, int]) -> _Read:
        if self.ids is None:
            checked = self.checked
            ids = np.array([symbol_id.get(n, -1) for n in checked.names], np.int32)
            self.ids = ids[checked.symbol]
            ts = checked.ts
            self.in_order = len(ts) < 2 or bool((ts[1:] >= ts[:-1]).all())
        return self

    def rows_in(self, start: int, end: int) -> slice | np.ndarray:
        """The accepted rows with start <= ts < end: a slice (views, no copies) when in order."""
        return rows_between(self.checked.ts, self.in_order, start, end)


@dataclass(frozen=True, slots=True)
class _Source:
    """What the scan learned about one usable file."""

    index: int
    path: Path
    info: InputFile
    width: int  # fields in the header
    header_line: int
    at: dict[str, int]  # canonical column -> its place in the header
    blocks: tuple[_Block, ...]
    symbols: frozenset[str]
    damaged_from: int  # first line lost to a damaged gzip stream or row group; 0 if none
    ranges: dict[str, tuple[int, int]]  # (first, last) time of the dated rows, by symbol
    symbol: str | None = None  # every row's, when the file has no symbol column (named by it)

    @property
    def undated(self) -> bool:
        return self.damaged_from > 0 or any(b.undated for b in self.blocks)


class MarketDataRepository:
    """Validated market data of a folder of CSV/Parquet files, one session at a time.

    Thread-safe: Prefetch and Upkeep (backfill) may both load sessions. `role` names the folder
    in error messages ("data", "backfill").
    """

    def __init__(
        self,
        folder: str | Path,
        symbols: Sequence[str] | None,
        *,
        label: str = "start",
        role: str = "data",
        block_bytes: int = BLOCK_BYTES,
        sort: bool = False,
        read_as: ReadAs | None = None,
    ) -> None:
        """`symbols=None` takes every symbol the folder holds (what ingest wants); `sort=True`
        sorts each session's rows by time rather than rejecting rows out of order (ingest);
        `read_as` maps the files' header names and zones their naive timestamps."""
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
            raise DataConfigError(f"{role} folder {self.folder} does not exist")
        if not self.folder.is_dir():
            raise DataConfigError(f"{role} folder {self.folder} is not a directory")
        found = walk(self.folder)
        if (".", why.UNREADABLE_FOLDER) in found.skipped:
            raise DataConfigError(f"{role} folder {self.folder} cannot be read")
        if not found.files:
            raise DataConfigError(
                f"{role} folder {self.folder} holds no .csv, .csv.gz or .parquet files"
            )

        self.label = label
        self._block_bytes = block_bytes
        self._sort = sort
        self._read_as = read_as or ReadAs()
        self._header_names: set[str] = set()  # every header field seen, trimmed and lower-case
        self._wanted = None if names is None else frozenset(names)
        self._names = [p.relative_to(self.folder).as_posix() for p in found.files]
        self._digests: dict[int, str] = {}
        sources: list[_Source] = []
        rejections = [DataRejected(ts=0, reason=r, file=n, row=0) for n, r in found.skipped]
        # each file's last block read, checked: a block that straddles two sessions is read once
        self._last_block: dict[int, _Read] = {}
        with ThreadPoolExecutor(SCAN_THREADS) as pool:  # pyarrow and numpy release the GIL
            scans = list(pool.map(self._scan, range(len(found.files)), found.files))
        for scanned in scans:
            if isinstance(scanned, DataRejected):
                rejections.append(scanned)
            else:
                sources.append(scanned)
        self._sources = tuple(sources)
        self._check_column_map()
        if names is None:
            names = sorted(frozenset().union(*(s.symbols for s in sources)))
        self.symbols: tuple[str, ...] = tuple(sorted(set(names)))
        self._symbol_id = {name: i for i, name in enumerate(self.symbols)}
        self._position = {name: i for i, name in enumerate(self._names)}
        self.files: tuple[InputFile, ...] = tuple(s.info for s in sources)
        self.file_rejections: tuple[DataRejected, ...] = tuple(
            sorted(rejections, key=lambda r: r.file)
        )
        self._check_every_symbol_has_data(role)

        self._lock = threading.Lock()
        self._broken: set[int] = set()
        self._undated_reported: set[int] = set()
        self._windows_loaded: set[tuple[int, int]] = set()

    def dated_ranges(self, name: str) -> dict[str, tuple[int, int]]:
        """(first, last) time of the dated rows of file `name`, by symbol (the wanted ones and
        the blank one): the catalog places a file's undated rejections with these."""
        return next(s.ranges for s in self._sources if s.info.name == name)

    def coverage(self) -> dict[str, tuple[int, int]]:
        """(first, last) time of each requested symbol's dated rows, any kind, as the scan saw
        them (rejected rows with a time included); a symbol with none is absent."""
        found: dict[str, tuple[int, int]] = {}
        for source in self._sources:
            widen(found, {s: r for s, r in source.ranges.items() if s in self._symbol_id})
        return found

    def input_digests(self) -> tuple[str, ...]:
        """sha256 of every data file in the folder, rejected ones too: what the digest sees."""
        return tuple(sorted(self._digests.values()))

    def load_session(self, session: Session) -> SessionInput:
        """The requested symbols' rows in the session's window, validated and sorted, and the
        rejections that belong to this load (see the module docstring)."""
        start, end = session.window_start, session.window_end
        with self._lock:
            first_visit = (start, end) not in self._windows_loaded
            self._windows_loaded.add((start, end))
            parts: dict[str, list[Rows]] = {kind: [] for kind in KIND_COLUMNS}
            files: dict[str, int] = dict.fromkeys(KIND_COLUMNS, 0)  # files with rows, by kind
            rejected: list[DataRejected] = []
            for source in self._sources:
                if source.index in self._broken:
                    continue
                info = source.info
                overlaps = info.ts_min is None or (info.ts_min < end and info.ts_max >= start)
                undated = overlaps and source.undated and source.index not in self._undated_reported
                wanted = [
                    b
                    for b in source.blocks
                    if (undated and b.undated)
                    or (b.ts_min is not None and b.ts_min < end and b.ts_max >= start)
                ]
                if undated:
                    self._undated_reported.add(source.index)
                try:
                    rows = self._load(source, wanted, start, end, first_visit, undated, rejected)
                except READ_ERRORS as exc:
                    logger.warning("{} became unreadable: {}", source.path, exc)
                    self._broken.add(source.index)
                    rejected.append(
                        DataRejected(ts=0, reason=why.UNREADABLE_FILE, file=info.name, row=0)
                    )
                    continue
                if rows:
                    parts[info.kind].extend(rows)
                    files[info.kind] += 1

            bars = in_release_order(BarColumns, parts["bars"])
            if files["bars"] > 1 or self._sort:  # sorted, a file's repeated bars are neighbours
                duplicates = rejected if first_visit else None
                bars = drop_duplicate_bars(bars, self._names, self.symbols, duplicates)
            return session_input(session, self.symbols, bars, parts, rejected, self._position)

    def _load(
        self,
        source: _Source,
        wanted: list[_Block],
        start: int,
        end: int,
        first_visit: bool,
        undated: bool,
        rejected: list[DataRejected],
    ) -> list[Rows]:
        """The file's rows in [start, end) from the wanted blocks, unsorted; its rejections for
        this load go to `rejected`."""
        name = source.info.name
        rows: list[Rows] = []
        for read in self._checked_blocks(source, wanted):
            checked = read.checked
            for line, reason, symbol, ts in checked.rejected:
                if why.is_undated(reason):
                    due = undated
                else:
                    due = first_visit and ts is not None and start <= ts < end
                if due:
                    rejected.append(
                        DataRejected(ts=0, reason=reason, file=name, row=line, symbol=symbol)
                    )
            if undated:
                rejected.extend(read.bad_lines)
            read = read.prepared(self._symbol_id)
            inside = read.rows_in(start, end)
            ts = checked.ts[inside]
            if ts.size:
                rows.append(
                    Rows(
                        symbol=read.ids[inside],  # type: ignore[index]
                        ts=ts,
                        values={k: v[inside] for k, v in checked.values.items()},
                        source=(np.int64(source.index) << SOURCE_BITS) | checked.line[inside],
                    )
                )
        if undated and source.damaged_from:
            reason = why.UNREADABLE_ROW_GROUP if is_parquet(source.path) else why.DAMAGED_FROM_HERE
            rejected.append(DataRejected(ts=0, reason=reason, file=name, row=source.damaged_from))
        return rows

    # -- scanning and reading files -------------------------------------------------------------

    def _scan(self, index: int, path: Path) -> _Source | DataRejected:
        """Digest, kind, symbols and block index of a file; a whole-file problem is a rejection."""
        name = self._names[index]
        stopping.check()  # the files still queued after Ctrl-C are not read
        try:
            with path.open("rb") as fh:
                self._digests[index] = hashlib.file_digest(fh, "sha256").hexdigest()
            if is_parquet(path):
                return self._scan_parquet(index, path)
            return self._scan_csv(index, path)
        except READ_ERRORS as exc:
            logger.warning("cannot read {}: {}", path, exc)
            self._last_block.pop(index, None)
            return DataRejected(ts=0, reason=why.UNREADABLE_FILE, file=name, row=0)

    def _scan_csv(self, index: int, path: Path) -> _Source | DataRejected:
        name = self._names[index]
        cut, damage = blocks(path, self._block_bytes)
        first = next(cut, None)
        if first is None:
            reason = why.UNREADABLE_FILE if damage.line else why.NO_HEADER
            return DataRejected(ts=0, reason=reason, file=name, row=0)
        header = header_fields(first)
        if isinstance(header, str):
            return DataRejected(ts=0, reason=header, file=name, row=0)
        fields, header_line = header
        kind = self._classify(name, fields)
        if isinstance(kind, str):
            return DataRejected(ts=0, reason=kind, file=name, row=0)
        kind, at, symbol = kind
        source = _Source(
            index,
            path,
            None,  # type: ignore[arg-type]
            len(fields),
            header_line,
            at,
            (),
            frozenset(),
            0,
            {},
            symbol,
        )
        carry: Carry | None = None if self._sort else {}
        index_rows: list[_Block] = []
        symbols: set[str] = set()
        ranges: dict[str, tuple[int, int]] = {}
        late = 0  # rows out of order
        for block in _chain(first, cut):
            before = dict(carry or {})
            lines = split_lines(
                block, header_line, len(fields), at.get("symbol"), tuple(at.values())
            )
            table, line = csv_rows(lines, len(fields), at)
            checked = self._check(source, kind, table, line, carry)
            bad_lines = self._line_rejections(source, lines)
            entry = _index_entry(
                block.number,
                block.offset,
                len(block.data),
                block.first_line,
                checked,
                bool(bad_lines),
                before,
            )
            index_rows.append(entry)
            if block.number == 0:  # kept as if just loaded: a run usually starts in it
                self._last_block[index] = _Read(entry, checked, bad_lines)
            symbols.update(n for n in checked.names if self._wanted is None or n in self._wanted)
            widen(ranges, checked.dated_ranges())
            late += _out_of_order(checked)
        self._warn_unsorted(name, late)
        return self._source(source, kind, index_rows, symbols, damage.line, ranges)

    def _scan_parquet(self, index: int, path: Path) -> _Source | DataRejected:
        name = self._names[index]
        parquet = pq.ParquetFile(path)
        fields = tuple(parquet.schema_arrow.names)
        kind = self._classify(name, fields)
        if isinstance(kind, str):
            return DataRejected(ts=0, reason=kind, file=name, row=0)
        kind, at, symbol = kind
        source = _Source(index, path, None, len(fields), 0, at, (), frozenset(), 0, {}, symbol)  # type: ignore[arg-type]
        carry: Carry | None = None if self._sort else {}
        index_rows: list[_Block] = []
        symbols: set[str] = set()
        ranges: dict[str, tuple[int, int]] = {}
        first_row, damaged_from, late = 1, 0, 0
        for group in range(parquet.num_row_groups):
            rows = parquet.metadata.row_group(group).num_rows
            before = dict(carry or {})
            try:
                table, line = _row_group(parquet, source, group, first_row)
            except READ_ERRORS as exc:
                logger.warning("{}: unreadable row group {}: {}", path, group, exc)
                damaged_from = first_row
                break
            checked = self._check(source, kind, table, line, carry)
            index_rows.append(_index_entry(group, 0, rows, first_row, checked, False, before))
            symbols.update(n for n in checked.names if self._wanted is None or n in self._wanted)
            widen(ranges, checked.dated_ranges())
            late += _out_of_order(checked)
            first_row += rows
        self._warn_unsorted(name, late)
        return self._source(source, kind, index_rows, symbols, damaged_from, ranges)

    def _warn_unsorted(self, name: str, late: int) -> None:
        if late:
            logger.warning(
                "{} is not sorted by time: {:,} of its rows are rejected as out of order "
                "(`ticktape ingest` sorts each session's rows by time)",
                self.folder / name,
                late,
            )

    def _source(
        self,
        draft: _Source,
        kind: str,
        index: list[_Block],
        symbols: set[str],
        damaged: int,
        ranges: dict[str, tuple[int, int]],
    ) -> _Source:
        dated = [b for b in index if b.ts_min is not None]
        name = self._names[draft.index]
        return _Source(
            index=draft.index,
            path=draft.path,
            info=InputFile(
                name=name,
                kind=kind,
                sha256=self._digests[draft.index],
                ts_min=min((b.ts_min for b in dated), default=None),  # type: ignore[type-var]
                ts_max=max((b.ts_max for b in dated), default=None),  # type: ignore[type-var]
            ),
            width=draft.width,
            header_line=draft.header_line,
            at=draft.at,
            blocks=tuple(index),
            symbols=frozenset(symbols - {""}),
            damaged_from=damaged,
            ranges=ranges,
            symbol=draft.symbol,
        )

    def _checked_blocks(self, source: _Source, wanted: list[_Block]) -> Iterator[_Read]:
        """The wanted blocks of a file, read again and checked from their carried state."""
        if not wanted:
            return
        kind = source.info.kind
        if is_parquet(source.path):
            parquet = pq.ParquetFile(source.path)
            for b in wanted:
                table, line = _row_group(parquet, source, b.number, b.first_line)
                checked = self._check(source, kind, table, line, self._order(b.carry))
                yield _Read(b, checked, [])
            return
        numbers = {b.number: b for b in wanted}
        kept = self._last_block.get(source.index)
        if kept is not None and kept.block.number in numbers:  # the block two sessions share
            del numbers[kept.block.number]
            yield kept
            if not numbers:
                return
        if is_gzip(source.path):
            cut, _ = blocks(source.path, self._block_bytes)
            found = (blk for blk in cut if blk.number in numbers)
        else:
            found = (
                read_block(source.path, b.offset, b.size, b.number, b.first_line)
                for b in numbers.values()
            )
        last = max(numbers)
        for block in found:
            b = numbers[block.number]
            lines = split_lines(
                block,
                source.header_line,
                source.width,
                source.at.get("symbol"),
                tuple(source.at.values()),
            )
            table, line = csv_rows(lines, source.width, source.at)
            checked = self._check(source, kind, table, line, self._order(b.carry))
            read = _Read(b, checked, self._line_rejections(source, lines))
            self._last_block[source.index] = read
            yield read
            if block.number == last:
                return

    def _classify(
        self, name: str, fields: tuple[str, ...]
    ) -> tuple[str, dict[str, int], str | None] | str:
        """The kind, the places of its columns and the file's symbol when its rows name none
        (then the symbol has no place), else the reason the file is rejected."""
        self._header_names.update([f.strip().lower() for f in fields])
        header = self._read_as.header(fields)
        symbol = self._read_as.file_symbol(name, header)
        found = classify(header if symbol is None else (*header, "symbol"))
        if isinstance(found, str):
            return found
        kind, at = found
        if symbol is not None:
            del at["symbol"]
        return kind, at, symbol

    def _check(
        self, source: _Source, kind: str, table: pa.Table, line: np.ndarray, carry: Carry | None
    ) -> Checked:
        if source.symbol is not None:
            table = table.append_column("symbol", repeated(source.symbol, table.num_rows))
        return check(kind, table, line, self._wanted, self.label, carry, self._read_as.tz)

    def _check_column_map(self) -> None:
        """A mapped header name that no file has is a typo, not a file to reject."""
        for name, header in self._read_as.columns.items():
            if header.strip().lower() not in self._header_names:
                raise DataConfigError(
                    f"column map {name}={header}: no file in {self.folder} has a column {header!r}"
                )

    def _order(self, carry: Carry) -> Carry | None:
        """The order-check state a block starts from (a copy), or None when rows are sorted."""
        return None if self._sort else dict(carry)

    def _line_rejections(self, source: _Source, lines: Lines) -> list[DataRejected]:
        """Lines that could not be delimited or decoded; those of a symbol not asked for (one
        that decodes) are not this run's business."""
        found = []
        for line, reason, raw in lines.bad:
            try:
                symbol = raw.decode("utf-8") if source.symbol is None else source.symbol
            except UnicodeDecodeError:
                symbol = ""
            if symbol and self._wanted is not None and symbol not in self._wanted:
                continue
            name = self._names[source.index]
            found.append(DataRejected(ts=0, reason=reason, file=name, row=line, symbol=symbol))
        return found

    def _check_every_symbol_has_data(self, role: str) -> None:
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
        raise DataConfigError(
            f"no data for {noun} {', '.join(missing)} in {role} folder {self.folder}{hint}"
        )


def _out_of_order(checked: Checked) -> int:
    return sum(reason == why.OUT_OF_ORDER for _, reason, _, _ in checked.rejected)


def _chain(first: object, rest: Iterator) -> Iterator:
    yield first
    yield from rest


def _index_entry(
    number: int,
    offset: int,
    size: int,
    first_line: int,
    checked: Checked,
    bad_lines: bool,
    carry: Carry,
) -> _Block:
    dated = checked.dated
    return _Block(
        number=number,
        offset=offset,
        size=size,
        first_line=first_line,
        ts_min=int(dated.min()) if len(dated) else None,
        ts_max=int(dated.max()) if len(dated) else None,
        undated=bad_lines or any(ts is None for *_, ts in checked.rejected),
        carry=carry,
    )


def _row_group(
    parquet: pq.ParquetFile, source: _Source, group: int, first_row: int
) -> tuple[pa.Table, np.ndarray]:
    names = parquet.schema_arrow.names
    wanted = [names[i] for i in source.at.values()]
    table = parquet.read_row_group(group, columns=wanted)
    table = table.rename_columns(list(source.at))
    return table, first_row + np.arange(table.num_rows, dtype=np.int64)
