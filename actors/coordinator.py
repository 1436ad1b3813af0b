"""StreamCoordinator: the only actor that moves time within a session, and the log's sequencer.

The pure core turns a session's validated input into a `SessionPlan`: every release event of the
session (time advances, quotes, trades, bars) encoded once, in log order, as columns. Streaming is
then a walk over that plan in steps; each step is a contiguous range of records, so the hot path
never touches one bar at a time. Upkeep's findings for each minute boundary are written right after
the records released up to that boundary, whatever thread produced them.
"""

from __future__ import annotations

import queue
import time
from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np
from loguru import logger

from actors.shell import Shell
from messages.codec import EncodedBatch, encode_columns
from messages.columns import BarColumns, QuoteColumns, SessionInput, TradeColumns
from messages.commands import (
    AddHistory,
    AdvanceTo,
    BeginSession,
    CloseSession,
    LoadSession,
    NextStep,
    OpenSession,
    Pause,
    Released,
    Resume,
    SessionLoaded,
    Start,
    Stop,
    UpkeepReply,
    UpkeepStep,
    WakeAt,
)
from messages.config import RunConfig
from messages.events import (
    Bar,
    DataRejected,
    Event,
    Paused,
    Quote,
    Resumed,
    RunFinished,
    RunStarted,
    Stopped,
    TimeAdvanced,
    Trade,
)
from messages.session import NS_PER_MINUTE, Session
from store.eventlog import EventLog

# Tie order inside a slice (DESIGN §2): the time advance first, then quotes, trades, bars.
_TIME, _QUOTE, _TRADE, _BAR = 0, 1, 2, 3
_AWAITING_REPLY = ("opening", "upkeep", "closing")
_PACED_COMMIT_S = 0.5


@dataclass(frozen=True, slots=True)
class SessionPlan:
    """One session's release stream, ready to walk."""

    session: Session
    start: int  # stream start: the open, or the window start with extended hours
    end: int  # the close, or the last extended-hours release after it
    data_end: int  # the last release of any data item; after it the stream is exhausted
    records: EncodedBatch  # every release event, in log order
    record_time: np.ndarray  # release time of each record, non-decreasing
    boundaries: np.ndarray  # minute boundaries where upkeep runs, the close last
    bars: BarColumns  # released bars, in release order
    bar_release: np.ndarray
    regular: np.ndarray  # bars inside [open, close): the ones upkeep and quality count
    trades: TradeColumns
    quotes: QuoteColumns
    left_out: int  # input rows outside regular hours, kept out of the stream


def plan_session(data: SessionInput, extended_hours: bool) -> SessionPlan:
    """Filter to the session's hours, then lay out every release event in log order."""
    session, symbols = data.session, data.symbols
    bar_release = data.bars.ts_start + NS_PER_MINUTE
    in_hours = (data.bars.ts_start >= session.open) & (data.bars.ts_start < session.close)
    trade_in = (data.trades.ts >= session.open) & (data.trades.ts < session.close)
    quote_in = (data.quotes.ts >= session.open) & (data.quotes.ts < session.close)
    if extended_hours:
        keep_bars = np.ones(len(data.bars), bool)
        trades, quotes = data.trades, data.quotes
        left_out = 0
    else:
        keep_bars = in_hours
        trades, quotes = data.trades.take(trade_in), data.quotes.take(quote_in)
        left_out = int((~in_hours).sum() + (~trade_in).sum() + (~quote_in).sum())
    bars = data.bars.take(keep_bars)
    bar_release = bar_release[keep_bars]
    regular = in_hours[keep_bars]

    item_times = np.concatenate([quotes.ts, trades.ts, bar_release])
    last_item = int(item_times.max()) if len(item_times) else session.open
    marks = session.open + NS_PER_MINUTE * np.arange(1, session.minutes + 1, dtype=np.int64)
    # Stream exhaustion: once the data ends, time moves straight to the close.
    boundaries = np.concatenate(
        [marks[(marks <= last_item) & (marks < session.close)], [session.close]]
    )
    start = session.window_start if extended_hours else session.open
    times = np.unique(np.concatenate([item_times, boundaries]))
    times = times[times > start]  # Upkeep's day transition already moved time to the start

    batch = EncodedBatch.concat(
        [
            encode_columns(TimeAdvanced, [times]),
            encode_columns(
                Quote,
                [quotes.ts, quotes.bid, quotes.bid_size, quotes.ask, quotes.ask_size],
                quotes.symbol,
                symbols,
            ),
            encode_columns(Trade, [trades.ts, trades.price, trades.size], trades.symbol, symbols),
            encode_columns(
                Bar,
                [
                    bar_release,
                    bars.ts_start,
                    bars.open,
                    bars.high,
                    bars.low,
                    bars.close,
                    bars.volume,
                ],
                bars.symbol,
                symbols,
            ),
        ]
    )
    record_time = np.concatenate([times, quotes.ts, trades.ts, bar_release])
    kind = np.concatenate(
        [
            np.full(len(times), _TIME),
            np.full(len(quotes), _QUOTE),
            np.full(len(trades), _TRADE),
            np.full(len(bars), _BAR),
        ]
    )
    symbol = np.concatenate(
        [np.zeros(len(times), np.int32), quotes.symbol, trades.symbol, bars.symbol]
    )
    source = np.concatenate(
        [np.zeros(len(times), np.int64), quotes.source, trades.source, bars.source]
    )
    order = np.lexsort((source, symbol, kind, record_time))
    return SessionPlan(
        session=session,
        start=start,
        end=int(times[-1]),
        data_end=last_item,
        records=batch.take(order),
        record_time=record_time[order],
        boundaries=boundaries,
        bars=bars,
        bar_release=bar_release,
        regular=regular,
        trades=trades,
        quotes=quotes,
        left_out=left_out,
    )


@dataclass(frozen=True, slots=True)
class Step:
    """One release: records [first, last) of the plan, up to time `now`."""

    now: int
    first: int
    last: int
    cuts: np.ndarray  # record index after which each crossed boundary's upkeep findings go
    boundaries: np.ndarray
    bars: BarColumns
    upkeep_bars: BarColumns  # regular-hours bars Upkeep has not seen yet, by release time
    upkeep_release: np.ndarray
    trades: TradeColumns
    quotes: QuoteColumns


class StreamCursor:
    """Where the coordinator is in the current session's plan (the pure, single-threaded core)."""

    def __init__(self, plan: SessionPlan) -> None:
        self.plan = plan
        self.now = plan.start
        self._record = 0
        self._boundary = 0
        self._bar = 0
        self._upkeep_bar = 0
        self._trade = 0
        self._quote = 0

    @property
    def bars_released(self) -> int:
        return self._bar

    @property
    def exhausted(self) -> bool:
        """No data left today: time may move straight to the close."""
        return self.now >= self.plan.data_end

    @property
    def finished(self) -> bool:
        return self._record >= len(self.plan.record_time)

    def next_time(self) -> int:
        return int(self.plan.record_time[self._record])

    def boundary_after(self, count: int) -> int:
        """The time `count` boundaries ahead (or the session end): a data-driven step's target."""
        b = self.plan.boundaries
        if self._boundary + count - 1 < len(b):
            return int(b[self._boundary + count - 1])
        return self.plan.end

    def release(self, until: int) -> Step:
        """Release everything due by `until`."""
        plan = self.plan
        first = self._record
        last = int(np.searchsorted(plan.record_time, until, side="right"))
        b_last = int(np.searchsorted(plan.boundaries, until, side="right"))
        boundaries = plan.boundaries[self._boundary : b_last]
        cuts = np.searchsorted(plan.record_time, boundaries, side="right")
        bar_last = int(np.searchsorted(plan.bar_release, until, side="right"))
        trade_last = int(np.searchsorted(plan.trades.ts, until, side="right"))
        quote_last = int(np.searchsorted(plan.quotes.ts, until, side="right"))
        bars = slice(self._bar, bar_last)
        upkeep = slice(self._upkeep_bar, bar_last if len(boundaries) else self._upkeep_bar)
        regular = plan.regular[upkeep]
        step = Step(
            now=until,
            first=first,
            last=last,
            cuts=cuts,
            boundaries=boundaries,
            bars=plan.bars.take(bars),
            upkeep_bars=plan.bars.take(upkeep).take(regular),
            upkeep_release=plan.bar_release[upkeep][regular],
            trades=plan.trades.take(slice(self._trade, trade_last)),
            quotes=plan.quotes.take(slice(self._quote, quote_last)),
        )
        self._record, self._boundary = last, b_last
        self._bar, self._trade, self._quote = bar_last, trade_last, quote_last
        self._upkeep_bar = upkeep.stop
        self.now = max(self.now, until)
        return step


class RunTotals(msgspec.Struct):
    sessions: int = 0
    bars: int = 0
    events: int = 0
    left_out: int = 0
    rejected: int = 0
    digest: str = ""


class StreamCoordinator(Shell):
    """Walks the sessions, releases steps, and writes every fact to the log in its fixed place."""

    name = "StreamCoordinator"

    def __init__(
        self,
        supervisor: Any,
        config: RunConfig,
        sessions: list[Session],
        history: list[Session],
        run_started: RunStarted,
        file_rejections: tuple[DataRejected, ...],
        log: EventLog,
        prefetch: Any,
        upkeep: Any,
        session_data: Any,
        clock: Any,
        output: queue.Queue | None,
    ) -> None:
        super().__init__(supervisor)
        self.config = config
        self.sessions = sessions
        self.history = history
        self.run_started = run_started
        self.file_rejections = file_rejections
        self.log = log
        self.prefetch, self.upkeep, self.session_data, self.clock = (
            prefetch,
            upkeep,
            session_data,
            clock,
        )
        self.output = output
        self.totals = RunTotals()
        self.state = "idle"
        self.loaded: dict[str, SessionInput] = {}
        self.next_index = 0
        self.cursor: StreamCursor | None = None
        self._rejections: tuple[DataRejected, ...] = ()
        self.pending: Step | None = None
        self.paused = False
        self.stopping = False
        self.waiting_step = False
        self.controls: list[type[Event]] = []
        self._committed_at = time.monotonic()

    # -- writing -----------------------------------------------------------------------------

    def _emit_records(self, first: int, last: int) -> None:
        if last > first:
            batch = self.cursor.plan.records.take(slice(first, last))
            self.log.append_batch(batch)
            self._publish(batch)

    def _emit(self, events: list[Event]) -> None:
        if events:
            batch = EncodedBatch.of(events)
            self.log.append_batch(batch)
            self._publish(batch)

    def _publish(self, batch: EncodedBatch) -> None:
        if self.output is None:
            return
        while not self.supervisor.stop_requested.is_set():
            try:
                self.output.put(batch, timeout=0.2)
                return
            except queue.Full:
                continue

    def _now(self) -> int:
        return self.cursor.now if self.cursor else self.run_started.ts

    # -- the state machine ---------------------------------------------------------------------

    def handle(self, message: Any) -> None:
        match message:
            case Start():
                self._start()
            case SessionLoaded(input=data, history=True):
                self._emit([msgspec.structs.replace(r, ts=self._now()) for r in data.rejected])
                self.totals.rejected += len(data.rejected)
                self.session_data.tell(AddHistory(data))
            case SessionLoaded(input=data):
                self.loaded[data.session.label] = data
                if self.state == "awaiting-session":
                    self._begin_session()
            case UpkeepReply(findings=findings):
                self._on_upkeep(findings)
            case NextStep():
                self.waiting_step = False
                if self.state == "streaming" and not self.paused:
                    self._step()
            case Pause():
                if not self.paused:
                    self.paused = True
                    self.clock.tell(Pause())
                    self._control(Paused)
            case Resume():
                if self.paused:
                    self.paused = False
                    self.clock.tell(Resume())
                    self._control(Resumed)
                    if self.state == "streaming":
                        self._schedule_step()
            case Stop():
                self._stop_gracefully()

    def _control(self, kind: type[Event]) -> None:
        """Control inputs are facts, written after the step in hand so time never runs back."""
        self.controls.append(kind)
        if self.state not in _AWAITING_REPLY:
            self._write_controls()

    def _write_controls(self) -> None:
        if self.controls:
            self._emit([kind(ts=self._now()) for kind in self.controls])
            self.controls.clear()
            self._commit()

    def _commit(self) -> None:
        self.log.flush()
        self._committed_at = time.monotonic()

    def _start(self) -> None:
        self._emit([self.run_started])
        self._emit(
            [msgspec.structs.replace(r, ts=self.run_started.ts) for r in self.file_rejections]
        )
        self.totals.rejected += len(self.file_rejections)
        for session in self.history:
            self.prefetch.tell(LoadSession(session, history=True, reply_to=self.actor_ref))
        self._request_next_load()
        self.state = "awaiting-session"

    def _request_next_load(self) -> None:
        if self.next_index < len(self.sessions):
            session = self.sessions[self.next_index]
            self.prefetch.tell(LoadSession(session, history=False, reply_to=self.actor_ref))
            self.next_index += 1

    def _begin_session(self) -> None:
        label = self.sessions[self.totals.sessions].label
        if label not in self.loaded:
            self.state = "awaiting-session"
            return
        data = self.loaded.pop(label)
        self._request_next_load()  # Prefetch reads D+1 while D streams
        plan = plan_session(data, self.config.extended_hours)
        self._rejections = data.rejected
        self.cursor = StreamCursor(plan)
        self.session_data.tell(BeginSession(plan.session))
        self.upkeep.tell(OpenSession(plan.session, plan.start, reply_to=self.actor_ref))
        self.state = "opening"

    def _on_upkeep(self, findings: list[list[Event]]) -> None:
        if self.state == "opening":
            self._emit(findings[0])
            self._emit([msgspec.structs.replace(r, ts=self.cursor.now) for r in self._rejections])
            self.totals.rejected += len(self._rejections)
            self.state = "streaming"
            self._write_controls()
            if self.stopping:
                self._write_stopped()
            else:
                self._schedule_step()
        elif self.state == "upkeep":
            step, self.pending = self.pending, None
            position = step.first
            for cut, events in zip(step.cuts.tolist(), findings, strict=True):
                self._emit_records(position, cut)
                self._emit(events)
                position = cut
            self._emit_records(position, step.last)
            self._write_controls()
            self._after_step()
        elif self.state == "closing":
            self._emit(findings[0])
            self.totals.sessions += 1
            self.state = "streaming"
            self._write_controls()
            self._commit()  # a closed session is durable
            if self.stopping:
                self._write_stopped()
            elif self.totals.sessions < len(self.sessions):
                self._begin_session()
            else:
                self._finish()

    def _schedule_step(self) -> None:
        if self.paused or self.waiting_step:
            return
        self.waiting_step = True
        if self._paced():
            self.clock.tell(WakeAt(self.cursor.next_time(), reply_to=self.actor_ref))
        else:
            self.actor_ref.tell(NextStep())

    def _paced(self) -> bool:
        return self.config.speed > 0 and not self.cursor.exhausted

    def _step(self) -> None:
        cursor = self.cursor
        if self._paced():
            until = cursor.next_time()
        else:
            until = cursor.boundary_after(self.config.step_minutes)
        step = cursor.release(until)
        self.totals.bars += len(step.bars)
        self.clock.tell(AdvanceTo(step.now))
        self.session_data.tell(Released(step.now, step.bars, step.trades, step.quotes))
        if len(step.boundaries):
            self.pending = step
            self.upkeep.tell(
                UpkeepStep(
                    step.boundaries, step.upkeep_bars, step.upkeep_release, reply_to=self.actor_ref
                )
            )
            self.state = "upkeep"
        else:
            self._emit_records(step.first, step.last)
            self._after_step()

    def _after_step(self) -> None:
        self.state = "streaming"
        if self.config.speed > 0 and time.monotonic() - self._committed_at > _PACED_COMMIT_S:
            self._commit()  # paced runs are slow: commit by time, so readers and crashes see it
        if self.stopping:
            self._write_stopped()
            return
        if self.cursor.finished:
            plan = self.cursor.plan
            self.state = "closing"
            self.upkeep.tell(
                CloseSession(
                    self.cursor.now,
                    self.cursor.bars_released,
                    plan.left_out,
                    reply_to=self.actor_ref,
                )
            )
            self.totals.left_out += plan.left_out
        else:
            self._schedule_step()

    def _finish(self) -> None:
        totals = self.totals
        self._emit([RunFinished(ts=self._now(), sessions=totals.sessions, bars=totals.bars)])
        self._end("finished")
        logger.debug("run finished: {} events, digest {}", totals.events, totals.digest)

    def _stop_gracefully(self) -> None:
        """Graceful: a step already handed to Upkeep is written first, then `Stopped`."""
        if self.state in ("finished", "stopped"):
            return
        self.stopping = True
        if self.state not in _AWAITING_REPLY:
            self._write_stopped()

    def _write_stopped(self) -> None:
        self._write_controls()
        self._emit([Stopped(ts=self._now())])
        self._end("stopped")

    def _end(self, state: str) -> None:
        self._commit()
        self.totals.events = self.log.next_seq - 1
        self.totals.digest = self.log.digest
        self.state = state
        self.supervisor.finished(self.totals)
