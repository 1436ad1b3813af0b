"""Upkeep's findings written down: log records built from the minute grid's columns, in log
order, boundary by boundary. `UpkeepCore` decides what was found; this module only encodes it
(the bulk kinds, gaps and derived bars, from columns by `encode_columns`; the rare kinds through
msgspec, so no Struct is built per derived bar)."""

from __future__ import annotations

import msgspec
import numpy as np

from ticktape.actors.minute_grid import SYNTHETIC, MinuteGrid
from ticktape.messages.codec import EncodedBatch, decode_many, encode_columns
from ticktape.messages.columns import DerivedBarColumns
from ticktape.messages.events import (
    DerivedBar,
    DerivedBarRevised,
    Event,
    GapDetected,
    GapFilled,
    QualityUpdated,
)
from ticktape.messages.session import NS_PER_MINUTE

EMPTY = np.empty(0, dtype=np.int64)


class Findings(msgspec.Struct):
    """Upkeep's findings at the boundaries of one call, encoded in log order, and the ones that
    change session state (fills and quality) for SessionData."""

    records: EncodedBatch
    ends: np.ndarray  # records through each boundary: boundary j's are [ends[j-1], ends[j])
    changes: list[Event]

    @property
    def batches(self) -> list[EncodedBatch]:
        """One batch per boundary."""
        ends = self.ends.tolist()
        return [self.records.take(slice(a, b)) for a, b in zip([0, *ends[:-1]], ends, strict=True)]

    def events(self) -> list[list[Event]]:
        """The findings as Structs, boundary by boundary (for tests and people)."""
        return [decode_many(batch) for batch in self.batches]


class FindingsBuilder:
    """Findings as they are made, piece by piece in the upkeep order, each record tagged with the
    index of its boundary; `findings` then sorts them stably by boundary."""

    def __init__(self) -> None:
        self.batches: list[EncodedBatch] = []
        self.at: list[np.ndarray] = []
        self.changes: list[Event] = []

    def add(self, at: int | np.ndarray, batch: EncodedBatch) -> None:
        self.batches.append(batch)
        self.at.append(np.broadcast_to(np.asarray(at, dtype=np.int64), (len(batch),)))

    def add_events(self, at: int | np.ndarray, events: list[Event], changes: bool = False) -> None:
        if events:
            self.add(at, EncodedBatch.of(events))
            if changes:
                self.changes += events

    def findings(self, n_boundaries: int) -> Findings:
        batch = EncodedBatch.concat(self.batches)
        at = np.concatenate(self.at) if self.at else EMPTY
        order = np.argsort(at, kind="stable")
        ends = np.searchsorted(at[order], np.arange(1, n_boundaries + 1))
        return Findings(batch.take(order).packed(), ends, self.changes)


def _ts_start(grid: MinuteGrid, minute: np.ndarray) -> np.ndarray:
    return grid.session.open + np.asarray(minute, dtype=np.int64) * NS_PER_MINUTE


def gap_records(
    grid: MinuteGrid,
    symbols: tuple[str, ...],
    now: np.ndarray,
    symbol: np.ndarray,
    minute: np.ndarray,
) -> EncodedBatch:
    """`GapDetected` records; `now` is one time for all, or each gap's detection time."""
    ts = np.broadcast_to(np.asarray(now, dtype=np.int64), symbol.shape)
    return encode_columns(GapDetected, [ts, _ts_start(grid, minute)], symbol, symbols)


def fill_events(
    grid: MinuteGrid, symbols: tuple[str, ...], now: int, symbol: np.ndarray, minute: np.ndarray
) -> list[Event]:
    """A `GapFilled` for each (symbol, minute) cell, with the bar the grid now holds there."""
    columns = (
        symbol.tolist(),
        _ts_start(grid, minute).tolist(),
        grid.open[symbol, minute].tolist(),
        grid.high[symbol, minute].tolist(),
        grid.low[symbol, minute].tolist(),
        grid.close[symbol, minute].tolist(),
        grid.volume[symbol, minute].tolist(),
        (grid.state[symbol, minute] == SYNTHETIC).tolist(),
    )
    return [
        GapFilled(
            ts=now,
            symbol=symbols[s],
            ts_start=t,
            open=o,
            high=h,
            low=lo,
            close=c,
            volume=v,
            synthetic=synthetic,
        )
        for s, t, o, h, lo, c, v, synthetic in zip(*columns, strict=True)
    ]


def derived_records(
    symbols: tuple[str, ...], now: np.ndarray, bars: DerivedBarColumns, revised: np.ndarray
) -> EncodedBatch:
    """`DerivedBar` records, or `DerivedBarRevised` where `revised`; rows keep their order.
    `now` is one time for all, or each bar's release time."""
    symbol = bars.symbol.astype(np.int64)
    ts = np.broadcast_to(np.asarray(now, dtype=np.int64), symbol.shape)
    columns = [ts, bars.ts_start, bars.interval, bars.open, bars.high, bars.low, bars.close]
    columns += [bars.volume, bars.bars, bars.filled]
    if not revised.any():
        return encode_columns(DerivedBar, columns, symbol, symbols)
    kinds = []
    for kind, rows in ((DerivedBar, ~revised), (DerivedBarRevised, revised)):
        picked = [np.asarray(c)[rows] for c in columns]
        kinds.append(encode_columns(kind, picked, symbol[rows], symbols))
    order = np.empty(len(bars), dtype=np.int64)  # back to the rows' order
    order[~revised] = np.arange(len(kinds[0]))
    order[revised] = len(kinds[0]) + np.arange(len(kinds[1]))
    return EncodedBatch.concat(kinds).take(order)


def quality_events(
    grid: MinuteGrid,
    symbols: tuple[str, ...],
    now: int | np.ndarray,
    symbol_ids: np.ndarray,
    minutes: int | np.ndarray,
) -> list[QualityUpdated]:
    """Each symbol's quality over its first `minutes` minutes, as of `now` (one time and count
    for all, or one per symbol); a break's minutes are not expected."""
    if len(symbol_ids) == 0:
        return []
    shape = np.shape(symbol_ids)
    minutes = np.broadcast_to(minutes, shape)
    counts = grid.counts_at(symbol_ids, minutes)
    expected = grid.expected_until(minutes)
    label = grid.session.label
    return [
        QualityUpdated(
            ts=ts,
            symbol=symbols[s],
            session=label,
            expected=e,
            real=real,
            filled=filled,
            synthetic=synthetic,
            quality=(real + filled) / e if e else 0.0,
        )
        for ts, s, e, (_, real, filled, synthetic) in zip(
            np.broadcast_to(now, shape).tolist(),
            np.asarray(symbol_ids).tolist(),
            expected.tolist(),
            counts.tolist(),
            strict=True,
        )
    ]
