"""Replay: a run re-delivered from its log alone, through the live System's consumer API.

`events()`, `query(..., as_of=)`, `pause`, `resume`, `stop`, `wait`, `run` and the `with` block work
as on a live run, so a consumer written for a live run works on a replay unchanged. SessionData is
rebuilt as the stream is delivered, a whole slice (one release time) at a time, so a query sees
what the live SessionData knew at that point, and never a bar from the consumer's future. The input
files are not needed. Replay runs in the consumer's own thread; pacing waits on timers.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ticktape.actors.coordinator_core import RunTotals
from ticktape.actors.session_data import SessionDataCore
from ticktape.messages.codec import decode_columns, to_arrow
from ticktape.messages.columns import BarColumns, QuoteColumns, TradeColumns
from ticktape.messages.events import (
    Bar,
    Event,
    GapFilled,
    QualityUpdated,
    Quote,
    RunFinished,
    RunStarted,
    SessionBreak,
    SessionOpened,
    TimeAdvanced,
    Trade,
    TrailingBars,
)
from ticktape.messages.session import Session
from ticktape.store.eventlog import ChainHasher
from ticktape.store.runset_log import open_log

_PAUSE_WAIT = 1.0
_BLOCKS_PER_BATCH = 8
_MOST_WAITING = 2_000_000  # events fed to SessionData but not yet sorted into it
_TURNS = (RunStarted, TrailingBars, SessionOpened, SessionBreak)


def _within(fields: dict[str, Any], start: int | None, end: int | None) -> dict[str, Any]:
    ts = fields["ts"]
    keep = np.ones(len(ts), bool)
    if start is not None:
        keep &= ts >= start
    if end is not None:
        keep &= ts < end
    return {name: column[keep] for name, column in fields.items()}


def _kept(columns: dict[str, dict[str, Any]], first: int) -> np.ndarray:
    """Positions in the batch of the records kept, in log order."""
    seqs = [fields["seq"] for fields in columns.values()]
    return np.sort(np.concatenate(seqs)) - first if seqs else np.empty(0, np.int64)


def history_bars(event: TrailingBars) -> tuple[Session, BarColumns]:
    """The columns of a `TrailingBars` event, back as a session and its bars."""
    session = Session(
        label=event.session,
        open=event.session_open,
        close=event.session_close,
        early_close=event.early_close,
        window_start=event.session_open,
        window_end=event.session_close,
    )
    n = len(event.symbol) // 4
    bars = BarColumns(
        symbol=np.frombuffer(event.symbol, "<i4").astype(np.int32),
        ts_start=np.frombuffer(event.ts_start, "<i8").astype(np.int64),
        open=np.frombuffer(event.open, "<f8").astype(np.float64),
        high=np.frombuffer(event.high, "<f8").astype(np.float64),
        low=np.frombuffer(event.low, "<f8").astype(np.float64),
        close=np.frombuffer(event.close, "<f8").astype(np.float64),
        volume=np.frombuffer(event.volume, "<f8").astype(np.float64),
        source=np.full(n, -1, np.int64),
    )
    return session, bars


class SessionDataRebuilder:
    """Rebuilds a SessionDataCore from logged events.

    Releases are gathered and handed over in one batch when a query needs them or a session turns
    over: the same state as handing them over slice by slice, at a fraction of the cost.
    """

    def __init__(self) -> None:
        self.core: SessionDataCore | None = None
        self._ids: dict[str, int] = {}
        self._now: int | None = None
        self._bars: list[Bar] = []
        self._trades: list[Trade] = []
        self._quotes: list[Quote] = []
        self._upkept: list[Event] = []
        # Pieces fed, each with where its unsorted part starts.
        self._unsorted: list[tuple[list[Event], int]] = []
        self._waiting = 0

    def feed(self, events: list[Event]) -> None:
        """Keep the events for later: they are sorted into SessionData only when a query needs
        them (or too many wait), so a replay nobody queries pays almost nothing for it."""
        self._unsorted.append((events, 0))
        self._waiting += len(events)
        if self._waiting > _MOST_WAITING:
            self.flush()

    def flush(self, through: int | None = None) -> SessionDataCore | None:
        """Sort in what was fed: all of it, or of the last piece fed only its first `through`
        events (the consumer's current slice ends there). Returns the core, up to date."""
        waiting, self._unsorted = self._unsorted, []
        parts = [events[start:] for events, start in waiting]
        if through is not None and waiting:
            last, start = waiting[-1]
            parts[-1] = last[start:through]
            if through < len(last):
                self._unsorted = [(last, through)]
        self._waiting = sum(len(events) - start for events, start in self._unsorted)
        flat = [e for part in parts for e in part]
        kinds = [type(e) for e in flat]
        lo = 0
        for at in [i for i, kind in enumerate(kinds) if kind in _TURNS] + [len(flat)]:
            self._gather(flat[lo:at], kinds[lo:at])
            if at < len(flat):
                self._turn(flat[at])
            lo = at + 1
        self._hand_over()
        return self.core

    def _gather(self, events: list[Event], kinds: list[type]) -> None:
        """Releases and findings between two turns, sorted by kind in C-speed comprehensions."""
        pairs = list(zip(events, kinds, strict=True))
        times = [e for e, k in pairs if k is TimeAdvanced]
        if times:
            self._now = times[-1].ts
        self._bars += [e for e, k in pairs if k is Bar]
        self._trades += [e for e, k in pairs if k is Trade]
        self._quotes += [e for e, k in pairs if k is Quote]
        self._upkept += [e for e, k in pairs if k is GapFilled or k is QualityUpdated]

    def _turn(self, event: Event) -> None:
        """A run start, a trailing session, or a session open: the state turns over."""
        match event:
            case RunStarted(symbols=symbols, trailing_days=days):
                self.core = SessionDataCore(tuple(symbols), days)
                self._ids = {s: i for i, s in enumerate(symbols)}
            case TrailingBars():
                self.core.add_history(*history_bars(event))
            case SessionOpened():
                self._hand_over()
                session = Session(
                    event.session, event.open, event.close, event.early_close,
                    event.open, event.close,
                )  # fmt: skip
                self.core.begin(session)
            case SessionBreak(session=label, break_start=start, break_end=end):
                self.core.add_break(label, start, end)

    def _hand_over(self) -> None:
        core = self.core
        if core is not None and core.grid is not None and self._now is not None:
            if self._bars or self._trades or self._quotes or self._now != core.now:
                core.released(self._now, *self._columns(self._bars, self._trades, self._quotes))
            if self._upkept:
                core.upkept(self._upkept)
        self._bars, self._trades, self._quotes, self._upkept = [], [], [], []

    def _columns(
        self, bars: list[Bar], trades: list[Trade], quotes: list[Quote]
    ) -> tuple[BarColumns, TradeColumns, QuoteColumns]:
        ids = self._ids

        def symbols(rows: list[Any]) -> np.ndarray:
            return np.array([ids[r.symbol] for r in rows], np.int32)

        def floats(rows: list[Any], name: str) -> np.ndarray:
            return np.array([getattr(r, name) for r in rows], np.float64)

        def ints(rows: list[Any], name: str) -> np.ndarray:
            return np.array([getattr(r, name) for r in rows], np.int64)

        none = np.full(0, -1, np.int64)
        return (
            BarColumns(
                symbols(bars), ints(bars, "ts_start"), floats(bars, "open"), floats(bars, "high"),
                floats(bars, "low"), floats(bars, "close"), floats(bars, "volume"),
                np.resize(none, len(bars)),
            ),
            TradeColumns(
                symbols(trades), ints(trades, "ts"), floats(trades, "price"),
                floats(trades, "size"), np.resize(none, len(trades)),
            ),
            QuoteColumns(
                symbols(quotes), ints(quotes, "ts"), floats(quotes, "bid"),
                floats(quotes, "bid_size"), floats(quotes, "ask"), floats(quotes, "ask_size"),
                np.resize(none, len(quotes)),
            ),
        )  # fmt: skip


class Replay:
    """`Replay(log).run()`, or `with Replay(log) as r: for e in r.events(): ...`.

    `speed` 0 delivers as fast as possible; X > 0 at X times the run's simulated time. `start_ts`/
    `end_ts` (ns UTC) limit what is delivered to [start_ts, end_ts); SessionData is still rebuilt
    from the start, so queries are right.
    """

    def __init__(
        self,
        log: str | Path,
        *,
        speed: float = 0.0,
        start_ts: int | None = None,
        end_ts: int | None = None,
    ) -> None:
        self.log = open_log(log)  # a run set reads as one log
        self.speed = speed
        self.start_ts, self.end_ts = start_ts, end_ts
        self.rebuilt = SessionDataRebuilder()
        self._chain = ChainHasher(self.log.block_events)
        self.totals = RunTotals()
        self._running = threading.Event()
        self._running.set()
        self._stop = threading.Event()
        self._pace: tuple[int, float] | None = None
        self._closed = False
        self._at = 0  # the consumer's position in the piece being delivered
        self._piece_starts: list[int] = []

    # -- the live run's API --------------------------------------------------------------------

    def start(self) -> Replay:
        return self

    def events(self) -> Iterator[Event]:
        """The logged stream, event by event. A query sees SessionData through the end of the
        slice (release time) of the event last delivered, as the live SessionData holds it."""
        totals, ranged = self.totals, self._ranged
        for piece, starts in self._pieces():
            if self._stop.is_set():
                break
            self.rebuilt.feed(piece)
            self._piece_starts = starts
            paced = self.speed > 0 or not self._running.is_set()
            kinds = [type(e) for e in piece]
            for index, event in enumerate(piece):
                if paced and kinds[index] is TimeAdvanced:
                    self._wait_until(event.ts)
                    paced = self.speed > 0 or not self._running.is_set()
                if self._stop.is_set():
                    break
                if ranged and not self._wanted(event):
                    continue
                self._at = index
                yield event
                totals.events += 1
            totals.bars += kinds.count(Bar)
            if RunFinished in kinds:
                totals.sessions = piece[kinds.index(RunFinished)].sessions
        totals.state = "stopped" if self._stop.is_set() else "finished"

    def _pieces(self) -> Iterator[tuple[list[Event], list[int]]]:
        """The log in pieces that end where a slice does (at a `TimeAdvanced`, or the log's end),
        each with the indices where its slices start; delivered records join the digest."""
        carry: list[Event] = []
        for _, batch, events in self.log.decoded(blocks=_BLOCKS_PER_BATCH):
            self._chain.add(batch.take(self._kept(events)) if self._ranged else batch)
            whole = carry + events
            starts = [i for i, e in enumerate(whole) if type(e) is TimeAdvanced]
            if not starts or starts[-1] == 0:
                carry = whole
                continue
            yield whole[: starts[-1]], starts[:-1]
            carry = whole[starts[-1] :]
        if carry:
            yield carry, [i for i, e in enumerate(carry) if type(e) is TimeAdvanced]

    @property
    def _ranged(self) -> bool:
        return self.start_ts is not None or self.end_ts is not None

    def _wanted(self, event: Event) -> bool:
        if self.start_ts is not None and event.ts < self.start_ts:
            return False
        return self.end_ts is None or event.ts < self.end_ts

    def _kept(self, events: list[Event]) -> np.ndarray:
        return np.flatnonzero([self._wanted(e) for e in events])

    def batches(self, *, arrow: bool = False) -> Iterator[tuple[int, dict[str, Any]]]:
        """(first seq, kind -> columns) per batch of the log: numpy columns, or Arrow record
        batches with `arrow=True`, for consumers that count or vectorise. No pacing."""
        for first, batch in self.log.batches(blocks=_BLOCKS_PER_BATCH):
            columns = decode_columns(batch, first_seq=first)
            if self.start_ts is not None or self.end_ts is not None:
                columns = {
                    kind: _within(c, self.start_ts, self.end_ts) for kind, c in columns.items()
                }
                columns = {kind: c for kind, c in columns.items() if len(c["ts"])}
            for fields in columns.values():
                self.totals.events += len(fields["ts"])
            self._chain.add(batch if self.start_ts is None and self.end_ts is None else
                            batch.take(_kept(columns, first)))  # fmt: skip
            yield first, to_arrow(columns) if arrow else columns
        self.totals.state = "finished"

    def _wait_until(self, ts: int) -> None:
        """Paced: hold the slice until its time comes at `speed`; a pause holds it too."""
        while not self._running.is_set() and not self._stop.is_set():
            self._running.wait(_PAUSE_WAIT)
            self._pace = None  # resume without a burst: pace again from here
        if self.speed <= 0 or self._stop.is_set():
            return
        if self._pace is None:
            self._pace = (ts, time.monotonic())
            return
        anchor_ts, anchor_wall = self._pace
        delay = anchor_wall + (ts - anchor_ts) / (self.speed * 1e9) - time.monotonic()
        if delay > 0:
            self._stop.wait(delay)

    def query(self, name: str, *args: Any, **kwargs: Any) -> Any:
        starts = self._piece_starts
        end = bisect.bisect_right(starts, self._at)
        core = self.rebuilt.flush(starts[end] if end < len(starts) else None)
        if core is None:
            raise RuntimeError("nothing replayed yet: iterate events() first")
        return getattr(core, name)(*args, **kwargs)

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def stop(self) -> RunTotals:
        self._stop.set()
        self._running.set()
        return self.wait()

    def wait(self, timeout: float | None = None) -> RunTotals:
        """Replays whatever was not yet consumed, then returns the totals of what was delivered."""
        if not self.totals.state:
            for _ in self.events():
                pass
        self.totals.digest = self._chain.digest
        return self.totals

    def run(self, timeout: float | None = None) -> RunTotals:
        try:
            return self.wait(timeout)
        finally:
            self.close()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.log.close()

    def __enter__(self) -> Replay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
