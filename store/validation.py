"""Which rows of a block are good, and the first reason each bad one fails.

Checks run in a fixed order and a row gets the first that fails. The order checks (duplicate,
out-of-order) compare each row with the latest accepted time of its symbol earlier in the file;
that time is carried from block to block (`Carry`), so the verdicts never depend on where the
blocks were cut. Within a file: a bar at the latest accepted time is a duplicate, any row before
it is out of order (ticks may share a time). Ingest, which sorts each session's rows by time,
runs no order check here (`carry=None`) and rejects repeated bars once they are sorted
(`repository.drop_duplicate_bars`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from ticktape.messages import rejections as why
from ticktape.messages.arrays import on_minute
from ticktape.messages.session import NS_PER_MINUTE
from ticktape.store.parsing import (
    KIND_COLUMNS,
    TS_OK,
    TS_REASONS,
    mask,
    numbers,
    symbol_codes,
    timestamps,
)

Carry = dict[str, int]  # symbol -> latest accepted time in the file so far
_NEVER = np.iinfo(np.int64).min
# No instrument trades outside these; beyond them sums and ratios lose all precision or overflow.
MIN_PRICE, MAX_PRICE, MAX_QUANTITY = 1e-9, 1e12, 1e15


def _price_out_of_range(*prices: np.ndarray) -> np.ndarray:
    """A price (0 is left to the other checks) outside MIN_PRICE..MAX_PRICE."""
    bad = np.zeros(len(prices[0]), dtype=bool)
    for p in prices:
        a = np.abs(p)
        bad |= ((a > 0) & (a < MIN_PRICE)) | (a > MAX_PRICE)
    return bad


@dataclass(frozen=True, slots=True)
class Checked:
    """One block's verdicts. Accepted rows are in file order; `symbol` indexes `names`."""

    names: list[str]
    symbol: np.ndarray
    ts: np.ndarray
    values: dict[str, np.ndarray]
    line: np.ndarray
    rejected: list[tuple[int, str, str, int | None]]  # (line, reason, symbol, ts if dated)
    dated: np.ndarray  # the time of every row whose time parsed, accepted or not
    dated_symbol: np.ndarray  # and its symbol (indexes `names`)

    def dated_ranges(self) -> dict[str, tuple[int, int]]:
        """(first, last) time of the dated rows, by symbol."""
        ranges = {}
        for code in np.unique(self.dated_symbol).tolist():
            ts = self.dated[self.dated_symbol == code] if len(self.names) > 1 else self.dated
            ranges[self.names[code]] = (int(ts.min()), int(ts.max()))
        return ranges


class _Verdicts:
    """The first failing reason of every row."""

    def __init__(self, rows: int) -> None:
        self.code = np.zeros(rows, dtype=np.int16)
        self.reasons: list[str] = []

    def flag(self, reason: str, bad: np.ndarray) -> None:
        self.reasons.append(reason)
        if bad.any():  # most checks pass every row
            self.code[(self.code == 0) & bad] = len(self.reasons)

    @property
    def ok(self) -> np.ndarray:
        return self.code == 0

    def reason(self, code: int) -> str:
        return self.reasons[code - 1]


def check(
    kind: str,
    table: pa.Table,
    line: np.ndarray,
    wanted: frozenset[str] | None,
    label: str,
    carry: Carry | None,
    tz: str | None = None,
) -> Checked:
    """Validate one block's rows of the wanted symbols (None: all); updates `carry`, or runs no
    order check when it is None (the rows are sorted later). `tz`: the zone of timestamps
    without an offset (None: they are rejected)."""
    names, symbol = symbol_codes(table.column("symbol"))
    if wanted is not None:
        asked = np.array([n in wanted or n == "" for n in names], dtype=bool)[symbol]
        if not asked.all():
            table, line, symbol = table.filter(mask(asked)), line[asked], symbol[asked]

    ts, status = timestamps(table.column("timestamp"), tz)
    dated_rows = status == TS_OK
    if kind == "bars" and label == "end":
        ts[dated_rows] -= NS_PER_MINUTE
    verdicts = _Verdicts(len(ts))
    for code, reason in TS_REASONS.items():
        verdicts.flag(reason, status == code)
    blank = np.array([n == "" for n in names], dtype=bool)
    verdicts.flag(why.MISSING_SYMBOL, blank[symbol] if len(symbol) else np.zeros(0, bool))
    values: dict[str, np.ndarray] = {}
    for name in KIND_COLUMNS[kind]:
        values[name], garbage = numbers(table.column(name))
        verdicts.flag(why.unparseable(name), garbage)
    _CHECKS[kind](verdicts, values, ts)
    if carry is not None:
        _check_order(verdicts, kind, symbol, names, ts, carry)

    ok = verdicts.ok
    bad = np.flatnonzero(~ok)
    rejected = [
        (
            int(line[i]),
            verdicts.reason(int(verdicts.code[i])),
            names[symbol[i]],
            int(ts[i]) if dated_rows[i] else None,
        )
        for i in bad.tolist()
    ]
    every = slice(None)  # a block of good rows (the usual) is passed on as views, not copies
    keep = ok if len(bad) else every
    dated = dated_rows if not dated_rows.all() else every
    return Checked(
        names=names,
        symbol=symbol[keep],
        ts=ts[keep],
        values={name: v[keep] for name, v in values.items()},
        line=line[keep],
        rejected=rejected,
        dated=ts[dated],
        dated_symbol=symbol[dated],
    )


def failing_values(kind: str, values: dict[str, np.ndarray], ts: np.ndarray) -> str | None:
    """The first reason a row's values fail the checks `check` runs on values, or None: a
    catalog re-checks the rows it releases with it."""
    verdicts = _Verdicts(len(ts))
    _CHECKS[kind](verdicts, values, ts)
    bad = np.flatnonzero(~verdicts.ok)
    return verdicts.reason(int(verdicts.code[bad[0]])) if len(bad) else None


def _check_order(
    verdicts: _Verdicts,
    kind: str,
    symbol: np.ndarray,
    names: list[str],
    ts: np.ndarray,
    carry: Carry,
) -> None:
    """Duplicate and out-of-order rows, against the latest accepted time of their symbol."""
    latest = np.full(len(ts), _NEVER, dtype=np.int64)  # before each row
    candidate = np.flatnonzero(verdicts.ok)
    groups: Iterable[tuple[int, np.ndarray]] = []
    if len(names) == 1 and len(candidate):  # the usual block: one symbol
        groups = [(0, candidate)]
    elif len(candidate):  # each symbol's rows in file order, by one stable sort
        by_symbol = candidate[np.argsort(symbol[candidate], kind="stable")]
        codes = symbol[by_symbol]
        cuts = np.flatnonzero(codes[1:] != codes[:-1]) + 1
        firsts = np.concatenate([[0], cuts])
        groups = zip(codes[firsts].tolist(), np.split(by_symbol, cuts), strict=True)
    for code, rows in groups:
        start = carry.get(names[code], _NEVER)
        running = np.maximum.accumulate(np.concatenate([[start], ts[rows]]))
        latest[rows] = running[:-1]
        carry[names[code]] = int(running[-1])
    if kind == "bars":
        verdicts.flag(why.DUPLICATE, ts == latest)
    verdicts.flag(why.OUT_OF_ORDER, ts < latest)


def _check_bars(verdicts: _Verdicts, v: dict[str, np.ndarray], ts: np.ndarray) -> None:
    o, h, lo, c, volume = v["open"], v["high"], v["low"], v["close"], v["volume"]
    with np.errstate(invalid="ignore"):
        verdicts.flag(why.NAN_PRICE, np.isnan(o) | np.isnan(h) | np.isnan(lo) | np.isnan(c))
        verdicts.flag(why.NON_POSITIVE_PRICE, (o <= 0) | (h <= 0) | (lo <= 0) | (c <= 0))
        verdicts.flag(why.HIGH_BELOW_LOW, h < lo)
        verdicts.flag(why.HIGH_BELOW_BODY, h < np.maximum(o, c))
        verdicts.flag(why.LOW_ABOVE_BODY, lo > np.minimum(o, c))
        verdicts.flag(why.NAN_VOLUME, np.isnan(volume))
        verdicts.flag(why.NEGATIVE_VOLUME, volume < 0)
        verdicts.flag(why.PRICE_OUT_OF_RANGE, _price_out_of_range(o, h, lo, c))
        verdicts.flag(why.QUANTITY_OUT_OF_RANGE, volume > MAX_QUANTITY)
    verdicts.flag(why.OFF_GRID, ~on_minute(ts))


def _check_trades(verdicts: _Verdicts, v: dict[str, np.ndarray], ts: np.ndarray) -> None:
    price, size = v["price"], v["size"]
    with np.errstate(invalid="ignore"):
        verdicts.flag(why.NAN_PRICE, np.isnan(price))
        verdicts.flag(why.NON_POSITIVE_PRICE, price <= 0)
        verdicts.flag(why.NAN_SIZE, np.isnan(size))
        verdicts.flag(why.NEGATIVE_SIZE, size < 0)
        verdicts.flag(why.PRICE_OUT_OF_RANGE, _price_out_of_range(price))
        verdicts.flag(why.QUANTITY_OUT_OF_RANGE, size > MAX_QUANTITY)


def _check_quotes(verdicts: _Verdicts, v: dict[str, np.ndarray], ts: np.ndarray) -> None:
    """A side at price 0 and size 0 is absent (a one-sided update), so zero is not an error."""
    bid, bid_size, ask, ask_size = v["bid"], v["bid_size"], v["ask"], v["ask_size"]
    with np.errstate(invalid="ignore"):
        verdicts.flag(why.NAN_PRICE, np.isnan(bid) | np.isnan(ask))
        verdicts.flag(why.NEGATIVE_PRICE, (bid < 0) | (ask < 0))
        verdicts.flag(why.NAN_SIZE, np.isnan(bid_size) | np.isnan(ask_size))
        verdicts.flag(why.NEGATIVE_SIZE, (bid_size < 0) | (ask_size < 0))
        verdicts.flag(
            why.SIZE_WITHOUT_PRICE, ((bid == 0) & (bid_size > 0)) | (ask == 0) & (ask_size > 0)
        )
        verdicts.flag(why.PRICE_OUT_OF_RANGE, _price_out_of_range(bid, ask))
        verdicts.flag(
            why.QUANTITY_OUT_OF_RANGE, (bid_size > MAX_QUANTITY) | (ask_size > MAX_QUANTITY)
        )


_CHECKS = {"bars": _check_bars, "trades": _check_trades, "quotes": _check_quotes}


def widen(ranges: dict[str, tuple[int, int]], more: dict[str, tuple[int, int]]) -> None:
    """Grow `ranges` (first, last by symbol) to take in `more`."""
    for symbol, (lo, hi) in more.items():
        was = ranges.get(symbol, (lo, hi))
        ranges[symbol] = (min(was[0], lo), max(was[1], hi))
