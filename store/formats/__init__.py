"""The formats `ingest` reads: the project's own CSV/Parquet columns, LEAN's data folders, and
Databento's DBN files. Each vendor format is two rooms: `*_files` reads the container (zip,
zstd, the DBN header), the other turns its rows into the project's columns; `vendor` validates
them with the project's checks and serves them to `ingest`, so that nothing after it knows the
format. `open_source` is the one door; `--format auto` asks `detect`.
"""

from __future__ import annotations

import os
from pathlib import Path

from ticktape.store.formats.dbn_files import DBN_MAGIC, ZSTD_MAGIC, is_dbn_name
from ticktape.store.formats.lean_files import data_root
from ticktape.store.formats.vendor import VendorRepository
from ticktape.store.parsing import ReadAs
from ticktape.store.reading import is_data_name
from ticktape.store.repository import DataConfigError, MarketDataRepository

FORMATS = ("auto", "csv", "parquet", "lean", "dbn")
_ZIP_MAGIC = b"PK\x03\x04"


def open_source(
    folder: str | Path, fmt: str = "auto", *, label: str = "start", read_as: ReadAs | None = None
) -> MarketDataRepository | VendorRepository:
    """The repository that reads `folder` in format `fmt` (`auto`: the one `detect` finds).

    `csv` and `parquet` both name the project's own columns (a folder may mix them); LEAN and DBN
    stamp their bars at the start, so `label` applies to the project's own files only. Every
    format's rows are sorted by time, session by session (what `ingest` promises). `read_as` (a
    column map, a zone for naive times) is for the project's own files: a vendor format knows its
    columns and zone.
    """
    if fmt not in FORMATS:
        raise DataConfigError(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")
    if fmt == "auto":
        fmt = detect(Path(folder))
    if fmt in ("lean", "dbn") and read_as is not None and read_as.given:
        raise DataConfigError(
            f"a column map, time zone or symbol from the file name does not apply to {fmt} files"
        )
    if fmt == "lean":
        from ticktape.store.formats.lean import Lean

        return VendorRepository(folder, Lean())
    if fmt == "dbn":
        from ticktape.store.formats.dbn import Dbn

        return VendorRepository(folder, Dbn())
    return MarketDataRepository(folder, None, label=label, sort=True, read_as=read_as)


def detect(folder: Path) -> str:
    """The format of a folder, by content and layout: DBN files by their magic (`DBN` and a
    version, or a zstd frame), LEAN by zips (their magic) under a data root with a market hours
    database, else the project's own CSV/Parquet. A folder of more than one is a config error."""
    if not folder.is_dir():
        raise DataConfigError(f"source folder {folder} does not exist")
    found: set[str] = set()
    lean_root = data_root(folder) is not None
    csv = False
    for directory, _, names in os.walk(folder, followlinks=True):
        for name in names:
            if is_data_name(name):
                csv = True
                continue
            magic = _magic(Path(directory) / name)
            if (magic.startswith(DBN_MAGIC) or magic == ZSTD_MAGIC) and is_dbn_name(name):
                found.add("dbn")
            elif magic == _ZIP_MAGIC and lean_root:
                found.add("lean")
    if csv and "lean" not in found:  # a LEAN root keeps its map and factor files as CSV
        found.add("csv")
    if len(found) > 1:
        raise DataConfigError(
            f"{folder} holds files of more than one format ({', '.join(sorted(found))}); "
            "ingest each as its own source, or name one with --format"
        )
    return found.pop() if found else "csv"


def _magic(path: Path) -> bytes:
    try:
        with path.open("rb") as fh:
            return fh.read(4)
    except OSError:
        return b""
