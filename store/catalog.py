"""The catalog: market data validated once and stored as Parquet, one partition per session.

`ingest` reads any folder of CSV/Parquet through `MarketDataRepository` (so validation is the
repository's, unchanged) and writes each session window's rows, kind by kind, sorted by
(time, symbol, file, line), with the original file name and line of every row. A run over the
catalog then reads only its sessions' partitions, symbols and columns (DESIGN §13), and
`CatalogRepository` hands it exactly what the raw folder would have: the same rows in the same
order, the same rejections at the same moments, so the digest is the same. One exception, on
purpose: ingest sorts each session's rows by time, where a raw run rejects the rows of an
unsorted file that come behind their symbol's latest time (and says so once per file).

Three rooms: this module is the catalog's format (its manifest and the few column helpers both
sides share); `store.catalog_ingest` writes a catalog; `store.catalog_reader` reads one for a run.

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
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ticktape.messages.columns import BarColumns, QuoteColumns, TradeColumns
from ticktape.store.parsing import to_numpy
from ticktape.store.repository import (
    KIND_COLUMNS,
    DataConfigError,
)

MANIFEST = "catalog.json"
FORMAT = "ticktape-catalog"
# 2: sources with undated rows keep their dated ranges by symbol; 3: coverage by kind and symbol,
# and how each source was read (column map, time zone)
VERSION = 3
ROW_GROUP_ROWS = 128 * 1024
# Text columns repeat a few values; numbers are mostly distinct, so a dictionary tried on them
# only costs time and bytes before Parquet falls back to plain pages.
_DICTIONARY_COLUMNS = ["symbol", "file", "reason"]
# Times and line numbers rise through a partition: delta encoding stores their steps.
_DELTA_COLUMNS = {name: "DELTA_BINARY_PACKED" for name in ("ts_start", "ts", "line", "row")}

TIME_COLUMN = {"bars": "ts_start", "trades": "ts", "quotes": "ts"}
COLUMN_TYPES = {"bars": BarColumns, "trades": TradeColumns, "quotes": QuoteColumns}
REJECTED_SCHEMA = pa.schema(
    [
        ("file", pa.dictionary(pa.int32(), pa.string())),
        ("row", pa.int64()),
        ("reason", pa.string()),
        ("symbol", pa.string()),
    ]
)


def is_catalog(folder: str | Path) -> bool:
    return (Path(folder) / MANIFEST).is_file()


def sha256_of(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def kind_schema(kind: str) -> pa.Schema:
    return pa.schema(
        [
            ("symbol", pa.dictionary(pa.int32(), pa.string())),
            (TIME_COLUMN[kind], pa.int64()),
            *[(name, pa.float64()) for name in KIND_COLUMNS[kind]],
            ("file", pa.dictionary(pa.int32(), pa.string())),
            ("line", pa.int64()),
        ]
    )


def positions(column: pa.ChunkedArray, values: pa.Array) -> np.ndarray:
    """Where each value of a (dictionary) string column sits in `values`; -1 if absent.

    A dictionary column is mapped through its dictionary, so the work is per distinct value.
    """
    parts = []
    for chunk in column.chunks:
        if pa.types.is_dictionary(chunk.type):
            parts.append(index_in(chunk.dictionary, values)[to_numpy(chunk.indices)])
        else:
            parts.append(index_in(chunk, values))
    if not parts:
        return np.empty(0, dtype=np.int64)
    return np.concatenate(parts).astype(np.int64)


def index_in(column: pa.Array, values: pa.Array) -> np.ndarray:
    """Each value's position in `values`, -1 if absent (numpy fills the misses: `pc.fill_null`
    makes a pyarrow scalar, which imports pandas)."""
    found = pc.index_in(column, value_set=values)
    if not len(found):
        return np.empty(0, dtype=np.int64)
    position = np.frombuffer(found.buffers()[1], np.int32, len(found), found.offset * 4)
    return np.where(to_numpy(pc.is_valid(found)), position, -1)


def symbol_ranges(table: pa.Table, time: str) -> list[tuple[str, int, int, int]]:
    """(symbol, first time, last time, rows) of each symbol of a table."""
    if not table.num_rows:
        return []
    grouped = table.group_by("symbol").aggregate([(time, "min"), (time, "max"), (time, "count")])
    return list(
        zip(
            plain_strings(grouped["symbol"]),
            *(grouped[f"{time}_{f}"].to_pylist() for f in ("min", "max", "count")),
            strict=True,
        )
    )


def plain_strings(column: pa.ChunkedArray) -> list[str]:
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
    # kind -> symbol -> its rows: first, last (ns UTC), rows, sessions, first_session, last_session
    coverage: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)

    @classmethod
    def read(cls, folder: Path) -> Manifest:
        try:
            data = json.loads((folder / MANIFEST).read_text())
        except (OSError, ValueError) as exc:
            message = f"catalog manifest {folder / MANIFEST} is unreadable ({exc})"
            raise DataConfigError(message) from None
        if data.get("format") != FORMAT or data.get("version") != VERSION:
            raise DataConfigError(
                f"{folder / MANIFEST} is not a version {VERSION} catalog; ingest its files again "
                "into a new catalog"
            )
        try:
            manifest = cls(
                calendar=data["calendar"],
                label=data["label"],
                symbols=data["symbols"],
                sources=data["sources"],
                file_rejections=data["file_rejections"],
                partitions=data["partitions"],
                undated=data["undated"],
                coverage=data["coverage"],
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
        write_atomically(folder / MANIFEST, text.encode())

    def cover(self, kind: str, label: str, new: pa.Table, old: set[str], gone: pa.Table) -> None:
        """Count a session's `new` rows of a kind in the coverage: `old` are the symbols its
        partition had before, `gone` the rejections of its rows that turned out duplicates."""
        by_symbol = self.coverage.setdefault(kind, {})
        for symbol, first, last, rows in symbol_ranges(new, TIME_COLUMN[kind]):
            seen = by_symbol.setdefault(symbol, {"first": first, "last": last, "rows": 0})
            seen["first"], seen["last"] = min(seen["first"], first), max(seen["last"], last)
            seen["rows"] += rows
            seen["sessions"] = seen.get("sessions", 0) + (symbol not in old)
            seen["first_session"] = min(seen.get("first_session", label), label)
            seen["last_session"] = max(seen.get("last_session", label), label)
        if gone.num_rows:  # a duplicate's time is its kept twin's: only the rows change
            counts = gone.group_by("symbol").aggregate([("symbol", "count")])
            for symbol, rows in zip(
                plain_strings(counts["symbol"]), counts["symbol_count"].to_pylist(), strict=True
            ):
                by_symbol[symbol]["rows"] -= rows

    def names(self) -> list[str]:
        """Every original data file name, sorted: a row's file rank is its place here."""
        return sorted(self.sources)


def write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    os.replace(partial, path)
