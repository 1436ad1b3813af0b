"""Reading a finished (or running) log for people: stats, filtered listings, JSONL export, diff.

Every reader here works on a snapshot: it reads the committed head first and stops there, so a
writer committing beside it changes nothing it reports. A record that does not decode ends the
read with LogDamaged naming its seq.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import msgspec
import numpy as np

from ticktape.messages.codec import to_dict
from ticktape.messages.events import (
    Bar,
    Event,
    GapDetected,
    GapFilled,
    QualityUpdated,
    RunFinished,
    SessionClosed,
    SessionOpened,
)
from ticktape.store.eventlog import EventLog


@dataclass(frozen=True, slots=True)
class Selection:
    """Which events a listing or export takes: kinds, symbols, simulated time [start_ts, end_ts).
    A symbol filter keeps the events that carry no symbol (`SessionOpened`, `TimeAdvanced`)."""

    kinds: tuple[str, ...] = ()
    symbols: tuple[str, ...] = ()
    start_ts: int | None = None
    end_ts: int | None = None
    start_seq: int = 1

    def takes(self, event: Event) -> bool:
        return (
            (not self.kinds or type(event).__name__ in self.kinds)
            and (not self.symbols or getattr(event, "symbol", "") in ("", *self.symbols))
            and (self.start_ts is None or event.ts >= self.start_ts)
            and (self.end_ts is None or event.ts < self.end_ts)
        )

    def mask(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        """The same test over one kind's columns."""
        keep = np.ones(len(columns["ts"]), bool)
        if self.symbols and "symbol" in columns:
            keep &= np.isin(columns["symbol"], ("", *self.symbols))
        if self.start_ts is not None:
            keep &= columns["ts"] >= self.start_ts
        if self.end_ts is not None:
            keep &= columns["ts"] < self.end_ts
        return keep


def select(log: EventLog, selection: Selection = Selection()) -> Iterator[tuple[int, Event]]:
    """Committed events (up to the head read first) that the selection takes."""
    stop = log.committed()[0] + 1
    for seq, event in log.events(selection.start_seq, stop):
        if selection.takes(event):
            yield seq, event


# -- stats ----------------------------------------------------------------------------------


def stats(log: EventLog) -> dict[str, Any]:
    """Counts by kind, the digest, a digest per session (BLAKE2b over its records, SessionOpened
    to SessionClosed inclusive), and per symbol and session: bars released, gaps and quality."""
    seq, digest = log.committed()
    kinds: Counter[str] = Counter()
    per: dict[tuple[str, str], dict[str, Any]] = {}
    session_digests: dict[str, str] = {}
    session = ""
    session_hash: Any = None
    finished = False

    def row(symbol: str) -> dict[str, Any]:
        key = (symbol, session)
        if key not in per:
            per[key] = {"symbol": symbol, "session": session, "bars": 0, "gaps": 0, "filled": 0}
        return per[key]

    for _, batch, events in log.decoded(1, seq + 1, blocks=16):
        for record, event in zip(batch.records(), events, strict=True):
            kinds[type(event).__name__] += 1
            if isinstance(event, SessionOpened):
                session = event.session
                session_hash = hashlib.blake2b(digest_size=32)
            if session_hash is not None:
                session_hash.update(record)
            match event:
                case SessionClosed(session=label) if session_hash is not None:
                    session_digests[label] = session_hash.hexdigest()
                    session_hash = None
                case Bar(symbol=symbol):
                    row(symbol)["bars"] += 1
                case GapDetected(symbol=symbol):
                    row(symbol)["gaps"] += 1
                case GapFilled(symbol=symbol):
                    row(symbol)["filled"] += 1
                case QualityUpdated(symbol=symbol):
                    row(symbol).update(
                        quality=event.quality,
                        expected=event.expected,
                        real=event.real,
                        filled_bars=event.filled,
                        synthetic=event.synthetic,
                    )
                case RunFinished():
                    finished = True
    return {
        "events": seq,
        "digest": digest,
        "finished": finished,
        "kinds": dict(sorted(kinds.items())),
        "sessions": sorted({label for _, label in per} | set(session_digests)),
        "session_digests": session_digests,
        "symbols": [per[k] for k in sorted(per, key=lambda k: (k[1], k[0]))],
    }


# -- exports --------------------------------------------------------------------------------


def export_jsonl(events: Iterator[tuple[int, Event]], out: IO[bytes]) -> int:
    """One JSON object per event: its `seq`, its `kind` and its fields."""
    encoder = msgspec.json.Encoder()
    count = 0
    for seq, event in events:
        out.write(encoder.encode({"seq": seq, **to_dict(event)}))
        out.write(b"\n")
        count += 1
    return count


# -- diff -----------------------------------------------------------------------------------


@dataclass
class Divergence:
    """Where two logs first differ; None fields where one side has no event there."""

    seq: int
    left: Event | None
    right: Event | None
    fields: list[str] = field(default_factory=list)  # fields that differ (same kind only)
    context: list[tuple[int, Event | None, Event | None]] = field(default_factory=list)


def diff(a: EventLog, b: EventLog, context: int = 2) -> Divergence | None:
    """The first seq where the committed logs differ, or None when they are the same.

    Compares whole batches of bytes first and decodes only around the divergence."""
    stop_a, stop_b = a.committed()[0] + 1, b.committed()[0] + 1
    seq = 1
    left, right = a.batches(1, stop_a), b.batches(1, stop_b)
    pending_a = pending_b = None
    while True:
        if pending_a is None:
            pending_a = next(left, None)
        if pending_b is None:
            pending_b = next(right, None)
        if pending_a is None or pending_b is None:
            if pending_a is None and pending_b is None:
                return None
            break
        (first_a, batch_a), (first_b, batch_b) = pending_a, pending_b
        n = min(first_a + len(batch_a), first_b + len(batch_b)) - seq
        part_a = batch_a.take(np.arange(seq - first_a, seq - first_a + n))
        part_b = batch_b.take(np.arange(seq - first_b, seq - first_b + n))
        if part_a.joined() != part_b.joined() or not np.array_equal(part_a.lengths, part_b.lengths):
            for i, (ra, rb) in enumerate(zip(part_a.records(), part_b.records(), strict=True)):
                if ra != rb:
                    seq += i
                    break
            break
        seq += n
        if seq >= first_a + len(batch_a):
            pending_a = None
        if seq >= first_b + len(batch_b):
            pending_b = None
    return _divergence(a, b, seq, context)


def _divergence(a: EventLog, b: EventLog, seq: int, context: int) -> Divergence:
    lo = max(1, seq - context)
    side_a = dict(a.events(lo, seq + context + 1))
    side_b = dict(b.events(lo, seq + context + 1))
    left, right = side_a.get(seq), side_b.get(seq)
    fields = []
    if left is not None and right is not None and type(left) is type(right):
        fields = [
            f for f in type(left).__struct_fields__ if _differs(getattr(left, f), getattr(right, f))
        ]
    rows = [(s, side_a.get(s), side_b.get(s)) for s in range(lo, seq + context + 1)]
    rows = [r for r in rows if r[1] is not None or r[2] is not None]
    return Divergence(seq, left, right, fields, rows)


def _differs(x: object, y: object) -> bool:
    if isinstance(x, float) and isinstance(y, float):
        return msgspec.msgpack.encode(x) != msgspec.msgpack.encode(y)  # NaN equals NaN here
    return x != y
