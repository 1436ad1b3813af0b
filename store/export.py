"""`log export --format parquet`: the log's tables as Parquet files people and tools can read.

By default a folder with one file per kind (`Bar.parquet`, `Trade.parquet`, ...), each with that
kind's own columns, `timestamp[ns, UTC]` times and symbol names; with `union`, one file holding one
table of every selected kind in seq order. Tables come from `store.tables`, the one conversion.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ticktape.store import tables
from ticktape.store.eventlog import EventLog, LogError
from ticktape.store.inspect import Selection

_ROW_GROUP = 1 << 16  # a kind's rows are gathered into row groups of about this many


def export_parquet(log: EventLog, selection: Selection, out: Path, *, union: bool = False) -> int:
    """Write the selected events under `out` (a folder, or one file with `union`); missing
    folders are created. Returns the number of rows written."""
    if union:
        return _export_union(log, selection, out)
    if out.exists() and not out.is_dir():
        raise LogError(f"{out} is a file: Parquet export writes a folder (or use --union)")
    out.mkdir(parents=True, exist_ok=True)
    waiting: dict[str, list[pa.RecordBatch]] = {kind: [] for kind in selection.kinds}
    rows = 0
    with ExitStack() as files:
        writers: dict[str, pq.ParquetWriter] = {}

        def write(kind: str) -> None:
            if kind not in writers:
                path = out / f"{kind}.parquet"
                writers[kind] = files.enter_context(
                    pq.ParquetWriter(path, tables.kind_schema(kind))
                )
            writers[kind].write_table(
                pa.Table.from_batches(waiting[kind], tables.kind_schema(kind))
            )
            waiting[kind] = []

        for chunk in tables.read(log, selection):
            for kind, batch in chunk.batches.items():
                waiting.setdefault(kind, []).append(batch)
                rows += batch.num_rows
                if sum(b.num_rows for b in waiting[kind]) >= _ROW_GROUP:
                    write(kind)
        for kind in waiting:
            write(kind)
    return rows


def _export_union(log: EventLog, selection: Selection, out: Path) -> int:
    out.parent.mkdir(parents=True, exist_ok=True)
    schema = tables.union_schema(selection.kinds)
    rows = 0
    with pq.ParquetWriter(out, schema) as writer:
        for chunk in tables.read(log, selection):
            if chunk.rows:
                writer.write_batch(tables.union(chunk.batches, schema))
                rows += chunk.rows
    return rows
