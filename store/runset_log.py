"""A run set read as one log, so every log tool and `Replay` take a set wherever they take a log.

The shards read in date order as the unsharded run's log would: the first shard whole, and of
each later shard only its sessions on. A later shard's prologue (its `RunStarted`, the rows that
no session owns, its trailing history: the warm-up) is the first shard's already, and every
shard's `RunFinished` but the last one's marks a seam, not the run's end; both are hidden. So
nothing of a warm-up is delivered twice, and seq numbers count through the set (the same seqs as
the unsharded log, since the hidden events stand where the unsharded log has none).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from ticktape.messages.codec import EncodedBatch
from ticktape.messages.events import Event, RunFinished, SessionOpened, TimeAdvanced
from ticktape.store.eventlog import EventLog, LogError, VerifyResult
from ticktape.store.runset import is_run_set, read_manifest, verify

_SCAN = 256  # events read at a time while looking for a shard's first session


@dataclass
class _Part:
    log: EventLog
    skip: int  # prologue events hidden
    shown: int  # events shown
    offset: int  # events shown by the shards before


def open_log(path: str | Path) -> EventLog | RunSetLog:
    """The log at `path`, or the run set there read as one log."""
    return RunSetLog(path) if is_run_set(path) else EventLog.open(path)


class RunSetLog:
    """The reading half of `EventLog` over a run set: batches, records, decoded, events,
    committed, count, manifest, verify."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._manifest = read_manifest(self.path)
        self._parts: list[_Part] = []
        self._open()

    def _open(self) -> None:
        try:
            for shard in self._manifest.shards:
                if shard.state == "pending" and not (self.path / shard.log).exists():
                    continue
                log = EventLog.open(self.path / shard.log)
                self._parts.append(_Part(log, 0, 0, 0))
        except LogError as e:
            self.close()
            raise LogError(f"run set {self.path}, {shard.name}: {e}") from None
        offset = 0
        for i, part in enumerate(self._parts):
            head = part.log.committed()[0]
            part.skip = _prologue(part.log, head) if i else 0
            last = i == len(self._parts) - 1
            part.shown = max(head - part.skip - (0 if last else _seam(part.log, head)), 0)
            part.offset, offset = offset, offset + part.shown

    @property
    def block_events(self) -> int:
        return self._parts[0].log.block_events if self._parts else 1024

    def manifest(self) -> dict[str, Any]:
        return msgspec.to_builtins(self._manifest)

    def committed(self) -> tuple[int, str]:
        """(events shown, the manifest's chain of shard digests). The set's digest proper is
        `sessions_digest` of its session digests, read from the logs like any log's."""
        return sum(p.shown for p in self._parts), self._manifest.chain

    def count(self) -> int:
        return self.committed()[0]

    def _ranges(self, start: int, stop: int | None) -> Iterator[tuple[_Part, int, int]]:
        """(part, local start, local stop) of each shard's share of [start, stop)."""
        for part in self._parts:
            lo = max(start, part.offset + 1)
            end = part.offset + part.shown + 1
            hi = end if stop is None else min(stop, end)
            if lo < hi:
                shift = part.skip - part.offset
                yield part, lo + shift, hi + shift

    def batches(
        self, start: int = 1, stop: int | None = None, *, blocks: int = 1
    ) -> Iterator[tuple[int, EncodedBatch]]:
        for part, lo, hi in self._ranges(max(start, 1), stop):
            for first, batch in part.log.batches(lo, hi, blocks=blocks):
                yield first - part.skip + part.offset, batch

    def decoded(
        self, start: int = 1, stop: int | None = None, *, blocks: int = 1
    ) -> Iterator[tuple[int, EncodedBatch, list[Event]]]:
        for part, lo, hi in self._ranges(max(start, 1), stop):
            for first, batch, events in part.log.decoded(lo, hi, blocks=blocks):
                yield first - part.skip + part.offset, batch, events

    def records(self, start: int = 1, stop: int | None = None) -> Iterator[tuple[int, bytes]]:
        for first, batch in self.batches(start, stop):
            for i, record in enumerate(batch.records()):
                yield first + i, bytes(record)

    def events(self, start: int = 1, stop: int | None = None) -> Iterator[tuple[int, Event]]:
        for first, _, events in self.decoded(start, stop):
            yield from enumerate(events, start=first)

    def verify(self) -> VerifyResult:
        """The set's check (`store.runset.verify`) in a log's terms; every problem in `reason`.
        The check opens each shard log itself and LMDB allows one handle per process, so the
        set's own are closed meanwhile."""
        self.close()
        try:
            check = verify(self.path)
        finally:
            self._open()
        reason = "; ".join(check.problems)
        return VerifyResult(check.ok, check.events, check.digest, None if check.ok else 0, reason)

    def close(self) -> None:
        for part in self._parts:
            part.log.close()
        self._parts = []

    def __enter__(self) -> RunSetLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _prologue(log: EventLog, head: int) -> int:
    """Events before a shard's first session, less the time advance that opens it."""
    seq = 1
    kinds: list[type] = []
    while seq <= head:
        batch = [type(e) for _, e in log.events(seq, min(seq + _SCAN, head + 1))]
        kinds += batch
        if SessionOpened in batch:
            break
        seq += _SCAN
    if SessionOpened not in kinds:
        return len(kinds)
    at = kinds.index(SessionOpened)
    while at > 0 and kinds[at - 1] is TimeAdvanced:
        at -= 1
    return at


def _seam(log: EventLog, head: int) -> int:
    """1 when a shard ends with RunFinished (hidden unless it is the last shard)."""
    last = next(iter(log.events(head, head + 1)), (0, None))[1] if head else None
    return 1 if isinstance(last, RunFinished) else 0
