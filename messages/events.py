"""The event catalog (DESIGN §11): every fact the log can hold.

Events are frozen, tagged, array-like msgspec Structs. Array-like keeps records small and lets the
columnar encoder in `messages.codec` write bars, trades and quotes without building one object per
row. Schema evolution rule: new fields go at the end, with defaults, so old logs stay readable.

Every event carries `ts`: the simulated time, int ns UTC, at which it happened.
"""

from __future__ import annotations

import msgspec

SCHEMA_VERSION = 2


class Event(msgspec.Struct, frozen=True, tag=True, array_like=True):
    ts: int


class RunStarted(Event, frozen=True, tag=True, array_like=True):
    """The settings that change what is released; paths, speed, wall times and the sha256 of
    every file read stay in the manifest. The data itself is chained as it is released."""

    symbols: tuple[str, ...]
    start: str
    end: str
    calendar: str
    extended_hours: bool
    derived: tuple[int, ...]
    trailing_days: int
    gap_policy: str
    backfill: bool
    label: str
    inputs: tuple[str, ...] = ()  # schema 1 only: sha256 of every input file
    schema: int = SCHEMA_VERSION
    backfill_inputs: tuple[str, ...] = ()  # schema 1 only
    fill_retries: int = 3


class RunFinished(Event, frozen=True, tag=True, array_like=True):
    sessions: int
    bars: int


class Bar(Event, frozen=True, tag=True, array_like=True):
    """A released 1-minute bar, stamped with the start of its interval."""

    symbol: str
    ts_start: int
    open: float
    high: float
    low: float
    close: float
    volume: float


class Trade(Event, frozen=True, tag=True, array_like=True):
    symbol: str
    price: float
    size: float


class Quote(Event, frozen=True, tag=True, array_like=True):
    """A quote update; a side with price 0 and size 0 is absent (one-sided update)."""

    symbol: str
    bid: float
    bid_size: float
    ask: float
    ask_size: float


class TimeAdvanced(Event, frozen=True, tag=True, array_like=True):
    """Simulated time moved forward to `ts`."""


class SessionOpened(Event, frozen=True, tag=True, array_like=True):
    session: str
    open: int
    close: int
    early_close: bool


class SessionClosed(Event, frozen=True, tag=True, array_like=True):
    session: str
    bars: int  # 1m bars released in the session
    left_out: int  # input rows outside regular hours, kept out of the stream


class DerivedBar(Event, frozen=True, tag=True, array_like=True):
    symbol: str
    ts_start: int
    interval: int  # minutes
    open: float
    high: float
    low: float
    close: float
    volume: float
    bars: int  # 1m bars it was built from
    filled: int  # of which filled by backfill or forward-fill


class DerivedBarRevised(DerivedBar, frozen=True, tag=True, array_like=True):
    """A fill changed a derived bar that was already released; this is its new value."""


class GapDetected(Event, frozen=True, tag=True, array_like=True):
    """No 1m bar for `ts_start` once its minute had passed."""

    symbol: str
    ts_start: int


class GapFilled(Event, frozen=True, tag=True, array_like=True):
    """A gap got a bar: from the backfill repository, or synthetic (forward-fill, volume 0)."""

    symbol: str
    ts_start: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    synthetic: bool


class QualityUpdated(Event, frozen=True, tag=True, array_like=True):
    symbol: str
    session: str
    expected: int
    real: int
    filled: int
    synthetic: int
    quality: float  # (real + filled) / expected


class DataRejected(Event, frozen=True, tag=True, array_like=True):
    reason: str
    file: str  # name relative to the data folder, never an absolute path
    row: int  # 1-based data row; 0 for the whole file
    symbol: str = ""


class Paused(Event, frozen=True, tag=True, array_like=True):
    pass


class Resumed(Event, frozen=True, tag=True, array_like=True):
    pass


class Stopped(Event, frozen=True, tag=True, array_like=True):
    pass


class Stepped(Event, frozen=True, tag=True, array_like=True):
    """A control input: while paused, exactly one slice was released."""


class TrailingBars(Event, frozen=True, tag=True, array_like=True):
    """One trailing-history session's regular-hours 1m bars, as columns, so a replay can rebuild
    the history from the log alone. Columns are little-endian bytes: `symbol` int32 ids into
    `RunStarted.symbols`, `ts_start` int64, prices and volume float64."""

    session: str
    session_open: int
    session_close: int
    early_close: bool
    symbol: bytes
    ts_start: bytes
    open: bytes
    high: bytes
    low: bytes
    close: bytes
    volume: bytes


class SessionBreak(Event, frozen=True, tag=True, array_like=True):
    """A session's midday break: regular hours pause at `break_start` and resume at `break_end`.

    Written right after the `SessionOpened` (or `TrailingBars`) of a session that has a break,
    and only then, so a replay rebuilds the same regular hours from the log alone."""

    session: str
    break_start: int
    break_end: int


class ActorFailed(Event, frozen=True, tag=True, array_like=True):
    actor: str
    error: str


AnyEvent = (
    RunStarted
    | RunFinished
    | Bar
    | Trade
    | Quote
    | TimeAdvanced
    | SessionOpened
    | SessionClosed
    | DerivedBar
    | DerivedBarRevised
    | GapDetected
    | GapFilled
    | QualityUpdated
    | DataRejected
    | Paused
    | Resumed
    | Stopped
    | ActorFailed
    | Stepped
    | TrailingBars
    | SessionBreak
)

EVENT_TYPES: dict[str, type[Event]] = {t.__name__: t for t in AnyEvent.__args__}
