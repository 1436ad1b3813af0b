"""What a catalog holds, symbol by symbol: kinds, first and last times, sessions and rows.

Read from the manifest and the partitions' symbol and time columns only. A raw folder is
described through a throwaway ingest (`describe_folder`), so that the rows counted are the rows a
run would accept: one validation, the repository's.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ticktape.store.catalog import TIME_COLUMN, Manifest, is_catalog
from ticktape.store.catalog_ingest import ingest
from ticktape.store.parsing import DataConfigError


@dataclass(frozen=True, slots=True)
class Coverage:
    """One symbol's rows of one kind. Times are ns UTC (for bars, bar starts)."""

    symbol: str
    kind: str
    first: int
    last: int
    first_session: str
    last_session: str
    sessions: int
    rows: int

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def describe_catalog(folder: str | Path) -> list[Coverage]:
    """Every (symbol, kind) of the catalog at `folder`, sorted by symbol then kind."""
    folder = Path(folder)
    manifest = Manifest.read(folder)
    parts: dict[tuple[str, str], list[tuple[str, int, int, int]]] = {}
    for label in sorted(manifest.partitions):
        for kind, entry in sorted(manifest.partitions[label]["kinds"].items()):
            table = pq.read_table(folder / entry["path"], columns=["symbol", TIME_COLUMN[kind]])
            if not table.num_rows:
                continue
            table = table.set_column(0, "symbol", pc.cast(table["symbol"], pa.string()))
            grouped = table.group_by("symbol").aggregate(
                [
                    (TIME_COLUMN[kind], "min"),
                    (TIME_COLUMN[kind], "max"),
                    (TIME_COLUMN[kind], "count"),
                ]
            )
            for symbol, lo, hi, rows in zip(*(c.to_pylist() for c in grouped.columns), strict=True):
                parts.setdefault((symbol, kind), []).append((label, lo, hi, rows))
    return [
        Coverage(
            symbol=symbol,
            kind=kind,
            first=min(p[1] for p in seen),
            last=max(p[2] for p in seen),
            first_session=seen[0][0],
            last_session=seen[-1][0],
            sessions=len(seen),
            rows=sum(p[3] for p in seen),
        )
        for (symbol, kind), seen in sorted(parts.items())
    ]


def describe_folder(
    folder: str | Path,
    *,
    calendar: str = "XNYS",
    label: str = "start",
    data_format: str = "auto",
    columns: Mapping[str, str] | None = None,
    tz: str | None = None,
) -> list[Coverage]:
    """A catalog as it is; a raw folder as `ingest` would store it (nothing is written there),
    read with `ingest`'s column map and time zone."""
    if is_catalog(folder):
        if columns or tz:
            raise DataConfigError(f"{folder} is a catalog: a column map or time zone is for files")
        return describe_catalog(folder)
    with tempfile.TemporaryDirectory(prefix="ticktape-info-") as scratch:
        catalog = Path(scratch) / "catalog"
        ingest(
            [folder],
            catalog,
            calendar=calendar,
            label=label,
            data_format=data_format,
            columns=columns,
            tz=tz,
        )
        return describe_catalog(catalog)
