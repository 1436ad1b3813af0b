"""Reading a finished (or running) log for people: stats, filtered listings, JSONL export."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import IO, Any

import msgspec

from messages.codec import to_dict
from messages.events import (
    Bar,
    Event,
    GapDetected,
    GapFilled,
    QualityUpdated,
    RunFinished,
    SessionOpened,
)
from store.eventlog import EventLog


def select(
    log: EventLog,
    *,
    kinds: tuple[str, ...] = (),
    symbols: tuple[str, ...] = (),
    start_ts: int | None = None,
    end_ts: int | None = None,
    start_seq: int = 1,
) -> Iterator[tuple[int, Event]]:
    """Events filtered by kind, symbol and simulated-time range [start_ts, end_ts)."""
    for seq, event in log.events(start_seq):
        if kinds and type(event).__name__ not in kinds:
            continue
        if symbols and getattr(event, "symbol", None) not in symbols:
            continue
        if start_ts is not None and event.ts < start_ts:
            continue
        if end_ts is not None and event.ts >= end_ts:
            continue
        yield seq, event


def stats(log: EventLog) -> dict[str, Any]:
    """Counts by kind, the digest, and per symbol and session: bars released, gaps and quality."""
    kinds: Counter[str] = Counter()
    per: dict[tuple[str, str], dict[str, Any]] = {}
    session = ""
    finished = False

    def row(symbol: str) -> dict[str, Any]:
        key = (symbol, session)
        if key not in per:
            per[key] = {"symbol": symbol, "session": session, "bars": 0, "gaps": 0, "filled": 0}
        return per[key]

    for _, event in log.events():
        kinds[type(event).__name__] += 1
        match event:
            case SessionOpened(session=label):
                session = label
            case Bar(symbol=symbol):
                row(symbol)["bars"] += 1
            case GapDetected(symbol=symbol):
                row(symbol)["gaps"] += 1
            case GapFilled(symbol=symbol):
                row(symbol)["filled"] += 1
            case QualityUpdated(symbol=symbol):
                r = row(symbol)
                r.update(
                    quality=event.quality,
                    expected=event.expected,
                    real=event.real,
                    filled_bars=event.filled,
                    synthetic=event.synthetic,
                )
            case RunFinished():
                finished = True
    seq, digest = log.committed()
    return {
        "events": seq,
        "digest": digest,
        "finished": finished,
        "kinds": dict(sorted(kinds.items())),
        "sessions": sorted({label for _, label in per}),
        "symbols": [per[k] for k in sorted(per, key=lambda k: (k[1], k[0]))],
    }


def export_jsonl(events: Iterator[tuple[int, Event]], out: IO[bytes]) -> int:
    """One JSON object per event: its `seq`, its `kind` and its fields."""
    encoder = msgspec.json.Encoder()
    count = 0
    for seq, event in events:
        out.write(encoder.encode({"seq": seq, **to_dict(event)}))
        out.write(b"\n")
        count += 1
    return count
