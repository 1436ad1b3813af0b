"""The backfill as Upkeep sees it: a lookup of missing 1m bars, one session at a time, in memory.
Prefetch reads the backfill repository's session; the core never reads a file."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ticktape.messages.columns import BarColumns, SessionInput
from ticktape.messages.events import DataRejected
from ticktape.messages.session import NS_PER_MINUTE, Session

Backfill = Callable[[Session, np.ndarray, np.ndarray], BarColumns]
"""backfill(session, symbol_ids, ts_starts) -> the bars it has for those (symbol, minute) pairs.
A backfill with a `rejected` list (`SessionBackfill`) hands its bad rows to upkeep."""


class SessionBackfill:
    """One session of the backfill repository, handed in with the session. Its bad rows are
    logged where the backfill is first consulted (`rejected` is emptied then)."""

    def __init__(self, data: SessionInput) -> None:
        self.bars = data.bars
        self.rejected: list[DataRejected] = list(data.rejected)
        self._have = _cells(self.bars.symbol, self.bars.ts_start, data.session.window_start)

    def __call__(self, session: Session, symbols: np.ndarray, ts_starts: np.ndarray) -> BarColumns:
        want = _cells(symbols, ts_starts, session.window_start)
        return self.bars.take(np.isin(self._have, want))


def _cells(symbol: np.ndarray, ts_start: np.ndarray, window_start: int) -> np.ndarray:
    minute = (ts_start - window_start) // NS_PER_MINUTE
    return np.asarray(symbol).astype(np.int64) << 32 | minute
