"""A session's rows in release order, and where each row came from.

Every accepted row carries its `source`, `file_index << SOURCE_BITS | line`: the place of its
file's name in the sorted list of the folder's data files, and its line (CSV, the header being
line 1), row (Parquet, 1-based) or record (vendor formats). Rows of many files and blocks are put
in release order by time, then symbol id, then source: the same order however the files were cut
into blocks, read or laid out. The raw folder, the vendor formats and ingest all use this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from ticktape.messages import rejections as why
from ticktape.messages.columns import BarColumns, QuoteColumns, SessionInput, TradeColumns
from ticktape.messages.events import DataRejected
from ticktape.messages.session import Session

SOURCE_BITS = 32
SOURCE_MASK = (1 << SOURCE_BITS) - 1
_C = TypeVar("_C", BarColumns, TradeColumns, QuoteColumns)


def rows_between(ts: np.ndarray, in_order: bool, start: int, end: int) -> slice | np.ndarray:
    """The rows with start <= ts < end: a slice (views, no copies) when `ts` is in order."""
    if in_order:
        lo, hi = np.searchsorted(ts, (start, end)).tolist()
        return slice(lo, hi)
    return (ts >= start) & (ts < end)


@dataclass(frozen=True, slots=True)
class Rows:
    """Accepted rows of one block inside a session window, as views where possible."""

    symbol: np.ndarray  # run symbol ids
    ts: np.ndarray
    values: dict[str, np.ndarray]
    source: np.ndarray


def session_input(
    session: Session,
    symbols: tuple[str, ...],
    bars: BarColumns,
    parts: dict[str, list[Rows]],
    rejected: list[DataRejected],
    position: dict[str, int],
) -> SessionInput:
    """A session's load: ticks in release order, rejections by file (`position`) and row."""
    rejected.sort(key=lambda r: (position[r.file], r.row))
    return SessionInput(
        session=session,
        symbols=symbols,
        bars=bars,
        trades=in_release_order(TradeColumns, parts["trades"]),
        quotes=in_release_order(QuoteColumns, parts["quotes"]),
        rejected=tuple(rejected),
    )


def in_release_order(columns: type[_C], parts: list[Rows]) -> _C:
    """The rows of every file in release order: time, then symbol id, then source (file, then
    line). Each row has its own source, so the order is the same however the parts were cut."""
    if not parts:
        return columns.empty()
    symbol, ts, source = (
        joined([getattr(p, f) for p in parts]) for f in ("symbol", "ts", "source")
    )
    order = release_order(ts, symbol, source)

    def released(joined: np.ndarray) -> np.ndarray:
        """In release order, and never a view of a part's array (a cached block's)."""
        if order is not None:
            return joined[order]
        return joined.copy() if len(parts) == 1 else joined

    time_field = "ts_start" if columns is BarColumns else "ts"
    return columns(
        symbol=released(symbol),
        **{time_field: released(ts)},
        **{f: released(joined([p.values[f] for p in parts])) for f in parts[0].values},
        source=released(source),
    )


def joined(arrays: list[np.ndarray]) -> np.ndarray:
    """The parts' arrays as one (the part's own when it is one: no copy)."""
    return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)


def release_order(ts: np.ndarray, symbol: np.ndarray, source: np.ndarray) -> np.ndarray | None:
    """The order of (time, symbol, source), or None when the rows are in it already.

    Rows in source order (one file's, or files' in name order) need only a stable sort by time
    and symbol; when their times are in order too (a vendor file), the rank of the time and the
    symbol pack into one key, whose stable sort is several times faster than `lexsort`."""
    if len(ts) < 2:
        return None
    if not (source[1:] > source[:-1]).all():
        return np.lexsort((source, symbol, ts))
    if not (ts[1:] >= ts[:-1]).all():
        return np.lexsort((symbol, ts))
    rank = np.zeros(len(ts), dtype=np.int64)
    np.cumsum(ts[1:] != ts[:-1], out=rank[1:])
    key = (rank << 32) | (symbol.astype(np.int64) - int(symbol.min()))  # ids span < 2**32
    if (key[1:] >= key[:-1]).all():
        return None
    return np.argsort(key, kind="stable")


def drop_duplicate_bars(
    bars: BarColumns,
    names: Sequence[str],
    symbols: Sequence[str],
    rejected: list[DataRejected] | None,
) -> BarColumns:
    """A bar that another file already gave (same symbol and start) is a duplicate; `bars` are
    in release order, so a bar and its duplicates are neighbours, the first file first. `names`
    are the files that sources index, `symbols` the universe that symbol ids index."""
    symbol, ts = bars.symbol, bars.ts_start
    duplicates = np.flatnonzero((symbol[1:] == symbol[:-1]) & (ts[1:] == ts[:-1])) + 1
    if not len(duplicates):
        return bars
    if rejected is not None:
        for source, symbol_id in zip(
            bars.source[duplicates].tolist(), symbol[duplicates].tolist(), strict=True
        ):
            rejected.append(
                DataRejected(
                    ts=0,
                    reason=why.DUPLICATE,
                    file=names[source >> SOURCE_BITS],
                    row=source & SOURCE_MASK,
                    symbol=symbols[symbol_id],
                )
            )
    keep = np.ones(len(bars), dtype=bool)
    keep[duplicates] = False
    return bars.take(keep)
