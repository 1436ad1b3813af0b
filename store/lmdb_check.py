"""Check an LMDB data file before LMDB maps it: a truncated file or a zeroed page makes LMDB
crash the whole process (SIGBUS or an assertion), so damage must be found by reading the file first.

Reads LMDB's two meta pages (struct MDB_meta of LMDB 0.9, 64-bit), takes the newest, and walks
every B-tree from its roots: each branch, leaf and first overflow page must lie inside the file and
start with its own page number. Walking the `events` tree in key order gives the last sequence
number whose block is intact, which the error names.

A live writer may commit while the walk runs. LMDB never reuses a page of the newest committed
snapshot, nor of the one before it while a single new commit is in progress, so the walk counts
when at most one commit happened meanwhile; otherwise it starts again.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

_PAGE_HEADER = 16
_MAGIC = 0xBEEFC0DE
_META = struct.Struct("<IIQQ48s48sQQ")  # magic, version, address, mapsize, dbs[2], last_pg, txnid
_DB = struct.Struct("<IHHQQQQQ")  # pad, flags, depth, branch, leaf, overflow pages, entries, root
_NODE = struct.Struct("<HHHH")  # lo, hi, flags, ksize
_P_BRANCH, _P_LEAF, _P_OVERFLOW = 0x01, 0x02, 0x04
_F_BIGDATA, _F_SUBDATA = 0x01, 0x02
_NO_PAGE = 0xFFFFFFFFFFFFFFFF
_ATTEMPTS = 5


class _Bad(Exception):
    """A page that is not what the tree says it is."""


@dataclass(frozen=True, slots=True)
class _Meta:
    page_size: int
    main_root: int
    last_page: int
    txnid: int


def _read_metas(fd: int) -> list[_Meta]:
    metas = []
    page_size = 0
    for page in (0, 1):
        offset = page * (page_size or 4096)
        raw = os.pread(fd, _PAGE_HEADER + _META.size, offset)
        if len(raw) < _PAGE_HEADER + _META.size:
            continue
        magic, _version, _, _, free_db, main_db, last_pg, txnid = _META.unpack_from(
            raw, _PAGE_HEADER
        )
        if magic != _MAGIC:
            continue
        page_size = page_size or _DB.unpack(free_db)[0]
        metas.append(_Meta(_DB.unpack(free_db)[0], _DB.unpack(main_db)[7], last_pg, txnid))
    return metas


class _Walker:
    def __init__(self, fd: int, size: int, page_size: int) -> None:
        self.fd, self.size, self.page_size = fd, size, page_size

    def page(self, pgno: int, kinds: int) -> bytes:
        """The page `pgno`, checked: inside the file, its own number, one of `kinds`."""
        offset = pgno * self.page_size
        if offset + self.page_size > self.size:
            raise _Bad(f"page {pgno} lies past the end of the file (truncated)")
        data = os.pread(self.fd, self.page_size, offset)
        number, _, flags = struct.unpack_from("<QHH", data)
        if number != pgno or not flags & kinds:
            state = "zero-filled" if not any(data[:_PAGE_HEADER]) else "overwritten"
            raise _Bad(f"page {pgno} is {state}")
        return data

    def overflow(self, pgno: int) -> bytes:
        """The first page of an overflow run, checked along with the run's extent."""
        data = self.page(pgno, _P_OVERFLOW)
        (pages,) = struct.unpack_from("<I", data, 12)
        if (pgno + pages) * self.page_size > self.size:
            raise _Bad(f"overflow pages {pgno}-{pgno + pages - 1} run past the end of the file")
        return data

    def leaves(self, root: int) -> Iterator[tuple[bytes, bytes]]:
        """(key, first bytes of the value) of every leaf node under `root`, in key order."""
        if root == _NO_PAGE:
            return
        data = self.page(root, _P_BRANCH | _P_LEAF)
        flags, lower = struct.unpack_from("<HH", data, 10)
        for i in range((lower - _PAGE_HEADER) // 2):
            (at,) = struct.unpack_from("<H", data, _PAGE_HEADER + 2 * i)
            lo, hi, node_flags, ksize = _NODE.unpack_from(data, at)
            if flags & _P_BRANCH:
                yield from self.leaves(lo | hi << 16 | node_flags << 32)
                continue
            key = data[at + 8 : at + 8 + ksize]
            value_at = at + 8 + ksize
            if node_flags & _F_BIGDATA:
                (pgno,) = struct.unpack_from("<Q", data, value_at)
                yield key, self.overflow(pgno)[_PAGE_HEADER : _PAGE_HEADER + 64]
            else:
                yield key, data[value_at : value_at + (lo | hi << 16)]


def _walk(fd: int, size: int, meta: _Meta) -> str | None:
    """None when every tree is sound, else one line naming the damage and the trusted seq."""
    walker = _Walker(fd, size, meta.page_size)
    trusted = 0
    try:
        roots = {}
        for name, value in walker.leaves(meta.main_root):
            roots[name] = _DB.unpack_from(value)[7]
        for key, value in walker.leaves(roots.get(b"events", _NO_PAGE)):
            (count,) = struct.unpack_from("<I", value)
            trusted = int.from_bytes(key, "big") + count - 1
        for name in (b"chain", b"meta"):
            for _ in walker.leaves(roots.get(name, _NO_PAGE)):
                pass
    except (_Bad, struct.error) as e:
        reason = str(e) if isinstance(e, _Bad) else "a page does not parse"
        return f"{reason}; events up to seq {trusted} can be trusted"
    if (meta.last_page + 1) * meta.page_size > size:
        return (
            f"file is truncated at page {size // meta.page_size}; events up to seq {trusted} "
            "can be trusted"
        )
    return None


def committed_once(path: Path) -> bool:
    """Whether `data.mdb` holds a committed transaction (LMDB writes its meta pages with
    transaction 0 when it creates the file; a log's first commit is its creation)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        return any(meta.txnid > 0 for meta in _read_metas(fd))
    finally:
        os.close(fd)


def check_data_file(path: Path) -> str | None:
    """None when `data.mdb` is sound, else one line saying what is damaged and the last seq
    that can be trusted."""
    fd = os.open(path, os.O_RDONLY)
    try:
        for _ in range(_ATTEMPTS):
            metas = _read_metas(fd)
            size = os.fstat(fd).st_size  # after the metas: a writer's pages precede its meta
            if not metas:
                return "no valid LMDB meta page; events up to seq 0 can be trusted"
            newest = max(metas, key=lambda m: m.txnid)
            problem = _walk(fd, size, newest)
            if problem is None:
                return None
            again = _read_metas(fd)
            if again and max(m.txnid for m in again) <= newest.txnid + 1:
                return problem  # the snapshot walked was intact in the file: the damage is real
    finally:
        os.close(fd)
    return None  # a writer committed through every walk: nothing can be concluded
