"""What a consumer does, the same on a live run and on a replay: take the stream (all of it, or
some kinds and symbols), hand each kind to a handler, and ask SessionData as of its present.

Filters change what a consumer sees, never the log. A record of a kind nobody asked for is not
decoded at all, so a bars-only consumer does not pay for the ticks it skips; SessionData still
sees them (it is rebuilt from the batches themselves, see `SessionView`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from ticktape.actors.coordinator_core import RunTotals
from ticktape.actors.results import Columns
from ticktape.actors.session_data import QUERIES, SessionDataCore
from ticktape.actors.session_view import SessionView
from ticktape.messages.codec import EncodedBatch, decode_many, record_kinds
from ticktape.messages.events import EVENT_TYPES, Event

Kinds = Iterable[str | type[Event]] | str | type[Event] | None
Handler = Callable[[Any], object]


def kind_names(kinds: Kinds) -> set[str] | None:
    """Kind names from names or event types; a name that is not a kind lists the kinds."""
    if kinds is None:
        return None
    if isinstance(kinds, str | type):
        kinds = [kinds]
    names = {k if isinstance(k, str) else k.__name__ for k in kinds}
    unknown = sorted(names - set(EVENT_TYPES))
    if unknown:
        raise ValueError(
            f"unknown event kind {unknown[0]!r}; the kinds are: {', '.join(sorted(EVENT_TYPES))}"
        )
    return names


class Consumer:
    """The consumer API shared by `System` and `Replay`. Subclasses feed `_deliver` the batches
    the consumer reads and say what a query does before anything was taken (`_no_view`)."""

    view: SessionView
    _at_slice: Callable[[int], None] | None = None  # before a new slice's first event is taken
    _holding = False  # whether `_at_slice` may wait (paced, or paused)

    def _deliver(
        self,
        batches: Iterable[tuple[EncodedBatch, np.ndarray | None, np.ndarray | None]],
        kinds: Kinds = None,
        symbols: Iterable[str] | str | None = None,
    ) -> Iterator[Event]:
        """The records of `batches` the consumer wants, decoded, in log order. Each batch comes
        with a mask of the records that may be delivered at all (a time range) and the kind of
        each record, when known (None, None otherwise)."""
        wanted_kinds = kind_names(kinds)
        wanted_symbols = {symbols} if isinstance(symbols, str) else symbols
        wanted_symbols = None if wanted_symbols is None else set(wanted_symbols)
        view, at_slice = self.view, self._at_slice
        new_slice = False  # a slice began after the last record delivered (the run's start
        # before the first slice is not held: a paused replay shows it, then waits)
        for batch, allowed, names in batches:
            view.feed(batch)
            if names is None and (wanted_kinds is not None or at_slice is not None):
                names = record_kinds(batch)
            wanted = np.ones(len(batch), bool)
            if wanted_kinds is not None:
                wanted = np.isin(names, list(wanted_kinds))
            if allowed is not None:
                wanted &= allowed
            rows = np.flatnonzero(wanted)
            events = decode_many(batch if len(rows) == len(batch) else batch.take(rows))
            starts = [False] * len(rows)
            if at_slice is not None and len(rows):
                seen = np.cumsum(names == "TimeAdvanced")  # slices begun up to each record
                begins = np.diff(seen[rows], prepend=0) > 0
                begins[0] = new_slice or seen[rows[0]] > 0
                new_slice = bool(seen[-1] > seen[rows[-1]])
                starts = begins.tolist()
            elif at_slice is not None:
                new_slice = new_slice or bool((names == "TimeAdvanced").any())
            for row, event, begins_slice in zip(rows.tolist(), events, starts, strict=True):
                if begins_slice and self._holding:
                    at_slice(event.ts)  # every event of a slice carries its release time
                if wanted_symbols is not None:
                    symbol = getattr(event, "symbol", None)
                    if isinstance(symbol, str) and symbol and symbol not in wanted_symbols:
                        continue
                view.through = row + 1  # the consumer's present (`SessionView.took`)
                yield event
        view.took_all()

    def events(
        self, *, kinds: Kinds = None, symbols: Iterable[str] | None = None
    ) -> Iterator[Event]:
        raise NotImplementedError

    def wait(self, timeout: float | None = None) -> RunTotals:
        raise NotImplementedError

    def subscribe(
        self,
        handlers: Mapping[str | type[Event], Handler],
        *,
        symbols: Iterable[str] | None = None,
        timeout: float | None = None,
    ) -> RunTotals:
        """The callback form: `handlers` maps an event kind (a type or its name) to a function
        called with each event of that kind, e.g. `{Bar: on_bar, GapDetected: on_gap}`. Only
        those kinds are decoded. Returns the run's totals once the stream ends."""
        by_kind = {name: handlers[k] for k in handlers for name in kind_names(k)}
        for event in self.events(kinds=by_kind, symbols=symbols):
            by_kind[type(event).__name__](event)
        return self.wait(timeout)

    # -- SessionData, as of the consumer's present --------------------------------------------

    def _core(self) -> SessionDataCore | None:
        return self.view.core()

    def _no_view(self, name: str, args: tuple, kwargs: dict) -> Any:
        raise RuntimeError("nothing taken yet: iterate events() first")

    def _answer(self, name: str, *args: Any, **kwargs: Any) -> Any:
        core = self._core()
        if core is None:
            answer = self._no_view(name, args, kwargs)
            symbols = self._symbols()
        else:
            answer = getattr(core, name)(*args, **kwargs)
            symbols = core.symbols
        return Columns(answer, symbols) if hasattr(answer, "__slots__") else answer

    def _symbols(self) -> tuple[str, ...]:
        raise NotImplementedError

    def query(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """A query by name, e.g. `query("last_bars", "SPY", 5)`; the typed methods say more."""
        if name not in QUERIES:
            raise ValueError(f"{name!r} is not a query; the queries are: {', '.join(QUERIES)}")
        return getattr(self, name)(*args, **kwargs)

    def bars(
        self,
        symbol: str,
        *,
        interval: int = 1,
        start: int | None = None,
        end: int | None = None,
        as_of: int | None = None,
    ) -> Columns:
        """Bars of `symbol` starting in [start, end) (ns UTC), trailing history included, as the
        consumer's present knows them: ended, and for a fill found, by the last event taken
        (or by `as_of` when earlier). `interval` > 1: N-minute bars derived from them."""
        return self._answer("bars", symbol, interval=interval, start=start, end=end, as_of=as_of)

    def last_bars(
        self, symbol: str, n: int, *, interval: int = 1, as_of: int | None = None
    ) -> Columns:
        """The last `n` bars of `symbol` known at the consumer's present (or `as_of`)."""
        return self._answer("last_bars", symbol, n, interval=interval, as_of=as_of)

    def trades(self, symbol: str, *, as_of: int | None = None) -> Columns:
        """Today's trades of `symbol` up to the consumer's present (or `as_of`)."""
        return self._answer("trades", symbol, as_of=as_of)

    def quotes(self, symbol: str, *, as_of: int | None = None) -> Columns:
        """Today's quotes of `symbol` up to the consumer's present (or `as_of`)."""
        return self._answer("quotes", symbol, as_of=as_of)

    def quality(self, symbol: str, *, as_of: int | None = None) -> float:
        """Upkeep's latest quality figure of `symbol` today, (real + filled) / expected bars."""
        return self._answer("quality", symbol, as_of=as_of)

    def updated(self, symbol: str, *, as_of: int | None = None) -> dict[str, bool]:
        """Per data type (bars, trades, quotes): did `symbol` get some in the last release?"""
        return self._answer("updated", symbol, as_of=as_of)

    def session_metrics(self, symbol: str, *, as_of: int | None = None) -> dict[str, Any]:
        """Today's open/high/low/close/volume of `symbol` from real and filled bars, with its
        update flags, quality and bars per kind (real, filled, synthetic)."""
        return self._answer("session_metrics", symbol, as_of=as_of)
