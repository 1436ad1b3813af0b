"""The log as Arrow tables: one conversion from stored records to columns, for every reader.

Each kind gets its own columns: `seq`, then its fields with Arrow types (times as
`timestamp[ns, UTC]`, symbols as their names). `TrailingBars` becomes one row per bar it carries.
Several kinds go into one table ordered by seq (`union`): `seq`, `kind`, `ts`, `symbol` and every
kind's fields, null where a kind has no such field. Parquet export, Flight serving and anyone who
wants columns read the log through `read` (a snapshot up to the committed head) or `follow` (a live
log, at the pace of its commits). Records are decoded a batch at a time into numpy columns and
handed to Arrow without a Python object per event.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ticktape.messages.codec import decode_columns
from ticktape.messages.events import EVENT_TYPES, RunStarted
from ticktape.store.eventlog import EventLog
from ticktape.store.inspect import Selection

TIME = pa.timestamp("ns", tz="UTC")
END_KINDS = ("RunFinished", "Stopped", "ActorFailed")  # a run writes nothing after these
_KIND_CODE = {name: i for i, name in enumerate(EVENT_TYPES)}
_TIMES = {"ts", "ts_start", "session_open", "session_close", "break_start", "break_end"}
_KIND_TIMES = {"SessionOpened": {"open", "close"}}
_BAR_BYTES = {"symbol": "<i4", "ts_start": "<i8"}  # TrailingBars' byte columns; the rest <f8
_BLOCKS = 64  # stored blocks per batch read
FOLLOW_BLOCKS = 8  # a live commit is sent on in pieces, the first before the rest is decoded
EVERYTHING = Selection()


# -- schemas ------------------------------------------------------------------------------------


def _arrow_type(kind: str, name: str, hint: Any) -> pa.DataType:
    if hint is bytes:  # TrailingBars: a column of bars, exported one row per bar
        return {"symbol": pa.string(), "ts_start": TIME}.get(name, pa.float64())
    if hint is int and (name in _TIMES or name in _KIND_TIMES.get(kind, ())):
        return TIME
    scalar = {bool: pa.bool_(), int: pa.int64(), float: pa.float64(), str: pa.string()}
    if hint in scalar:
        return scalar[hint]
    return pa.list_(pa.int64() if int in getattr(hint, "__args__", ()) else pa.string())


@cache
def kind_schema(kind: str) -> pa.Schema:
    """One kind's own columns: `seq`, then its fields in the order of the event."""
    fields = msgspec.structs.fields(EVENT_TYPES[kind])
    return pa.schema(
        [("seq", pa.int64())] + [(f.name, _arrow_type(kind, f.name, f.type)) for f in fields]
    )


@cache
def _union_columns() -> tuple[dict[str, pa.DataType], dict[tuple[str, str], str]]:
    """Every kind's fields once: a field whose type differs between kinds (SessionOpened's
    `open`/`close` are times, a bar's are prices) keeps its name for the type most kinds use;
    the others become `<field>_<Kind>`. Returns column -> type and the renames."""
    types: dict[str, Counter[pa.DataType]] = {}
    for kind in EVENT_TYPES:
        for f in kind_schema(kind):
            types.setdefault(f.name, Counter())[f.type] += 1
    columns = {"seq": pa.int64(), "kind": pa.string(), "ts": TIME, "symbol": pa.string()}
    renames = {}
    for kind in EVENT_TYPES:
        for f in kind_schema(kind):
            column = f.name
            if f.type != types[f.name].most_common(1)[0][0]:
                column = renames[(kind, f.name)] = f"{f.name}_{kind}"
            columns.setdefault(column, f.type)
    return columns, renames


@cache
def union_schema(kinds: tuple[str, ...] = ()) -> pa.Schema:
    """One ordered table of several kinds (all when none are named): `seq`, `kind`, `ts`,
    `symbol`, then the fields of those kinds, each nullable. Column names do not depend on which
    kinds are asked for."""
    columns, renames = _union_columns()
    wanted = {"seq", "kind", "ts", "symbol"}
    for kind in kinds or EVENT_TYPES:
        wanted.update(renames.get((kind, f.name), f.name) for f in kind_schema(kind))
    return pa.schema([(name, t) for name, t in columns.items() if name in wanted])


def schema_for(kinds: Sequence[str]) -> pa.Schema:
    """What a reader of these kinds gets: one kind's own columns, or the union's."""
    return kind_schema(kinds[0]) if len(kinds) == 1 else union_schema(tuple(kinds))


# -- columns to Arrow ---------------------------------------------------------------------------


def _array(values: np.ndarray, arrow_type: pa.DataType) -> pa.Array:
    if arrow_type == TIME:
        return pa.array(values.astype(np.int64, copy=False)).view(TIME)
    if values.dtype.kind == "U":
        return _strings(values)
    if values.dtype == object:
        return pa.array(values.tolist(), arrow_type)
    return pa.array(values, arrow_type)


def _strings(values: np.ndarray) -> pa.Array:
    """A numpy str column as Arrow strings. ASCII (every symbol seen so far) goes through bytes
    in C++, several times faster than Arrow's per-item conversion of numpy str."""
    codes = values.view(np.uint32)
    if not len(values) or codes.max() >= 128:
        return pa.array(values, pa.string())
    width = values.dtype.itemsize // 4
    fixed = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(width), len(values), [None, pa.py_buffer(codes.astype(np.uint8))]
    )
    return pc.utf8_rtrim(fixed.cast(pa.binary()).cast(pa.string()), characters="\x00")


def _bars_of(fields: dict[str, Any], symbols: Sequence[str]) -> dict[str, np.ndarray]:
    """TrailingBars' columns of bytes laid out one row per bar; the event's own fields
    repeated on each of its bars."""
    counts = np.array([len(b) // 4 for b in fields["symbol"]], np.int64)
    out: dict[str, np.ndarray] = {}
    for name, column in fields.items():
        if column.dtype == object and name in fields and isinstance(column[0], bytes):
            dtype = _BAR_BYTES.get(name, "<f8")
            out[name] = np.frombuffer(b"".join(column.tolist()), dtype).astype(dtype[1:])
        else:
            out[name] = np.repeat(column, counts)
    out["symbol"] = np.asarray(symbols, dtype=str)[out["symbol"]] if len(symbols) else out["symbol"]
    return out


def kind_batches(
    columns: dict[str, dict[str, Any]], symbols: Sequence[str] = ()
) -> dict[str, pa.RecordBatch]:
    """`decode_columns` output (with seq) as one record batch per kind, in its own schema.
    `symbols` are the run's (RunStarted's), which TrailingBars' symbol ids index."""
    out = {}
    for kind, fields in columns.items():
        if kind == "TrailingBars" and len(fields["seq"]):
            fields = _bars_of(fields, symbols)
        schema = kind_schema(kind)
        arrays = [_array(fields[f.name], f.type) for f in schema]
        out[kind] = pa.RecordBatch.from_arrays(arrays, schema=schema)
    return out


def _nulls(arrow_type: pa.DataType, n: int, zeros: pa.Buffer) -> pa.Array:
    """An all-null column over one shared zeroed buffer: the union's absent fields cost no
    allocation each."""
    if pa.types.is_string(arrow_type) or pa.types.is_list(arrow_type):
        buffers = [zeros, zeros, zeros] if pa.types.is_string(arrow_type) else [zeros, zeros]
        if pa.types.is_list(arrow_type):
            child = pa.array([], arrow_type.value_type)
            return pa.ListArray.from_buffers(arrow_type, n, buffers, null_count=n, children=[child])
        return pa.Array.from_buffers(arrow_type, n, buffers, null_count=n)
    return pa.Array.from_buffers(arrow_type, n, [zeros, zeros], null_count=n)


def union(batches: dict[str, pa.RecordBatch], schema: pa.Schema) -> pa.RecordBatch:
    """Per-kind batches as one batch of `schema` (a `union_schema`), rows in seq order."""
    sources = _union_sources()
    parts = [(kind, b) for kind, b in batches.items() if b.num_rows]
    n = sum(b.num_rows for _, b in parts)
    seqs = np.concatenate([b.column("seq").to_numpy() for _, b in parts]) if parts else []
    order = _seq_order(seqs, unique="TrailingBars" not in batches) if len(parts) > 1 else None
    zeros = pa.py_buffer(np.zeros(max(n, 1) * 8 + 8, np.uint8))
    codes = np.concatenate([np.full(b.num_rows, _KIND_CODE[k], np.int8) for k, b in parts] or [[]])
    arrays = []
    for f in schema:
        if f.name == "kind":
            codes = codes[order] if order is not None else codes
            kinds = pa.array(list(EVENT_TYPES), pa.string())  # not at import: it loads pandas
            names = pa.DictionaryArray.from_arrays(pa.array(codes, pa.int8()), kinds)
            arrays.append(names.cast(pa.string()))
            continue
        chunks = []
        for kind, batch in parts:
            index = batch.schema.get_field_index(sources.get((kind, f.name), f.name))
            chunks.append(batch.column(index) if index >= 0 else None)
        if all(c is None for c in chunks):
            arrays.append(_nulls(f.type, n, zeros))
            continue
        filled = [
            c if c is not None else _nulls(f.type, b.num_rows, zeros)
            for c, (_, b) in zip(chunks, parts, strict=True)
        ]
        column = pa.concat_arrays(filled) if len(filled) > 1 else filled[0]
        arrays.append(column.take(order) if order is not None else column)
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _seq_order(seqs: np.ndarray, *, unique: bool) -> np.ndarray:
    """Positions that put rows in seq order: one scatter over the seq range when seqs are
    unique (a stretch of the log), a stable sort when TrailingBars repeats its seq per bar."""
    if not unique:
        return np.argsort(seqs, kind="stable")
    low = seqs.min()
    slots = np.full(int(seqs.max() - low) + 1, -1, np.int64)
    slots[seqs - low] = np.arange(len(seqs))
    return slots[slots >= 0]


@cache
def _union_sources() -> dict[tuple[str, str], str]:
    """(kind, union column) -> the kind's own field, where they differ; a renamed field is
    absent under its plain name."""
    _, renames = _union_columns()
    sources = {(kind, column): name for (kind, name), column in renames.items()}
    sources.update({(kind, name): "" for kind, name in renames})
    return sources


# -- reading the log ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Chunk:
    """The selected events of one stretch of the log [first, stop), per kind; `ended` when the
    stretch holds the run's last event (RunFinished, Stopped or ActorFailed)."""

    first: int
    stop: int
    batches: dict[str, pa.RecordBatch]
    ended: bool
    _made: dict[pa.Schema, pa.RecordBatch | None] = field(default_factory=dict, compare=False)

    @property
    def rows(self) -> int:
        return sum(b.num_rows for b in self.batches.values())

    def table(self, schema: pa.Schema) -> pa.RecordBatch | None:
        """The chunk in `schema` (a `schema_for`): one kind's batch or the union of its kinds;
        None when it has no rows. Made once per schema, so readers sharing a chunk share it."""
        if schema not in self._made:
            kind = next((k for k in self.batches if kind_schema(k) == schema), None)
            if kind is not None:
                made = self.batches[kind]
            else:
                made = union(self.batches, schema) if self.rows else None
            self._made[schema] = made if made is not None and made.num_rows else None
        return self._made[schema]


def run_symbols(log: EventLog) -> tuple[str, ...]:
    """The run's symbols, from its first event (RunStarted)."""
    first = next(log.events(1, 2), None)
    return tuple(first[1].symbols) if first and isinstance(first[1], RunStarted) else ()


def read(
    log: EventLog,
    selection: Selection = EVERYTHING,
    stop: int | None = None,
    *,
    symbols: Sequence[str] | None = None,
    blocks: int = _BLOCKS,
) -> Iterator[Chunk]:
    """The selected events from `selection.start_seq` up to `stop` (default: the head committed
    now), a batch of stored blocks at a time."""
    if stop is None:
        stop = log.committed()[0] + 1
    if symbols is None:
        symbols = run_symbols(log)
    for first, batch in log.batches(selection.start_seq, stop, blocks=blocks):
        columns = decode_columns(batch, first)
        ended = any(kind in columns for kind in END_KINDS)
        chosen = {}
        for kind, fields in columns.items():
            if selection.kinds and kind not in selection.kinds:
                continue
            keep = selection.mask(fields)
            if not keep.all():
                fields = {name: column[keep] for name, column in fields.items()}
            if len(fields["seq"]):
                chosen[kind] = fields
        yield Chunk(first, first + len(batch), kind_batches(chosen, symbols), ended)


def has_ended(log: EventLog) -> bool:
    """The log's last committed event ends its run: nothing more will be written."""
    head = log.committed()[0]
    last = next(log.events(head, head + 1), None) if head else None
    return last is not None and type(last[1]).__name__ in END_KINDS


def follow(
    log: EventLog,
    selection: Selection = EVERYTHING,
    *,
    poll: float = 0.02,
    stopped: Callable[[], bool] = lambda: False,
    read_range: Callable[[Selection, int], Iterable[Chunk]] | None = None,
) -> Iterator[Chunk]:
    """Read a live log at the pace of its commits until its run ends (or `stopped()`). Each
    read is a few short read transactions: the writer never waits for a follower. At the live
    edge every follower reads the same stretches (commit to commit); `read_range(selection,
    stop)` may hand the chunks of one to all of them."""
    if read_range is None:

        def read_range(at: Selection, stop: int) -> Iterable[Chunk]:
            return read(log, at, stop, blocks=FOLLOW_BLOCKS)

    start = selection.start_seq
    ended = has_ended(log)
    while not stopped():
        head = log.committed()[0]
        if head < start:
            if ended:
                return
            time.sleep(poll)
            continue
        for chunk in read_range(replace(selection, start_seq=start), head + 1):
            yield chunk
            if chunk.ended:
                return
        start = head + 1
