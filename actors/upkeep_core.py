"""Data upkeep for one session at a time (DESIGN §4): gaps, fills, derived bars and quality.

A pure, single-threaded core: the Upkeep actor feeds it the released 1m bars and the simulated time.
Its findings leave it as `Findings`: one encoded batch per minute boundary, in log order, with the
bulk (gaps, derived bars) written from columns by `encode_columns` and the rare kinds through
msgspec, so no Struct is built per derived bar. Everything it keeps is per session and dropped at
`open_session`, so memory stays flat over a long run.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec
import numpy as np

from ticktape.actors.minute_grid import FILLED, MISSING, REAL, SYNTHETIC, MinuteGrid
from ticktape.messages.arrays import distinct, on_minute
from ticktape.messages.codec import EMPTY_BATCH, EncodedBatch, decode_many, encode_columns
from ticktape.messages.columns import BarColumns, DerivedBarColumns, SessionInput
from ticktape.messages.config import GAP_POLICIES
from ticktape.messages.events import (
    DataRejected,
    DerivedBar,
    DerivedBarRevised,
    Event,
    GapDetected,
    GapFilled,
    QualityUpdated,
    SessionClosed,
)
from ticktape.messages.session import NS_PER_MINUTE, Session

Backfill = Callable[[Session, np.ndarray, np.ndarray], BarColumns]
"""backfill(session, symbol_ids, ts_starts) -> the bars it has for those (symbol, minute) pairs.
A backfill with a `rejected` list (`SessionBackfill`) hands its bad rows to upkeep."""


class SessionBackfill:
    """One session of the backfill repository, read by Prefetch and handed in with the session:
    the core looks gaps up in memory and never reads a file. Its bad rows are logged where the
    backfill is first consulted (`rejected` is emptied then)."""

    def __init__(self, data: SessionInput) -> None:
        self.bars = data.bars
        self.rejected: list[DataRejected] = list(data.rejected)
        window_start = data.session.window_start
        self._have = self._cells(self.bars.symbol, self.bars.ts_start, window_start)

    def __call__(
        self, session: Session, symbol_ids: np.ndarray, ts_starts: np.ndarray
    ) -> BarColumns:
        want = self._cells(symbol_ids, ts_starts, session.window_start)
        return self.bars.take(np.isin(self._have, want))

    @staticmethod
    def _cells(symbol: np.ndarray, ts_start: np.ndarray, window_start: int) -> np.ndarray:
        return (
            np.asarray(symbol).astype(np.int64) << 32 | (ts_start - window_start) // NS_PER_MINUTE
        )


_EMPTY = np.empty(0, dtype=np.int64)


class Findings(msgspec.Struct):
    """Upkeep's findings at the boundaries of one call, encoded in log order, and the ones that
    change session state (fills and quality) for SessionData."""

    records: EncodedBatch
    ends: np.ndarray  # records through each boundary: boundary j's are [ends[j-1], ends[j])
    changes: list[Event]

    @property
    def batches(self) -> list[EncodedBatch]:
        """One batch per boundary."""
        ends = self.ends.tolist()
        return [self.records.take(slice(a, b)) for a, b in zip([0, *ends[:-1]], ends, strict=True)]

    def events(self) -> list[list[Event]]:
        """The findings as Structs, boundary by boundary (for tests and people)."""
        return [decode_many(batch) for batch in self.batches]


class _Parts:
    """Findings as they are made, piece by piece in the upkeep order, each record tagged with the
    index of its boundary; `findings` then sorts them stably by boundary."""

    def __init__(self) -> None:
        self.batches: list[EncodedBatch] = []
        self.at: list[np.ndarray] = []
        self.changes: list[Event] = []

    def add(self, at: int | np.ndarray, batch: EncodedBatch) -> None:
        self.batches.append(batch)
        self.at.append(np.broadcast_to(np.asarray(at, dtype=np.int64), (len(batch),)))

    def add_events(self, at: int | np.ndarray, events: list[Event], changes: bool = False) -> None:
        if events:
            self.add(at, EncodedBatch.of(events))
            if changes:
                self.changes += events

    def findings(self, n_boundaries: int) -> Findings:
        batch = EncodedBatch.concat(self.batches)
        at = np.concatenate(self.at) if self.at else _EMPTY
        order = np.argsort(at, kind="stable")
        ends = np.searchsorted(at[order], np.arange(1, n_boundaries + 1))
        return Findings(batch.take(order).packed(), ends, self.changes)


class UpkeepCore:
    """Keeps one session's 1m grid and turns time advances into upkeep events.

    Per `advance` call the events come in a fixed order: gaps (by minute, then symbol id), the
    bad rows the backfill met if it loaded a session in this call, fills (by minute, then symbol
    id), derived bars (per configured interval, by end time then symbol), then quality for
    the symbols that had a gap or a fill in that call. All carry ts=now.
    """

    def __init__(
        self,
        symbols: tuple[str, ...],
        *,
        derived: tuple[int, ...] = (5, 15),
        gap_policy: str = "leave",
        fill_retries: int = 3,
    ) -> None:
        if gap_policy not in GAP_POLICIES:
            raise ValueError(f"gap_policy must be one of {GAP_POLICIES}, not {gap_policy!r}")
        if any(int(n) < 1 for n in derived) or len(set(derived)) != len(derived):
            raise ValueError(f"derived intervals must be distinct whole minutes >= 1: {derived}")
        if fill_retries < 0:
            raise ValueError(f"fill_retries must be >= 0, not {fill_retries}")
        self.symbols = tuple(symbols)
        self.derived_intervals = tuple(int(n) for n in derived)
        self.gap_policy = gap_policy
        self.backfill: Backfill | None = None  # the open session's
        self.fill_retries = fill_retries
        self._grid: MinuteGrid | None = None

    @property
    def grid(self) -> MinuteGrid:
        """The current session's grid (read-only for callers)."""
        if self._grid is None:
            raise RuntimeError("no session is open: call open_session first")
        return self._grid

    @property
    def session(self) -> Session:
        return self.grid.session

    def open_session(self, session: Session, backfill: Backfill | None = None) -> None:
        """Start a fresh grid and fresh counters; nothing of the previous session is kept.
        `backfill` answers this session's gaps (None: gaps are left, or forward-filled)."""
        self.backfill = backfill
        self._grid = MinuteGrid(session, len(self.symbols))
        self._now = session.open
        self._checked = 0
        self._last_minute: int | None = None
        self._closed = False
        self._pending_symbol = _EMPTY
        self._pending_minute = _EMPTY
        self._pending_retries = _EMPTY
        self._released = dict.fromkeys(self.derived_intervals, 0)
        self._emitted = {
            n: np.zeros((len(self.symbols), self._grid.n_buckets(n)), dtype=bool)
            for n in self.derived_intervals
        }

    def advance(self, now: int, bars: BarColumns) -> list[Event]:
        """`advance_many` at the one time `now`, as Structs (for tests and people)."""
        release = np.asarray(bars.ts_start) + NS_PER_MINUTE
        return self.advance_many(np.array([now]), bars, release).events()[0]

    def _take_real(self, now: int, bars: BarColumns) -> MinuteGrid:
        """Put released real bars on the grid: none may end after `now` (look-ahead), none may
        come after its minute was checked for gaps."""
        grid = self._live_grid(now)
        if len(bars):
            if (np.asarray(bars.ts_start) + NS_PER_MINUTE > now).any():
                raise ValueError("a bar that ends after now was handed to upkeep (look-ahead)")
            if (grid.minute_of(bars.ts_start) < self._checked).any():
                raise ValueError("a bar arrived after its minute had already been checked for gaps")
        grid.put(bars, REAL)
        return grid

    def _advance(self, parts: _Parts, at: int, now: int, bars: BarColumns) -> None:
        """One boundary, fills attempted (each attempt depends on the ones before it)."""
        grid = self._take_real(now, bars)
        self._now = now

        due = int(np.clip((now - grid.session.open) // NS_PER_MINUTE, 0, grid.minutes))
        gap_symbol, gap_minute = self._detect_gaps(due)
        parts.add(at, self._gap_records(np.int64(now), gap_symbol, gap_minute))

        minute = (now - grid.session.open) // NS_PER_MINUTE
        retry = self._last_minute is not None and minute > self._last_minute
        self._last_minute = minute
        fill_symbol, fill_minute, fill_events = self._fill(now, gap_symbol, gap_minute, retry)
        parts.add_events(at, fill_events, changes=True)
        self._derived_events(parts, at, now, due, fill_symbol, fill_minute)
        touched = distinct(np.concatenate([gap_symbol, fill_symbol]))
        parts.add_events(at, self._quality_events(now, touched), changes=True)

    def advance_many(
        self, boundaries: np.ndarray, bars: BarColumns, release: np.ndarray
    ) -> Findings:
        """Upkeep at each minute boundary of a step, the one way in; `bars` are sorted by
        `release`. Encoded, one batch per boundary, the same whatever the step's size.

        Without fills to attempt (no backfill, gaps left as gaps, or no gap at all) the step is
        done in one vectorized pass; otherwise boundary by boundary, since each fill attempt
        depends on the ones before it. The two share every piece but the loop.
        """
        grid = self._live_grid(int(boundaries[0]))
        last = int(boundaries[-1])
        due = int(np.clip((last - grid.session.open) // NS_PER_MINUTE, 0, grid.minutes))
        gaps_stay_gaps = self.backfill is None and self.gap_policy == "leave"
        parts = _Parts()
        if not gaps_stay_gaps and not self._quiet(bars, due):
            ends = np.searchsorted(release, boundaries, side="right").tolist()
            start = 0
            for j, (boundary, end) in enumerate(zip(boundaries.tolist(), ends, strict=True)):
                self._advance(parts, j, boundary, bars.take(slice(start, end)))
                start = end
            return parts.findings(len(boundaries))
        self._take_real(last, bars)
        gap_symbol, gap_minute = self._detect_gaps(due)
        self._now = last
        self._last_minute = (last - grid.session.open) // NS_PER_MINUTE
        gap_at = np.searchsorted(boundaries, self._ts_start(gap_minute) + NS_PER_MINUTE, "left")
        parts.add(gap_at, self._gap_records(boundaries[gap_at], gap_symbol, gap_minute))
        pieces = [bars for n in self.derived_intervals for bars in self._newly_due(n, due)]
        derived = DerivedBarColumns.concat(pieces)
        at = np.searchsorted(boundaries, derived.ts_end, side="left")
        parts.add(at, self._derived_records(boundaries[at], derived))
        # Each symbol with a gap found at a boundary gets its quality as of that boundary.
        pair = distinct(gap_at * grid.n_symbols + gap_symbol)
        at, symbol = pair // grid.n_symbols, pair % grid.n_symbols
        minutes = np.minimum((boundaries[at] - grid.session.open) // NS_PER_MINUTE, grid.minutes)
        parts.add_events(at, self._quality_events(boundaries[at], symbol, minutes), changes=True)
        return parts.findings(len(boundaries))

    def _quiet(self, bars: BarColumns, due: int) -> bool:
        """No gap pending, and every minute due by the step's end has a bar for every symbol."""
        if len(self._pending_symbol):
            return False
        start = self._checked
        if due <= start:
            return True
        have = (self.grid.state[:, start:due] != MISSING) | ~self.grid.expected[start:due]
        minute = self.grid.minute_of(bars.ts_start) - start
        inside = (minute >= 0) & (minute < due - start)
        have[np.asarray(bars.symbol)[inside], minute[inside]] = True
        return bool(have.all())

    def close_session(self, now: int, released: int, left_out: int) -> list[Event]:
        """`close`, as Structs (for tests and people)."""
        return self.close(now, released, left_out).events()[0]

    def close(self, now: int, released: int, left_out: int) -> Findings:
        """Give up pending gaps, report every symbol's final quality, and close the session.

        `released` and `left_out` are the coordinator's counts of 1m bars released and of input rows
        kept out of regular hours; they only pass through into `SessionClosed`.
        """
        grid = self._live_grid(now)
        if self._checked < grid.minutes or now < grid.session.close:
            raise ValueError("close_session needs advance(close, ...) first")
        self._now = now
        symbol, minute = self._pending_symbol, self._pending_minute
        self._pending_symbol = self._pending_minute = self._pending_retries = _EMPTY
        parts = _Parts()
        fill_symbol, fill_minute, events = self._give_up(now, symbol, minute)
        parts.add_events(0, events, changes=True)
        self._derived_events(parts, 0, now, grid.minutes, fill_symbol, fill_minute)
        parts.add_events(0, self.quality(), changes=True)
        closed = SessionClosed(ts=now, session=grid.session.label, bars=released, left_out=left_out)
        parts.add_events(0, [closed])
        self._closed = True
        return parts.findings(1)

    def quality(self) -> list[QualityUpdated]:
        """Every symbol's quality so far, as of the last advance (for reports and the close)."""
        return self._quality_events(self._now, np.arange(len(self.symbols)))

    def pending_gaps(self) -> int:
        """Gaps still waiting for a backfill retry."""
        return len(self._pending_symbol) if self._grid is not None else 0

    def _live_grid(self, now: int) -> MinuteGrid:
        grid = self.grid
        if self._closed:
            raise RuntimeError(f"session {grid.session.label} is already closed")
        if now < self._now:
            raise ValueError(f"time went backwards: {now} < {self._now}")
        return grid

    def _detect_gaps(self, due: int) -> tuple[np.ndarray, np.ndarray]:
        """(symbol, minute) of the newly due minutes with no bar, by minute then symbol."""
        start, self._checked = self._checked, max(self._checked, due)
        if due <= start:
            return _EMPTY, _EMPTY
        missing = self.grid.state[:, start:due].T == MISSING
        minute, symbol = np.nonzero(missing & self.grid.expected[start:due, None])
        return symbol.astype(np.int64), minute.astype(np.int64) + start

    def _gap_records(self, now: np.ndarray, symbol: np.ndarray, minute: np.ndarray) -> EncodedBatch:
        """`GapDetected` records; `now` is one time for all, or each gap's detection time."""
        ts = np.broadcast_to(np.asarray(now, dtype=np.int64), symbol.shape)
        return encode_columns(GapDetected, [ts, self._ts_start(minute)], symbol, self.symbols)

    def _fill(
        self, now: int, symbol: np.ndarray, minute: np.ndarray, retry: bool
    ) -> tuple[np.ndarray, np.ndarray, list[Event]]:
        """Try the backfill on new gaps (and on pending ones when a new minute began).

        Returns the cells that got a bar in this call (filled or synthetic) and their events.
        """
        if self.backfill is None:
            return self._give_up(now, symbol, minute)
        retries = np.zeros(len(symbol), dtype=np.int64)
        if retry and len(self._pending_symbol):
            symbol = np.concatenate([self._pending_symbol, symbol])
            minute = np.concatenate([self._pending_minute, minute])
            retries = np.concatenate([self._pending_retries + 1, retries])
            self._pending_symbol = self._pending_minute = self._pending_retries = _EMPTY
        if len(symbol) == 0:
            return _EMPTY, _EMPTY, []
        order = np.lexsort((symbol, minute))
        symbol, minute, retries = symbol[order], minute[order], retries[order]

        grid = self.grid
        answer = self.backfill(grid.session, symbol.astype(np.int32), self._ts_start(minute))
        rejected = self._backfill_rejections(now)
        found = self._requested(answer, symbol, minute)
        grid.put(found, FILLED)
        found_minute = grid.minute_of(found.ts_start)
        found_symbol = np.asarray(found.symbol, dtype=np.int64)
        hit = np.isin(self._cell(symbol, minute), self._cell(found_symbol, found_minute))

        miss = ~hit
        give_up = miss & (retries >= self.fill_retries)
        keep = miss & ~give_up
        self._pending_symbol = np.concatenate([self._pending_symbol, symbol[keep]])
        self._pending_minute = np.concatenate([self._pending_minute, minute[keep]])
        self._pending_retries = np.concatenate([self._pending_retries, retries[keep]])
        synth_symbol, synth_minute, _ = self._give_up(now, symbol[give_up], minute[give_up])

        cell_symbol = np.concatenate([found_symbol, synth_symbol])
        cell_minute = np.concatenate([found_minute, synth_minute])
        order = np.lexsort((cell_symbol, cell_minute))
        cell_symbol, cell_minute = cell_symbol[order], cell_minute[order]
        return cell_symbol, cell_minute, rejected + self._fill_events(now, cell_symbol, cell_minute)

    def _backfill_rejections(self, now: int) -> list[Event]:
        """Bad rows the backfill met while loading a session, stamped with the boundary that
        consulted it and ordered by file and line: the log never depends on the step size."""
        rejected = getattr(self.backfill, "rejected", None)
        if not rejected:
            return []
        taken = sorted(rejected, key=lambda r: (r.file, r.row, r.reason))
        rejected.clear()
        return [msgspec.structs.replace(r, ts=now) for r in taken]

    def _requested(self, bars: BarColumns, symbol: np.ndarray, minute: np.ndarray) -> BarColumns:
        """The backfill rows that answer a requested gap, one per gap; extras are ignored."""
        if len(bars) == 0:
            return BarColumns.empty()
        grid = self.grid
        ts = np.asarray(bars.ts_start, dtype=np.int64)
        symbol_id = np.asarray(bars.symbol, dtype=np.int64)
        on_grid = (
            (symbol_id >= 0)
            & (symbol_id < grid.n_symbols)
            & grid.session.regular(ts)
            & on_minute(ts - grid.session.open)
        )
        cell = self._cell(symbol_id, grid.minute_of(ts))
        wanted = on_grid & np.isin(cell, self._cell(symbol, minute))
        index = np.flatnonzero(wanted)
        _, first = np.unique(cell[index], return_index=True)
        return bars.take(index[first])

    def _give_up(
        self, now: int, symbol: np.ndarray, minute: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, list[Event]]:
        """End the fill attempts of these gaps; under forward-fill they become synthetic bars.

        A synthetic bar is flat at the symbol's last close earlier in the session, volume 0; with
        no earlier bar the gap stays a gap.
        """
        if self.gap_policy != "forward-fill" or len(symbol) == 0:
            return _EMPTY, _EMPTY, []
        grid = self.grid
        rows, row_of = np.unique(symbol, return_inverse=True)
        close = grid.close[rows]
        seen = np.where(np.isnan(close), -1, np.arange(grid.minutes)[None, :])
        last_seen = np.maximum.accumulate(seen, axis=1)
        before = np.where(minute > 0, last_seen[row_of, np.maximum(minute - 1, 0)], -1)
        ok = before >= 0
        symbol, minute = symbol[ok], minute[ok]
        price = close[row_of[ok], before[ok]]
        grid.put(
            BarColumns(
                symbol=symbol.astype(np.int32),
                ts_start=self._ts_start(minute),
                open=price,
                high=price,
                low=price,
                close=price,
                volume=np.zeros(len(price)),
                source=np.full(len(price), -1, dtype=np.int64),
            ),
            SYNTHETIC,
        )
        order = np.lexsort((symbol, minute))
        symbol, minute = symbol[order], minute[order]
        return symbol, minute, self._fill_events(now, symbol, minute)

    def _fill_events(self, now: int, symbol: np.ndarray, minute: np.ndarray) -> list[Event]:
        grid = self.grid
        columns = (
            symbol.tolist(),
            self._ts_start(minute).tolist(),
            grid.open[symbol, minute].tolist(),
            grid.high[symbol, minute].tolist(),
            grid.low[symbol, minute].tolist(),
            grid.close[symbol, minute].tolist(),
            grid.volume[symbol, minute].tolist(),
            (grid.state[symbol, minute] == SYNTHETIC).tolist(),
        )
        return [
            GapFilled(
                ts=now,
                symbol=self.symbols[s],
                ts_start=t,
                open=o,
                high=h,
                low=lo,
                close=c,
                volume=v,
                synthetic=synthetic,
            )
            for s, t, o, h, lo, c, v, synthetic in zip(*columns, strict=True)
        ]

    def _derived_events(
        self,
        parts: _Parts,
        at: int,
        now: int,
        due: int,
        fill_symbol: np.ndarray,
        fill_minute: np.ndarray,
    ) -> None:
        """Release the derived bars that ended by now, and revise released ones a fill changed."""
        grid = self.grid
        pieces: list[DerivedBarColumns] = []
        for interval in self.derived_intervals:
            n_buckets = grid.n_buckets(interval)
            released = self._released[interval]

            bucket = grid.bucket_of(interval, fill_minute)
            late = bucket < released
            if late.any():
                changed = grid.derived(interval, symbols=fill_symbol[late], buckets=bucket[late])
                changed_bucket = grid.bucket_of(interval, grid.minute_of(changed.ts_start))
                wanted = np.isin(
                    changed.symbol.astype(np.int64) * n_buckets + changed_bucket,
                    fill_symbol[late] * n_buckets + bucket[late],
                )
                pieces.append(changed.take(wanted))

            pieces += self._newly_due(interval, due)

        parts.add(at, self._derived_records(np.int64(now), DerivedBarColumns.concat(pieces)))

    def _newly_due(self, interval: int, due: int) -> list[DerivedBarColumns]:
        """The derived bars of `interval` that ended by minute `due` and are not out yet."""
        grid = self.grid
        released = self._released[interval]
        now_due = grid.buckets_ended(interval, due)
        if now_due <= released:
            return []
        self._released[interval] = now_due
        return [grid.derived(interval, buckets=np.arange(released, now_due))]

    def _derived_records(self, now: np.ndarray, bars: DerivedBarColumns) -> EncodedBatch:
        """A first release is a `DerivedBar`; a bucket already released gets a revision.

        `now` is one time for all, or each bar's release time. Rows keep their order."""
        if len(bars) == 0:
            return EMPTY_BATCH
        symbol = bars.symbol.astype(np.int64)
        revised = np.zeros(len(bars), dtype=bool)
        for interval in distinct(bars.interval).tolist():
            rows = np.flatnonzero(bars.interval == interval)
            bucket = self.grid.bucket_of(interval, self.grid.minute_of(bars.ts_start[rows]))
            emitted = self._emitted[interval]
            revised[rows] = emitted[symbol[rows], bucket]
            emitted[symbol[rows], bucket] = True
        ts = np.broadcast_to(np.asarray(now, dtype=np.int64), symbol.shape)
        columns = [ts, bars.ts_start, bars.interval, bars.open, bars.high, bars.low, bars.close]
        columns += [bars.volume, bars.bars, bars.filled]
        if not revised.any():
            return encode_columns(DerivedBar, columns, symbol, self.symbols)
        kinds = []
        for kind, rows in ((DerivedBar, ~revised), (DerivedBarRevised, revised)):
            picked = [np.asarray(c)[rows] for c in columns]
            kinds.append(encode_columns(kind, picked, symbol[rows], self.symbols))
        order = np.empty(len(bars), dtype=np.int64)  # back to the rows' order
        order[~revised] = np.arange(len(kinds[0]))
        order[revised] = len(kinds[0]) + np.arange(len(kinds[1]))
        return EncodedBatch.concat(kinds).take(order)

    def _quality_events(
        self,
        now: int | np.ndarray,
        symbols: np.ndarray,
        minutes: int | np.ndarray | None = None,
    ) -> list[QualityUpdated]:
        """Each symbol's quality over its first `minutes` minutes, as of `now` (one time and
        count for all, or one per symbol); a break's minutes are not expected."""
        if len(symbols) == 0:
            return []
        shape = np.shape(symbols)
        minutes = np.broadcast_to(self._checked if minutes is None else minutes, shape)
        counts = self.grid.counts_at(symbols, minutes)
        expected = self.grid.expected_until(minutes)
        label = self.grid.session.label
        return [
            QualityUpdated(
                ts=ts,
                symbol=self.symbols[s],
                session=label,
                expected=e,
                real=real,
                filled=filled,
                synthetic=synthetic,
                quality=(real + filled) / e if e else 0.0,
            )
            for ts, s, e, (_, real, filled, synthetic) in zip(
                np.broadcast_to(now, shape).tolist(),
                np.asarray(symbols).tolist(),
                expected.tolist(),
                counts.tolist(),
                strict=True,
            )
        ]

    def _ts_start(self, minute: np.ndarray) -> np.ndarray:
        return self.grid.session.open + np.asarray(minute, dtype=np.int64) * NS_PER_MINUTE

    def _cell(self, symbol: np.ndarray, minute: np.ndarray) -> np.ndarray:
        return symbol * self.grid.minutes + minute
