"""The event log: one append-only LMDB environment per run, stored in blocks of events.

Databases:
- `events`: 8-byte big-endian seq of a block's first event -> a block of consecutive events.
  Blocks are seq-aligned: block k holds seqs k*B+1 .. (k+1)*B (B = `block_events`, in `meta`), so
  where a block starts never depends on how appends were batched or when commits happened. A block
  is `<u4 count> <u4 end offset of each record> <records>`: slicing one record and decoding a whole
  block with one msgspec call are both cheap. A partial last block is rewritten as it grows.
- `chain`: block key -> its BLAKE2b-256 link over (previous link + key + stored block). The link of
  the last (maybe partial) block is the run's digest; keeping every link lets `verify` name the
  first block that was changed.
- `meta`: `manifest` (JSON: config, input hashes, versions; not chained), `layout` (JSON) and
  `head` (last committed seq and link, written in the same transaction as the blocks).

One writer owns a log (the sequencer); it buffers records and commits them in groups, so a crash
leaves a valid prefix, never a torn record. Readers use short read transactions and can follow a log
that is still being written.
"""

from __future__ import annotations

import hashlib
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lmdb
import msgspec
import numpy as np

from ticktape.messages.codec import EncodedBatch, decode, decode_many, encode
from ticktape.messages.errors import TicktapeError
from ticktape.messages.events import Event
from ticktape.store import faults, legacy_log
from ticktape.store.lmdb_check import check_data_file

__all__ = ["EventLog", "LogDamaged", "LogError", "VerifyResult", "seq_key"]

SYNC_POLICIES = ("full", "data", "none")
GENESIS = hashlib.blake2b(b"ticktape-log/1", digest_size=32).digest()
BLOCK_EVENTS = 1024
_OPEN_ATTEMPTS = 5
LAYOUT_FORMAT = "ticktape-blocks/1"
_INITIAL_MAP = 64 << 20
_READ_BLOCKS = 16  # blocks per read transaction


class LogError(TicktapeError):
    """A log that cannot be opened or written as asked; the message is one sentence."""


class LogDamaged(LogError):
    """A log whose file or records are damaged; the message is one line naming the last
    sequence number that can be trusted, or the first that cannot."""


class VerifyResult(msgspec.Struct, frozen=True):
    ok: bool
    events: int  # events that verified, from seq 1
    digest: str  # the link at the last event that verified
    first_bad_seq: int | None = None
    reason: str = ""
    bad_block: tuple[int, int] | None = None  # (first seq, last seq) of the first bad block


def seq_key(seq: int) -> bytes:
    return seq.to_bytes(8, "big")


# -- blocks -------------------------------------------------------------------------------------


def pack_block(records: bytes | memoryview, lengths: np.ndarray) -> bytes:
    ends = np.cumsum(lengths, dtype=np.int64)
    return b"".join((struct.pack("<I", len(lengths)), ends.astype("<u4").tobytes(), records))


@dataclass(frozen=True, slots=True)
class Block:
    """One stored block, parsed: record i is `records[starts[i]:ends[i]]`."""

    key: int  # seq of its first event
    value: bytes
    ends: np.ndarray  # int64, relative to the records
    body: int  # where the records start in `value`

    @classmethod
    def parse(cls, key: int, value: bytes) -> Block:
        """Raises ValueError when the block's own layout is broken."""
        if len(value) < 4:
            raise ValueError("block shorter than its header")
        (count,) = struct.unpack_from("<I", value)
        body = 4 + 4 * count
        if body > len(value):
            raise ValueError("block shorter than its record table")
        ends = np.frombuffer(value, "<u4", count, 4).astype(np.int64)
        if count and (np.any(np.diff(ends) < 0) or ends[-1] != len(value) - body):
            raise ValueError("block record table does not match its records")
        return cls(key, value, ends, body)

    def __len__(self) -> int:
        return len(self.ends)

    @property
    def last(self) -> int:
        return self.key + len(self) - 1

    def batch(self, start: int, stop: int) -> EncodedBatch:
        """Records for seqs [start, stop) of this block, as a batch over its buffer."""
        lo, hi = max(start - self.key, 0), min(stop - self.key, len(self))
        ends = self.ends[lo:hi]
        starts = np.concatenate(([0], self.ends[:-1]))[lo:hi] if hi > lo else ends
        buffer = np.frombuffer(self.value, np.uint8)
        return EncodedBatch(buffer, starts + self.body, ends - starts)

    def prefix(self, count: int) -> bytes:
        """The stored form of this block's first `count` records (a partial block at a commit)."""
        lengths = np.diff(self.ends[:count], prepend=0)
        end = int(self.ends[count - 1]) if count else 0
        return pack_block(memoryview(self.value)[self.body : self.body + end], lengths)


def block_link(previous: bytes, key: int, value: bytes) -> bytes:
    h = hashlib.blake2b(previous, digest_size=32)
    h.update(seq_key(key))
    h.update(value)
    return h.digest()


class _OpenBlock:
    """The block being filled by the writer: its records so far, not yet complete."""

    def __init__(self, key: int, previous_link: bytes) -> None:
        self.key = key
        self.previous_link = previous_link
        self.parts: list[bytes | memoryview] = []
        self.lengths: list[np.ndarray] = []
        self.count = 0

    def add(self, records: memoryview, lengths: np.ndarray) -> None:
        self.parts.append(records)
        self.lengths.append(lengths)
        self.count += len(lengths)

    def value(self) -> bytes:
        lengths = np.concatenate(self.lengths) if self.lengths else np.empty(0, np.int64)
        records = b"".join(self.parts)
        self.parts, self.lengths = [records], [lengths]  # keep the join for the next commit
        return pack_block(records, lengths)


class ChainHasher:
    """The digest a log would have if these records were appended to an empty one: what a
    replay prints for the stream it delivered (equal to the log's own digest for all of it)."""

    def __init__(self, block_events: int) -> None:
        self.block_events = block_events
        self._open = _OpenBlock(1, GENESIS)

    def add(self, batch: EncodedBatch) -> None:
        lengths = batch.lengths.astype(np.int64)
        records = batch.joined()
        offsets = np.concatenate(([0], np.cumsum(lengths)))
        done = 0
        while done < len(lengths):
            take = min(self.block_events - self._open.count, len(lengths) - done)
            piece = records[int(offsets[done]) : int(offsets[done + take])]
            self._open.add(piece, lengths[done : done + take])
            done += take
            if self._open.count == self.block_events:
                key = self._open.key
                link = block_link(self._open.previous_link, key, self._open.value())
                self._open = _OpenBlock(key + self.block_events, link)

    @property
    def digest(self) -> str:
        if not self._open.count:
            return self._open.previous_link.hex()
        return block_link(self._open.previous_link, self._open.key, self._open.value()).hex()


# -- the log ------------------------------------------------------------------------------------


class EventLog:
    """Append-only, hash-chained event log over LMDB, stored in seq-aligned blocks."""

    def __init__(
        self,
        path: Path,
        env: lmdb.Environment,
        *,
        writable: bool,
        group_size: int,
        commit_interval: float = 0.25,
    ) -> None:
        self.path = path
        self._env = env
        self._writable = writable
        self._group_size = group_size
        self.commit_interval = commit_interval
        self._events = env.open_db(b"events", create=writable)
        self._chain = env.open_db(b"chain", create=writable)
        self._meta = env.open_db(b"meta", create=writable)
        self.commits = 0
        self.map_growths = 0
        layout = self._read_layout()
        self._legacy = layout == 0  # the first layout, read-only: runs of records as blocks
        self._block_events = layout or legacy_log.RUN
        committed_seq, committed_link = self._read_head()
        self._committed_seq = committed_seq
        self._next_seq = committed_seq + 1
        self._ready: list[tuple[int, bytes, bytes]] = []  # complete blocks: key, value, link
        self._stored_partial: int | None = None  # key of the partial block on disk
        self._resume_until = 0  # appends up to this seq are compared, not written
        self._resume_block: Block | None = None
        self._committed_at = time.monotonic()
        self._open = _OpenBlock(self._block_start(self._next_seq), committed_link)
        self._link = committed_link
        if writable and committed_seq % self._block_events:
            self._reload_partial_block(committed_seq)

    # -- opening -------------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        path: str | Path,
        manifest: dict[str, Any],
        *,
        sync: str = "full",
        group_size: int = 65536,
        map_size: int = _INITIAL_MAP,
        block_events: int = BLOCK_EVENTS,
        commit_interval: float = 0.25,
    ) -> EventLog:
        """A new, empty log; refuses to write over an existing one."""
        path = Path(path)
        if sync not in SYNC_POLICIES:
            raise LogError(f"unknown sync policy {sync!r}: use one of {', '.join(SYNC_POLICIES)}")
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise LogError(f"log {path} already exists; choose another --log path or remove it")
        try:
            path.mkdir(parents=True, exist_ok=True)
            env = _open_env(path, sync=sync, map_size=map_size)
            with env.begin(write=True) as txn:
                meta = env.open_db(b"meta", txn=txn)
                layout = {"format": LAYOUT_FORMAT, "block_events": block_events}
                txn.put(b"layout", msgspec.json.encode(layout), db=meta)
        except (OSError, lmdb.Error) as e:
            reason = getattr(e, "strerror", None) or e
            raise LogError(f"cannot create log {path}: {reason}") from None
        log = cls(path, env, writable=True, group_size=group_size, commit_interval=commit_interval)
        log.write_manifest(manifest)
        return log

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        writable: bool = False,
        group_size: int = 65536,
        sync: str = "full",
        commit_interval: float = 0.25,
    ) -> EventLog:
        """An existing log: read-only by default (safe beside a running writer).

        The data file is checked for truncation and zeroed pages first (LogDamaged), since LMDB
        itself would crash the process on them."""
        path = Path(path)
        if not (path / "data.mdb").exists():
            raise LogError(f"no event log at {path}")
        problem = check_data_file(path / "data.mdb")
        if problem:
            raise LogDamaged(f"log {path} is damaged: {problem}")
        for _ in range(_OPEN_ATTEMPTS):
            try:
                if writable:
                    env = _open_env(path, sync=sync, map_size=0, create=False)
                else:
                    env = lmdb.open(str(path), max_dbs=3, readonly=True, create=False, lock=True)
                return cls(
                    path, env, writable=writable, group_size=group_size,
                    commit_interval=commit_interval,
                )  # fmt: skip
            except lmdb.MapResizedError:  # a live writer grew the map while we opened: again
                env.close()
            except lmdb.Error as e:
                raise LogError(f"cannot open event log {path}: {e}") from None
        raise LogError(f"cannot open event log {path}: it kept growing while it was opened")

    @classmethod
    def open_for_resume(
        cls, path: str | Path, *, sync: str = "full", group_size: int = 65536
    ) -> EventLog:
        """A writable log that starts again from seq 1: the first N appends (N = committed events)
        are compared byte for byte with the stored records instead of written, then appends go on
        as usual. The finished log is the one an uninterrupted run writes."""
        log = cls.open(path, writable=True, group_size=group_size, sync=sync)
        log._resume_until = log._committed_seq
        log._next_seq = 1
        log._open = _OpenBlock(1, GENESIS)
        log._link = GENESIS
        return log

    def close(self) -> None:
        if self._writable:
            self.flush()
        self._env.close()

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read_layout(self) -> int:
        """Events per block; 0 for a log of the first (per-record) layout."""
        with self._begin_read() as txn:
            raw = txn.get(b"layout", db=self._meta)
        if raw is None:  # the first layout: one record per key
            if self._writable:
                raise LogError(f"log {self.path} has the per-record layout: it can be read only")
            return 0
        layout = msgspec.json.decode(raw)
        if layout.get("format") != LAYOUT_FORMAT:
            raise LogError(f"log {self.path} has an unknown layout {layout.get('format')!r}")
        return int(layout["block_events"])

    def _block_start(self, seq: int) -> int:
        return (seq - 1) // self._block_events * self._block_events + 1

    def _reload_partial_block(self, committed_seq: int) -> None:
        """Reopened for writing: carry on filling the partial block that is on disk."""
        key = self._block_start(committed_seq)
        with self._begin_read() as txn:
            block = Block.parse(key, txn.get(seq_key(key), db=self._events))
            previous = GENESIS
            if key > 1:
                previous = bytes(txn.get(seq_key(key - self._block_events), db=self._chain))
        self._open = _OpenBlock(key, previous)
        self._open.add(memoryview(block.value)[block.body :], np.diff(block.ends, prepend=0))
        self._stored_partial = key

    # -- writing (the sequencer) -----------------------------------------------------------------

    @property
    def next_seq(self) -> int:
        return self._next_seq

    @property
    def digest(self) -> str:
        """BLAKE2b chain head over every appended record: the run's identity."""
        if self._link is None:
            self._link = block_link(self._open.previous_link, self._open.key, self._open.value())
        return self._link.hex()

    def append(self, event: Event) -> int:
        """Append one event; returns its sequence number."""
        record = encode(event)
        self._add(memoryview(record), np.array([len(record)], dtype=np.int64))
        self.commit_due()
        return self._next_seq - 1

    def append_batch(self, batch: EncodedBatch, *, commit: bool = True) -> int:
        """Append pre-encoded records in order; returns the last sequence number.

        With `commit=False` a group commit that falls due waits for the caller's `commit_due()`
        (a paced release is measured before it, since its records are out once appended)."""
        if len(batch):
            self._add(batch.joined(), batch.lengths.astype(np.int64))
        if commit:
            self.commit_due()
        return self._next_seq - 1

    def commit_due(self) -> None:
        """Commit when a group is full or the commit interval has passed (group commit)."""
        pending = self._next_seq - 1 - self._committed_seq
        if pending >= self._group_size or (
            pending > 0 and time.monotonic() - self._committed_at >= self.commit_interval
        ):
            self.flush()

    def _add(self, records: memoryview, lengths: np.ndarray) -> None:
        """Fill blocks with the records; complete blocks are linked and queued for the commit."""
        ends = np.cumsum(lengths)
        done = 0
        while done < len(lengths):
            take = min(self._block_events - self._open.count, len(lengths) - done)
            if self._next_seq <= self._resume_until:
                take = min(take, self._resume_until - self._next_seq + 1)
            lo = int(ends[done - 1]) if done else 0
            hi = int(ends[done + take - 1])
            part, part_lengths = records[lo:hi], lengths[done : done + take]
            if self._next_seq <= self._resume_until:
                self._compare_stored(self._next_seq, part, part_lengths)
            self._open.add(part, part_lengths)
            self._next_seq += take
            done += take
            if self._open.count == self._block_events:
                value = self._open.value()
                link = block_link(self._open.previous_link, self._open.key, value)
                self._ready.append((self._open.key, value, link))
                self._open = _OpenBlock(self._open.key + self._block_events, link)
                self._link = link
            else:
                self._link = None  # the digest now covers a partial block: computed when asked
            if self._resume_until and self._next_seq - 1 == self._resume_until:
                self._end_resume_overlap()

    def flush(self) -> None:
        """Commit the queued blocks and the partial last block in one transaction (group
        commit), growing the map when it is full."""
        last = self._next_seq - 1
        if last <= self._committed_seq:
            self._ready = [r for r in self._ready if r[0] + self._block_events - 1 > last]
            return
        blocks = [r for r in self._ready if r[0] + self._block_events - 1 > self._committed_seq]
        if self._open.count:
            value = self._open.value()
            link = block_link(self._open.previous_link, self._open.key, value)
            blocks.append((self._open.key, value, link))
        head = msgspec.msgpack.encode((last, blocks[-1][2]))
        while True:
            try:
                with self._env.begin(write=True) as txn:
                    for key, value, link in blocks:
                        self._put(txn, key, value, link)
                    faults.reached("commit")
                    txn.put(b"head", head, db=self._meta)
                break
            except lmdb.MapFullError:
                self._grow()
        self._link = blocks[-1][2]
        self._ready.clear()
        self._stored_partial = self._open.key if self._open.count else None
        self._committed_seq = last
        self._committed_at = time.monotonic()
        self.commits += 1

    def _put(self, txn: lmdb.Transaction, key: int, value: bytes, link: bytes) -> None:
        """Append a block (or rewrite the partial one) and its link; LMDB must accept both."""
        rewrite = key == self._stored_partial
        for db, data in ((self._events, value), (self._chain, link)):
            if not txn.put(seq_key(key), data, db=db, append=not rewrite):
                raise LogError(
                    f"log {self.path}: block at seq {key} refused (sequence numbers out of order)"
                )

    def _grow(self) -> None:
        self._env.set_mapsize(self._env.info()["map_size"] * 2)
        self.map_growths += 1

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        self._put_meta(b"manifest", msgspec.json.encode(manifest))

    def note_resume(self, info: dict[str, Any]) -> None:
        """Record a resume in the manifest (outside the chained facts)."""
        manifest = self.manifest()
        manifest.setdefault("resumes", []).append(info)
        self.write_manifest(manifest)

    def _put_meta(self, key: bytes, value: bytes) -> None:
        while True:
            try:
                with self._env.begin(write=True) as txn:
                    txn.put(key, value, db=self._meta)
                return
            except lmdb.MapFullError:
                self._grow()

    # -- resuming ------------------------------------------------------------------------------

    def _compare_stored(self, seq: int, records: memoryview, lengths: np.ndarray) -> None:
        """Raise LogError at the first record that differs from the stored one at its seq."""
        block = self._resume_block
        if block is None or block.key != self._block_start(seq):
            block = self._resume_block = self._read_block(self._block_start(seq))
        if block is None or block.last < seq + len(lengths) - 1:
            raise LogError(f"resume diverged at seq {seq}: the stored log ends before it")
        stored = block.batch(seq, seq + len(lengths))
        if stored.joined() == records and np.array_equal(stored.lengths, lengths):
            return
        offsets = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        ours = EncodedBatch(np.frombuffer(records, np.uint8), offsets, lengths)
        for i, (old, new) in enumerate(zip(stored.records(), ours.records(), strict=True)):
            if old != new:
                raise LogError(
                    f"resume diverged at seq {seq + i}: stored {_describe(old)}, "
                    f"re-run gave {_describe(new)}"
                )

    def _end_resume_overlap(self) -> None:
        stored_seq, stored_link = self._read_head()
        if self.digest != stored_link.hex():
            raise LogError(f"resume diverged at seq {stored_seq}: digest differs from the log's")
        self._resume_until = 0
        self._resume_block = None

    # -- reading -----------------------------------------------------------------------------

    def _begin_read(self, *, buffers: bool = False) -> lmdb.Transaction:
        try:
            return self._env.begin(buffers=buffers)
        except lmdb.MapResizedError:
            self._env.set_mapsize(0)  # a writer grew the map; adopt its size
            return self._env.begin(buffers=buffers)

    def _read_head(self) -> tuple[int, bytes]:
        with self._begin_read() as txn:
            raw = txn.get(b"head", db=self._meta)
        if raw is None:
            return 0, GENESIS
        seq, link = msgspec.msgpack.decode(raw)
        return seq, link

    def _read_block(self, key: int) -> Block | None:
        with self._begin_read() as txn:
            value = txn.get(seq_key(key), db=self._events)
        return None if value is None else Block.parse(key, value)

    @property
    def resuming(self) -> bool:
        """Still comparing appends with the stored log (a resume that has not caught up)."""
        return self._resume_until > 0

    @property
    def block_events(self) -> int:
        return self._block_events

    def manifest(self) -> dict[str, Any]:
        with self._begin_read() as txn:
            raw = txn.get(b"manifest", db=self._meta)
        return msgspec.json.decode(raw) if raw else {}

    def committed(self) -> tuple[int, str]:
        """(last committed sequence number, digest at that point), as on disk now."""
        seq, link = self._read_head()
        return seq, link.hex()

    def _blocks(self, start: int, stop: int | None) -> Iterator[Block]:
        """Stored blocks overlapping [start, stop), a few per short read transaction. A block
        whose layout is broken raises LogDamaged naming its first seq."""
        if self._legacy:
            for first, records in legacy_log.runs(self._begin_read, self._events, start, stop):
                yield Block.parse(first, pack_block(b"".join(records), legacy_log.lengths(records)))
            return
        key = self._block_start(max(start, 1))
        while stop is None or key < stop:
            chunk: list[tuple[int, bytes]] = []
            with self._begin_read() as txn:
                cursor = txn.cursor(self._events)
                if not cursor.set_range(seq_key(key)):
                    return
                for raw_key, value in cursor:
                    k = int.from_bytes(raw_key, "big")
                    if (stop is not None and k >= stop) or len(chunk) >= _READ_BLOCKS:
                        break
                    chunk.append((k, value))
            if not chunk:
                return
            for k, value in chunk:
                if k != key:
                    raise LogDamaged(f"log {self.path}: events from seq {key} are missing")
                try:
                    block = Block.parse(k, value)
                except ValueError as e:
                    raise LogDamaged(f"log {self.path}: block at seq {k} is damaged: {e}") from None
                yield block
                if len(block) < self._block_events:
                    return  # the partial last block
                key += self._block_events
            if len(chunk) < _READ_BLOCKS:
                return

    def batches(
        self, start: int = 1, stop: int | None = None, *, blocks: int = 1
    ) -> Iterator[tuple[int, EncodedBatch]]:
        """(first seq, records) for committed events in [start, stop): one batch per `blocks`
        stored blocks (more blocks per batch: fewer, larger numpy calls for bulk decoding)."""
        start = max(start, 1)
        pending: list[EncodedBatch] = []
        first = start
        for block in self._blocks(start, stop):
            batch = block.batch(
                max(start, block.key), block.key + len(block) if stop is None else stop
            )
            if len(batch):
                pending.append(batch)
            if len(pending) >= blocks:
                yield first, EncodedBatch.concat(pending)
                first += sum(len(b) for b in pending)
                pending = []
        if pending:
            yield first, EncodedBatch.concat(pending)

    def records(self, start: int = 1, stop: int | None = None) -> Iterator[tuple[int, bytes]]:
        """(seq, record bytes) for committed events in [start, stop)."""
        for first, batch in self.batches(start, stop):
            for i, record in enumerate(batch.records()):
                yield first + i, bytes(record)

    def decoded(
        self, start: int = 1, stop: int | None = None, *, blocks: int = 1
    ) -> Iterator[tuple[int, EncodedBatch, list[Event]]]:
        """(first seq, records, events) per batch of committed events in [start, stop). A record
        that does not decode raises LogDamaged naming its seq, after every event before it."""
        for first, batch in self.batches(start, stop, blocks=blocks):
            try:
                yield first, batch, decode_many(batch)
            except msgspec.DecodeError:
                seq, error = _first_undecodable(first, batch)
                good = batch.take(np.arange(seq - first))
                yield first, good, [decode(r) for r in good.records()]
                message = f"log {self.path}: record at seq {seq} does not decode ({error})"
                raise LogDamaged(message) from None

    def events(self, start: int = 1, stop: int | None = None) -> Iterator[tuple[int, Event]]:
        """(seq, event) for committed events in [start, stop); see `decoded`."""
        for first, _, events in self.decoded(start, stop):
            yield from enumerate(events, start=first)

    def count(self) -> int:
        """Events stored: the sum of the stored blocks' counts (read from their headers only)."""
        if self._legacy:
            with self._begin_read() as txn:
                return txn.stat(self._events)["entries"]
        total, key = 0, seq_key(1)
        while True:
            with self._begin_read(buffers=True) as txn:
                cursor = txn.cursor(self._events)
                if not cursor.set_range(key):
                    return total
                for n, (raw_key, value) in enumerate(cursor):
                    if n == 4096:
                        key = bytes(raw_key)
                        break
                    total += struct.unpack_from("<I", value)[0]
                else:
                    return total

    def verify(self) -> VerifyResult:
        """Recompute the chain up to the committed head read first (a consistent snapshot even
        beside a live writer); name the first block, and record when it can, that breaks it."""
        head_seq, head_link = self._read_head()
        link, verified = GENESIS, 0
        if self._legacy:
            verified, link, bad_seq, reason = legacy_log.verify(
                self._begin_read, self._events, self._chain, GENESIS, head_seq
            )
            if bad_seq is None and link != head_link:
                bad_seq, reason = head_seq, "head does not match the chain"
            return VerifyResult(bad_seq is None, verified, link.hex(), bad_seq, reason)
        if head_seq == 0:
            return VerifyResult(True, 0, GENESIS.hex())
        key = 1
        head_block = self._block_start(head_seq)

        def bad(first_bad: int, reason: str, last: int) -> VerifyResult:
            return VerifyResult(False, verified, link.hex(), first_bad, reason, (key, last))

        while key <= head_block:
            last = min(key + self._block_events - 1, head_seq)
            with self._begin_read() as txn:
                value = txn.get(seq_key(key), db=self._events)
                stored_link = txn.get(seq_key(key), db=self._chain)
            if value is None:
                return bad(key, f"events {key}-{last} are missing", last)
            try:
                block = Block.parse(key, value)
            except ValueError as e:
                return bad(key, f"block {key}-{last} is damaged: {e}", last)
            count = last - key + 1
            if len(block) < count:
                return bad(block.last + 1, f"events {block.last + 1}-{last} are missing", last)
            batch = block.batch(key, last + 1)
            try:
                decode_many(batch)
            except msgspec.DecodeError:
                seq, _ = _first_undecodable(key, batch)
                return bad(seq, f"block {key}-{last}: record at seq {seq} does not decode", last)
            if key == head_block:  # maybe extended since the head was read: verify the prefix
                new_link, expected = block_link(link, key, block.prefix(count)), head_link
            else:
                new_link, expected = block_link(link, key, value), stored_link
            if new_link != expected or (key != head_block and len(block) != count):
                return bad(key, f"block {key}-{last} does not match the chain", last)
            link, verified = new_link, last
            key += self._block_events
        return VerifyResult(True, verified, link.hex())


def _open_env(path: Path, *, sync: str, map_size: int, create: bool = True) -> lmdb.Environment:
    options: dict[str, Any] = {"max_dbs": 3, "sync": sync != "none", "metasync": sync == "full"}
    if map_size:
        options["map_size"] = map_size
    return lmdb.open(str(path), create=create, **options)


def _first_undecodable(first: int, batch: EncodedBatch) -> tuple[int, str]:
    for i, record in enumerate(batch.records()):
        try:
            decode(record)
        except msgspec.DecodeError as e:
            return first + i, str(e)
    return first + len(batch) - 1, "records do not decode together"


def _describe(record: memoryview | bytes) -> str:
    try:
        return repr(decode(record))
    except msgspec.DecodeError:
        return f"undecodable bytes {bytes(record)[:24].hex()}"
