"""One session's regular-hours 1m bars as dense (symbol x minute) arrays.

A dense grid makes the upkeep questions cheap and vectorized: which minutes have no bar (gaps), how
many bars of each kind a symbol has (quality), and what the N-minute bars are (derived bars).

The grid spans the open to the close. A midday break keeps its minutes in the grid, never
expected and never holding a bar: the minute index stays `(ts - open) / 1m` everywhere, and the
break is one mask (`expected`) and the bucket layout (`buckets`).
"""

from __future__ import annotations

import msgspec
import numpy as np

from ticktape.messages.arrays import distinct, on_minute
from ticktape.messages.columns import BarColumns, DerivedBarColumns
from ticktape.messages.session import NS_PER_MINUTE, Session

MISSING, REAL, FILLED, SYNTHETIC = 0, 1, 2, 3
STATES = (MISSING, REAL, FILLED, SYNTHETIC)


class MinuteGrid:
    """Regular-hours 1m bars of one session for every symbol, as dense (symbol x minute) arrays.

    Minute m covers [open + m, open + m + 1) minutes. Prices and volume are NaN where a minute has
    no bar; `state` says whether a bar is missing, real, filled (backfill) or synthetic
    (forward-fill). `expected` says which minutes are regular hours (all but a break's).
    """

    def __init__(self, session: Session, n_symbols: int) -> None:
        if session.close <= session.open or (session.close - session.open) % NS_PER_MINUTE:
            raise ValueError(f"session {session.label} is not a whole number of minutes")
        if session.has_break and not (
            session.open < session.break_start < session.break_end < session.close
            and on_minute(np.array([session.break_start, session.break_end]) - session.open).all()
        ):
            raise ValueError(f"session {session.label}'s break is not whole minutes inside it")
        self.session = session
        self.n_symbols = n_symbols
        self.minutes = session.minutes
        shape = (n_symbols, self.minutes)
        self.open = np.full(shape, np.nan)
        self.high = np.full(shape, np.nan)
        self.low = np.full(shape, np.nan)
        self.close = np.full(shape, np.nan)
        self.volume = np.full(shape, np.nan)
        self.state = np.zeros(shape, dtype=np.int8)
        starts = session.open + NS_PER_MINUTE * np.arange(self.minutes, dtype=np.int64)
        self.expected = session.regular(starts)
        self._expected_before = np.concatenate(([0], np.cumsum(self.expected, dtype=np.int64)))
        self._buckets: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def expected_until(self, minutes: int | np.ndarray) -> np.ndarray:
        """Minutes expected to have a bar among the first `minutes` (the break's are not)."""
        return self._expected_before[minutes]

    def buckets(self, interval: int) -> tuple[np.ndarray, np.ndarray]:
        """First minute and end minute of each `interval`-minute bucket: aligned to the open, and
        again to the break's end, each clipped to the break or the close (so it may be short)."""
        if interval not in self._buckets:
            self._buckets[interval] = _buckets(self.session, interval)
        return self._buckets[interval]

    def bucket_of(self, interval: int, minute: np.ndarray) -> np.ndarray:
        """The bucket each regular minute falls in."""
        first, _ = self.buckets(interval)
        return np.searchsorted(first, np.asarray(minute, dtype=np.int64), side="right") - 1

    def buckets_ended(self, interval: int, minutes: int) -> int:
        """How many buckets have ended once the first `minutes` minutes have."""
        _, end = self.buckets(interval)
        return int(np.searchsorted(end, minutes, side="right"))

    def with_break(self, start: int, end: int) -> MinuteGrid:
        """The same bars, in a grid of the session with this break (none may lie in it)."""
        session = msgspec.structs.replace(self.session, break_start=start, break_end=end)
        grid = MinuteGrid(session, self.n_symbols)
        if (self.state[:, ~grid.expected] != MISSING).any():
            raise ValueError(f"session {session.label} has bars in its break")
        for name in ("open", "high", "low", "close", "volume", "state"):
            setattr(grid, name, getattr(self, name))
        return grid

    def minute_of(self, ts_start: np.ndarray) -> np.ndarray:
        """Minute index of each bar start (no range check)."""
        return (np.asarray(ts_start, dtype=np.int64) - self.session.open) // NS_PER_MINUTE

    def put(self, bars: BarColumns, state: int = REAL) -> None:
        """Place bars in their cells, marked with `state`.

        Every bar must start on a minute of [open, close), belong to a known symbol, and land in an
        empty cell (a bar placed twice is a bug upstream, never silently overwritten).
        """
        if state not in (REAL, FILLED, SYNTHETIC):
            raise ValueError(f"cannot put bars with state {state}")
        if len(bars) == 0:
            return
        ts = np.asarray(bars.ts_start, dtype=np.int64)
        symbol = np.asarray(bars.symbol, dtype=np.int64)
        offset = ts - self.session.open
        outside = ~self.session.regular(ts) | ~on_minute(offset)
        if outside.any():
            bad = int(ts[np.argmax(outside)])
            raise ValueError(
                f"bar start {bad} is off the 1m grid of the regular hours "
                f"of session {self.session.label}"
            )
        if ((symbol < 0) | (symbol >= self.n_symbols)).any():
            raise ValueError(f"symbol id out of range 0..{self.n_symbols - 1}")
        cell = symbol * self.minutes + offset // NS_PER_MINUTE  # flat: one index for six arrays
        if (self.state.reshape(-1)[cell] != MISSING).any():
            raise ValueError("a bar was put on a minute that already has one")
        taken = np.zeros(self.state.size, dtype=bool)  # cheaper than sorting the cells
        taken[cell] = True
        if np.count_nonzero(taken) != len(symbol):
            raise ValueError("the same (symbol, minute) appears twice in one put")
        self.open.reshape(-1)[cell] = bars.open
        self.high.reshape(-1)[cell] = bars.high
        self.low.reshape(-1)[cell] = bars.low
        self.close.reshape(-1)[cell] = bars.close
        self.volume.reshape(-1)[cell] = bars.volume
        self.state.reshape(-1)[cell] = state

    def counts(self) -> np.ndarray:
        """(n_symbols, 4) int64: bars per state (MISSING, REAL, FILLED, SYNTHETIC), per symbol."""
        return self.counts_until(self.minutes)

    def counts_until(self, minutes: int) -> np.ndarray:
        """Like `counts`, over the first `minutes` minutes only."""
        return self.counts_at(np.arange(self.n_symbols), np.full(self.n_symbols, minutes))

    def counts_at(self, symbols: np.ndarray, minutes: np.ndarray) -> np.ndarray:
        """(len(symbols), 4) int64: bars per state of `symbols[i]` over its first `minutes[i]`
        minutes; one running count per symbol, however many (symbol, minute) pairs are asked."""
        rows = distinct(np.asarray(symbols, dtype=np.int64))
        which, minutes = np.searchsorted(rows, symbols), np.asarray(minutes, dtype=np.int64)
        state = self.state[rows]
        counts = np.empty((len(which), len(STATES)), dtype=np.int64)
        running = np.zeros((len(rows), self.minutes + 1), dtype=np.int32)
        for k in STATES:  # one state at a time: small int counts, no one-hot cube
            np.cumsum(state == k, axis=1, dtype=np.int32, out=running[:, 1:])
            counts[:, k] = running[which, minutes]
        return counts

    def n_buckets(self, interval: int) -> int:
        """Number of `interval`-minute buckets in the session; the last one may be short."""
        return len(self.buckets(interval)[0])

    def derived(
        self,
        interval: int,
        symbols: np.ndarray | None = None,
        buckets: np.ndarray | None = None,
    ) -> DerivedBarColumns:
        """N-minute bars aligned to the session open, from every 1m bar present (any state).

        Bucket k covers [open + k*N, open + (k+1)*N) minutes, clipped to the close; after a break
        the buckets start again at its end (`buckets`). Buckets with no bar are omitted.
        `symbols` and `buckets` restrict the result (both sides of the product).
        Rows are sorted by (ts_end, symbol).
        """
        if interval < 1:
            raise ValueError(f"derived interval must be >= 1 minute, not {interval}")
        n_buckets = self.n_buckets(interval)
        sym = (
            np.arange(self.n_symbols)
            if symbols is None
            else distinct(np.asarray(symbols, np.int64))
        )
        bkt = np.arange(n_buckets) if buckets is None else distinct(np.asarray(buckets, np.int64))
        if len(bkt) and (bkt[0] < 0 or bkt[-1] >= n_buckets):
            raise ValueError(f"bucket index out of range 0..{n_buckets - 1}")
        if len(sym) == 0 or len(bkt) == 0:
            return DerivedBarColumns.empty()

        # Cells as (minute of the bucket, bucket, symbol), contiguous: each aggregate is then a
        # reduction over the first axis, which numpy vectorizes over the rest (a reduction over
        # a short last axis is ~10x slower), and rows come out in (bucket, symbol) order.
        first_minute, end_minute = self.buckets(interval)
        minute = np.arange(interval)[:, None] + first_minute[bkt][None, :]
        inside = (minute < end_minute[bkt][None, :])[:, :, None]
        minute = np.minimum(minute, self.minutes - 1)
        m0 = int(first_minute[bkt[0]])
        m1 = m0 + len(bkt) * interval
        in_a_row = int(first_minute[bkt[-1]]) - m0 == (len(bkt) - 1) * interval  # no break within
        if symbols is None and m1 <= self.minutes and in_a_row and bkt[-1] - bkt[0] < len(bkt):

            def cells(a: np.ndarray) -> np.ndarray:  # whole buckets in a row: one copy, no gather
                return np.ascontiguousarray(
                    a[:, m0:m1].reshape(len(sym), len(bkt), interval).transpose(2, 1, 0)
                )
        else:

            def cells(a: np.ndarray) -> np.ndarray:
                return a[sym[None, None, :], minute[:, :, None]]

        state = cells(self.state)
        present = (state != MISSING) & inside
        n_bars = np.count_nonzero(present, axis=0)
        n_filled = np.count_nonzero(present & (state >= FILLED), axis=0)
        at = np.arange(interval, dtype=np.int16)[:, None, None]
        first = np.where(present, at, np.int16(interval)).min(axis=0)
        last = np.where(present, at, np.int16(-1)).max(axis=0)
        row = np.flatnonzero(n_bars)  # (bucket, symbol) flat: ts_end grows with the bucket
        b = row // len(sym)
        k = bkt[b]
        ts_start = self.session.open + first_minute[k] * NS_PER_MINUTE

        def aggregate(a: np.ndarray, fill: float, reduce: np.ufunc) -> np.ndarray:
            return reduce.reduce(np.where(present, cells(a), fill), axis=0).reshape(-1)[row]

        return DerivedBarColumns(
            symbol=sym[row - b * len(sym)].astype(np.int32),
            ts_start=ts_start.astype(np.int64),
            ts_end=(self.session.open + end_minute[k] * NS_PER_MINUTE).astype(np.int64),
            interval=np.full(len(k), interval, dtype=np.int64),
            open=cells(self.open).reshape(interval, -1)[first.reshape(-1)[row], row],
            high=aggregate(self.high, -np.inf, np.maximum),
            low=aggregate(self.low, np.inf, np.minimum),
            close=cells(self.close).reshape(interval, -1)[last.reshape(-1)[row], row],
            volume=aggregate(self.volume, 0.0, np.add),
            bars=n_bars.reshape(-1)[row].astype(np.int64),
            filled=n_filled.reshape(-1)[row].astype(np.int64),
        )


def _buckets(session: Session, interval: int) -> tuple[np.ndarray, np.ndarray]:
    if interval < 1:
        raise ValueError(f"derived interval must be >= 1 minute, not {interval}")
    segments = [(0, session.minutes)]
    if session.has_break:
        pause, resume = (
            (t - session.open) // NS_PER_MINUTE for t in (session.break_start, session.break_end)
        )
        segments = [(0, pause), (resume, session.minutes)]
    first = np.concatenate([np.arange(a, b, interval, dtype=np.int64) for a, b in segments])
    end = np.concatenate(
        [np.minimum(np.arange(a, b, interval, dtype=np.int64) + interval, b) for a, b in segments]
    )
    first.flags.writeable = end.flags.writeable = False
    return first, end
