"""The one codec: msgpack bytes in the log, Structs for people and tests.

Rare events go through msgspec. Market data goes through `encode_columns`, which writes the same
array-like msgpack records straight from numpy columns, so the hot path never builds a Python object
per bar. Both produce records that `decode` turns into the same Structs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
import numpy as np

from messages.events import AnyEvent, Event

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(AnyEvent)


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


def encode_columns(
    kind: type[Event],
    columns: Sequence[np.ndarray],
    symbol_ids: np.ndarray | None = None,
    symbols: Sequence[str] = (),
) -> EncodedBatch:
    """Encode one record per row of `columns`, in the field order of `kind`.

    Field order is `ts`, then `symbol` (when `symbol_ids` is given), then the remaining fields, each
    an int64 or float64 column. Ints are written as msgpack int64 and floats as float64, fixed
    width, so every row can be placed with numpy scatter writes.
    """
    fields = kind.__struct_fields__
    n = len(columns[0])
    has_symbol = symbol_ids is not None
    expected = len(fields) - (1 if has_symbol else 0)
    if len(columns) != expected:
        raise ValueError(f"{kind.__name__} needs {expected} columns, got {len(columns)}")
    if n == 0:
        return EMPTY_BATCH

    header = bytes([0x90 | (len(fields) + 1)]) + _msgpack_str(kind.__struct_config__.tag)
    sym_bytes = [_msgpack_str(s) for s in symbols]
    sym_len = np.array([len(b) for b in sym_bytes], dtype=np.int64)
    lengths = np.full(n, len(header) + 9 * len(columns), dtype=np.int64)
    if has_symbol:
        lengths += sym_len[symbol_ids]
    offsets = np.zeros(n, dtype=np.int64)
    np.cumsum(lengths[:-1], out=offsets[1:])
    buffer = np.empty(int(offsets[-1] + lengths[-1]), dtype=np.uint8)

    def scatter(pos: np.ndarray, block: np.ndarray) -> None:
        buffer[pos[:, None] + np.arange(block.shape[-1])] = block

    scatter(offsets, np.broadcast_to(np.frombuffer(header, np.uint8), (n, len(header))))
    pos = offsets + len(header)
    for i, column in enumerate(columns):
        if has_symbol and i == 1:
            for sid in np.unique(symbol_ids).tolist():
                rows = np.flatnonzero(symbol_ids == sid)
                block = np.frombuffer(sym_bytes[sid], np.uint8)
                scatter(pos[rows], np.broadcast_to(block, (len(rows), len(block))))
            pos = pos + sym_len[symbol_ids]
        block = np.empty((n, 9), dtype=np.uint8)
        if column.dtype.kind == "f":
            block[:, 0] = 0xCB
            block[:, 1:] = column.astype(">f8").view(np.uint8).reshape(n, 8)
        else:
            block[:, 0] = 0xD3
            block[:, 1:] = column.astype(">i8").view(np.uint8).reshape(n, 8)
        scatter(pos, block)
        pos = pos + 9
    return EncodedBatch(buffer, offsets, lengths)
