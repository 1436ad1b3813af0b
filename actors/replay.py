"""Replay: a run re-delivered from its log alone, through the live System's consumer API.

`events()` (with the same `kinds=`/`symbols=` filters), `subscribe`, the queries, `pause`,
`resume`, `step`, `set_speed`, `stop`, `wait`, `run` and the `with` block work as on a live run,
so a consumer written for a live run works on a replay unchanged. SessionData is rebuilt from the
very batches delivered, through the last event the consumer took (`SessionView`), as on a live
run. The input files are not needed. Replay runs in the consumer's own thread; pacing waits on
timers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from ticktape.actors.consumer import Consumer, Kinds
from ticktape.actors.coordinator_core import RunTotals
from ticktape.actors.session_view import SessionView
from ticktape.messages.codec import EncodedBatch, decode_columns, record_kinds
from ticktape.messages.events import Event
from ticktape.store.eventlog import ChainHasher
from ticktape.store.runset_log import open_log

_PAUSE_WAIT = 1.0
_BLOCKS_PER_BATCH = 8


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


class Replay(Consumer):
    """`Replay(log).run()`, or `with Replay(log) as r: for e in r.events(): ...`.

    `speed` 0 delivers as fast as possible; X > 0 at X times the run's simulated time. `start_ts`/
    `end_ts` (ns UTC) limit what is delivered to [start_ts, end_ts); SessionData is still rebuilt
    from the start, so queries are right, and the totals count what was delivered.
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
        self.view = SessionView()
        self._chain = ChainHasher(self.log.block_events)
        self.totals = RunTotals()
        self._changed = threading.Condition()
        self._paused = False
        self._holding = speed > 0
        self._steps = 0
        self._stop = threading.Event()
        self._pace: tuple[int, float] | None = None
        self._closed = False
        self._started = False

    # -- the live run's API --------------------------------------------------------------------

    def start(self) -> Replay:
        return self

    def events(
        self, *, kinds: Kinds = None, symbols: Iterable[str] | None = None
    ) -> Iterator[Event]:
        """The logged stream, event by event, filtered as on a live run. A query sees
        SessionData through the last event taken, as on the live run."""
        self._started = True
        yield from self._deliver(self._log_batches(), kinds, symbols)
        self.totals.state = "stopped" if self._stop.is_set() else "finished"

    def _log_batches(self) -> Iterator[tuple[EncodedBatch, np.ndarray | None, np.ndarray]]:
        """The log's batches, each with the records its time range lets through; delivered
        records join the digest and the totals once the consumer is past them."""
        totals = self.totals
        for batch, kinds in self._readable():
            if self._stop.is_set():
                return
            allowed = self._in_range(batch) if self._ranged else None
            self._chain.add(batch if allowed is None else batch.take(np.flatnonzero(allowed)))
            yield batch, allowed, kinds
            if allowed is not None:
                kinds = kinds[allowed]
            totals.events += len(kinds)
            totals.bars += int(np.count_nonzero(kinds == "Bar"))
            totals.sessions += int(np.count_nonzero(kinds == "SessionClosed"))

    def _readable(self) -> Iterator[tuple[EncodedBatch, np.ndarray]]:
        """The log's batches; at a record that does not decode, the records before it, then
        the log's own one-line `LogDamaged` naming its seq (as every log tool says it)."""
        for first, batch in self.log.batches(blocks=_BLOCKS_PER_BATCH):
            try:
                kinds = record_kinds(batch)
            except msgspec.DecodeError:
                for _, good, _ in self.log.decoded(first, first + len(batch)):
                    yield good, record_kinds(good)  # then `decoded` raises LogDamaged
                raise
            yield batch, kinds

    def _in_range(self, batch: EncodedBatch) -> np.ndarray:
        ts = np.empty(len(batch), np.int64)
        for fields in decode_columns(batch, first_seq=0).values():
            ts[fields["seq"]] = fields["ts"]
        keep = np.ones(len(batch), bool)
        if self.start_ts is not None:
            keep &= ts >= self.start_ts
        if self.end_ts is not None:
            keep &= ts < self.end_ts
        return keep

    @property
    def _ranged(self) -> bool:
        return self.start_ts is not None or self.end_ts is not None

    def batches(self, *, arrow: bool = False) -> Iterator[tuple[int, dict[str, Any]]]:
        """(first seq, kind -> columns) per batch of the log: numpy columns, or Arrow record
        batches with `arrow=True` (each kind in its own schema, as `log export` writes it:
        symbol names, UTC timestamps), for consumers that count or vectorise. No pacing."""
        if arrow:  # Arrow only when asked
            from ticktape.store.tables import kind_batches, run_symbols

            symbols = run_symbols(self.log)
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
            yield first, kind_batches(columns, symbols) if arrow else columns
        self.totals.state = "finished"

    def _at_slice(self, ts: int) -> None:
        """Before each slice: a pause holds it (a step lets exactly one through), and paced,
        it waits until its time comes at `speed`."""
        with self._changed:
            while self._paused and not self._stop.is_set():
                if self._steps:
                    self._steps -= 1
                    break
                self._changed.wait(_PAUSE_WAIT)
                self._pace = None  # resume without a burst: pace again from here
            if self._paused:
                self._pace = None
        if self.speed <= 0 or self._stop.is_set():
            return
        if self._pace is None:
            self._pace = (ts, time.monotonic())
            return
        anchor_ts, anchor_wall = self._pace
        delay = anchor_wall + (ts - anchor_ts) / (self.speed * 1e9) - time.monotonic()
        if delay > 0:
            self._stop.wait(delay)

    def _symbols(self) -> tuple[str, ...]:
        raise RuntimeError("nothing replayed yet: iterate events() first")

    def pause(self) -> None:
        with self._changed:
            self._paused = True
            self._holding = self._paused or self.speed > 0
            self._changed.notify_all()

    def resume(self) -> None:
        with self._changed:
            self._paused = False
            self._holding = self._paused or self.speed > 0
            self._changed.notify_all()

    def step(self) -> None:
        """While paused: deliver exactly the next slice (one release time), then stay paused."""
        with self._changed:
            if self._paused:
                self._steps += 1
                self._changed.notify_all()

    def set_speed(self, speed: float) -> None:
        """X > 0 paces at X times the run's simulated time; 0 delivers as fast as possible."""
        if not speed >= 0:
            raise ValueError(f"speed must be 0 or more, not {speed}")
        with self._changed:
            self.speed = float(speed)
            self._holding = self._paused or self.speed > 0
            self._pace = None
            self._changed.notify_all()

    @property
    def paused(self) -> bool:
        return self._paused

    def request_stop(self) -> None:
        """Stop at the next event and return at once (safe from another thread)."""
        self._stop.set()
        with self._changed:
            self._changed.notify_all()

    def stop(self) -> RunTotals:
        self.request_stop()
        return self.wait()

    def wait(self, timeout: float | None = None) -> RunTotals:
        """Replays whatever was not yet consumed, then returns the totals of what was delivered."""
        if not self.totals.state and not self._started:
            for _ in self.events(kinds=("TimeAdvanced",)):  # a slice at a time, for pacing
                pass
        if not self.totals.state:  # the consumer left the loop early
            self.totals.state = "stopped"
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
