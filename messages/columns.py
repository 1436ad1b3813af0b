"""Market data as columns: one numpy array per field, never one Python object per row.

`symbol` columns hold ids into the run's universe (its sorted symbol tuple). `source` is the row's
place in the input, `file_index << 32 | row`, the last key of the tie order (DESIGN §2).
All timestamps are int64 ns UTC; bars are stamped with the start of their minute.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Self

import numpy as np

from ticktape.messages.events import DataRejected
from ticktape.messages.session import Session


@dataclass(frozen=True, slots=True)
class _Columns:
    def __len__(self) -> int:
        return len(self.symbol)  # type: ignore[attr-defined]

    def take(self, index: np.ndarray) -> Self:
        """Rows by a boolean mask or an integer index, as a new set of columns."""
        return type(self)(*[getattr(self, name)[index] for name in self.__slots__])

    @classmethod
    def empty(cls) -> Self:
        return cls(**{f.name: np.empty(0, dtype=_DTYPES[f.name]) for f in fields(cls)})

    @classmethod
    def concat(cls, parts: list[Self]) -> Self:
        if not parts:
            return cls.empty()
        return cls(
            **{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)}
        )


@dataclass(frozen=True, slots=True)
class BarColumns(_Columns):
    symbol: np.ndarray
    ts_start: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    source: np.ndarray


@dataclass(frozen=True, slots=True)
class TradeColumns(_Columns):
    symbol: np.ndarray
    ts: np.ndarray
    price: np.ndarray
    size: np.ndarray
    source: np.ndarray


@dataclass(frozen=True, slots=True)
class QuoteColumns(_Columns):
    symbol: np.ndarray
    ts: np.ndarray
    bid: np.ndarray
    bid_size: np.ndarray
    ask: np.ndarray
    ask_size: np.ndarray
    source: np.ndarray


@dataclass(frozen=True, slots=True)
class DerivedBarColumns(_Columns):
    """N-minute bars from 1m bars; `bars` counts the 1m bars inside, `filled` the filled ones."""

    symbol: np.ndarray
    ts_start: np.ndarray
    ts_end: np.ndarray  # release time; short at an early close
    interval: np.ndarray  # minutes
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    bars: np.ndarray
    filled: np.ndarray


_DTYPES = {
    "ts_end": np.int64,
    "interval": np.int64,
    "bars": np.int64,
    "filled": np.int64,
    "symbol": np.int32,
    "ts_start": np.int64,
    "ts": np.int64,
    "source": np.int64,
}
for _name in (
    "open",
    "high",
    "low",
    "close",
    "volume",
    "price",
    "size",
    "bid",
    "bid_size",
    "ask",
    "ask_size",
):
    _DTYPES[_name] = np.float64


@dataclass(frozen=True, slots=True)
class SessionInput:
    """The validated input of one session, each kind sorted by (time, symbol, source).

    Rows cover the session's whole data window, extended hours included; the coordinator applies
    the regular-hours filter. `rejected` holds the rows of this session that failed validation.
    """

    session: Session
    symbols: tuple[str, ...]
    bars: BarColumns
    trades: TradeColumns
    quotes: QuoteColumns
    rejected: tuple[DataRejected, ...] = ()
