"""Writing a log (the sequencer): records are cut into blocks by the chain hasher and committed in
groups, with the head, in one transaction each, so a crash leaves a valid prefix, never a torn
record. A resume re-appends from seq 1 and compares with the stored records until it has caught up.
"""

from __future__ import annotations

import time
from typing import Any

import lmdb
import msgspec
import numpy as np

from ticktape.messages.codec import EncodedBatch, decode, encode
from ticktape.messages.events import Event
from ticktape.store.chain import GENESIS, Block, ChainHasher, seq_key
from ticktape.store.log_file import DiskRefused, LogError, LogFile
from ticktape.store.log_reader import LogReader

StoredBlock = tuple[int, bytes, bytes]  # key, stored block, link


class LogWriter:
    """Appends events to one log; `resume=True` starts again from seq 1 over the stored prefix:
    the first N appends (N = committed events) are compared byte for byte with the stored records
    instead of written, then appends go on as usual, so the finished log is the one an
    uninterrupted run writes. With `replace_last`, the stored log's last event (a `Stopped`) is
    not compared: the resumed run writes its next event in that place."""

    def __init__(
        self,
        file: LogFile,
        *,
        group_size: int,
        commit_interval: float = 0.25,
        resume: bool = False,
        replace_last: bool = False,
    ) -> None:
        self.file = file
        self._reader = LogReader(file)
        self._group_size = group_size
        self.commit_interval = commit_interval
        self.commits = 0
        self._refused = ""  # why the disk refused a commit, once it has
        block_events = file.block_events
        committed_seq, committed_link = file.head()
        # A resume of a stopped run goes on where its `Stopped` was: that one event is the only
        # one ever written over, in the same transaction as what follows it.
        self._replacing = resume and replace_last and committed_seq > 0
        if self._replacing:
            committed_seq -= 1
        self._committed_seq = committed_seq
        self._committed_at = time.monotonic()
        partial = committed_seq % block_events != 0
        self._stored_partial = file.block_start(committed_seq) if partial else None
        if self._replacing:
            self._stored_partial = file.block_start(committed_seq + 1)
        self._resume_until = committed_seq if resume else 0
        self._resume_block: Block | None = None
        if resume:
            self._next_seq = 1
            self._hasher = ChainHasher(block_events, keep=True)
        elif partial:
            self._next_seq = committed_seq + 1
            self._hasher = self._continue_partial(committed_seq)
        else:
            self._next_seq = committed_seq + 1
            key = file.block_start(self._next_seq)
            self._hasher = ChainHasher(block_events, key=key, previous=committed_link, keep=True)

    def _continue_partial(self, committed_seq: int) -> ChainHasher:
        """Reopened for writing: carry on filling the partial block that is on disk."""
        key = self.file.block_start(committed_seq)
        previous = GENESIS
        if key > 1:
            with self.file.begin_read() as txn:
                previous = bytes(txn.get(seq_key(key - self.file.block_events), db=self.file.chain))
        hasher = ChainHasher(self.file.block_events, key=key, previous=previous, keep=True)
        block = self._reader.block(key)
        assert block is not None, "the head names a block that is stored"
        hasher.continue_block(block)
        return hasher

    @property
    def next_seq(self) -> int:
        return self._next_seq

    @property
    def digest(self) -> str:
        """BLAKE2b chain head over every appended record: the run's identity."""
        return self._hasher.digest

    @property
    def resuming(self) -> bool:
        """Still comparing appends with the stored log (a resume that has not caught up)."""
        return self._resume_until > 0

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
        overlap = 0
        if self._resume_until:
            overlap = min(len(lengths), self._resume_until - self._next_seq + 1)
        if 0 < overlap < len(lengths):  # the stored prefix ends inside: compare its part alone
            cut = int(lengths[:overlap].sum())
            self._add(records[:cut], lengths[:overlap])
            self._add(records[cut:], lengths[overlap:])
            return
        if overlap:
            self._compare_stored(records, lengths)
        self._hasher.add_records(records, lengths)
        self._next_seq += len(lengths)
        if overlap and self._next_seq - 1 == self._resume_until:
            self._end_resume_overlap()

    def flush(self) -> None:
        """Commit the completed blocks and the partial last block in one transaction (group
        commit), growing the map when it is full."""
        last = self._next_seq - 1
        block_events = self.file.block_events
        newer = [b for b in self._hasher.completed if b[0] + block_events - 1 > self._committed_seq]
        self._hasher.completed[:] = newer
        if last <= self._committed_seq:
            return
        partial = self._hasher.partial()
        blocks = newer + ([partial] if partial else [])
        head = msgspec.msgpack.encode((last, blocks[-1][2]))

        def commit(txn: lmdb.Transaction) -> None:
            self._put_blocks(txn, blocks)
            txn.put(b"head", head, db=self.file.meta)

        if self._refused:
            raise DiskRefused(self._refused)
        try:
            self.file.write(commit)
        except DiskRefused as e:  # later commits would fail alike: say it once, write no more
            self._refused = (
                f"{e}; events up to seq {self._committed_seq} are committed: free space, then "
                f"`ticktape resume {self.file.path}`"
            )
            raise DiskRefused(self._refused) from None
        self._hasher.completed.clear()
        self._stored_partial = partial[0] if partial else None
        self._committed_seq = last
        self._committed_at = time.monotonic()
        self.commits += 1

    def _put_blocks(self, txn: lmdb.Transaction, blocks: list[StoredBlock]) -> None:
        """Append blocks (or rewrite the partial one) and their links; LMDB must accept all."""
        for key, value, link in blocks:
            rewrite = key == self._stored_partial
            for db, data in ((self.file.events, value), (self.file.chain, link)):
                if not txn.put(seq_key(key), data, db=db, append=not rewrite):
                    raise LogError(
                        f"log {self.file.path}: block at seq {key} refused "
                        "(sequence numbers out of order)"
                    )

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        self.file.put_meta(b"manifest", msgspec.json.encode(manifest))

    def note_resume(self, info: dict[str, Any]) -> None:
        """Record a resume in the manifest (outside the chained facts)."""
        manifest = self.file.manifest()
        manifest.setdefault("resumes", []).append(info)
        self.write_manifest(manifest)

    def close(self) -> None:
        if not self._refused:
            self.flush()

    # -- resuming ------------------------------------------------------------------------------

    def _compare_stored(self, records: memoryview, lengths: np.ndarray) -> None:
        """Raise LogError at the first record that differs from the stored one at its seq."""
        seq, done, starts = self._next_seq, 0, np.concatenate(([0], np.cumsum(lengths)))
        while done < len(lengths):
            key = self.file.block_start(seq)
            block = self._resume_block
            if block is None or block.key != key:
                block = self._resume_block = self._reader.block(key)
            take = min(len(lengths) - done, key + self.file.block_events - seq)
            if block is None or block.last < seq + take - 1:
                raise LogError(f"resume diverged at seq {seq}: the stored log ends before it")
            ours = EncodedBatch(
                np.frombuffer(records, np.uint8),
                starts[done : done + take],
                lengths[done : done + take],
            )
            stored = block.batch(seq, seq + take)
            if stored.joined() != ours.joined() or not np.array_equal(stored.lengths, ours.lengths):
                for i, (old, new) in enumerate(zip(stored.records(), ours.records(), strict=True)):
                    if old != new:
                        raise LogError(
                            f"resume diverged at seq {seq + i}: stored {_describe(old)}, "
                            f"re-run gave {_describe(new)}"
                        )
            seq, done = seq + take, done + take

    def _end_resume_overlap(self) -> None:
        stored_seq, stored_link = self.file.head()
        if not self._replacing and self._hasher.link != stored_link:
            raise LogError(f"resume diverged at seq {stored_seq}: digest differs from the log's")
        self._resume_until = 0
        self._resume_block = None


def _describe(record: memoryview | bytes) -> str:
    try:
        return repr(decode(record))
    except msgspec.DecodeError:
        return f"undecodable bytes {bytes(record)[:24].hex()}"
