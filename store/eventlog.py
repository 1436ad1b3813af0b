"""The event log: one append-only LMDB environment per run.

Databases:
- `events`: 8-byte big-endian sequence number -> msgpack event (gap-free, from 1).
- `chain`: first seq of a commit group -> the BLAKE2b-256 links of its records, each over (previous
  link + key + record). The last link is the run's digest; keeping every link lets `verify` name
  the first record that was changed.
- `meta`: `manifest` (JSON: config, input hashes, versions; not chained) and `head`
  (last committed seq and link, written in the same transaction as the records).

One writer owns a log (the sequencer); it buffers records and commits them in groups, so a crash
leaves a valid prefix, never a torn record. Readers use short read transactions and can follow a log
that is still being written.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lmdb
import msgspec
import numpy as np

from messages.codec import EncodedBatch, decode, encode
from messages.events import Event

SYNC_POLICIES = ("full", "data", "none")
GENESIS = hashlib.blake2b(b"ticktape-log/1", digest_size=32).digest()
_INITIAL_MAP = 64 << 20
_READ_CHUNK = 4096


class LogError(Exception):
    """A log that cannot be opened or written as asked; the message is one sentence."""


class VerifyResult(msgspec.Struct, frozen=True):
    ok: bool
    events: int
    digest: str
    first_bad_seq: int | None = None
    reason: str = ""


def seq_key(seq: int) -> bytes:
    return seq.to_bytes(8, "big")


def _link(previous: bytes, key: bytes | memoryview, record: bytes | memoryview) -> bytes:
    h = hashlib.blake2b(previous, digest_size=32)
    h.update(key)
    h.update(record)
    return h.digest()


class EventLog:
    """Append-only, hash-chained event log over LMDB."""

    def __init__(
        self, path: Path, env: lmdb.Environment, *, writable: bool, group_size: int
    ) -> None:
        self.path = path
        self._env = env
        self._writable = writable
        self._group_size = group_size
        self._events = env.open_db(b"events", create=writable)
        self._chain = env.open_db(b"chain", create=writable)
        self._meta = env.open_db(b"meta", create=writable)
        self._pending: list[tuple[memoryview, memoryview, list[int], list[int]]] = []
        self._pending_links = bytearray()
        self._pending_count = 0
        self.commits = 0
        self.map_growths = 0
        committed_seq, committed_link = self._read_head()
        self._next_seq = committed_seq + 1
        self._link = committed_link

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
    ) -> EventLog:
        """A new, empty log; refuses to write over an existing one."""
        path = Path(path)
        if sync not in SYNC_POLICIES:
            raise LogError(f"unknown sync policy {sync!r}: use one of {', '.join(SYNC_POLICIES)}")
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise LogError(f"log {path} already exists; choose another --log path or remove it")
        try:
            path.mkdir(parents=True, exist_ok=True)
            env = lmdb.open(
                str(path),
                map_size=map_size,
                max_dbs=3,
                sync=sync != "none",
                metasync=sync == "full",
            )
        except (OSError, lmdb.Error) as e:
            raise LogError(f"cannot create log {path}: {e.strerror or e}") from None
        log = cls(path, env, writable=True, group_size=group_size)
        log.write_manifest(manifest)
        return log

    @classmethod
    def open(cls, path: str | Path, *, writable: bool = False, group_size: int = 65536) -> EventLog:
        """An existing log: read-only by default (safe beside a running writer)."""
        path = Path(path)
        if not (path / "data.mdb").exists():
            raise LogError(f"no event log at {path}")
        try:
            env = lmdb.open(str(path), max_dbs=3, readonly=not writable, create=False)
            return cls(path, env, writable=writable, group_size=group_size)
        except lmdb.Error as e:
            raise LogError(f"cannot open event log {path}: {e}") from None

    def close(self) -> None:
        if self._writable:
            self.flush()
        self._env.close()

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing (the sequencer) -----------------------------------------------------------------

    @property
    def next_seq(self) -> int:
        return self._next_seq

    @property
    def digest(self) -> str:
        """BLAKE2b chain head over every appended record: the run's identity."""
        return self._link.hex()

    def append(self, event: Event) -> int:
        """Append one event; returns its sequence number."""
        record = encode(event)
        self._add_segment(record, [0], [len(record)])
        return self._next_seq - 1

    def append_batch(self, batch: EncodedBatch) -> int:
        """Append pre-encoded records in order; returns the last sequence number."""
        if len(batch):
            self._add_segment(batch.buffer, batch.offsets.tolist(), batch.lengths.tolist())
        return self._next_seq - 1

    def _add_segment(self, buffer: Any, offsets: list[int], lengths: list[int]) -> None:
        """Extend the chain over the records of one buffer and queue them for the next commit."""
        first = self._next_seq
        keys = memoryview(np.arange(first, first + len(offsets), dtype=">u8").tobytes())
        records = memoryview(buffer).cast("B")
        links = self._pending_links
        link = self._link
        blake2b = hashlib.blake2b
        for i, (offset, length) in enumerate(zip(offsets, lengths, strict=True)):
            h = blake2b(link, digest_size=32)
            h.update(keys[8 * i : 8 * i + 8])
            h.update(records[offset : offset + length])
            link = h.digest()
            links += link
        self._link = link
        self._pending.append((keys, records, offsets, lengths))
        self._pending_count += len(offsets)
        self._next_seq += len(offsets)
        if self._pending_count >= self._group_size:
            self.flush()

    def _pending_items(self) -> Iterator[tuple[memoryview, memoryview]]:
        for keys, records, offsets, lengths in self._pending:
            for i, (offset, length) in enumerate(zip(offsets, lengths, strict=True)):
                yield keys[8 * i : 8 * i + 8], records[offset : offset + length]

    def flush(self) -> None:
        """Commit every queued record in one transaction (group commit), growing the map if full."""
        if not self._pending_count:
            return
        first_seq = self._next_seq - self._pending_count
        head = msgspec.msgpack.encode((self._next_seq - 1, self._link))
        while True:
            try:
                with self._env.begin(write=True) as txn:
                    _, added = txn.cursor(self._events).putmulti(self._pending_items(), append=True)
                    if added != self._pending_count:
                        raise LogError(
                            f"log {self.path}: append refused after {added} of "
                            f"{self._pending_count} records (sequence numbers out of order)"
                        )
                    if not txn.put(
                        seq_key(first_seq), bytes(self._pending_links), db=self._chain, append=True
                    ):
                        raise LogError(f"log {self.path}: chain append refused at {first_seq}")
                    txn.put(b"head", head, db=self._meta)
                break
            except lmdb.MapFullError:
                self._env.set_mapsize(self._env.info()["map_size"] * 2)
                self.map_growths += 1
        self._pending.clear()
        self._pending_links = bytearray()
        self._pending_count = 0
        self.commits += 1

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        self._put_meta(b"manifest", msgspec.json.encode(manifest))

    def _put_meta(self, key: bytes, value: bytes) -> None:
        while True:
            try:
                with self._env.begin(write=True) as txn:
                    txn.put(key, value, db=self._meta)
                return
            except lmdb.MapFullError:
                self._env.set_mapsize(self._env.info()["map_size"] * 2)
                self.map_growths += 1

    # -- reading -----------------------------------------------------------------------------

    def _begin_read(self) -> lmdb.Transaction:
        try:
            return self._env.begin()
        except lmdb.MapResizedError:
            self._env.set_mapsize(0)  # a writer grew the map; adopt its size
            return self._env.begin()

    def _read_head(self) -> tuple[int, bytes]:
        with self._begin_read() as txn:
            raw = txn.get(b"head", db=self._meta)
        if raw is None:
            return 0, GENESIS
        seq, link = msgspec.msgpack.decode(raw)
        return seq, link

    def manifest(self) -> dict[str, Any]:
        with self._begin_read() as txn:
            raw = txn.get(b"manifest", db=self._meta)
        return msgspec.json.decode(raw) if raw else {}

    def committed(self) -> tuple[int, str]:
        """(last committed sequence number, digest at that point), as on disk now."""
        seq, link = self._read_head()
        return seq, link.hex()

    def records(self, start: int = 1, stop: int | None = None) -> Iterator[tuple[int, bytes]]:
        """(seq, record bytes) for committed events in [start, stop), in short read transactions."""
        seq = max(start, 1)
        while stop is None or seq < stop:
            batch: list[tuple[int, bytes]] = []
            with self._begin_read() as txn:
                cursor = txn.cursor(self._events)
                if not cursor.set_range(seq_key(seq)):
                    return
                for key, value in cursor:
                    s = int.from_bytes(key, "big")
                    if (stop is not None and s >= stop) or len(batch) >= _READ_CHUNK:
                        break
                    batch.append((s, bytes(value)))
            if not batch:
                return
            yield from batch
            seq = batch[-1][0] + 1
            if len(batch) < _READ_CHUNK:
                return

    def events(self, start: int = 1, stop: int | None = None) -> Iterator[tuple[int, Event]]:
        for seq, record in self.records(start, stop):
            yield seq, decode(record)

    def count(self) -> int:
        with self._begin_read() as txn:
            return txn.stat(self._events)["entries"]

    def verify(self) -> VerifyResult:
        """Recompute the chain from the records; name the first sequence number that breaks it."""
        link = GENESIS
        expected_seq = 1
        links = self._links()
        for seq, record in self.records():
            key = seq_key(seq)
            if seq != expected_seq:
                return VerifyResult(
                    False, seq - 1, link.hex(), expected_seq, "sequence number missing"
                )
            try:
                decode(record)
            except msgspec.DecodeError as e:
                return VerifyResult(False, seq - 1, link.hex(), seq, f"record does not decode: {e}")
            link = _link(link, key, record)
            stored = next(links, None)
            if stored != link:
                return VerifyResult(
                    False, seq - 1, link.hex(), seq, "record does not match the chain"
                )
            expected_seq += 1
        head_seq, head_link = self._read_head()
        if head_seq != expected_seq - 1 or head_link != link:
            return VerifyResult(
                False,
                expected_seq - 1,
                link.hex(),
                min(head_seq, expected_seq - 1) + 1,
                "head mismatch",
            )
        return VerifyResult(True, expected_seq - 1, link.hex())

    def _links(self) -> Iterator[bytes]:
        """Stored links in sequence order; the chain db keeps one value per commit group."""
        seq = 1
        while True:
            with self._begin_read() as txn:
                group = txn.get(seq_key(seq), db=self._chain)
            if group is None:
                return
            for i in range(0, len(group), 32):
                yield bytes(group[i : i + 32])
            seq += len(group) // 32
