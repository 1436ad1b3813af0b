"""What the report shows, gathered from a log in one columnar pass (DESIGN §15).

The log is read only through its reader: batches of records decoded into numpy columns per kind,
never one Python object per bar. Prices are reduced as they are read onto a grid of buckets that
every symbol shares (each session cut into equal buckets from its open), so a year of minute bars
gathers into a few thousand points per symbol; derived bars are kept for the latest sessions that
fit a budget. Everything here is numbers and labels; drawing is `charts`' business.
"""

from __future__ import annotations

import datetime as dt
import math
import multiprocessing
import zoneinfo
from collections import Counter, deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ticktape.messages.codec import decode_columns
from ticktape.messages.session import NS_PER_MINUTE
from ticktape.store import runset
from ticktape.store.eventlog import EventLog, LogDamaged, VerifyResult
from ticktape.store.runset import is_run_set
from ticktape.store.runset_log import RunSetLog, open_log

PRICE_POINTS = 120_000  # buckets of price over all symbols together (the page's largest part)
DERIVED_BARS = 12_000  # derived bars kept per interval, over all symbols, latest sessions first
FIRST_ROWS = 5  # rejected rows listed per reason and file
_BUCKETS = (1, 2, 5, 10, 15, 30, 65, 130, 390)  # minutes; 390 and its parts cut a NYSE day evenly

LEFT, BACKFILLED, FORWARD_FILLED = 0, 1, 2
OUTCOMES = ("left", "filled from the backfill", "forward-filled")

# Event kinds counted together in the throughput chart.
KIND_GROUPS = {
    "Bar": "1m bars",
    "Trade": "trades and quotes",
    "Quote": "trades and quotes",
    "DerivedBar": "derived bars",
    "DerivedBarRevised": "derived bars",
    "GapDetected": "upkeep",
    "GapFilled": "upkeep",
    "QualityUpdated": "upkeep",
    "TimeAdvanced": "time advances",
}
GROUPS = ("1m bars", "trades and quotes", "derived bars", "upkeep", "time advances", "other")
_CONTROLS = ("Paused", "Resumed", "Stepped", "Stopped", "ActorFailed")
# The kinds the first pass decodes; the others are only counted (ticks, derived bars, time).
_DRAWN = (
    "RunStarted",
    "RunFinished",
    "SessionOpened",
    "SessionClosed",
    "SessionBreak",
    "Bar",
    "GapDetected",
    "GapFilled",
    "QualityUpdated",
    "DataRejected",
    *_CONTROLS,
)
_DERIVED = ("DerivedBar", "DerivedBarRevised")


@dataclass
class Sessions:
    """The run's sessions in order; times are ns UTC, `offset` the exchange's UTC offset (ns)."""

    labels: list[str] = field(default_factory=list)
    seq: list[int] = field(default_factory=list)  # of each SessionOpened
    open: list[int] = field(default_factory=list)
    close: list[int] = field(default_factory=list)
    early_close: list[bool] = field(default_factory=list)
    break_minutes: list[int] = field(default_factory=list)  # minutes of a midday break
    break_start: list[int] = field(default_factory=list)  # ns UTC; 0: no break
    bars: list[int] = field(default_factory=list)  # 1m bars released (-1: never closed)
    left_out: list[int] = field(default_factory=list)
    offset: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.labels)

    def minutes(self, i: int) -> int:
        return (self.close[i] - self.open[i]) // NS_PER_MINUTE


@dataclass
class Prices:
    """Per symbol and bucket: the last 1m close, and the lowest and highest close (NaN: no bar).
    Bucket k of session s starts `bucket` minutes after the previous one, from the open."""

    bucket: int  # minutes
    start: np.ndarray  # int64 ns UTC, every bucket of every session in order
    session: np.ndarray  # int32 session index of each bucket
    close: np.ndarray  # float32 [symbol, bucket]
    low: np.ndarray
    high: np.ndarray
    outside_hours: int = 0  # bars released outside regular hours (extended hours), not drawn


@dataclass
class Derived:
    """One interval's derived bars for the latest sessions that fit `DERIVED_BARS`."""

    interval: int
    first_session: int  # index of the earliest session kept
    symbol: np.ndarray  # int32 index into the run's symbols
    ts_start: np.ndarray  # int64 ns UTC
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    filled: np.ndarray  # 1m bars of it that were filled


@dataclass
class Rejected:
    reason: str
    file: str
    count: int
    rows: list[tuple[int, str]]  # the first (row, symbol)


@dataclass
class RunSummary:
    path: str
    settings: dict[str, Any]  # the RunStarted facts
    manifest: dict[str, Any]
    verify: VerifyResult
    digest: str
    events: int
    tz: str
    symbols: tuple[str, ...]
    sessions: Sessions
    expected: np.ndarray  # int64 [symbol, session]; -1 where no quality was reported
    real: np.ndarray
    filled: np.ndarray  # from the backfill
    synthetic: np.ndarray  # forward-filled
    gap_symbol: np.ndarray  # int32 per GapDetected
    gap_ts: np.ndarray  # int64 ns UTC, the missing minute's start
    gap_outcome: np.ndarray  # int8: LEFT, BACKFILLED or FORWARD_FILLED
    gap_session: np.ndarray  # int32
    prices: Prices
    derived: list[Derived]
    rejections: list[Rejected]
    kinds: dict[str, int]
    per_session: np.ndarray  # int64 [session, group] events per GROUPS
    controls: list[tuple[str, int, str]]  # (kind, ts, detail)
    finished: str  # "finished", "stopped" or "" (still running, or it died)
    first_ts: int
    last_ts: int

    def local_ms(self, ts: np.ndarray, session: np.ndarray) -> np.ndarray:
        """Exchange wall-clock time in ms (what a date axis shows), by each session's offset."""
        offsets = np.asarray(self.sessions.offset or [0], np.int64)
        offset = offsets[np.clip(session, 0, len(offsets) - 1)] if len(ts) else 0
        return ((np.asarray(ts, np.int64) + offset) // 1_000_000).astype(np.float64)


class _Gatherer:
    """One pass over the log's batches, in order; each kind's columns go to one method."""

    def __init__(self, log: EventLog | RunSetLog, tz: str) -> None:
        self.log = log
        self.zone = zoneinfo.ZoneInfo(tz)
        self.settings: dict[str, Any] = {}
        self.symbols: tuple[str, ...] = ()
        self.order = np.zeros(0, np.int64)  # sorted symbol position -> index in self.symbols
        self.sorted_symbols = np.zeros(0, str)
        self.sessions = Sessions()
        self.session_index: dict[str, int] = {}
        self.quality: dict[str, list[np.ndarray]] = {}
        self.kinds: Counter[str] = Counter()
        self.per_session = np.zeros((0, len(GROUPS)), np.int64)
        self.gaps: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.fills: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.rejected: list[dict[str, np.ndarray]] = []
        self.controls: list[tuple[str, int, str]] = []
        self.finished = ""
        self.first_ts = self.last_ts = 0
        self.bucket = 1
        self.price_blocks: list[tuple[np.ndarray, ...]] = []
        self.price_starts: list[np.ndarray] = []
        self.outside_hours = 0
        self.derived: dict[int, deque[tuple[int, dict[str, np.ndarray]]]] = {}
        self.derived_rows: Counter[int] = Counter()

    # -- the pass ---------------------------------------------------------------------------

    def read(self, stop: int) -> None:
        for first, batch in self.log.batches(1, stop, blocks=64):
            self._take(decode_columns(batch, first, only=_DRAWN))

    def read_derived(self, stop: int) -> None:
        """Derived bars of the latest sessions that can fit the budget: a second, short pass."""
        derived = self.per_session[:, GROUPS.index("derived bars")] if len(self.sessions) else []
        intervals = [int(m) for m in self.settings.get("derived", ())] or [1]
        share = (1 / max(intervals)) / sum(1 / m for m in intervals)  # the widest's share
        enough = np.cumsum(derived[::-1])[::-1] <= DERIVED_BARS / share
        start = int(np.argmax(enough)) if len(enough) and enough.any() else len(enough) - 1
        if start < 0 or not derived[start:].any():
            return
        for first, batch in self.log.batches(self.sessions.seq[start], stop, blocks=64):
            columns = decode_columns(batch, first, only=_DERIVED)
            for kind in _DERIVED:
                if kind in columns:
                    self._DerivedBar(columns[kind], self._session_of(columns[kind]["seq"]))

    def _take(self, columns: dict[str, dict[str, np.ndarray]]) -> None:
        for kind in ("RunStarted", "SessionOpened"):  # what later kinds are placed by
            if kind in columns:
                getattr(self, f"_{kind}")(columns[kind])
        for kind, cols in columns.items():
            self.kinds[kind] += len(cols["seq"])
            session = self._session_of(cols["seq"])
            self._count(kind, session)
            if kind not in _DRAWN:
                continue
            handler = getattr(self, f"_{kind}", None)
            if handler is not None and kind not in ("RunStarted", "SessionOpened"):
                handler(cols, session)
            if kind in _CONTROLS:
                self._control(kind, cols)
            self.last_ts = max(self.last_ts, int(cols["ts"].max()))
            if not self.first_ts:
                self.first_ts = int(cols["ts"].min())

    def _session_of(self, seq: np.ndarray) -> np.ndarray:
        return np.searchsorted(np.asarray(self.sessions.seq, np.int64), seq, "right") - 1

    def _count(self, kind: str, session: np.ndarray) -> None:
        group = GROUPS.index(KIND_GROUPS.get(kind, "other"))
        inside = session[session >= 0]
        if len(inside):
            self.per_session[:, group] += np.bincount(inside, minlength=len(self.sessions))

    def _symbol_index(self, names: np.ndarray) -> np.ndarray:
        at = np.searchsorted(self.sorted_symbols, names)
        return self.order[np.minimum(at, len(self.order) - 1)].astype(np.int32)

    # -- one method per kind ----------------------------------------------------------------

    def _RunStarted(self, cols: dict[str, np.ndarray]) -> None:
        if self.settings:
            return
        self.settings = {name: values[0] for name, values in cols.items() if name != "seq"}
        self.symbols = tuple(self.settings["symbols"])
        self.order = np.argsort(np.array(self.symbols, str), kind="stable")
        self.sorted_symbols = np.array(self.symbols, str)[self.order]

    def _SessionOpened(self, cols: dict[str, np.ndarray]) -> None:
        for i in range(len(cols["seq"])):
            s = self.sessions
            label = str(cols["session"][i])
            self.session_index[label] = len(s)
            s.labels.append(label)
            s.seq.append(int(cols["seq"][i]))
            s.open.append(int(cols["open"][i]))
            s.close.append(int(cols["close"][i]))
            s.early_close.append(bool(cols["early_close"][i]))
            s.break_minutes.append(0)  # a SessionBreak follows when it has one
            s.break_start.append(0)
            s.bars.append(-1)
            s.left_out.append(0)
            opened = dt.datetime.fromtimestamp(s.open[-1] / 1e9, self.zone)
            s.offset.append(int(opened.utcoffset().total_seconds()) * 10**9)  # type: ignore[union-attr]
            self.per_session = np.vstack([self.per_session, np.zeros((1, len(GROUPS)), np.int64)])
            self._price_block(len(s) - 1)

    def _SessionBreak(self, cols: dict[str, np.ndarray], session: np.ndarray) -> None:
        for i, label in enumerate(cols["session"].tolist()):
            s = self.session_index.get(label)
            if s is not None:
                start, end = int(cols["break_start"][i]), int(cols["break_end"][i])
                self.sessions.break_minutes[s] = (end - start) // NS_PER_MINUTE
                self.sessions.break_start[s] = start

    def _SessionClosed(self, cols: dict[str, np.ndarray], session: np.ndarray) -> None:
        for i, label in enumerate(cols["session"].tolist()):
            s = self.session_index.get(label)
            if s is not None:
                self.sessions.bars[s] = int(cols["bars"][i])
                self.sessions.left_out[s] = int(cols["left_out"][i])

    def _RunFinished(self, cols: dict[str, np.ndarray], session: np.ndarray) -> None:
        self.finished = "finished"

    def _Stopped(self, cols: dict[str, np.ndarray], session: np.ndarray) -> None:
        self.finished = "stopped"

    def _control(self, kind: str, cols: dict[str, np.ndarray]) -> None:
        for i in range(min(len(cols["seq"]), 100)):  # a control is rare; 100 say enough
            detail = ""
            if kind == "ActorFailed":
                detail = f"{cols['actor'][i]}: {cols['error'][i]}"
            self.controls.append((kind, int(cols["ts"][i]), detail))

    def _QualityUpdated(self, cols: dict[str, np.ndarray], session: np.ndarray) -> None:
        labels = cols["session"]
        places = np.array([self.session_index.get(str(x), -1) for x in labels.tolist()], np.int64)
        keep = places >= 0
        self.quality.setdefault("symbol", []).append(self._symbol_index(cols["symbol"][keep]))
        self.quality.setdefault("session", []).append(places[keep])
        for name in ("expected", "real", "filled", "synthetic"):
            self.quality.setdefault(name, []).append(cols[name][keep].astype(np.int64))

    def _GapDetected(self, cols: dict[str, np.ndarray], session: np.ndarray) -> None:
        self.gaps.append((self._symbol_index(cols["symbol"]), cols["ts_start"], session))

    def _GapFilled(self, cols: dict[str, np.ndarray], session: np.ndarray) -> None:
        synthetic = cols["synthetic"].astype(bool)
        self.fills.append((self._symbol_index(cols["symbol"]), cols["ts_start"], synthetic))

    def _DataRejected(self, cols: dict[str, np.ndarray], session: np.ndarray) -> None:
        self.rejected.append({k: cols[k] for k in ("reason", "file", "row", "symbol", "seq")})

    # -- prices: reduced onto the bucket grid as they are read ------------------------------

    def _price_block(self, s: int) -> None:
        if s == 0:  # the grid is sized once, from the run's dates, so every session shares it
            first = np.datetime64(str(self.settings.get("start", ""))[:10] or "NaT", "D")
            last = np.datetime64(str(self.settings.get("end", ""))[:10] or "NaT", "D")
            days = 1 if np.isnat(first) or np.isnat(last) else np.busday_count(first, last + 1)
            per_symbol = PRICE_POINTS / max(len(self.symbols), 1)
            least = max(days, 1) * self.sessions.minutes(0) / per_symbol
            self.bucket = (
                next(b for b in _BUCKETS if b >= least)
                if least <= _BUCKETS[-1]
                else (math.ceil(least / _BUCKETS[-1]) * _BUCKETS[-1])
            )
        buckets = max(1, math.ceil(self.sessions.minutes(s) / self.bucket))
        shape = (len(self.symbols), buckets)
        self.price_blocks.append(
            tuple(np.full(shape, np.nan, np.float32) for _ in ("close", "low", "high"))
        )
        step = self.bucket * NS_PER_MINUTE
        self.price_starts.append(self.sessions.open[s] + step * np.arange(buckets, dtype=np.int64))

    def _Bar(self, cols: dict[str, np.ndarray], session: np.ndarray) -> None:
        symbol = self._symbol_index(cols["symbol"])
        bounds = np.flatnonzero(np.diff(session)) + 1
        for part in np.split(np.arange(len(session)), bounds):
            s = int(session[part[0]])
            if s < 0:
                continue
            close, low, high = self.price_blocks[s]
            minute = (cols["ts_start"][part] - self.sessions.open[s]) // NS_PER_MINUTE
            inside = (minute >= 0) & (minute < self.sessions.minutes(s))
            self.outside_hours += int(len(part) - inside.sum())
            cell = symbol[part][inside] * close.shape[1] + minute[inside] // self.bucket
            price = cols["close"][part][inside].astype(np.float32)
            close.reshape(-1)[cell] = price  # bars come in time order: the last one stays
            np.fmin.at(low.reshape(-1), cell, price)
            np.fmax.at(high.reshape(-1), cell, price)

    def _DerivedBar(self, cols: dict[str, np.ndarray], session: np.ndarray) -> None:
        names = ("ts_start", "open", "high", "low", "close", "filled", "seq")
        symbol = self._symbol_index(cols["symbol"])
        for interval in np.unique(cols["interval"]).tolist():
            kept = self.derived.setdefault(interval, deque())
            of_interval = cols["interval"] == interval
            for s in np.unique(session[of_interval]).tolist():
                rows = of_interval & (session == s)
                part = {name: cols[name][rows] for name in names} | {"symbol": symbol[rows]}
                kept.append((s, part))
                self.derived_rows[interval] += int(rows.sum())
            # Whole sessions go, the oldest first; the newest stays even when over the budget.
            while self.derived_rows[interval] > DERIVED_BARS and kept[0][0] != kept[-1][0]:
                oldest = kept[0][0]
                while kept[0][0] == oldest:
                    self.derived_rows[interval] -= len(kept.popleft()[1]["seq"])

    _DerivedBarRevised = _DerivedBar  # a revision is the bar's new value; the later one wins

    # -- the summary ------------------------------------------------------------------------

    def summary(self, path: str, verify: VerifyResult, digest: str, events: int, tz: str):
        n_sym, n_sess = len(self.symbols), len(self.sessions)
        grids = {n: np.full((n_sym, n_sess), -1, np.int64) for n in ("expected", "real")}
        grids |= {n: np.zeros((n_sym, n_sess), np.int64) for n in ("filled", "synthetic")}
        if self.quality:
            q = {k: np.concatenate(v) for k, v in self.quality.items()}
            for name, grid in grids.items():
                grid[q["symbol"], q["session"]] = q[name]  # in log order: the last one stays
        gap_symbol, gap_ts, gap_session = _concat(self.gaps, (np.int32, np.int64, np.int64))
        outcome = np.full(len(gap_ts), LEFT, np.int8)
        fill_symbol, fill_ts, synthetic = _concat(self.fills, (np.int32, np.int64, bool))
        if len(fill_ts) and len(gap_ts):
            keys = gap_ts // NS_PER_MINUTE * max(n_sym, 1) + gap_symbol
            filled_keys = fill_ts // NS_PER_MINUTE * max(n_sym, 1) + fill_symbol
            order = np.argsort(filled_keys, kind="stable")
            at = np.minimum(np.searchsorted(filled_keys[order], keys), len(order) - 1)
            found = filled_keys[order][at] == keys
            outcome[found] = np.where(synthetic[order][at][found], FORWARD_FILLED, BACKFILLED)
        blocks = [[b[i] for b in self.price_blocks] or [np.zeros((n_sym, 0))] for i in range(3)]
        starts = self.price_starts or [np.zeros(0, np.int64)]
        prices = Prices(
            bucket=self.bucket,
            start=np.concatenate(starts),
            session=np.repeat(np.arange(len(starts), dtype=np.int32), [len(x) for x in starts]),
            close=np.hstack(blocks[0]).astype(np.float32),
            low=np.hstack(blocks[1]).astype(np.float32),
            high=np.hstack(blocks[2]).astype(np.float32),
            outside_hours=self.outside_hours,
        )
        return RunSummary(
            path=path,
            settings=self.settings,
            manifest=self.log.manifest(),
            verify=verify,
            digest=digest,
            events=events,
            tz=tz,
            symbols=self.symbols,
            sessions=self.sessions,
            **grids,
            gap_symbol=gap_symbol,
            gap_ts=gap_ts,
            gap_outcome=outcome,
            gap_session=gap_session.astype(np.int32),
            prices=prices,
            derived=[self._derived(i) for i in sorted(self.derived)],
            rejections=self._rejections(),
            kinds=dict(sorted(self.kinds.items())),
            per_session=self.per_session,
            controls=self.controls,
            finished=self.finished,
            first_ts=self.first_ts,
            last_ts=self.last_ts,
        )

    def _derived(self, interval: int) -> Derived:
        kept = self.derived[interval]
        cols = {k: np.concatenate([part[k] for _, part in kept]) for k in kept[0][1]}
        key = cols["ts_start"] * max(len(self.symbols), 1) + cols["symbol"]
        # The last value of each bar (revisions come after), in time then symbol order.
        order = np.lexsort((-cols["seq"], key))
        first = np.r_[True, key[order][1:] != key[order][:-1]]
        take = order[first]
        return Derived(
            interval=interval,
            first_session=kept[0][0],
            **{k: cols[k][take] for k in ("symbol", "ts_start", "open", "high", "low", "close")},
            filled=cols["filled"][take],
        )

    def _rejections(self) -> list[Rejected]:
        if not self.rejected:
            return []
        cols = {k: np.concatenate([r[k] for r in self.rejected]) for k in self.rejected[0]}
        pairs = np.char.add(
            np.char.add(cols["reason"].astype(str), "\x1f"), cols["file"].astype(str)
        )
        names, inverse, counts = np.unique(pairs, return_inverse=True, return_counts=True)
        groups = []
        for g in np.argsort(-counts, kind="stable").tolist():
            reason, file = str(names[g]).split("\x1f", 1)
            rows = np.flatnonzero(inverse == g)[:FIRST_ROWS]
            listed = [(int(cols["row"][r]), str(cols["symbol"][r])) for r in rows.tolist()]
            groups.append(Rejected(reason, file, int(counts[g]), listed))
        return groups


def _concat(parts: list[tuple[np.ndarray, ...]], dtypes: tuple[Any, ...]) -> list[np.ndarray]:
    if not parts:
        return [np.zeros(0, d) for d in dtypes]
    return [
        np.concatenate(c).astype(d) for c, d in zip(zip(*parts, strict=True), dtypes, strict=True)
    ]


def _verify(path: str) -> VerifyResult:
    """Run in its own process. A run set's check opens each shard log itself (LMDB allows one
    handle per process, so not through an open `RunSetLog`)."""
    if not is_run_set(path):
        with EventLog.open(path) as log:
            return log.verify()
    check = runset.verify(path)
    problems = "; ".join(check.problems)
    return VerifyResult(check.ok, check.events, check.digest, None if check.ok else 0, problems)


def gather(path: str | Path, tz: str) -> RunSummary:
    """Everything the report draws, from the log or run set at `path` alone (its committed
    events; a run set reads as the one log of its run).

    The chain is verified in a second process while this one reads (each costs about as much as
    the other); a log that breaks off is gathered up to where it can be read."""
    context = multiprocessing.get_context("spawn")
    with open_log(path) as log, ProcessPoolExecutor(1, mp_context=context) as pool:
        seq, digest = log.committed()
        verified = pool.submit(_verify, str(path))
        gatherer = _Gatherer(log, tz)
        try:
            gatherer.read(seq + 1)
            gatherer.read_derived(seq + 1)
        except LogDamaged:
            pass  # verify names the first bad record; the page shows what came before it
        return gatherer.summary(str(path), verified.result(), digest, seq, tz)
