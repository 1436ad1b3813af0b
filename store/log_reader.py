"""Reading committed events: blocks in short read transactions, so a reader can follow a log
that is still being written. A gap or a broken block raises LogDamaged naming its seq."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

import lmdb
import msgspec
import numpy as np

from ticktape.messages.codec import EncodedBatch, decode, decode_many
from ticktape.messages.events import Event
from ticktape.store import legacy_log
from ticktape.store.chain import Block, pack_block, seq_key
from ticktape.store.log_file import LogDamaged, LogFile

_READ_BLOCKS = 16  # blocks per read transaction


class LogReader:
    """Committed events of one log, read by seq range."""

    def __init__(self, file: LogFile) -> None:
        self.file = file
        self.path = file.path

    @property
    def block_events(self) -> int:
        return self.file.block_events

    def manifest(self) -> dict[str, Any]:
        return self.file.manifest()

    def committed(self) -> tuple[int, str]:
        """(last committed sequence number, digest at that point), as on disk now."""
        seq, link = self.file.head()
        return seq, link.hex()

    def block(self, key: int) -> Block | None:
        """The stored block starting at `key`, or None."""
        with self.file.begin_read() as txn:
            value = txn.get(seq_key(key), db=self.file.events)
        return None if value is None else Block.parse(key, value)

    def blocks(self, start: int, stop: int | None) -> Iterator[Block]:
        """Stored blocks overlapping [start, stop), a few per short read transaction. A block
        whose layout is broken, or that LMDB cannot read, raises LogDamaged naming its seq."""
        try:
            yield from self._blocks(start, stop)
        except lmdb.Error as e:
            raise LogDamaged(f"log {self.path}: stored events cannot be read ({e})") from None

    def _blocks(self, start: int, stop: int | None) -> Iterator[Block]:
        file = self.file
        if file.legacy:
            for first, records in legacy_log.runs(file.begin_read, file.events, start, stop):
                yield Block.parse(first, pack_block(b"".join(records), legacy_log.lengths(records)))
            return
        key = file.block_start(max(start, 1))
        while stop is None or key < stop:
            chunk: list[tuple[int, bytes]] = []
            with file.begin_read() as txn:
                cursor = txn.cursor(file.events)
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
                    raise file.damaged(f"events from seq {key} are missing", key - 1)
                try:
                    block = Block.parse(k, value)
                except ValueError as e:
                    raise file.damaged(f"block at seq {k} is damaged ({e})", k - 1) from None
                if len(block) > file.block_events:
                    problem = f"block {k} holds {len(block)} events; the layout says"
                    raise file.damaged(f"{problem} {file.block_events}", k - 1)
                yield block
                if len(block) < file.block_events:
                    return  # the partial last block
                key += file.block_events
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
        for block in self.blocks(start, stop):
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
                seq, error = first_undecodable(first, batch)
                good = batch.take(np.arange(seq - first))
                yield first, good, [decode(r) for r in good.records()]
                problem = f"record at seq {seq} does not decode ({error})"
                raise self.file.damaged(problem, seq - 1) from None

    def events(self, start: int = 1, stop: int | None = None) -> Iterator[tuple[int, Event]]:
        """(seq, event) for committed events in [start, stop); see `decoded`."""
        for first, _, events in self.decoded(start, stop):
            yield from enumerate(events, start=first)

    def count(self) -> int:
        """Events stored: the sum of the stored blocks' counts (read from their headers only)."""
        file = self.file
        if file.legacy:
            with file.begin_read() as txn:
                return txn.stat(file.events)["entries"]
        total, key = 0, seq_key(1)
        while True:
            with file.begin_read(buffers=True) as txn:
                cursor = txn.cursor(file.events)
                if not cursor.set_range(key):
                    return total
                for n, (raw_key, value) in enumerate(cursor):
                    if n == 4096:
                        key = bytes(raw_key)
                        break
                    total += struct.unpack_from("<I", value)[0]
                else:
                    return total


def first_undecodable(first: int, batch: EncodedBatch) -> tuple[int, str]:
    """(seq, error) of the first record of `batch` that does not decode on its own."""
    for i, record in enumerate(batch.records()):
        try:
            decode(record)
        except msgspec.DecodeError as e:
            return first + i, str(e)
    return first + len(batch) - 1, "records do not decode together"
