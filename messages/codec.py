"""The one codec: msgpack bytes in the log, Structs for people and tests.

Rare events go through msgspec. Market data goes through `encode_columns`, which writes the same
array-like msgpack records straight from numpy columns, so the hot path never builds a Python object
per bar. Both paths write the canonical form: the bytes msgspec writes for the same Struct (ints in
their shortest msgpack form, floats as float64), so a decoded event re-encodes to its stored bytes.

Reading back in bulk: `decode_many` turns a batch into Structs with one msgspec call, and
`decode_columns` into numpy columns per kind (`store.tables` makes Arrow batches of those).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from functools import lru_cache
from typing import Any

import msgspec
import numpy as np

from ticktape.messages.arrays import distinct
from ticktape.messages.events import EVENT_TYPES, AnyEvent, Event

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
    back_to_back: bool = False  # known to lie back to back, in order (so nothing needs checking)

    def __len__(self) -> int:
        return len(self.offsets)

    def take(self, order: np.ndarray) -> EncodedBatch:
        """The same records in another order (or a subset), without copying bytes."""
        run = self.back_to_back and isinstance(order, slice) and order.step in (None, 1)
        return EncodedBatch(self.buffer, self.offsets[order], self.lengths[order], run)

    def is_contiguous(self) -> bool:
        """Records lie back to back in the buffer, in order (so one slice holds them all)."""
        if self.back_to_back or not len(self):
            return True
        ends = self.offsets + self.lengths
        return bool(np.array_equal(self.offsets[1:], ends[:-1]))

    def joined(self) -> memoryview:
        """The records back to back, in order: a view when they already are, else one copy.

        Records that lie in long runs (a plan's records between a step's boundaries) are copied
        run by run; scattered ones are gathered per record size, one whole item per record."""
        if not len(self):
            return memoryview(b"")
        if self.back_to_back:
            lo = int(self.offsets[0])
            return memoryview(self.buffer)[lo : lo + int(self.lengths.sum())]
        ends = self.offsets + self.lengths
        breaks = np.flatnonzero(self.offsets[1:] != ends[:-1]) + 1
        if len(breaks) * _RUN_RECORDS < len(self):
            view = memoryview(self.buffer)
            firsts = self.offsets[np.concatenate(([0], breaks))].tolist()
            lasts = ends[np.append(breaks - 1, len(self) - 1)].tolist()
            if len(firsts) == 1:
                return view[firsts[0] : lasts[0]]
            return memoryview(b"".join([view[a:b] for a, b in zip(firsts, lasts, strict=True)]))
        starts = _starts(self.lengths)
        out = np.empty(int(starts[-1] + self.lengths[-1]), np.uint8)
        sizes = distinct(self.lengths).tolist()
        for size in sizes:  # a few record sizes: whole records move
            rows = np.flatnonzero(self.lengths == size) if len(sizes) > 1 else slice(None)
            _items_of(out, size)[starts[rows]] = _items_of(self.buffer, size)[self.offsets[rows]]
        return memoryview(out)

    def packed(self) -> EncodedBatch:
        """The same records back to back in a buffer of their own, so that any run of them is one
        slice (a plan is packed once; its steps' records are then written without a gather)."""
        if self.is_contiguous():
            return self
        return _back_to_back(self.joined(), self.lengths)

    def records(self) -> list[memoryview]:
        view = memoryview(self.buffer)
        return [
            view[o : o + n]
            for o, n in zip(self.offsets.tolist(), self.lengths.tolist(), strict=True)
        ]

    @staticmethod
    def concat(batches: Sequence[EncodedBatch]) -> EncodedBatch:
        """The records of `batches` in order, packed into one new buffer: a batch that is a few
        records of a larger buffer (a step of a plan) costs its records, not the buffer."""
        batches = [b for b in batches if len(b)]
        if not batches:
            return EMPTY_BATCH
        if len(batches) == 1:
            return batches[0]
        lengths = np.concatenate([b.lengths for b in batches])
        return _back_to_back(b"".join([b.joined() for b in batches]), lengths)

    @staticmethod
    def interleave(
        first: EncodedBatch, first_ends: np.ndarray, second: EncodedBatch, second_ends: np.ndarray
    ) -> tuple[EncodedBatch, np.ndarray]:
        """Parts of two batches taken in turn, first[:f0], second[:s0], first[f0:f1], ..., ending
        with first's last part, packed in one copy; and where each non-empty part ends. (A step's
        records, each boundary's findings right after its cut.) `first_ends` has one more part."""
        first, second = first.packed(), second.packed()
        f_end, s_end = np.asarray(first_ends, np.int64), np.asarray(second_ends, np.int64)
        f_size = np.diff(f_end, prepend=0)
        s_size = np.diff(s_end, prepend=0)
        lengths = np.empty(len(first) + len(second), np.int64)
        lengths[np.arange(len(first)) + np.repeat(np.append(0, s_end), f_size)] = first.lengths
        lengths[np.arange(len(second)) + np.repeat(f_end[:-1], s_size)] = second.lengths
        f_view, s_view = memoryview(first.buffer), memoryview(second.buffer)
        f_at = _byte_bounds(first, f_end).tolist()
        s_at = _byte_bounds(second, s_end).tolist()
        pieces = [f_view[f_at[0] : f_at[1]]]
        for i in range(len(s_end)):
            pieces.append(s_view[s_at[i] : s_at[i + 1]])
            pieces.append(f_view[f_at[i + 1] : f_at[i + 2]])
        sizes = np.empty(len(f_size) + len(s_size), np.int64)
        sizes[0::2], sizes[1::2] = f_size, s_size
        return _back_to_back(b"".join(pieces), lengths), np.cumsum(sizes)[sizes > 0]

    @staticmethod
    def of(events: Sequence[Event]) -> EncodedBatch:
        """Encode a few rare events one by one (not for market data)."""
        if not events:
            return EMPTY_BATCH
        raw = [encode(e) for e in events]
        lengths = np.fromiter((len(r) for r in raw), dtype=np.int64, count=len(raw))
        return _back_to_back(b"".join(raw), lengths)


EMPTY_BATCH = EncodedBatch(np.empty(0, np.uint8), np.empty(0, np.int64), np.empty(0, np.int64))


def _starts(lengths: np.ndarray) -> np.ndarray:
    """Where each record starts when records of these lengths lie back to back from 0."""
    starts = np.zeros(len(lengths), dtype=np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    return starts


def _back_to_back(data: bytes | memoryview, lengths: np.ndarray) -> EncodedBatch:
    """A batch over `data`, which holds records of these lengths back to back."""
    return EncodedBatch(np.frombuffer(data, np.uint8), _starts(lengths), lengths, True)


def _byte_bounds(batch: EncodedBatch, ends: np.ndarray) -> np.ndarray:
    """Where each part [ends[i-1], ends[i]) of a packed batch starts in its buffer, then where
    the last one ends."""
    at = np.append(batch.offsets, batch.offsets[-1] + batch.lengths[-1]) if len(batch) else [0]
    return np.asarray(at)[np.append(0, ends)]


_RUN_RECORDS = 16  # records per run, on average, above which runs are copied as slices


def _items_of(buffer: np.ndarray, size: int) -> np.ndarray:
    """Every `size`-byte window of `buffer` as one opaque item, one per start position (a view,
    no copy): records of one size are then gathered or placed whole, not byte by byte."""
    shape = (max(len(buffer) - size + 1, 0),)
    return np.ndarray(shape, np.dtype((np.void, size)), buffer, strides=(1,))


def _msgpack_str(text: str) -> bytes:
    return _encoder.encode(text)


def _array_header(n: int) -> bytes:
    if n < 16:
        return bytes([0x90 | n])
    if n < 1 << 16:
        return b"\xdc" + n.to_bytes(2, "big")
    return b"\xdd" + n.to_bytes(4, "big")


# msgpack's forms of a number, as msgspec writes them: (lowest, highest, type byte or None for a
# one-byte fixint, payload dtype). Ints take their shortest form; floats are always float64.
_FORMS: tuple[tuple[int, int, int | None, str], ...] = (
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
    (0, 0, 0xCB, ">f8"),
)
_FLOAT = len(_FORMS) - 1
_WIDTHS = np.array([(t is not None) + np.dtype(d).itemsize for _, _, t, d in _FORMS], np.int64)


def _forms(column: np.ndarray) -> int | np.ndarray:
    """Index into _FORMS of each cell of a number column: one int when all cells share it."""
    n = len(column)
    if column.dtype.kind == "f":
        return _FLOAT
    if column.dtype.kind not in "iu":
        raise TypeError(f"encode_columns takes int or float columns, not {column.dtype}")
    if n:  # the ranges are disjoint: a column within one range (times, counts) has one form
        least, most = int(column.min()), int(column.max())
        for i, (lo, hi, _, _) in enumerate(_FORMS[:_FLOAT]):
            if lo <= least and most <= hi:
                return i
    forms = np.empty(n, np.int64)
    for i, (lo, hi, _, _) in enumerate(_FORMS[:_FLOAT]):
        forms[(column >= lo) & (column <= hi)] = i
    return forms


@lru_cache(maxsize=16)
def _symbol_fields(symbols: tuple[str, ...]) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """Each symbol's msgpack length, and per length a table whose row i is symbol i's bytes
    (zeros where its length differs): a layout group's symbols are one gathered lookup."""
    encoded = [_msgpack_str(s) for s in symbols]
    lengths = np.array([len(b) for b in encoded], dtype=np.int64)
    tables = {}
    for size in set(lengths.tolist()):
        table = np.zeros((len(symbols), size), np.uint8)
        for i, b in enumerate(encoded):
            if len(b) == size:
                table[i] = np.frombuffer(b, np.uint8)
        tables[size] = table
    return lengths, tables


@lru_cache(maxsize=256)
def _record_layout(
    header: bytes, forms: tuple[int, ...], symbol_size: int | None
) -> tuple[np.dtype, np.ndarray]:
    """One layout group's record as a packed structured dtype (fields `f0`.. and `symbol`), and
    its constant bytes (header and type bytes) as one opaque item to stamp on every row."""
    fields: dict[str, tuple[Any, int]] = {}  # name -> (dtype, offset)
    constant = bytearray(header)
    for i, form in enumerate(forms):
        if i == 1 and symbol_size is not None:
            fields["symbol"] = (np.dtype((np.void, symbol_size)), len(constant))
            constant += bytes(symbol_size)
        _, _, type_byte, dtype = _FORMS[form]
        if type_byte is not None:
            constant.append(type_byte)
        fields[f"f{i}"] = (np.dtype(dtype), len(constant))
        constant += bytes(np.dtype(dtype).itemsize)
    width = len(constant)
    formats, places = zip(*fields.values(), strict=True)
    row = np.dtype(
        {"names": list(fields), "formats": formats, "offsets": places, "itemsize": width}
    )
    return row, np.frombuffer(bytes(constant), np.dtype((np.void, width)))


def encode_columns(
    kind: type[Event],
    columns: Sequence[np.ndarray],
    symbol_ids: np.ndarray | None = None,
    symbols: Sequence[str] = (),
) -> EncodedBatch:
    """Encode one record per row of `columns`, in the field order of `kind`.

    Field order is `ts`, then `symbol` (when `symbol_ids` is given), then the remaining fields, each
    an int or float column. The bytes are msgspec's own for the same Struct (canonical form):
    floats as float64, ints in their shortest form. Rows that share a layout (the same form of
    every field) are one array of a structured dtype: its constant bytes stamped once, then one
    assignment per field (numpy does the byte order).
    """
    fields = kind.__struct_fields__
    n = len(columns[0])
    has_symbol = symbol_ids is not None
    expected = len(fields) - (1 if has_symbol else 0)
    if len(columns) != expected:
        raise ValueError(f"{kind.__name__} needs {expected} columns, got {len(columns)}")
    if n == 0:
        return EMPTY_BATCH

    header = np.frombuffer(
        _array_header(len(fields) + 1) + _msgpack_str(kind.__struct_config__.tag), np.uint8
    )
    columns = [np.asarray(c) for c in columns]
    forms = [_forms(c) for c in columns]
    sym_len, sym_tables = _symbol_fields(tuple(symbols))
    ids = np.asarray(symbol_ids) if has_symbol else np.zeros(n, np.int64)
    varied = [f for f in forms if not isinstance(f, int)]
    layout = sym_len[ids] if has_symbol else np.zeros(n, np.int64)
    for f in varied:
        layout = layout * len(_FORMS) + f
    lengths = np.full(n, len(header) + sum(int(_WIDTHS[f]) for f in forms if isinstance(f, int)))
    for f in varied:
        lengths += _WIDTHS[f]
    if has_symbol:
        lengths += sym_len[ids]
    offsets = _starts(lengths)

    uniform = bool(np.all(layout == layout[0]))
    buffer = np.empty(int(offsets[-1] + lengths[-1]), dtype=np.uint8)
    for key in [int(layout[0])] if uniform else distinct(layout).tolist():
        rows = slice(None) if uniform else np.flatnonzero(layout == key)
        first = 0 if uniform else int(rows[0])
        sym_size = int(sym_len[ids[first]]) if has_symbol else None
        row, template = _record_layout(
            bytes(header),
            tuple(f if isinstance(f, int) else int(f[first]) for f in forms),
            sym_size,
        )
        dense = buffer.view(row) if uniform else np.empty(len(rows), row)
        dense.view(template.dtype)[:] = template
        for i, column in enumerate(columns):
            dense[f"f{i}"] = column[rows]
        if has_symbol:
            dense["symbol"] = sym_tables[sym_size].view((np.void, sym_size))[ids[rows], 0]
        if not uniform:
            _items_of(buffer, row.itemsize)[offsets[rows]] = dense.view(template.dtype)
    return EncodedBatch(buffer, offsets, lengths, True)


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


_BY_PREFIX: dict[bytes, list[str]] = {}
for _name, _header in _HEADERS.items():
    _BY_PREFIX.setdefault(_header[:4], []).append(_name)


_KIND_NAMES = list(_HEADERS)
_PREFIXES = np.frombuffer(b"".join(_BY_PREFIX), np.uint32).tolist()


def _kinds_of(padded: np.ndarray, offsets: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Index into _KIND_NAMES per record; -1 where no current header matches."""
    prefix = np.lib.stride_tricks.sliding_window_view(padded, 4)[offsets].copy()
    prefix = prefix.view(np.uint32).ravel()
    kinds = np.full(len(offsets), -1, dtype=np.int16)
    # A comparison per known prefix (about 20) costs a third of sorting the batch's prefixes.
    for value, names in zip(_PREFIXES, _BY_PREFIX.values(), strict=True):
        rows = np.flatnonzero(prefix == value)
        if not len(rows):
            continue
        for name in names:
            h = np.frombuffer(_HEADERS[name], np.uint8)
            cells = np.lib.stride_tricks.sliding_window_view(padded, len(h))[offsets[rows]]
            ok = (lengths[rows] >= len(h)) & np.all(cells == h, axis=1)
            kinds[rows[ok]] = _KIND_NAMES.index(name)
    return kinds


def _numbers(
    padded: np.ndarray, pos: np.ndarray, kind: type[Event], names: Sequence[str]
) -> dict[str, np.ndarray] | None:
    """Consecutive float64 / uint64 fields at `pos`, or None when a cell has another form."""
    m = len(names)
    cells = np.lib.stride_tricks.sliding_window_view(padded, 9 * m)[pos].reshape(len(pos), m, 9)
    types = _FIELD_TYPES[kind.__name__]
    want = np.array([0xCB if types[f] is float else 0xCF for f in names], np.uint8)
    if not np.all(cells[:, :, 0] == want):
        return None
    payload = cells[:, :, 1:].copy()
    out = {}
    for j, name in enumerate(names):
        dtype = ">f8" if types[name] is float else ">i8"  # uint64 cells hold timestamps < 2**63
        out[name] = payload[:, j].view(dtype).ravel().astype(dtype[1:])
    return out


def _symbols(padded: np.ndarray, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Symbol strings (fixstr) at `pos` and the position after each; None for another form."""
    type_bytes = padded[pos]
    if not np.all((type_bytes & 0xE0) == 0xA0):
        return None
    size = (type_bytes & 0x1F).astype(np.int64)
    width = max(int(size.max()), 1)
    width = 8 if width <= 8 else width  # short symbols compare as one uint64
    raw = np.lib.stride_tricks.sliding_window_view(padded, width + 1)[pos][:, 1:].copy()
    raw[np.arange(width) >= size[:, None]] = 0
    keys = raw.view("<u8" if width == 8 else f"S{width}").ravel()
    names, ids = np.unique(keys, return_inverse=True)
    text = names.view(f"S{width}") if width == 8 else names
    return text.astype(str)[ids], pos + 1 + size


def _read_fixed(
    padded: np.ndarray, pos: np.ndarray, kind: type[Event]
) -> dict[str, np.ndarray] | None:
    """Columns of canonical fixed-layout records starting at `pos` (after the header), or None
    when some record is not in the expected form (the caller then uses msgspec)."""
    fields = list(kind.__struct_fields__)
    if "symbol" not in fields:
        return _numbers(padded, pos, kind, fields)
    at = fields.index("symbol")
    before = _numbers(padded, pos, kind, fields[:at])
    symbols = _symbols(padded, pos + 9 * at)
    if before is None or symbols is None:
        return None
    after = _numbers(padded, symbols[1], kind, fields[at + 1 :])
    if after is None:
        return None
    return {**before, "symbol": symbols[0], **after}


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


def _padded(batch: EncodedBatch) -> tuple[np.ndarray, np.ndarray]:
    """The bytes the batch's records span, zero-padded for fixed-width reads, and the records'
    offsets in them (a batch cut from a plan's buffer costs its records, not the buffer)."""
    lo = int(batch.offsets.min())
    hi = int((batch.offsets + batch.lengths).max())
    return np.concatenate([batch.buffer[lo:hi], np.zeros(128, np.uint8)]), batch.offsets - lo


def record_kinds(batch: EncodedBatch) -> np.ndarray:
    """The kind name of each record, read from the headers (msgspec only for an older schema),
    so a consumer can pick the kinds it wants before decoding anything."""
    if not len(batch):
        return np.empty(0, dtype=object)
    padded, offsets = _padded(batch)
    kinds = _kinds_of(padded, offsets, batch.lengths)
    names = np.array(_KIND_NAMES, dtype=object)[kinds]
    unmatched = np.flatnonzero(kinds < 0)
    if len(unmatched):
        names[unmatched] = [type(e).__name__ for e in decode_many(batch.take(unmatched))]
    return names


def decode_columns(
    batch: EncodedBatch, first_seq: int | None = None, only: Collection[str] | None = None
) -> dict[str, dict[str, Any]]:
    """Kind name -> field name -> numpy column, for every record of the batch.

    Bars, trades, quotes and time advances in the canonical form are read with numpy; other kinds
    (and any record not in that form) through msgspec. With `first_seq`, each kind also gets a
    `seq` column (the batch's records being consecutive from it). With `only`, the other kinds
    are not decoded: they get their `seq` column alone (nothing without `first_seq`).
    """
    if not len(batch):
        return {}
    padded, offsets = _padded(batch)
    kinds = _kinds_of(padded, offsets, batch.lengths)
    unmatched = np.flatnonzero(kinds < 0)  # another header (an older schema): ask msgspec
    if len(unmatched):
        events = decode_many(batch.take(unmatched))  # raises on a record that does not decode
        kinds[unmatched] = [_KIND_NAMES.index(type(e).__name__) for e in events]
    out: dict[str, dict[str, Any]] = {}
    present = np.flatnonzero(np.bincount(kinds, minlength=len(_KIND_NAMES)))
    for code in present.tolist():
        rows = np.flatnonzero(kinds == code) if len(present) > 1 else np.arange(len(kinds))
        name = _KIND_NAMES[code]
        kind = EVENT_TYPES[name]
        if only is not None and name not in only:
            if first_seq is not None:
                out[name] = {"seq": first_seq + rows.astype(np.int64)}
            continue
        columns = None
        if name in FIXED_KINDS and not np.isin(rows, unmatched).any():
            columns = _read_fixed(padded, offsets[rows] + len(_HEADERS[name]), kind)
        if columns is None:
            columns = _columns_of_events(kind, decode_many(batch.take(rows)))
        if first_seq is not None:
            columns = {"seq": first_seq + rows.astype(np.int64), **columns}
        out[kind.__name__] = columns
    return out
