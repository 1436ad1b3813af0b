"""The log's blocks and the one chain over them: how a block is packed and parsed, and its link.

A block is `<u4 count> <u4 end offset of each record> <records>`. Its link is BLAKE2b-256 over
(previous link + 8-byte key + stored block); the link of the last (maybe partial) block is the run's
digest. `block_link` is the only place a link is computed: the writer, the verifier, a replay's
running digest and the first layout's per-record chain all call it.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

import numpy as np

from ticktape.messages.codec import EncodedBatch

GENESIS = hashlib.blake2b(b"ticktape-log/1", digest_size=32).digest()
BLOCK_EVENTS = 1024


def seq_key(seq: int) -> bytes:
    return seq.to_bytes(8, "big")


def block_link(previous: bytes, key: int, value: bytes | memoryview) -> bytes:
    h = hashlib.blake2b(previous, digest_size=32)
    h.update(seq_key(key))
    h.update(value)
    return h.digest()


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

    @property
    def records(self) -> memoryview:
        return memoryview(self.value)[self.body :]

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.ends, prepend=0)


class _OpenBlock:
    """The block being filled: its records so far, not yet complete."""

    def __init__(self, key: int, previous_link: bytes) -> None:
        self.key = key
        self.previous_link = previous_link
        self.parts: list[bytes | memoryview] = []
        self.lengths: list[np.ndarray] = []
        self.count = 0

    def add(self, records: bytes | memoryview, lengths: np.ndarray) -> None:
        self.parts.append(records)
        self.lengths.append(lengths)
        self.count += len(lengths)

    def value(self) -> bytes:
        lengths = np.concatenate(self.lengths) if self.lengths else np.empty(0, np.int64)
        records = b"".join(self.parts)
        self.parts, self.lengths = [records], [lengths]  # keep the join for the next commit
        return pack_block(records, lengths)


class ChainHasher:
    """Cuts appended records into seq-aligned blocks and links each complete one.

    Started empty it gives the digest a log would have if these records were appended to an empty
    one (what a replay prints for the stream it delivered). The writer starts one at its committed
    head, with the partial block on disk, and takes the completed blocks from `completed`."""

    def __init__(
        self, block_events: int, *, key: int = 1, previous: bytes = GENESIS, keep: bool = False
    ) -> None:
        self.block_events = block_events
        self._open = _OpenBlock(key, previous)
        self._keep = keep
        self.completed: list[tuple[int, bytes, bytes]] = []  # key, stored block, link (if kept)
        self._link: bytes | None = previous

    def continue_block(self, block: Block) -> None:
        """Carry on filling a partial block read back from disk."""
        self._open.add(block.records, block.lengths)
        self._link = None

    def add(self, batch: EncodedBatch) -> None:
        self.add_records(batch.joined(), batch.lengths.astype(np.int64))

    def add_records(self, records: bytes | memoryview, lengths: np.ndarray) -> None:
        ends = np.cumsum(lengths)
        done = 0
        while done < len(lengths):
            take = min(self.block_events - self._open.count, len(lengths) - done)
            lo = int(ends[done - 1]) if done else 0
            self._open.add(records[lo : int(ends[done + take - 1])], lengths[done : done + take])
            done += take
            if self._open.count == self.block_events:
                key, value = self._open.key, self._open.value()
                link = block_link(self._open.previous_link, key, value)
                if self._keep:
                    self.completed.append((key, value, link))
                self._open = _OpenBlock(key + self.block_events, link)
                self._link = link
            else:
                self._link = None  # the digest now covers a partial block: computed when asked

    def partial(self) -> tuple[int, bytes, bytes] | None:
        """(key, stored block, link) of the block being filled, or None when it is empty."""
        if not self._open.count:
            return None
        value = self._open.value()
        self._link = block_link(self._open.previous_link, self._open.key, value)
        return self._open.key, value, self._link

    @property
    def link(self) -> bytes:
        if self._link is None:
            self.partial()
        assert self._link is not None
        return self._link

    @property
    def digest(self) -> str:
        return self.link.hex()
