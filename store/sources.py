"""One door to market data: a raw folder of files, or a catalog made of one by `ingest`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

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
