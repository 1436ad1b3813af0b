"""SessionView: SessionData as of the consumer's present, rebuilt from the records it took.

A consumer reads the stream behind the pipeline, so the live SessionData actor may already hold
its future. The view is fed the very batches the consumer reads (from the output queue on a live
run, from the log on a replay) and sorts into a `SessionDataCore` only the records up to the last
event the consumer took, when a query needs them. Live and replay are then the same code over the
same records: the same answers, and nothing the consumer's present could not know.
"""

from __future__ import annotations

import numpy as np

from ticktape.actors.session_data import SessionDataCore
from ticktape.messages.codec import EncodedBatch, decode, decode_columns
from ticktape.messages.columns import BarColumns, QuoteColumns, TradeColumns
from ticktape.messages.events import (
    GapFilled,
    QualityUpdated,
    RunStarted,
    SessionBreak,
    SessionOpened,
    TrailingBars,
)
from ticktape.messages.session import Session

_MOST_WAITING = 1_000_000  # records fed but not yet sorted in (memory: their bytes)
_TURNS = ("RunStarted", "TrailingBars", "SessionOpened", "SessionBreak")
_SORTED_IN = ("Bar", "Trade", "Quote", "TimeAdvanced", "GapFilled", "QualityUpdated")
_BAR_FIELDS = ("ts_start", "open", "high", "low", "close", "volume")


def history_bars(event: TrailingBars) -> tuple[Session, BarColumns]:
    """The columns of a `TrailingBars` event, back as a session and its bars."""
    session = Session(
        label=event.session,
        open=event.session_open,
        close=event.session_close,
        early_close=event.early_close,
        window_start=event.session_open,
        window_end=event.session_close,
    )
    n = len(event.symbol) // 4
    bars = BarColumns(
        symbol=np.frombuffer(event.symbol, "<i4").astype(np.int32),
        ts_start=np.frombuffer(event.ts_start, "<i8").astype(np.int64),
        open=np.frombuffer(event.open, "<f8").astype(np.float64),
        high=np.frombuffer(event.high, "<f8").astype(np.float64),
        low=np.frombuffer(event.low, "<f8").astype(np.float64),
        close=np.frombuffer(event.close, "<f8").astype(np.float64),
        volume=np.frombuffer(event.volume, "<f8").astype(np.float64),
        source=np.full(n, -1, np.int64),
    )
    return session, bars


class SessionView:
    """`feed` each batch as the consumer starts on it, `took(i)` as it takes record i of it,
    `core()` for SessionData through that record."""

    def __init__(self) -> None:
        self._core: SessionDataCore | None = None
        self._waiting: list[EncodedBatch] = []  # the last one is the batch being taken
        self._done = 0  # records of the last batch already sorted in
        self.through = 0  # records of the last batch taken (the consumer's loop sets it)
        self._count = 0

    def feed(self, batch: EncodedBatch) -> None:
        """The consumer starts on `batch`: every batch fed before is wholly in its past."""
        self._waiting.append(batch)
        self.through = 0
        self._count += len(batch)
        if self._count > _MOST_WAITING:
            self.core()

    def took(self, index: int) -> None:
        """The consumer took record `index` of the last batch fed."""
        self.through = index + 1

    def took_all(self) -> None:
        """The stream ended: everything fed is the consumer's past."""
        if self._waiting:
            self.through = len(self._waiting[-1])

    def core(self) -> SessionDataCore | None:
        """SessionData through the last record taken (None before the run's first record)."""
        if not self._waiting:
            return self._core
        last = len(self._waiting) - 1
        part = EncodedBatch.concat(
            [
                batch.take(slice(self._done if i == 0 else 0, self.through if i == last else None))
                for i, batch in enumerate(self._waiting)
            ]
        )
        self._waiting, self._done = self._waiting[last:], self.through
        self._count = len(self._waiting[0]) - self._done
        if len(part):
            self._sort_in(part)
        return self._core

    def _sort_in(self, batch: EncodedBatch) -> None:
        """Records in log order: between two turns (a run start, a trailing session, a session
        open), releases and findings go in as columns."""
        columns = decode_columns(batch, first_seq=0, only=_SORTED_IN)
        turns = np.sort(
            np.concatenate([columns[k]["seq"] for k in _TURNS if k in columns] + [[len(batch)]])
        ).astype(np.int64)
        records = batch.records()
        lo = 0
        for at in turns.tolist():
            self._segment(columns, lo, at)
            if at < len(batch):
                self._turn(decode(records[at]))
            lo = at + 1

    def _turn(self, event: object) -> None:
        match event:
            case RunStarted(symbols=symbols, trailing_days=days):
                self._core = SessionDataCore(tuple(symbols), days)
                self._names = np.array(symbols)
                self._order = np.argsort(self._names)
            case TrailingBars():
                self._core.add_history(*history_bars(event))
            case SessionBreak(session=label, break_start=start, break_end=end):
                self._core.add_break(label, start, end)
            case SessionOpened():
                session = Session(
                    event.session, event.open, event.close, event.early_close,
                    event.open, event.close,
                )  # fmt: skip
                self._core.begin(session)

    def _segment(self, columns: dict[str, dict], lo: int, hi: int) -> None:
        core = self._core
        if core is None or core.day is None or hi <= lo:
            return

        def rows(kind: str) -> dict[str, np.ndarray] | None:
            fields = columns.get(kind)
            if fields is None:
                return None
            keep = (fields["seq"] >= lo) & (fields["seq"] < hi)
            return {name: column[keep] for name, column in fields.items()} if keep.any() else None

        times = rows("TimeAdvanced")
        bars, trades, quotes = rows("Bar"), rows("Trade"), rows("Quote")
        if times is not None or bars or trades or quotes:
            now = core.now if times is None else int(times["ts"][-1])
            core.released(
                now,
                BarColumns(self._symbol_ids(bars), *_floats(bars, _BAR_FIELDS), _no_source(bars)),
                TradeColumns(
                    self._symbol_ids(trades), *_floats(trades, ("ts", "price", "size")),
                    _no_source(trades),
                ),
                QuoteColumns(
                    self._symbol_ids(quotes),
                    *_floats(quotes, ("ts", "bid", "bid_size", "ask", "ask_size")),
                    _no_source(quotes),
                ),
                times=[] if times is None else times["ts"].tolist(),
            )  # fmt: skip
        findings = []
        for kind in (GapFilled, QualityUpdated):
            found = rows(kind.__name__)
            if found:
                names = kind.__struct_fields__
                values = zip(*[found[name].tolist() for name in names], strict=True)
                findings += [kind(*row) for row in values]
        if findings:
            core.upkept(sorted(findings, key=lambda e: e.ts))

    def _symbol_ids(self, fields: dict[str, np.ndarray] | None) -> np.ndarray:
        if not fields:
            return np.empty(0, np.int32)
        names = self._names[self._order]
        return self._order[np.searchsorted(names, fields["symbol"])].astype(np.int32)


def _floats(fields: dict[str, np.ndarray] | None, names: tuple[str, ...]) -> list[np.ndarray]:
    if not fields:
        return [np.empty(0, np.int64 if n in ("ts", "ts_start") else np.float64) for n in names]
    return [fields[n] for n in names]


def _no_source(fields: dict[str, np.ndarray] | None) -> np.ndarray:
    return np.full(len(fields["ts"]) if fields else 0, -1, np.int64)
