"""What a catalog holds, symbol by symbol: kinds, first and last times, sessions and rows.

Read from the catalog's manifest, which ingest keeps the coverage in. A raw folder is described
through a throwaway ingest (`describe_folder`), so that the rows counted are the rows a run
would accept: one validation, the repository's.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from ticktape.store.catalog import Manifest, is_catalog
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
    """Every (symbol, kind) of the catalog at `folder`, sorted by symbol then kind: from its
    manifest alone (ingest counts them as it writes the partitions)."""
    manifest = Manifest.read(Path(folder))
    found = [
        Coverage(symbol=symbol, kind=kind, **seen)
        for kind, by_symbol in manifest.coverage.items()
        for symbol, seen in by_symbol.items()
        if seen["rows"]
    ]
    return sorted(found, key=lambda c: (c.symbol, c.kind))


def describe_folder(
    folder: str | Path,
    *,
    calendar: str = "XNYS",
    label: str = "start",
    data_format: str = "auto",
    columns: Mapping[str, str] | None = None,
    tz: str | None = None,
    symbol_from_file: bool = False,
) -> list[Coverage]:
    """A catalog as it is; a raw folder as `ingest` would store it (nothing is written there),
    read with `ingest`'s column map, time zone and symbols from file names."""
    if is_catalog(folder):
        if columns or tz or symbol_from_file:
            raise DataConfigError(
                f"{folder} is a catalog: a column map, time zone or symbol from the file name "
                "is for files"
            )
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
            symbol_from_file=symbol_from_file,
        )
        return describe_catalog(catalog)
