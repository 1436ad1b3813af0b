"""SessionData: the state of every symbol in the current session, plus trailing history.

Everything is columns. 1m bars live in a dense minute grid per session; derived bars are computed
from the grid when asked (so fills and revisions are always reflected); history keeps only the
last `trailing_days` grids, so retained memory stays flat over a long run.

Every query answers as of a time (`as_of`, ns UTC; by default the latest release SessionData
holds): a bar is known from its end, a trade or quote from its own time, a fill or a quality
figure from the time Upkeep found it. So an answer for an earlier time never holds anything
that time could not know, however far SessionData has run ahead.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ticktape.actors.minute_grid import FILLED, MISSING, REAL, SYNTHETIC, MinuteGrid
from ticktape.actors.shell import Shell
from ticktape.messages.columns import BarColumns, DerivedBarColumns, QuoteColumns, TradeColumns
from ticktape.messages.commands import AddHistory, BeginSession, Released, Upkept
from ticktape.messages.events import GapFilled, QualityUpdated
from ticktape.messages.session import NS_PER_MINUTE, Session

_METRICS = ("open", "high", "low", "close", "volume")
_LEAD_SESSIONS = 2
_NEVER = np.iinfo(np.int64).max
DATA_TYPES = ("bars", "trades", "quotes")


@dataclass
class _Day:
    """One session's state, with when each piece became known."""

    grid: MinuteGrid
    filled_at: np.ndarray  # (symbol, minute) int64: when a fill became known; 0 where none
    times: list[int] = field(default_factory=list)  # release times, ascending
    trades: list[TradeColumns] = field(default_factory=list)
    quotes: list[QuoteColumns] = field(default_factory=list)
    quality: list[tuple[int, int, float]] = field(default_factory=list)  # (ts, symbol, quality)

    @classmethod
    def of(cls, session: Session, n_symbols: int) -> _Day:
        grid = MinuteGrid(session, n_symbols)
        return cls(grid, np.zeros(grid.state.shape, np.int64))

    def state_at(self, at: int) -> np.ndarray:
        """The grid's cell states as `at` knew them: bars not yet ended and fills not yet found
        are missing."""
        state = self.grid.state.copy()
        ended = self.grid.session.open + np.arange(1, self.grid.minutes + 1) * NS_PER_MINUTE
        state[:, ended > at] = MISSING
        state[self.filled_at > at] = MISSING
        return state

    def drop_ticks(self) -> None:
        self.trades.clear()
        self.quotes.clear()


class SessionDataCore:
    """Pure state; the actor shell only forwards messages and queries."""

    def __init__(self, symbols: tuple[str, ...], trailing_days: int = 0) -> None:
        self.symbols = symbols
        self._ids = {s: i for i, s in enumerate(symbols)}
        self.trailing_days = max(trailing_days, 0)
        # Two sessions more than the trailing days: SessionData may run ahead of a consumer into
        # the next session, and an `as_of` query must still see the trailing days of its own time.
        self.history: deque[_Day] = deque(maxlen=self.trailing_days + _LEAD_SESSIONS)
        self.day: _Day | None = None
        self.now = 0

    @property
    def grid(self) -> MinuteGrid | None:
        return None if self.day is None else self.day.grid

    def symbol_id(self, symbol: str) -> int:
        try:
            return self._ids[symbol]
        except KeyError:
            raise KeyError(
                f"{symbol} is not in this run's symbols ({', '.join(self.symbols)})"
            ) from None

    # -- updates -------------------------------------------------------------------------------

    def add_history(self, session: Session, bars: BarColumns) -> None:
        day = _Day.of(session, len(self.symbols))
        day.grid.put(bars.take(session.regular(bars.ts_start)))
        self.history.append(day)

    def begin(self, session: Session) -> None:
        """Roll the finished session into history and start an empty one. Ticks are kept for
        the session just finished only (a consumer behind may still ask for them)."""
        for old in self.history:
            old.drop_ticks()
        if self.day is not None:
            self.history.append(self.day)
        self.day = _Day.of(session, len(self.symbols))
        self.now = session.open

    def released(
        self,
        now: int,
        bars: BarColumns,
        trades: TradeColumns,
        quotes: QuoteColumns,
        times: list[int] | None = None,
    ) -> None:
        """What was released up to `now`; `times` are the release times in it, when several."""
        day = self.day
        self.now = max(self.now, now)
        for t in [now] if times is None else times:
            if not day.times or t > day.times[-1]:
                day.times.append(t)
        day.grid.put(bars.take(day.grid.session.regular(bars.ts_start)))
        if len(trades):
            day.trades.append(trades)
        if len(quotes):
            day.quotes.append(quotes)

    def add_break(self, label: str, start: int, end: int) -> None:
        """A replay learns a session's break from the fact that follows its open (or history)."""
        days = [self.day, *reversed(self.history)]
        day = next(d for d in days if d is not None and d.grid.session.label == label)
        day.grid = day.grid.with_break(start, end)

    def upkept(self, events: list[Any]) -> None:
        """Fills enter the grid marked as filled; quality follows Upkeep's figures."""
        fills = [e for e in events if isinstance(e, GapFilled)]
        for synthetic in (False, True):
            self.fill([e for e in fills if e.synthetic is synthetic], synthetic)
        for event in events:
            if isinstance(event, QualityUpdated):
                self.day.quality.append((event.ts, self._ids[event.symbol], event.quality))

    def fill(self, fills: list[GapFilled], synthetic: bool) -> None:
        if not fills:
            return
        grid = self.day.grid
        row = BarColumns(
            symbol=np.array([self._ids[e.symbol] for e in fills], np.int32),
            ts_start=np.array([e.ts_start for e in fills], np.int64),
            open=np.array([e.open for e in fills]),
            high=np.array([e.high for e in fills]),
            low=np.array([e.low for e in fills]),
            close=np.array([e.close for e in fills]),
            volume=np.array([e.volume for e in fills]),
            source=np.full(len(fills), -1, np.int64),
        )
        grid.put(row, SYNTHETIC if synthetic else FILLED)
        minute = grid.minute_of(row.ts_start)
        self.day.filled_at[row.symbol, minute] = [e.ts for e in fills]

    def receive(self, message: Any) -> list:
        """The messages that change state; SessionData sends nothing back."""
        match message:
            case AddHistory(session=session, bars=bars):
                self.add_history(session, bars)
            case BeginSession(session=session):
                self.begin(session)
            case Released(now=now, bars=bars, trades=trades, quotes=quotes):
                self.released(now, bars, trades, quotes)
            case Upkept(events=events):
                self.upkept(events)
            case _:
                raise TypeError(f"SessionData cannot handle {type(message).__name__}")
        return []

    # -- queries -------------------------------------------------------------------------------

    def _at(self, as_of: int | None) -> int:
        return self.now if as_of is None else min(self.now, as_of)

    def _days(self, at: int) -> list[_Day]:
        """The session current at `at` and its trailing days, oldest first."""
        days = [*self.history, *([self.day] if self.day is not None else [])]
        days = [d for d in days if d.grid.session.open <= at] or days[:1]
        return days[-(self.trailing_days + 1) :]

    def _today(self, at: int) -> _Day | None:
        """The session current at `at`, if SessionData has it."""
        days = self._days(at)
        return days[-1] if days and days[-1].grid.session.open <= at else None

    def bars(
        self,
        symbol: str,
        *,
        interval: int = 1,
        start: int | None = None,
        end: int | None = None,
        as_of: int | None = None,
    ) -> BarColumns | DerivedBarColumns:
        """Known bars of `symbol` starting in [start, end), over trailing history + today.

        Known means ended (and, for a fill, found) by `as_of`, or by now when not given.
        `interval` > 1 gives N-minute bars derived from the 1m bars known then.
        """
        sid = self.symbol_id(symbol)
        at = self._at(as_of)
        parts = []
        for day in self._days(at):
            state = day.state_at(at)[sid]
            if interval == 1:
                parts.append(_grid_bars(day.grid, sid, np.flatnonzero(state)))
            else:
                parts.append(_derived(day.grid, sid, state, interval, at))
        columns = (BarColumns if interval == 1 else DerivedBarColumns).concat(parts)
        lo = -(2**63) if start is None else start
        hi = 2**63 - 1 if end is None else end
        return columns.take((columns.ts_start >= lo) & (columns.ts_start < hi))

    def last_bars(
        self, symbol: str, n: int, *, interval: int = 1, as_of: int | None = None
    ) -> BarColumns | DerivedBarColumns:
        """The last `n` known bars of `symbol`, reaching into trailing history."""
        columns = self.bars(symbol, interval=interval, as_of=as_of)
        return columns.take(slice(max(len(columns) - n, 0), None))

    def trades(self, symbol: str, *, as_of: int | None = None) -> TradeColumns:
        """Today's trades of `symbol` up to `as_of` (or now)."""
        at, sid = self._at(as_of), self.symbol_id(symbol)
        day = self._today(at)
        columns = TradeColumns.concat(day.trades if day else [])
        return columns.take((columns.symbol == sid) & (columns.ts <= at))

    def quotes(self, symbol: str, *, as_of: int | None = None) -> QuoteColumns:
        """Today's quotes of `symbol` up to `as_of` (or now)."""
        at, sid = self._at(as_of), self.symbol_id(symbol)
        day = self._today(at)
        columns = QuoteColumns.concat(day.quotes if day else [])
        return columns.take((columns.symbol == sid) & (columns.ts <= at))

    def quality(self, symbol: str, *, as_of: int | None = None) -> float:
        """Upkeep's last quality figure for `symbol` today ((real + filled) / expected); NaN
        before the first one."""
        at, sid = self._at(as_of), self.symbol_id(symbol)
        day = self._today(at)
        known = [q for ts, s, q in (day.quality if day else []) if s == sid and ts <= at]
        return float(known[-1]) if known else float("nan")

    def updated(self, symbol: str, *, as_of: int | None = None) -> dict[str, bool]:
        """Per data type (bars, trades, quotes): did `symbol` get some in the last release?"""
        at, sid = self._at(as_of), self.symbol_id(symbol)
        day = self._today(at)
        times = [] if day is None else [t for t in day.times if t <= at]
        if not times:
            return dict.fromkeys(DATA_TYPES, False)
        last = times[-1]
        minute = (last - NS_PER_MINUTE - day.grid.session.open) // NS_PER_MINUTE
        bar = 0 <= minute < day.grid.minutes and day.grid.state[sid, minute] == REAL
        trades = TradeColumns.concat(day.trades)
        quotes = QuoteColumns.concat(day.quotes)
        return {
            "bars": bool(bar),
            "trades": bool(np.any((trades.symbol == sid) & (trades.ts == last))),
            "quotes": bool(np.any((quotes.symbol == sid) & (quotes.ts == last))),
        }

    def session_metrics(self, symbol: str, *, as_of: int | None = None) -> dict[str, Any]:
        """Today's open/high/low/close/volume from the real and filled 1m bars known, with the
        update flags, quality, and bars per kind (real, filled, synthetic)."""
        at, sid = self._at(as_of), self.symbol_id(symbol)
        values = {m: float("nan") for m in _METRICS} | {"volume": 0.0}
        counts = np.zeros(4, np.int64)
        day = self._today(at)
        if day is not None:
            grid, state = day.grid, day.state_at(at)[sid]
            counts = np.bincount(state, minlength=4)
            data = np.flatnonzero((state == REAL) | (state == FILLED))
            if len(data):
                values = {
                    "open": float(grid.open[sid, data[0]]),
                    "high": float(grid.high[sid, data].max()),
                    "low": float(grid.low[sid, data].min()),
                    "close": float(grid.close[sid, data[-1]]),
                    "volume": float(grid.volume[sid, data].sum()),
                }
        return {
            **values,
            "updated": self.updated(symbol, as_of=at),
            "quality": self.quality(symbol, as_of=at),
            "real": int(counts[REAL]),
            "filled": int(counts[FILLED]),
            "synthetic": int(counts[SYNTHETIC]),
        }

    def retained_bytes(self) -> int:
        """Bytes held in arrays: what must stay flat over a long run."""
        total = 0
        for day in [*self.history, *([self.day] if self.day is not None else [])]:
            grid = day.grid
            total += sum(a.nbytes for a in (grid.open, grid.high, grid.low, grid.close))
            total += grid.volume.nbytes + grid.state.nbytes + day.filled_at.nbytes
            for chunk in (*day.trades, *day.quotes):
                total += sum(getattr(chunk, f).nbytes for f in chunk.__dataclass_fields__)
        return total


QUERIES = ("bars", "last_bars", "trades", "quotes", "quality", "updated", "session_metrics")


def _grid_bars(grid: MinuteGrid, sid: int, present: np.ndarray) -> BarColumns:
    return BarColumns(
        symbol=np.full(len(present), sid, np.int32),
        ts_start=grid.session.open + present.astype(np.int64) * NS_PER_MINUTE,
        open=grid.open[sid, present],
        high=grid.high[sid, present],
        low=grid.low[sid, present],
        close=grid.close[sid, present],
        volume=grid.volume[sid, present],
        source=np.full(len(present), -1, np.int64),
    )


def _derived(
    grid: MinuteGrid, sid: int, state: np.ndarray, interval: int, at: int
) -> DerivedBarColumns:
    """`interval`-minute bars of one symbol ended by `at`, from the cells known then."""
    if np.array_equal(state, grid.state[sid]):
        part = grid.derived(interval, symbols=np.array([sid]))
    else:  # a one-symbol grid holding only what `at` knew
        known = MinuteGrid(grid.session, 1)
        for name in ("open", "high", "low", "close", "volume"):
            getattr(known, name)[0] = getattr(grid, name)[sid]
        known.state[0] = state
        part = known.derived(interval)
        part = DerivedBarColumns(
            **{**{f: getattr(part, f) for f in part.__slots__}, "symbol": part.symbol + sid}
        )
    return part.take(part.ts_end <= at)


class SessionData(Shell):
    """Answers queries with `ask`; receives releases and findings with `tell`."""

    name = "SessionData"

    def __init__(self, supervisor: Any, core: SessionDataCore) -> None:
        super().__init__(supervisor)
        self.core = core

    def handle(self, message: Any) -> Any:
        if isinstance(message, tuple):
            query, args, kwargs = message
            if query not in (*QUERIES, "retained_bytes"):  # read-only: never a change of state
                return False, ValueError(f"{query!r} is not a query; ask one of {QUERIES}")
            try:  # a bad query is the caller's error, not a failure of the run
                return True, getattr(self.core, query)(*args, **kwargs)
            except Exception as error:
                return False, error
        self.core.receive(message)
        return None
