"""One log's LMDB environment and its `meta` facts (layout, head, manifest): opening, read
transactions, and the errors every room of the log raises.

Databases:
- `events`: 8-byte big-endian seq of a block's first event -> a block of consecutive events
  (store/chain.py). Blocks are seq-aligned: block k holds seqs k*B+1 .. (k+1)*B (B =
  `block_events`, in `layout`), so where a block starts never depends on how appends were batched
  or when commits happened. A partial last block is rewritten as it grows.
- `chain`: block key -> its link. The link of the last block is the run's digest; keeping every
  link lets `verify` name the first block that was changed.
- `meta`: `manifest` (JSON: config, input hashes, versions; not chained), `layout` (JSON) and
  `head` (last committed seq and link, written in the same transaction as the blocks).
"""

from __future__ import annotations

import errno
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lmdb
import msgspec
from loguru import logger

from ticktape.messages.errors import TicktapeError
from ticktape.store import legacy_log, writer_lock
from ticktape.store.chain import GENESIS, Block, seq_key
from ticktape.store.lmdb_check import check_data_file, committed_once
from ticktape.store.writer_lock import Busy, WriterLock

SYNC_POLICIES = ("full", "data", "none")
LAYOUT_FORMAT = "ticktape-blocks/1"
INITIAL_MAP = 64 << 20
_OPEN_ATTEMPTS = 5
CREATION_WAIT = 5.0  # seconds a reader waits for a log's writer to commit its creation


class LogError(TicktapeError):
    """A log that cannot be opened or written as asked; the message is one sentence."""


class LogDamaged(LogError):
    """A log whose file or records are damaged; the message is one line naming the last
    sequence number that can be trusted, or the first that cannot."""


class DiskRefused(LogError):
    """The disk under the log refused a commit (full, a size limit, an I/O error)."""


class HeadDamaged(LogDamaged):
    """The head in `meta` does not decode (the verifier names what the chain still proves)."""


class LogFile:
    """An open LMDB environment of a log, with its three databases and its layout."""

    def __init__(
        self, path: Path, env: lmdb.Environment, *, lock: WriterLock | None = None
    ) -> None:
        self.path = path
        self.env = env
        self.lock = lock
        self.writable = lock is not None
        writable = self.writable
        self.events = env.open_db(b"events", create=writable)
        self.chain = env.open_db(b"chain", create=writable)
        self.meta = env.open_db(b"meta", create=writable)
        self.map_growths = 0
        self._final: Path | None = None  # where a log being created goes (`publish`)
        self._sync = "full"
        layout = self._read_layout()
        self.legacy = layout == 0  # the first layout, read-only: runs of records as blocks
        self.block_events = layout or legacy_log.RUN

    @classmethod
    def create(cls, path: Path, *, sync: str, map_size: int, block_events: int) -> LogFile:
        """A new, empty log, made in a staging folder beside `path` and put in place by
        `publish()`: a log is never seen half made, even if the process dies while making it.
        Refuses to write over an existing log."""
        if sync not in SYNC_POLICIES:
            raise LogError(f"unknown sync policy {sync!r}: use one of {', '.join(SYNC_POLICIES)}")
        _refuse_existing(path)
        staging = path.parent / f"{_STAGING_PREFIX}{path.name}.{os.getpid()}"
        lock = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            _remove_stale_staging(path)
            staging.mkdir()
            lock = _take_lock(staging)
            env = _open_env(staging, sync=sync, map_size=map_size)
            initialize(env, block_events)
            file = cls(staging, env, lock=lock)
            file._final, file._sync = path, sync
            return file
        except (OSError, lmdb.Error) as e:
            if lock is not None:
                lock.release()
            reason = getattr(e, "strerror", None) or e
            raise LogError(f"cannot create log {path}: {reason}") from None
        except BaseException:
            if lock is not None:
                lock.release()
            raise

    def publish(self) -> None:
        """Put a log made by `create` in its place (a rename: all or nothing)."""
        final = self._final
        if final is None:
            return
        try:
            _refuse_existing(final)
            os.rename(self.path, final)  # replaces only an empty folder
        except OSError as e:
            if e.errno in (errno.ENOTEMPTY, errno.EEXIST):
                raise _already(final) from None
            raise LogError(f"cannot create log {final}: {e.strerror or e}") from None
        if self._sync != "none":
            _sync_folder(final.parent)
        self.path, self._final = final, None

    @classmethod
    def open(cls, path: Path, *, writable: bool, sync: str = "full") -> LogFile:
        """An existing log: read-only by default (safe beside a running writer).

        The data file is checked for truncation and zeroed pages first (LogDamaged), since LMDB
        itself would crash the process on them."""
        if not writable:
            _await_creation(path)
        if not (path / "data.mdb").exists():
            raise LogError(f"no event log at {path}")
        problem = check_data_file(path / "data.mdb")
        if problem:
            raise LogDamaged(f"log {path} is damaged: {problem}")
        lock = _take_lock(path) if writable else None
        try:
            for _ in range(_OPEN_ATTEMPTS):
                env = None
                try:
                    if writable:
                        env = _open_env(path, sync=sync, map_size=0, create=False)
                    else:
                        env = _open_read_only(path)
                    return cls(path, env, lock=lock)
                except lmdb.MapResizedError:  # a live writer grew the map while we opened
                    _close(env)
                except lmdb.Error as e:
                    _close(env)
                    raise LogError(f"cannot open event log {path}: {e}") from None
                except BaseException:
                    _close(env)
                    raise
            raise LogError(f"cannot open event log {path}: it kept growing while it was opened")
        except BaseException:
            if lock is not None:
                lock.release()
            raise

    def close(self) -> None:
        try:
            self.env.close()
        finally:
            if self.lock is not None:
                self.lock.release()

    def _read_layout(self) -> int:
        """Events per block; 0 for a log of the first (per-record) layout."""
        with self.begin_read() as txn:
            raw = txn.get(b"layout", db=self.meta)
        if raw is None:  # the first layout: one record per key
            if self._first_value_is_a_block():
                raise self.damaged("the layout is missing (the stored events are blocks)", 0)
            if self.writable:
                raise LogError(f"log {self.path} has the per-record layout: it can be read only")
            return 0
        try:
            layout = msgspec.json.decode(raw, type=dict[str, Any])
            if layout.get("format") != LAYOUT_FORMAT:
                raise LogError(f"log {self.path} has an unknown layout {layout.get('format')!r}")
            block_events = layout["block_events"]
            if not isinstance(block_events, int) or block_events < 1:
                raise ValueError
        except (msgspec.DecodeError, KeyError, ValueError):
            raise self.damaged("the layout does not decode", 0) from None
        return block_events

    def _first_value_is_a_block(self) -> bool:
        """A record of the first layout never parses as a block: its first four bytes (a
        msgpack array header) would count more records than the value holds."""
        with self.begin_read() as txn:
            value = txn.get(seq_key(1), db=self.events)
        try:
            return value is not None and len(Block.parse(1, value)) > 0
        except ValueError:
            return False

    def damaged(self, problem: str, trusted: int) -> LogDamaged:
        return LogDamaged(
            f"log {self.path} is damaged: {problem}; events up to seq {trusted} can be trusted"
        )

    def block_start(self, seq: int) -> int:
        return (seq - 1) // self.block_events * self.block_events + 1

    def begin_read(self, *, buffers: bool = False) -> lmdb.Transaction:
        try:
            return self.env.begin(buffers=buffers)
        except lmdb.MapResizedError:
            self.env.set_mapsize(0)  # a writer grew the map; adopt its size
            return self.env.begin(buffers=buffers)

    def head(self) -> tuple[int, bytes]:
        """(last committed seq, its link), as on disk now; (0, genesis) when there is none
        (store/log_verifier.py names a head missing beside stored events)."""
        with self.begin_read() as txn:
            return decode_head(txn.get(b"head", db=self.meta))

    def manifest(self) -> dict[str, Any]:
        with self.begin_read() as txn:
            raw = txn.get(b"manifest", db=self.meta)
        if raw is None:
            return {}
        try:
            return msgspec.json.decode(raw, type=dict[str, Any])
        except msgspec.DecodeError:
            raise LogDamaged(f"log {self.path} is damaged: its manifest does not decode") from None

    def write(self, work: Callable[[lmdb.Transaction], None]) -> None:
        """Run `work` in one write transaction, growing the map when it is full. A write the
        disk refuses (full, a file size limit, an I/O error) is DiskRefused naming the disk;
        the transaction is not committed, so what was committed before stays intact."""
        while True:
            try:
                with self.env.begin(write=True) as txn:
                    work(txn)
                return
            except lmdb.MapFullError:
                self.env.set_mapsize(self.env.info()["map_size"] * 2)
                self.map_growths += 1
            except lmdb.Error as e:
                disk = _mount_point(self.path)
                free = shutil.disk_usage(disk).free >> 20
                where = f"the disk at {disk} ({free:,} MB free)"
                raise DiskRefused(f"log {self.path}: {where} refused the write ({e})") from None

    def put_meta(self, key: bytes, value: bytes) -> None:
        self.write(lambda txn: txn.put(key, value, db=self.meta))


def initialize(env: lmdb.Environment, block_events: int) -> None:
    """A new log's first commit: its three databases and its layout together, so a reader sees
    either no commit (the log is being created) or a log it can open."""
    with env.begin(write=True) as txn:
        meta = env.open_db(b"meta", txn=txn)
        for name in (b"events", b"chain"):
            env.open_db(name, txn=txn)
        layout = {"format": LAYOUT_FORMAT, "block_events": block_events}
        txn.put(b"layout", msgspec.json.encode(layout), db=meta)


def _await_creation(path: Path) -> None:
    """Waits while a writer creates the log (it holds writer.lock and its first commit is not on
    disk yet), so a reader beside it then sees an empty log, not an error (DESIGN §7). A log that
    was never committed and has no writer is left to the checks that name it."""
    deadline = time.monotonic() + CREATION_WAIT
    while not committed_once(path / "data.mdb") and writer_lock.held(path):
        if time.monotonic() > deadline:
            waited = f"{CREATION_WAIT:g} s"
            raise LogError(f"log {path} is still being created after {waited}; try again")
        time.sleep(0.01)


def decode_head(raw: bytes | None) -> tuple[int, bytes]:
    """The head's (seq, link); HeadDamaged when it does not decode."""
    if raw is None:
        return 0, GENESIS
    try:
        seq, link = msgspec.msgpack.decode(raw, type=tuple[int, bytes])
    except msgspec.DecodeError:
        raise HeadDamaged("the head does not decode") from None
    if seq < 0 or len(link) != len(GENESIS):
        raise HeadDamaged("the head does not decode")
    return seq, link


def _mount_point(path: Path) -> Path:
    path = path.resolve()
    while not os.path.ismount(path) and path != path.parent:
        path = path.parent
    return path


def _open_read_only(path: Path) -> lmdb.Environment:
    """Read-only, taking LMDB's reader lock (lock.mdb) when the folder allows it. A log the user
    may read but not write (a read-only mount, another user's files) has no lock to take: it is
    opened without one, and then a live writer is not excluded (a reader beside it could see a
    page the writer is reusing), so this is for logs at rest."""
    try:
        return lmdb.open(str(path), max_dbs=3, readonly=True, create=False, lock=True)
    except lmdb.MapResizedError:
        raise
    except lmdb.Error as e:
        try:
            env = lmdb.open(str(path), max_dbs=3, readonly=True, create=False, lock=False)
        except lmdb.Error:
            raise e from None
        logger.warning(
            "log {} cannot be locked ({}): read without a lock; a live writer is not excluded",
            path,
            e,
        )
        return env


def _close(env: lmdb.Environment | None) -> None:
    """Closes an environment an open gave up on (None: lmdb.open itself failed)."""
    if env is not None:
        env.close()


_STAGING_PREFIX = ".creating-"


def _already(path: Path) -> LogError:
    return LogError(f"log {path} already exists; choose another --log path or remove it")


def _refuse_existing(path: Path) -> None:
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise _already(path)


def _remove_stale_staging(path: Path) -> None:
    """A log whose making was cut short (its process died) left a staging folder: no writer
    holds it, so it goes."""
    for stale in path.parent.glob(f"{_STAGING_PREFIX}{path.name}.*"):
        if stale.is_dir() and not writer_lock.held(stale):
            shutil.rmtree(stale, ignore_errors=True)


def _sync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _take_lock(path: Path) -> WriterLock:
    try:
        return WriterLock.take(path, "log")
    except Busy as e:
        raise LogError(str(e)) from None


def _open_env(path: Path, *, sync: str, map_size: int, create: bool = True) -> lmdb.Environment:
    options: dict[str, Any] = {"max_dbs": 3, "sync": sync != "none", "metasync": sync == "full"}
    if map_size:
        options["map_size"] = map_size
    return lmdb.open(str(path), create=create, **options)
