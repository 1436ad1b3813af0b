"""Data upkeep for one session at a time (DESIGN §4): gaps, fills, derived bars and quality.

A pure, single-threaded core: the Upkeep actor feeds it the released 1m bars and the simulated time.
Its findings leave it as `Findings` (`upkeep_findings`): one encoded batch per minute boundary, in
log order. Everything it keeps is per session and dropped at `open_session`, so memory stays flat
over a long run.
"""

from __future__ import annotations

import msgspec
import numpy as np

from ticktape.actors.backfill import Backfill
from ticktape.actors.minute_grid import FILLED, MISSING, REAL, SYNTHETIC, MinuteGrid
from ticktape.actors.upkeep_findings import (
    EMPTY,
    Findings,
    FindingsBuilder,
    derived_records,
    fill_events,
    gap_records,
    quality_events,
)
from ticktape.messages.arrays import distinct, on_minute
from ticktape.messages.codec import EMPTY_BATCH, EncodedBatch
from ticktape.messages.columns import BarColumns, DerivedBarColumns
from ticktape.messages.config import GAP_POLICIES
from ticktape.messages.events import (
    Event,
    QualityUpdated,
    SessionClosed,
)
from ticktape.messages.session import NS_PER_MINUTE, Session


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
        self._pending_symbol = EMPTY
        self._pending_minute = EMPTY
        self._pending_retries = EMPTY
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

    def _advance(self, parts: FindingsBuilder, at: int, now: int, bars: BarColumns) -> None:
        """One boundary, fills attempted (each attempt depends on the ones before it)."""
        grid = self._take_real(now, bars)
        self._now = now

        due = int(np.clip((now - grid.session.open) // NS_PER_MINUTE, 0, grid.minutes))
        gap_symbol, gap_minute = self._detect_gaps(due)
        parts.add(at, gap_records(self.grid, self.symbols, np.int64(now), gap_symbol, gap_minute))

        minute = (now - grid.session.open) // NS_PER_MINUTE
        retry = self._last_minute is not None and minute > self._last_minute
        self._last_minute = minute
        fill_symbol, fill_minute, filled = self._fill(now, gap_symbol, gap_minute, retry)
        parts.add_events(at, filled, changes=True)
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
        parts = FindingsBuilder()
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
        parts.add(
            gap_at, gap_records(self.grid, self.symbols, boundaries[gap_at], gap_symbol, gap_minute)
        )
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
        self._pending_symbol = self._pending_minute = self._pending_retries = EMPTY
        parts = FindingsBuilder()
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
            return EMPTY, EMPTY
        missing = self.grid.state[:, start:due].T == MISSING
        minute, symbol = np.nonzero(missing & self.grid.expected[start:due, None])
        return symbol.astype(np.int64), minute.astype(np.int64) + start

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
            self._pending_symbol = self._pending_minute = self._pending_retries = EMPTY
        if len(symbol) == 0:
            return EMPTY, EMPTY, []
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
        return (
            cell_symbol,
            cell_minute,
            rejected + fill_events(self.grid, self.symbols, now, cell_symbol, cell_minute),
        )

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
            return EMPTY, EMPTY, []
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
        return symbol, minute, fill_events(self.grid, self.symbols, now, symbol, minute)

    def _derived_events(
        self,
        parts: FindingsBuilder,
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
        return derived_records(self.symbols, now, bars, revised)

    def _quality_events(
        self, now: int | np.ndarray, symbols: np.ndarray, minutes: int | np.ndarray | None = None
    ) -> list[QualityUpdated]:
        """Quality as of the minutes checked so far, unless `minutes` says otherwise."""
        minutes = self._checked if minutes is None else minutes
        return quality_events(self.grid, self.symbols, now, symbols, minutes)

    def _ts_start(self, minute: np.ndarray) -> np.ndarray:
        return self.grid.session.open + np.asarray(minute, dtype=np.int64) * NS_PER_MINUTE

    def _cell(self, symbol: np.ndarray, minute: np.ndarray) -> np.ndarray:
        return symbol * self.grid.minutes + minute
