"""A session's release stream, planned once and walked in steps.

`plan_session` turns a session's validated input into a `SessionPlan`: every release event of the
session (time advances, quotes, trades, bars) encoded once, in log order (DESIGN §2: release time,
then quote, trade, bar, then symbol, then source position), as columns. `StreamCursor` walks it in
steps of contiguous records, so the hot path never touches one bar at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ticktape.messages.arrays import distinct
from ticktape.messages.codec import EncodedBatch, encode_columns
from ticktape.messages.columns import BarColumns, QuoteColumns, SessionInput, TradeColumns
from ticktape.messages.events import Bar, Event, Quote, SessionBreak, TimeAdvanced, Trade
from ticktape.messages.plan import SessionPlan
from ticktape.messages.session import NS_PER_MINUTE, Session

# Tie order inside a slice (DESIGN §2): the time advance first, then quotes, trades, bars.
_TIME, _QUOTE, _TRADE, _BAR = 0, 1, 2, 3


def plan_session(data: SessionInput, extended_hours: bool) -> SessionPlan:
    """Filter to the session's hours, then lay out every release event in log order."""
    session, symbols = data.session, data.symbols
    bar_release = data.bars.ts_start + NS_PER_MINUTE
    in_hours = session.regular(data.bars.ts_start)
    trade_in = session.regular(data.trades.ts)
    quote_in = session.regular(data.quotes.ts)
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
    # A boundary ends each regular minute: none inside a break, so time skips it like the night.
    marks = session.open + NS_PER_MINUTE * np.arange(1, session.minutes + 1, dtype=np.int64)
    marks = marks[session.regular(marks - NS_PER_MINUTE)]
    # Stream exhaustion: once the data ends, time moves straight to the close.
    boundaries = np.concatenate(
        [marks[(marks <= last_item) & (marks < session.close)], [session.close]]
    )
    start = session.window_start if extended_hours else session.open
    times = distinct(np.concatenate([item_times, boundaries]))
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
    record_time = record_time[order]
    return SessionPlan(
        session=session,
        start=start,
        end=int(times[-1]),
        data_end=last_item,
        records=batch.take(order).packed(),
        record_time=record_time,
        boundaries=boundaries,
        boundary_cuts=np.searchsorted(record_time, boundaries, side="right"),
        bars=bars,
        bar_release=bar_release,
        regular=regular,
        trades=trades,
        quotes=quotes,
        left_out=left_out,
    )


def session_break(ts: int, session: Session) -> list[Event]:
    """A session's break as a fact, for the sessions that have one."""
    if not session.has_break:
        return []
    return [
        SessionBreak(
            ts=ts,
            session=session.label,
            break_start=session.break_start,
            break_end=session.break_end,
        )
    ]


@dataclass(frozen=True, slots=True)
class Step:
    """One release: records [first, last) of the plan, up to time `now`.

    The columns for the other actors are taken when asked, so the step's records can be
    written before that work is done."""

    plan: SessionPlan
    now: int
    first: int
    last: int
    cuts: np.ndarray  # record index after which each crossed boundary's upkeep findings go
    boundaries: np.ndarray
    bar_rows: slice  # released bars, rows of the plan's bars
    upkeep_rows: slice  # bars Upkeep has not seen yet (before the regular-hours filter)
    trade_rows: slice
    quote_rows: slice

    @property
    def n_bars(self) -> int:
        return self.bar_rows.stop - self.bar_rows.start

    @property
    def bars(self) -> BarColumns:
        return self.plan.bars.take(self.bar_rows)

    @property
    def trades(self) -> TradeColumns:
        return self.plan.trades.take(self.trade_rows)

    @property
    def quotes(self) -> QuoteColumns:
        return self.plan.quotes.take(self.quote_rows)

    def upkeep_bars(self) -> tuple[BarColumns, np.ndarray]:
        """Regular-hours bars Upkeep has not seen yet, and their release times."""
        plan, rows = self.plan, self.upkeep_rows
        regular = plan.regular[rows]
        return plan.bars.take(rows).take(regular), plan.bar_release[rows][regular]


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

    def break_skipped(self) -> int | None:
        """The break's end, when time has reached the break and nothing is due in it: a paced
        run jumps to it, as it jumps the night, instead of waiting through it."""
        session = self.plan.session
        in_break = session.has_break and session.break_start <= self.now < session.break_end
        if in_break and self.next_time() >= session.break_end:
            return session.break_end
        return None

    def boundary_after(self, count: int) -> int:
        """The time `count` boundaries ahead (or the session end): a data-driven step's target."""
        b = self.plan.boundaries
        if self._boundary + count - 1 < len(b):
            return int(b[self._boundary + count - 1])
        return self.plan.end

    def boundary_within(self, records: int) -> int:
        """The last boundary by which at most `records` more records are out (at least the next
        one): a data-driven step of a steady size, however many symbols or ticks a minute has."""
        cuts = self.plan.boundary_cuts
        within = int(np.searchsorted(cuts, self._record + records, side="right"))
        return self.boundary_after(max(within - self._boundary, 1))

    def release(self, until: int) -> Step:
        """Release everything due by `until`."""
        plan = self.plan
        first = self._record
        last = int(np.searchsorted(plan.record_time, until, side="right"))
        b_last = int(np.searchsorted(plan.boundaries, until, side="right"))
        boundaries = plan.boundaries[self._boundary : b_last]
        cuts = plan.boundary_cuts[self._boundary : b_last]
        bar_last = int(np.searchsorted(plan.bar_release, until, side="right"))
        trade_last = int(np.searchsorted(plan.trades.ts, until, side="right"))
        quote_last = int(np.searchsorted(plan.quotes.ts, until, side="right"))
        # Time moves to the last record released, never to `until` itself: a paced wake overshoots
        # by however late the wall clock was, which is pacing, not a fact.
        now = max(self.now, int(plan.record_time[last - 1])) if last > first else self.now
        upkeep = slice(self._upkeep_bar, bar_last if len(boundaries) else self._upkeep_bar)
        step = Step(
            plan=plan,
            now=now,
            first=first,
            last=last,
            cuts=cuts,
            boundaries=boundaries,
            bar_rows=slice(self._bar, bar_last),
            upkeep_rows=upkeep,
            trade_rows=slice(self._trade, trade_last),
            quote_rows=slice(self._quote, quote_last),
        )
        self._record, self._boundary = last, b_last
        self._bar, self._trade, self._quote = bar_last, trade_last, quote_last
        self._upkeep_bar = upkeep.stop
        self.now = now
        return step
