"""Bytes in: the folder walk, files cut into blocks of whole lines, and lines checked for shape.

Nothing here knows what a bar is. A CSV file is read in blocks of about `block_bytes` that end on
a line end (a longer line makes its block longer), so memory stays bounded whatever the file's
size. Lines are split here, not by pyarrow, so that a line with an unclosed quote, invalid UTF-8
or the wrong number of fields costs only itself, and every row pyarrow sees has a known line
number (the header is line 1). Line ends may be \\n, \\r\\n or a lone \\r.
"""

from __future__ import annotations

import csv
import errno
import os
import re
import stat
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
from loguru import logger

from ticktape.messages import rejections as why
from ticktape.store import stopping

DATA_SUFFIXES = (".csv", ".csv.gz", ".parquet")
READ_ERRORS = (OSError, ValueError, EOFError, pa.ArrowException)  # what reading a file may raise
SCAN_THREADS = min(8, os.cpu_count() or 1)  # files scanned at once (pyarrow, zlib, numpy: no GIL)
BLOCK_BYTES = 1 << 19  # a larger block costs more memory per open file, a smaller one more time
_BOM = b"\xef\xbb\xbf"
_LF, _CR, _QUOTE, _COMMA = 10, 13, 34, 44
_LINE_END = re.compile(rb"\r\n|\r|\n")
MAX_LINE_BYTES = 256 << 20  # a longer line is not held: the file is read up to it (bounded memory)


def is_data_name(name: str) -> bool:
    return name.lower().endswith(DATA_SUFFIXES)


_GZIP_MAGIC = b"\x1f\x8b"


def is_gzip(path: Path) -> bool:
    """By content, not by name: a `.csv.gz` of plain text and a `.csv` that is gzip are both
    read as what they are."""
    with path.open("rb") as fh:
        return fh.read(2) == _GZIP_MAGIC


def is_parquet(path: Path) -> bool:
    return path.name.lower().endswith(".parquet")


@dataclass(frozen=True, slots=True)
class FolderScan:
    files: list[Path]  # regular data files, by relative posix name
    skipped: list[tuple[str, str]]  # (relative name, reason) of every entry the walk could not use


def walk(folder: Path, wanted: Callable[[str], bool] = is_data_name) -> FolderScan:
    """Every data file under `folder` (links followed, each real folder once), and what was skipped.

    `wanted` tells a data file by its name (a vendor format's readers name their own).

    A dangling link, a link loop, an unreadable folder and a data-named entry that is not a
    regular file (a FIFO, a socket) are each reported, never silently passed over.
    """
    files: list[Path] = []
    skipped: list[tuple[str, str]] = []
    seen: set[tuple[int, int]] = set()

    def name(path: Path) -> str:
        return path.relative_to(folder).as_posix()

    def visit(directory: Path) -> None:
        try:
            info = directory.stat()
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as exc:
            logger.warning("cannot read folder {}: {}", directory, exc)
            skipped.append((name(directory) or ".", why.UNREADABLE_FOLDER))
            return
        if (info.st_dev, info.st_ino) in seen:
            skipped.append((name(directory), why.LINK_LOOP))
            return
        seen.add((info.st_dev, info.st_ino))
        for entry in entries:
            stopping.check()
            path = Path(entry.path)
            try:
                mode = os.stat(path).st_mode
            except OSError as exc:
                if not wanted(entry.name) and not entry.is_symlink():
                    continue
                reason = why.LINK_LOOP if exc.errno == errno.ELOOP else why.DANGLING_LINK
                if not entry.is_symlink():
                    reason = why.UNREADABLE_FILE
                skipped.append((name(path), reason))
                continue
            if stat.S_ISDIR(mode):
                visit(path)
            elif wanted(entry.name):
                if stat.S_ISREG(mode):
                    files.append(path)
                else:
                    skipped.append((name(path), why.NOT_A_FILE))

    visit(folder)
    files.sort(key=name)
    skipped.sort()
    return FolderScan(files, skipped)


# -- blocks of whole lines ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Block:
    """Whole lines of a file: `data` starts at byte `offset` (of the decompressed text)."""

    number: int
    offset: int
    first_line: int
    data: bytes


@dataclass(slots=True)
class Damage:
    """Set when a compressed stream breaks off: the lines from `line` on are lost."""

    line: int = 0


def _chunks(path: Path, block_bytes: int, damage: Damage) -> Iterator[bytes]:
    """The file's bytes (decompressed if gzip); a damaged gzip yields what it could read."""
    with path.open("rb") as fh:
        if not is_gzip(path):
            while chunk := fh.read(block_bytes):
                stopping.check()
                yield chunk
            return
        inflate = zlib.decompressobj(wbits=47)
        while raw := fh.read(block_bytes):
            stopping.check()
            try:
                while raw:
                    yield inflate.decompress(raw)
                    raw = inflate.unused_data if inflate.eof else b""
                    if raw:
                        inflate = zlib.decompressobj(wbits=47)  # the next gzip member
            except zlib.error as exc:
                logger.warning("{}: damaged gzip data: {}", path.name, exc)
                damage.line = -1
                return
        if not inflate.eof:
            logger.warning("{}: gzip data ends early", path.name)
            damage.line = -1


def _last_line_end(data: bytes, final: bool) -> int:
    """Position after the last line end of `data` that is surely whole, or 0. Unless `final`, a
    \\r at the very end may be the first half of \\r\\n: the cut goes before it, never between
    the two, which would count one line end twice."""
    stop = len(data) - 1 if not final and data.endswith(b"\r") else len(data)
    return max(data.rfind(b"\n", 0, stop), data.rfind(b"\r", 0, stop)) + 1


def blocks(path: Path, block_bytes: int = BLOCK_BYTES) -> tuple[Iterator[Block], Damage]:
    """The file as blocks of whole lines, in order; the last line may lack its line end.

    The block boundaries depend only on the bytes and `block_bytes`, so a later read cuts the
    same blocks as the scan did. When a gzip stream breaks off, `Damage.line` is set, once the
    iterator is exhausted, to the first line that was lost.
    """
    damage = Damage()

    def cut() -> Iterator[Block]:
        # The bytes not yet cut are kept as a list of chunks, and each chunk is searched for line
        # ends once, when it comes: linear in the length of a long line, never quadratic.
        pending: list[bytes] = []
        size = last_end = 0  # bytes pending; position after the last whole line end in them
        offset, line, number = 0, 1, 0
        for chunk in _chunks(path, block_bytes, damage):
            found = _last_line_end(chunk, final=False)
            if found:
                last_end = size + found
            elif pending and pending[-1].endswith(b"\r") and chunk:
                last_end = size  # a \r that no \n follows: a line end after all
            pending.append(chunk)
            size += len(chunk)
            if size < block_bytes:
                continue
            if not last_end:
                if size > MAX_LINE_BYTES:
                    logger.warning("{}: line {} is longer than {} bytes", path.name, line, size)
                    damage.line = line
                    return
                continue  # one long line: keep reading until it ends
            data = b"".join(pending)
            block = Block(number, offset, line, data[:last_end])
            yield block
            number, offset, line = number + 1, offset + last_end, line + count_lines(block.data)
            pending, size, last_end = [data[last_end:]], size - last_end, 0
        data = b"".join(pending)
        if damage.line:
            end = _last_line_end(data, final=True)
            if end > 0:
                yield Block(number, offset, line, data[:end])
                line += count_lines(data[:end])
            damage.line = line
        elif data:
            yield Block(number, offset, line, data)

    return cut(), damage


def read_block(path: Path, offset: int, size: int, number: int, first_line: int) -> Block:
    """One block of a plain (seekable) file, as the scan cut it."""
    with path.open("rb") as fh:
        fh.seek(offset)
        return Block(number, offset, first_line, fh.read(size))


def count_lines(data: bytes) -> int:
    """Line ends in `data`: each \\n, and each \\r not followed by \\n."""
    if b"\r" not in data:
        return data.count(b"\n")
    return data.count(b"\n") + data.count(b"\r") - data.count(b"\r\n")


# -- lines ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Lines:
    """The data lines of one block: good ones for the CSV parser, bad ones with their reason."""

    good: bytes  # the good lines, each ending in \n
    good_lines: np.ndarray  # line number of each good line (int64)
    longest: int  # bytes of the longest good line
    bad: list[tuple[int, str, bytes]]  # (line, reason, raw symbol field)


def header_fields(block: Block) -> tuple[tuple[str, ...], int] | str:
    """The header's field names and its line number, or the reason there is none."""
    data = block.data.removeprefix(_BOM)
    line = block.first_line
    for raw in _leading_lines(data):
        if raw.strip():
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                return why.HEADER_NOT_UTF8
            try:
                return tuple(next(csv.reader([text]))), line
            except csv.Error:  # e.g. a field beyond the csv module's limit (128 KB)
                return why.HEADER_UNREADABLE
        line += 1
    return why.NO_HEADER


def _utf8(line: bytes, used: tuple[int, ...] | None, fields: int) -> bool:
    """The used fields decode; a line whose commas do not split it into its fields (quoted
    commas) is checked whole."""
    parts = line.split(b",")
    checked = [parts[j] for j in used] if used is not None and len(parts) == fields else [line]
    try:
        for part in checked:
            part.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _leading_lines(data: bytes) -> Iterator[bytes]:
    """The lines of `data` one at a time, so that finding the header does not split a block."""
    at = 0
    while at <= len(data):
        end = _LINE_END.search(data, at)
        if end is None:
            yield data[at:]
            return
        yield data[at : end.start()]
        at = end.end()


def split_lines(
    block: Block,
    after: int,
    fields: int,
    symbol_at: int | None,
    used: tuple[int, ...] | None = None,
) -> Lines:
    """Cut a block into lines and check each for shape; lines up to `after` (the header) are
    skipped, and blank lines are not rows. Only the `used` fields (all when None) must be
    UTF-8: the bytes of a column no kind reads are never decoded. A bad line's symbol is its
    field `symbol_at` (None: the file has no symbol column)."""
    data = block.data
    if block.offset == 0 and data.startswith(_BOM):
        data = b"   " + data[3:]  # keep byte positions; the header is not read from here
    a = np.frombuffer(data, dtype=np.uint8)
    n = len(a)
    if b"\r" in data:
        lf, cr = a == _LF, a == _CR
        cr_before_lf = np.zeros(n, dtype=bool)
        cr_before_lf[:-1] = cr[:-1] & lf[1:]
        ends = np.flatnonzero(lf | (cr & ~cr_before_lf))  # the last byte of each line end
        content_end = ends - cr_before_lf[np.maximum(ends - 1, 0)] * (ends > 0)
    else:
        ends = content_end = np.flatnonzero(a == _LF)
    starts = np.concatenate([[0], ends + 1])
    stops = np.concatenate([content_end, [n]])
    if starts[-1] >= n:
        starts, stops = starts[:-1], stops[:-1]
    line = block.first_line + np.arange(len(starts), dtype=np.int64)
    keep = (line > after) & (stops > starts)
    starts, stops, line = starts[keep], stops[keep], line[keep]
    if not len(starts):
        return Lines(good=b"", good_lines=line, longest=0, bad=[])

    none = np.empty(0, dtype=np.int64)
    quote_at = np.flatnonzero(a == _QUOTE) if b'"' in data else none
    high_at = none if data.isascii() else np.flatnonzero(a >= 0x80)
    odd_quotes = _count_in(quote_at, starts, stops) % 2 == 1
    commas = np.flatnonzero(a == _COMMA)
    if len(quote_at):  # a comma between quotes is inside a field
        owner = np.searchsorted(starts, commas, side="right") - 1
        inside = (owner >= 0) & (commas < stops[np.maximum(owner, 0)])
        commas, owner = commas[inside], owner[inside]
        before = np.searchsorted(quote_at, commas) - np.searchsorted(quote_at, starts[owner])
        owner = owner[before % 2 == 0]
        counted = np.bincount(owner, minlength=len(starts)) + 1
    else:
        counted = _count_in(commas, starts, stops) + 1

    bad_reason: dict[int, str] = {}
    for i in np.flatnonzero(_count_in(high_at, starts, stops)):
        if not _utf8(data[starts[i] : stops[i]], used, fields):
            bad_reason[int(i)] = why.INVALID_UTF8
    for i in np.flatnonzero(odd_quotes):
        bad_reason.setdefault(int(i), why.UNBALANCED_QUOTES)
    for i in np.flatnonzero(counted != fields):
        bad_reason.setdefault(int(i), why.malformed(int(counted[i]), fields))

    good = np.ones(len(starts), dtype=bool)
    bad: list[tuple[int, str, bytes]] = []
    for i in sorted(bad_reason):
        good[i] = False
        raw = data[starts[i] : stops[i]].split(b",")
        symbol = b""
        if symbol_at is not None and len(raw) > symbol_at:
            symbol = raw[symbol_at].strip().strip(b'"').strip()
        bad.append((int(line[i]), bad_reason[i], symbol))
    return Lines(
        good=_joined(a, starts[good], stops[good]),
        good_lines=line[good],
        longest=int((stops[good] - starts[good]).max(initial=0)),
        bad=bad,
    )


def _count_in(positions: np.ndarray, starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """How many of the sorted `positions` fall in each span [start, stop)."""
    return np.searchsorted(positions, stops) - np.searchsorted(positions, starts)


def _joined(a: np.ndarray, starts: np.ndarray, stops: np.ndarray) -> bytes:
    """The given line spans, each followed by \\n, as one buffer."""
    if not len(starts):
        return b""
    out = np.empty(len(a) + 1, dtype=np.uint8)
    out[:-1] = a
    out[stops] = _LF  # overwrites the first byte of each line end (or the spare last byte)
    lo, hi = int(starts[0]), int(stops[-1]) + 1
    gaps = starts[1:] - stops[:-1] - 1  # bytes dropped between lines (CRLF: one)
    if not gaps.any():
        return out[lo:hi].tobytes()  # one run of lines: nothing to drop
    runs = np.empty(2 * len(starts) - 1, dtype=np.int64)
    runs[0::2], runs[1::2] = stops + 1 - starts, gaps
    keep = np.repeat(np.arange(len(runs)) % 2 == 0, runs)  # lines kept, gaps dropped
    return out[lo:hi][keep].tobytes()
