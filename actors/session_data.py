"""SessionData: the state of every symbol in the current session, plus trailing history.

Everything is columns. 1m bars live in a dense minute grid per session; derived bars are computed
from the grid when asked (so fills and revisions are always reflected); history keeps only the
last `trailing_days` grids, so retained memory stays flat over a long run.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

from ticktape.actors.minute_grid import FILLED, REAL, SYNTHETIC, MinuteGrid
from ticktape.actors.shell import Shell
from ticktape.messages.columns import BarColumns, DerivedBarColumns, QuoteColumns, TradeColumns
from ticktape.messages.commands import AddHistory, BeginSession, Released, Upkept
from ticktape.messages.events import GapFilled, QualityUpdated
from ticktape.messages.session import NS_PER_MINUTE, Session

_METRICS = ("open", "high", "low", "close", "volume")
_LEAD_SESSIONS = 2


class SessionDataCore:
    """Pure state; the actor shell only forwards messages and queries."""

    def __init__(self, symbols: tuple[str, ...], trailing_days: int = 0) -> None:
        self.symbols = symbols
        self._ids = {s: i for i, s in enumerate(symbols)}
        self.trailing_days = max(trailing_days, 0)
        # Two sessions more than the trailing days: SessionData may run ahead of a consumer into
        # the next session, and an `as_of` query must still see the trailing days of its own time.
        self.history: deque[MinuteGrid] = deque(maxlen=self.trailing_days + _LEAD_SESSIONS)
        self.grid: MinuteGrid | None = None
        self.now = 0
        n = len(symbols)
        self.updated = np.zeros(n, bool)  # got data in the last release
        self.quality = np.full(n, np.nan)
        self._trades: list[TradeColumns] = []
        self._quotes: list[QuoteColumns] = []

    def symbol_id(self, symbol: str) -> int:
        try:
            return self._ids[symbol]
        except KeyError:
            raise KeyError(f"{symbol} is not in this run's symbols") from None

    # -- updates -------------------------------------------------------------------------------

    def add_history(self, session: Session, bars: BarColumns) -> None:
        grid = MinuteGrid(session, len(self.symbols))
        grid.put(bars.take(session.regular(bars.ts_start)))
        self.history.append(grid)

    def begin(self, session: Session) -> None:
        """Roll the finished session into history and start an empty one."""
        if self.grid is not None:
            self.history.append(self.grid)
        self.grid = MinuteGrid(session, len(self.symbols))
        self.now = session.open
        self.updated[:] = False
        self.quality.fill(np.nan)
        self._trades.clear()
        self._quotes.clear()

    def released(
        self, now: int, bars: BarColumns, trades: TradeColumns, quotes: QuoteColumns
    ) -> None:
        grid = self.grid
        self.now = now
        regular = bars.take(grid.session.regular(bars.ts_start))
        grid.put(regular)
        self.updated[:] = False
        self.updated[regular.symbol] = True
        if len(trades):
            self._trades.append(trades)
            self.updated[trades.symbol] = True
        if len(quotes):
            self._quotes.append(quotes)
            self.updated[quotes.symbol] = True

    def add_break(self, label: str, start: int, end: int) -> None:
        """A replay learns a session's break from the fact that follows its open (or history)."""
        grids = [self.grid, *reversed(self.history)]
        grid = next(g for g in grids if g is not None and g.session.label == label)
        broken = grid.with_break(start, end)
        if grid is self.grid:
            self.grid = broken
        else:
            self.history[self.history.index(grid)] = broken

    def upkept(self, events: list[Any]) -> None:
        """Fills enter the grid marked as filled; quality follows Upkeep's figures."""
        for event in events:
            if isinstance(event, GapFilled):
                sid = self._ids[event.symbol]
                row = BarColumns(
                    symbol=np.array([sid], np.int32),
                    ts_start=np.array([event.ts_start], np.int64),
                    open=np.array([event.open]),
                    high=np.array([event.high]),
                    low=np.array([event.low]),
                    close=np.array([event.close]),
                    volume=np.array([event.volume]),
                    source=np.array([-1], np.int64),
                )
                self.grid.put(row, SYNTHETIC if event.synthetic else FILLED)
            elif isinstance(event, QualityUpdated):
                self.quality[self._ids[event.symbol]] = event.quality

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

    def _grids(self, as_of: int | None = None) -> list[MinuteGrid]:
        """The session current at `as_of` (or now) and its trailing days, oldest first."""
        grids = [*self.history, *([self.grid] if self.grid is not None else [])]
        if as_of is not None:
            grids = [g for g in grids if g.session.open <= as_of] or grids[:1]
        return grids[-(self.trailing_days + 1) :]

    def bars(
        self,
        symbol: str,
        *,
        interval: int = 1,
        start: int | None = None,
        end: int | None = None,
        as_of: int | None = None,
    ) -> BarColumns | DerivedBarColumns:
        """Known bars of `symbol` starting in [start, end), over history + current.

        Known means ended by now, or by `as_of` when earlier: a consumer reading the event stream
        behind the coordinator passes the time of its event, and sees no bar from its future.
        """
        sid = self.symbol_id(symbol)
        now = self.now if as_of is None else min(self.now, as_of)
        parts = []
        for grid in self._grids(as_of):
            if interval == 1:
                part = _grid_bars(grid, sid)
                known = part.ts_start + NS_PER_MINUTE <= now
            else:
                part = grid.derived(interval, symbols=np.array([sid]))
                known = part.ts_end <= now
            parts.append(part.take(known))
        columns = (BarColumns if interval == 1 else DerivedBarColumns).concat(parts)
        lo = -(2**63) if start is None else start
        hi = 2**63 - 1 if end is None else end
        return columns.take((columns.ts_start >= lo) & (columns.ts_start < hi))

    def last_bars(
        self, symbol: str, n: int, *, interval: int = 1, as_of: int | None = None
    ) -> BarColumns | DerivedBarColumns:
        columns = self.bars(symbol, interval=interval, as_of=as_of)
        return columns.take(slice(max(len(columns) - n, 0), None))

    def trades(self, symbol: str) -> TradeColumns:
        columns = TradeColumns.concat(self._trades)
        return columns.take(columns.symbol == self.symbol_id(symbol))

    def quotes(self, symbol: str) -> QuoteColumns:
        columns = QuoteColumns.concat(self._quotes)
        return columns.take(columns.symbol == self.symbol_id(symbol))

    def session_metrics(self, symbol: str) -> dict[str, Any]:
        """Session open/high/low/close/volume from the real and filled 1m bars known so far."""
        sid = self.symbol_id(symbol)
        values = {m: float("nan") for m in _METRICS} | {"volume": 0.0}
        counts = np.zeros(4, np.int64)
        if self.grid is not None:
            grid = self.grid
            counts = grid.counts()[sid]
            data = np.flatnonzero((grid.state[sid] == REAL) | (grid.state[sid] == FILLED))
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
            "updated": bool(self.updated[sid]),
            "quality": float(self.quality[sid]),
            "real": int(counts[REAL]),
            "filled": int(counts[FILLED]),
            "synthetic": int(counts[SYNTHETIC]),
        }

    def retained_bytes(self) -> int:
        """Bytes held in arrays: what must stay flat over a long run."""
        total = self.updated.nbytes + self.quality.nbytes
        for grid in [*self.history, *([self.grid] if self.grid is not None else [])]:
            total += sum(a.nbytes for a in (grid.open, grid.high, grid.low, grid.close))
            total += grid.volume.nbytes + grid.state.nbytes
        for chunk in (*self._trades, *self._quotes):
            total += sum(getattr(chunk, f).nbytes for f in chunk.__dataclass_fields__)
        return total


def _grid_bars(grid: MinuteGrid, sid: int) -> BarColumns:
    present = np.flatnonzero(grid.state[sid] != 0)
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


QUERIES = frozenset({"bars", "last_bars", "trades", "quotes", "session_metrics", "retained_bytes"})
"""What a caller may ask SessionData (`System.query`): read-only; the rest belongs to the run."""


class SessionData(Shell):
    """Answers queries with `ask`; receives releases and findings with `tell`."""

    name = "SessionData"

    def __init__(self, supervisor: Any, core: SessionDataCore) -> None:
        super().__init__(supervisor)
        self.core = core

    def handle(self, message: Any) -> Any:
        if isinstance(message, tuple):
            query, args, kwargs = message
            if query not in QUERIES:
                return False, ValueError(f"{query!r} is not a query; ask one of {sorted(QUERIES)}")
            try:  # a bad query is the caller's error, not a failure of the run
                return True, getattr(self.core, query)(*args, **kwargs)
            except Exception as error:
                return False, error
        self.core.receive(message)
        return None
