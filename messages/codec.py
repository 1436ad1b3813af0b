"""The one codec: msgpack bytes in the log, Structs for people and tests.

Rare events go through msgspec. Market data goes through `encode_columns`, which writes the same
array-like msgpack records straight from numpy columns, so the hot path never builds a Python object
per bar. Both paths write the canonical form: the bytes msgspec writes for the same Struct (ints in
their shortest msgpack form, floats as float64), so a decoded event re-encodes to its stored bytes.

Reading back in bulk: `decode_many` turns a batch into Structs with one msgspec call, and
`decode_columns` / `to_arrow` turn it into numpy columns or Arrow record batches per kind.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa

from messages.events import EVENT_TYPES, AnyEvent, Event

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(AnyEvent)
_list_decoder = msgspec.msgpack.Decoder(list[AnyEvent])


def encode(event: Event) -> bytes:
    return _encoder.encode(event)


def decode(record: bytes | memoryview) -> Event:
    return _decoder.decode(record)


def to_dict(event: Event) -> dict[str, Any]:
    """Field name -> value, with the event's kind first; what JSONL export and tables show."""
    return {"kind": type(event).__name__, **msgspec.structs.asdict(event)}


class EncodedBatch(msgspec.Struct, frozen=True):
    """Many msgpack records in one buffer: record i is `buffer[offsets[i]:][:lengths[i]]`."""

    buffer: np.ndarray  # uint8
    offsets: np.ndarray  # int64
    lengths: np.ndarray  # int64

    def __len__(self) -> int:
        return len(self.offsets)

    def take(self, order: np.ndarray) -> EncodedBatch:
        """The same records in another order (or a subset), without copying bytes."""
        return EncodedBatch(self.buffer, self.offsets[order], self.lengths[order])

    def is_contiguous(self) -> bool:
        """Records lie back to back in the buffer, in order (so one slice holds them all)."""
        if not len(self):
            return True
        ends = self.offsets + self.lengths
        return bool(np.array_equal(self.offsets[1:], ends[:-1]))

    def joined(self) -> memoryview:
        """The records back to back, in order: a view when they already are, else one gather."""
        if not len(self):
            return memoryview(b"")
        if self.is_contiguous():
            lo = int(self.offsets[0])
            return memoryview(self.buffer)[lo : lo + int(self.lengths.sum())]
        starts = np.zeros(len(self), dtype=np.int64)
        np.cumsum(self.lengths[:-1], out=starts[1:])
        index = np.repeat(self.offsets - starts, self.lengths) + np.arange(int(self.lengths.sum()))
        return memoryview(self.buffer[index])

    def records(self) -> list[memoryview]:
        view = memoryview(self.buffer)
        return [
            view[o : o + n]
            for o, n in zip(self.offsets.tolist(), self.lengths.tolist(), strict=True)
        ]

    @staticmethod
    def concat(batches: Sequence[EncodedBatch]) -> EncodedBatch:
        batches = [b for b in batches if len(b)]
        if not batches:
            return EMPTY_BATCH
        if len(batches) == 1:
            return batches[0]
        shifts = np.cumsum([0] + [len(b.buffer) for b in batches[:-1]])
        return EncodedBatch(
            np.concatenate([b.buffer for b in batches]),
            np.concatenate([b.offsets + s for b, s in zip(batches, shifts, strict=True)]),
            np.concatenate([b.lengths for b in batches]),
        )

    @staticmethod
    def of(events: Sequence[Event]) -> EncodedBatch:
        """Encode a few rare events one by one (not for market data)."""
        if not events:
            return EMPTY_BATCH
        raw = [encode(e) for e in events]
        lengths = np.fromiter((len(r) for r in raw), dtype=np.int64, count=len(raw))
        offsets = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64)
        return EncodedBatch(np.frombuffer(b"".join(raw), dtype=np.uint8), offsets, lengths)


EMPTY_BATCH = EncodedBatch(np.empty(0, np.uint8), np.empty(0, np.int64), np.empty(0, np.int64))


def _msgpack_str(text: str) -> bytes:
    return _encoder.encode(text)


def _array_header(n: int) -> bytes:
    if n < 16:
        return bytes([0x90 | n])
    if n < 1 << 16:
        return b"\xdc" + n.to_bytes(2, "big")
    return b"\xdd" + n.to_bytes(4, "big")


# msgpack's shortest form of an int, as msgspec writes it: (lowest, highest, type byte or None for
# a one-byte fixint, payload dtype).
_INT_FORMS: tuple[tuple[int, int, int | None, str], ...] = (
    (0, 127, None, "u1"),
    (-32, -1, None, "i1"),
    (128, 255, 0xCC, "u1"),
    (256, 65535, 0xCD, ">u2"),
    (65536, 2**32 - 1, 0xCE, ">u4"),
    (2**32, 2**63 - 1, 0xCF, ">u8"),
    (-128, -33, 0xD0, "i1"),
    (-32768, -129, 0xD1, ">i2"),
    (-(2**31), -32769, 0xD2, ">i4"),
    (-(2**63), -(2**31) - 1, 0xD3, ">i8"),
)


def _cells(column: np.ndarray) -> list[tuple[np.ndarray | None, np.ndarray]]:
    """A column as msgpack cells: (rows, or None for all, (rows, width) bytes) per form used."""
    n = len(column)
    if column.dtype.kind == "f":
        block = np.empty((n, 9), dtype=np.uint8)
        block[:, 0] = 0xCB
        block[:, 1:] = column.astype(">f8").view(np.uint8).reshape(n, 8)
        return [(None, block)]
    if column.dtype.kind not in "iu":
        raise TypeError(f"encode_columns takes int or float columns, not {column.dtype}")
    values = column.astype(np.int64)
    if n and int(values.min()) >= 2**32:  # timestamps: the fixed-width path
        block = np.empty((n, 9), dtype=np.uint8)
        block[:, 0] = 0xCF
        block[:, 1:] = values.astype(">u8").view(np.uint8).reshape(n, 8)
        return [(None, block)]
    cells = []
    for lo, hi, type_byte, dtype in _INT_FORMS:
        rows = np.flatnonzero((values >= lo) & (values <= hi))
        if not len(rows):
            continue
        payload = values[rows].astype(dtype).view(np.uint8).reshape(len(rows), -1)
        if type_byte is not None:
            payload = np.hstack([np.full((len(rows), 1), type_byte, np.uint8), payload])
        cells.append((rows, payload))
    return cells


def encode_columns(
    kind: type[Event],
    columns: Sequence[np.ndarray],
    symbol_ids: np.ndarray | None = None,
    symbols: Sequence[str] = (),
) -> EncodedBatch:
    """Encode one record per row of `columns`, in the field order of `kind`.

    Field order is `ts`, then `symbol` (when `symbol_ids` is given), then the remaining fields, each
    an int or float column. The bytes are msgspec's own for the same Struct (canonical form):
    floats as float64, ints in their shortest form. Timestamps (>= 2**32) take a fixed 9 bytes, so
    market data is placed with a few numpy scatter writes.
    """
    fields = kind.__struct_fields__
    n = len(columns[0])
    has_symbol = symbol_ids is not None
    expected = len(fields) - (1 if has_symbol else 0)
    if len(columns) != expected:
        raise ValueError(f"{kind.__name__} needs {expected} columns, got {len(columns)}")
    if n == 0:
        return EMPTY_BATCH

    header = _array_header(len(fields) + 1) + _msgpack_str(kind.__struct_config__.tag)
    sym_bytes = [_msgpack_str(s) for s in symbols]
    sym_len = np.array([len(b) for b in sym_bytes], dtype=np.int64)
    cells = [_cells(np.asarray(c)) for c in columns]
    widths = []
    for column_cells in cells:
        width = np.zeros(n, dtype=np.int64)
        for rows, block in column_cells:
            if rows is None:
                width[:] = block.shape[1]
            else:
                width[rows] = block.shape[1]
        widths.append(width)
    lengths = len(header) + np.sum(widths, axis=0)
    if has_symbol:
        lengths += sym_len[symbol_ids]
    offsets = np.zeros(n, dtype=np.int64)
    np.cumsum(lengths[:-1], out=offsets[1:])
    buffer = np.empty(int(offsets[-1] + lengths[-1]), dtype=np.uint8)

    def scatter(pos: np.ndarray, block: np.ndarray) -> None:
        buffer[pos[:, None] + np.arange(block.shape[-1])] = block

    scatter(offsets, np.broadcast_to(np.frombuffer(header, np.uint8), (n, len(header))))
    pos = offsets + len(header)
    for i, column_cells in enumerate(cells):
        if has_symbol and i == 1:
            for sid in np.unique(symbol_ids).tolist():
                rows = np.flatnonzero(symbol_ids == sid)
                block = np.frombuffer(sym_bytes[sid], np.uint8)
                scatter(pos[rows], np.broadcast_to(block, (len(rows), len(block))))
            pos = pos + sym_len[symbol_ids]
        for rows, block in column_cells:
            scatter(pos if rows is None else pos[rows], block)
        pos = pos + widths[i]
    return EncodedBatch(buffer, offsets, lengths)


# -- reading in bulk ------------------------------------------------------------------------------


def decode_many(batch: EncodedBatch) -> list[Event]:
    """Every record of a batch as a Struct, with one msgspec call."""
    if not len(batch):
        return []
    return _list_decoder.decode(_array_header(len(batch)) + batch.joined())


# The kinds whose records are a fixed run of numbers around one symbol: read with numpy.
FIXED_KINDS = ("Bar", "Trade", "Quote", "TimeAdvanced")
_TAGS = {name: _msgpack_str(t.__struct_config__.tag) for name, t in EVENT_TYPES.items()}
_HEADERS = {
    name: _array_header(len(t.__struct_fields__) + 1) + _TAGS[name]
    for name, t in EVENT_TYPES.items()
}
_FIELD_TYPES = {
    name: {f.name: f.type for f in msgspec.structs.fields(t)} for name, t in EVENT_TYPES.items()
}


def _kinds_of(buffer: np.ndarray, offsets: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Kind name per record (object array; "" where no known header matches)."""
    padded = np.concatenate([buffer, np.zeros(32, np.uint8)])
    windows = np.lib.stride_tricks.sliding_window_view(padded, 4)
    prefix = windows[offsets].copy().view(np.uint32).ravel()
    kinds = np.full(len(offsets), "", dtype=object)
    for value in np.unique(prefix).tolist():
        rows = np.flatnonzero(prefix == value)
        for name, header in _HEADERS.items():
            if np.uint32(value).tobytes() != header[:4]:
                continue
            h = np.frombuffer(header, np.uint8)
            ok = (lengths[rows] >= len(h)) & np.all(
                padded[offsets[rows, None] + np.arange(len(h))] == h, axis=1
            )
            kinds[rows[ok]] = name
    return kinds


def _read_fixed(
    padded: np.ndarray, pos: np.ndarray, kind: type[Event]
) -> dict[str, np.ndarray] | None:
    """Columns of canonical fixed-layout records starting at `pos` (after the header), or None
    when some record is not in the expected form (the caller then uses msgspec)."""
    windows = np.lib.stride_tricks.sliding_window_view(padded, 9)
    out: dict[str, np.ndarray] = {}
    hints = _FIELD_TYPES[kind.__name__]
    for name in kind.__struct_fields__:
        type_bytes = padded[pos]
        if name == "symbol":
            if not np.all((type_bytes & 0xE0) == 0xA0):  # fixstr only
                return None
            size = (type_bytes & 0x1F).astype(np.int64)
            width = int(size.max()) if len(size) else 0
            raw = np.zeros((len(pos), max(width, 1)), np.uint8)
            for w in np.unique(size).tolist():
                rows = np.flatnonzero(size == w)
                raw[rows, :w] = padded[pos[rows, None] + 1 + np.arange(w)]
            fixed = raw.view(f"S{raw.shape[1]}").ravel()
            names, ids = np.unique(fixed, return_inverse=True)
            out["symbol"] = names.astype(str)[ids]
            pos = pos + 1 + size
            continue
        cell = windows[pos]
        if hints[name] is float:
            if not np.all(type_bytes == 0xCB):
                return None
            out[name] = cell[:, 1:].copy().view(">f8").ravel().astype(np.float64)
        else:
            if not np.all(type_bytes == 0xCF):  # timestamps only
                return None
            out[name] = cell[:, 1:].copy().view(">u8").ravel().astype(np.int64)
        pos = pos + 9
    return out


def _columns_of_events(kind: type[Event], events: list[Event]) -> dict[str, np.ndarray]:
    rows = [msgspec.structs.astuple(e) for e in events]
    out = {}
    for i, name in enumerate(kind.__struct_fields__):
        values = [r[i] for r in rows]
        hint = _FIELD_TYPES[kind.__name__][name]
        if hint in (int, float, bool):
            out[name] = np.array(values, dtype={int: np.int64, float: np.float64}.get(hint, bool))
        elif hint is str:
            out[name] = np.array(values, dtype=str)
        else:
            column = np.empty(len(values), dtype=object)
            column[:] = values
            out[name] = column
    return out


def decode_columns(batch: EncodedBatch, first_seq: int | None = None) -> dict[str, dict[str, Any]]:
    """Kind name -> field name -> numpy column, for every record of the batch.

    Bars, trades, quotes and time advances in the canonical form are read with numpy; other kinds
    (and any record not in that form) through msgspec. With `first_seq`, each kind also gets a
    `seq` column (the batch's records being consecutive from it).
    """
    if not len(batch):
        return {}
    padded = np.concatenate([batch.buffer, np.zeros(16, np.uint8)])
    kinds = _kinds_of(batch.buffer, batch.offsets, batch.lengths)
    out: dict[str, dict[str, Any]] = {}
    for name in sorted(set(kinds.tolist())):
        rows = np.flatnonzero(kinds == name)
        kind = EVENT_TYPES.get(name)
        columns = None
        if name in FIXED_KINDS:
            columns = _read_fixed(padded, batch.offsets[rows] + len(_HEADERS[name]), kind)
        if columns is None:
            events = decode_many(batch.take(rows))  # raises on a record that does not decode
            kind = kind or type(events[0])
            columns = _columns_of_events(kind, events)
        if first_seq is not None:
            columns = {"seq": first_seq + rows.astype(np.int64), **columns}
        out[kind.__name__] = columns
    return out


def to_arrow(columns: dict[str, dict[str, Any]]) -> dict[str, pa.RecordBatch]:
    """`decode_columns` output as one Arrow record batch per kind (symbols dictionary-encoded)."""
    batches = {}
    for name, fields in columns.items():
        arrays = {}
        for field, values in fields.items():
            if field == "symbol":
                arrays[field] = pa.array(values).dictionary_encode()
            elif values.dtype == object:
                arrays[field] = pa.array(values.tolist())
            else:
                arrays[field] = pa.array(values)
        batches[name] = pa.RecordBatch.from_pydict(arrays)
    return batches
