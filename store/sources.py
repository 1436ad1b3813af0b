"""One door to market data: a raw folder of files, or a catalog made of one by `ingest`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from zoneinfo import ZoneInfo

from loguru import logger

from ticktape.messages.session import Session
from ticktape.store.catalog import is_catalog
from ticktape.store.catalog_reader import CatalogRepository
from ticktape.store.repository import DataConfigError, MarketDataRepository


def open_repository(
    folder: str | Path,
    symbols: Sequence[str] | None,
    *,
    label: str = "start",
    role: str = "data",
    sessions: Sequence[Session] | None = None,
) -> CatalogRepository | MarketDataRepository:
    """The catalog at `folder` when it holds a catalog manifest, else the raw folder.

    `sessions` (those the run will load) narrow a catalog's `files` to the partitions they read.
    `role` names the option the folder came from in error messages (other than `data`, which
    the messages already name).
    """
    try:
        if is_catalog(folder):
            return CatalogRepository(folder, symbols, label=label, sessions=sessions)
        return MarketDataRepository(folder, symbols, label=label, role=role)
    except DataConfigError as exc:
        if role == "data":
            raise
        raise DataConfigError(f"`{role}`: {exc}") from None


def uncovered(
    repository: CatalogRepository | MarketDataRepository, sessions: Sequence[Session]
) -> dict[str, tuple[int, int] | None]:
    """The requested symbols whose data lies wholly outside the sessions' windows, with the
    (first, last) time of their data (None: no dated rows at all). A gap inside the data's span
    is not looked for: that would mean reading it."""
    start, end = sessions[0].window_start, sessions[-1].window_end
    spans = repository.coverage()
    return {
        symbol: spans.get(symbol)
        for symbol in repository.symbols
        if symbol not in spans or not (spans[symbol][0] < end and spans[symbol][1] >= start)
    }


def warn_uncovered(
    repository: CatalogRepository | MarketDataRepository, sessions: Sequence[Session], tz: str
) -> None:
    """One warning per requested symbol with no data in the run's sessions, naming the dates
    its data covers (in the exchange's zone `tz`). Nothing of it goes into the log."""
    zone = ZoneInfo(tz)

    def day(ns: int) -> str:
        return dt.datetime.fromtimestamp(ns / 1e9, zone).date().isoformat()

    window = f"{sessions[0].label} to {sessions[-1].label}"
    for symbol, span in uncovered(repository, sessions).items():
        held = (
            "no dated rows at all"
            if span is None
            else f"data from {day(span[0])} to {day(span[1])} only"
        )
        logger.warning(
            "{} has no data in the run's sessions ({}): {} has {}",
            symbol,
            window,
            repository.folder,
            held,
        )
