"""The backfill source: missing 1m bars fetched from a second repository (the seeds' database)."""

from __future__ import annotations

import numpy as np

from ticktape.messages.columns import BarColumns
from ticktape.messages.events import DataRejected
from ticktape.messages.session import NS_PER_MINUTE, Session
from ticktape.store.repository import MarketDataRepository


class BackfillSource:
    """Looks gaps up in a repository, holding one session of its bars at a time."""

    def __init__(self, repository: MarketDataRepository) -> None:
        self.repository = repository
        self._session: Session | None = None
        self._bars = BarColumns.empty()
        self.requests = 0
        self.rejected: list[DataRejected] = []  # bad backfill rows, for Upkeep to log

    def __call__(
        self, session: Session, symbol_ids: np.ndarray, ts_starts: np.ndarray
    ) -> BarColumns:
        self.requests += 1
        if self._session != session:
            loaded = self.repository.load_session(session)
            self._session, self._bars = session, loaded.bars
            self.rejected += loaded.rejected
        bars = self._bars
        have = (
            bars.symbol.astype(np.int64) << 32
            | (bars.ts_start - session.window_start) // NS_PER_MINUTE
        )
        want = (
            symbol_ids.astype(np.int64) << 32 | (ts_starts - session.window_start) // NS_PER_MINUTE
        )
        return bars.take(np.isin(have, want))
