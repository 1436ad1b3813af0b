"""Databento DBN files as bytes: the header, the metadata, and the records as a numpy array.

A DBN file (`.dbn`, or zstd-compressed `.dbn.zst`) is `DBN`, a version byte, the metadata's length
(u32, little endian), the metadata, then fixed-size records back to back. The records of a
single-schema file are viewed as one numpy structured array whose fields are the record's own
(`databento_dbn` publishes each record type's dtype), never one Python object per record.
`databento_dbn` is imported here, lazily: it is an optional extra, off the import path of a run.
"""

from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from ticktape.messages import rejections as why
from ticktape.store.formats.vendor import Unusable

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
DBN_MAGIC = b"DBN"
VERSIONS = (1, 2, 3)
_PREFIX = struct.Struct("<3sBI")
_READ_BYTES = 1 << 20
_RAW_PIECE = 1 << 16  # compressed bytes handed to the decoder at a time
_SMALL_PIECE = 1 << 9  # the same, and the bytes read, after a cut


@dataclass(frozen=True, slots=True)
class Header:
    version: int
    metadata: Any  # databento_dbn.Metadata
    records_at: int  # offset of the first record in the decompressed stream


def is_dbn_name(name: str) -> bool:
    return name.lower().endswith((".dbn", ".dbn.zst"))


class _Pieces(io.RawIOBase):
    """A file handed to the zstd decoder a piece at a time, so that what decodes before a cut
    comes out before the decoder finds the cut (pyarrow's stream raises, losing its buffer)."""

    def __init__(self, path: Path, piece: int) -> None:
        self._file = path.open("rb")
        self._piece = piece

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._file.read(min(len(buffer), self._piece))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._file.close()
        super().close()


def _is_zstd(path: Path) -> bool:
    """Told by its magic, not its name."""
    with path.open("rb") as fh:
        return fh.read(4) == ZSTD_MAGIC


def _stream(path: Path, piece: int = _RAW_PIECE) -> Any:
    """The file's decompressed bytes as a stream."""
    if not _is_zstd(path):
        return pa.OSFile(str(path), "r")
    return pa.CompressedInputStream(pa.PythonFile(_Pieces(path, piece), mode="r"), "zstd")


def read_header(path: Path) -> Header:
    """The version and metadata; a file that is not DBN of a known version is `Unusable`."""
    import databento_dbn

    try:
        with _stream(path) as stream:
            prefix = stream.read(_PREFIX.size)
            if len(prefix) < _PREFIX.size:
                raise Unusable(why.DBN_BAD_METADATA)
            magic, version, length = _PREFIX.unpack(prefix)
            if magic != DBN_MAGIC:
                raise Unusable(why.DBN_BAD_METADATA)
            if version not in VERSIONS:
                raise Unusable(why.DBN_UNSUPPORTED_VERSION)
            body = stream.read(length)
    except OSError as exc:
        raise Unusable(why.DBN_BAD_METADATA) from exc
    if len(body) < length:
        raise Unusable(why.DBN_BAD_METADATA)
    try:
        metadata = databento_dbn.Metadata.decode(prefix + body)
    except (databento_dbn.DBNError, ValueError) as exc:
        raise Unusable(why.DBN_BAD_METADATA) from exc
    return Header(version, metadata, _PREFIX.size + length)


def read_records(path: Path, header: Header) -> tuple[memoryview, bool]:
    """The bytes after the metadata, and whether the stream broke off (a cut-off zstd frame).

    A plain file is read straight into one buffer (no pieces to join). A broken stream is read
    again up to where the first pass got, then in small pieces, so that only the records after
    the cut (to within a piece) are lost."""
    if not _is_zstd(path):
        return _read_plain(path, header.records_at), False
    parts = _read(path, header.records_at, _READ_BYTES, _RAW_PIECE)
    if parts[-1] is not None:
        return memoryview(b"".join(parts)), False  # type: ignore[arg-type]
    good = sum(len(p) for p in parts[:-1])  # type: ignore[arg-type]
    with _stream(path, _SMALL_PIECE) as stream:
        stream.read(header.records_at)
        head = _read_exactly(stream, good)
        tail = _read_until_error(stream, _SMALL_PIECE)
    return memoryview(head + tail), True


def _read_plain(path: Path, skip: int) -> memoryview:
    """The file's bytes after `skip`, read into one buffer."""
    with path.open("rb", buffering=0) as fh:
        buffer = memoryview(np.empty(max(os.fstat(fh.fileno()).st_size - skip, 0), np.uint8))
        fh.seek(skip)
        filled = 0
        while filled < len(buffer) and (got := fh.readinto(buffer[filled:])):
            filled += got
    return buffer[:filled]


def _read(path: Path, skip: int, size: int, piece: int) -> list[bytes | None]:
    """The stream's pieces after `skip` bytes; a last None when it broke off."""
    parts: list[bytes | None] = []
    with _stream(path, piece) as stream:
        stream.read(skip)
        while True:
            try:
                part = stream.read(size)
            except OSError:
                parts.append(None)
                return parts
            if not part:
                parts.append(b"")
                return parts
            parts.append(part)


def _read_exactly(stream: Any, size: int) -> bytes:
    parts, left = [], size
    while left:
        part = stream.read(min(left, _READ_BYTES))
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def _read_until_error(stream: Any, size: int) -> bytes:
    parts = []
    while True:
        try:
            part = stream.read(size)
        except OSError:
            return b"".join(parts)
        if not part:
            return b"".join(parts)
        parts.append(part)


def record_view(
    data: memoryview, dtype: np.dtype, rtypes: frozenset[int]
) -> tuple[np.ndarray, Any]:
    """The records of the file's own type, as one structured array, and what else is there.

    Returns (records, (numbers, others, tail)): `numbers` the 1-based record number of each
    record kept, `others` the numbers of records of another type, `tail` the number of the first
    record cut off (0 if none). A file of one record size is viewed in place; a file that mixes
    sizes (a live stream's system records) is walked header by header, then gathered.
    """
    size = dtype.itemsize
    count = len(data) // size
    view = np.frombuffer(data, dtype=dtype, count=count)
    if (view["length"].astype(np.int64) * 4 == size).all():  # one record size: in place
        numbers = np.arange(1, count + 1, dtype=np.int64)
        tail = count + 1 if len(data) % size else 0
        rtype = view["rtype"]
        if len(rtypes) == 1 and (rtype == next(iter(rtypes))).all():  # the usual file
            return view, (numbers, numbers[:0], tail)
        ours = np.isin(rtype, list(rtypes))
        return view[ours], (numbers[ours], numbers[~ours], tail)
    starts, tail = _walk(data)
    records = np.frombuffer(data, np.uint8)
    lengths = records[starts].astype(np.int64) * 4
    ours = (lengths == size) & np.isin(records[starts + 1], list(rtypes))
    numbers = np.arange(1, len(starts) + 1, dtype=np.int64)
    picked = starts[ours]
    gathered = records[picked[:, None] + np.arange(size)].reshape(-1)
    return np.frombuffer(gathered.tobytes(), dtype=dtype), (numbers[ours], numbers[~ours], tail)


def _walk(data: memoryview) -> tuple[np.ndarray, int]:
    """Where each record starts (by its length byte), and the number of a cut-off last one."""
    starts = []
    at, end = 0, len(data)
    while at < end:
        length = data[at] * 4
        if length == 0 or at + length > end:
            return np.array(starts, dtype=np.int64), len(starts) + 1
        starts.append(at)
        at += length
    return np.array(starts, dtype=np.int64), 0
