"""Seeded synthetic market data: the bundled demo data set, and the data sets that tests need.

The files mirror the real vendor files in `../shared/realdata` (DESIGN §11 "Input files"):
1-minute bars stamped at the START of their minute, ISO-8601 timestamps with a UTC offset, sparse
pre- and post-market bars, real-looking gaps inside regular hours, and quote updates that often
carry one side only (the other written as 0/0). Sessions come from the exchange calendar, so
holidays and early closes fall where they really do; the only hours written here are the
04:00–20:00 local bounds of extended hours.

Each symbol draws from its own random stream, seeded by (seed, symbol), and bars, trades and
quotes draw from separate streams. A stream draws the same numbers whatever the layout, format,
time zone, extended-hours setting or list of other symbols: those change which rows are written,
or how, never their values.
"""

from __future__ import annotations

import zlib
import zoneinfo
from pathlib import Path

import msgspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ticktape.messages.session import NS_PER_MINUTE, Session
from ticktape.store.calendar import TradingCalendar

NS_PER_SECOND = 1_000_000_000
NS_PER_MS = 1_000_000
MS_PER_MINUTE = 60_000

PRE_MARKET_OPEN = pd.Timedelta(hours=4)  # local time of day, as in the real files
POST_MARKET_CLOSE = pd.Timedelta(hours=20)
EXTENDED_DENSITY = 0.35  # share of extended-hours minutes with a bar (real files: about 0.1 to 0.7)
MINUTE_VOLATILITY = 0.0007  # per regular minute, about 1.4 % a day
EXTENDED_VOLATILITY = 0.0003
OVERNIGHT_VOLATILITY = 0.01
CLOSING_AUCTION = 6.0  # the last regular bar carries the closing auction, as in the real files

BAR_COLUMNS = ("symbol", "timestamp", "open", "high", "low", "close", "volume")
TRADE_COLUMNS = ("symbol", "timestamp", "price", "size")
QUOTE_COLUMNS = ("symbol", "timestamp", "bid", "bid_size", "ask", "ask_size")
LAYOUTS = ("by_symbol", "by_day", "single")
FORMATS = ("csv", "parquet")

# The faults of the rows that `bad_rows` appends, in the order they are appended (then repeated).
BAD_ROW_KINDS = (
    "duplicate_timestamp",  # an exact copy of the symbol's last good bar in the file
    "nan_close",  # close is NaN
    "non_positive_price",  # open = high = low = close = 0
    "negative_volume",  # volume is -100
    "high_below_low",  # high and low swapped (so high is also below the body, and low above it)
    "high_below_body",  # high < close; low is fine
    "low_above_body",  # low > close; high is fine
    "off_grid",  # stamped 30 s past the minute
    "no_timezone",  # local wall time with no UTC offset
)


class DemoSpec(msgspec.Struct, frozen=True):
    """What to generate. The defaults make the bundled demo: Thanksgiving week 2024 on XNYS."""

    symbols: tuple[str, ...] = ("ACME", "BOLT", "CRUX")
    start: str = "2024-11-25"  # first and last calendar dates (inclusive); only sessions get data
    end: str = "2024-12-03"
    calendar: str = "XNYS"
    seed: int = 7
    gap_rate: float = 0.01  # share of regular-hours minutes with no bar
    extended_hours: bool = True  # also pre-market (from 04:00 local), post-market (to 20:00) bars
    trades_per_minute: int = 0  # >0: a trades file for the first symbol
    quotes_per_minute: int = 0  # >0: a quotes file for the first symbol, some quotes one-sided
    tz: str = "America/New_York"  # the UTC offset written in timestamps; the instants stay the same
    layout: str = "by_symbol"  # "by_symbol" | "by_day" | "single"
    fmt: str = "csv"  # "csv" | "parquet"
    bad_rows: int = 0  # >0: append that many bad rows (BAD_ROW_KINDS) to the first bar file


DEMO = DemoSpec()  # the bundled demo data set


def generate(folder: str | Path, spec: DemoSpec = DEMO) -> Path:
    """Write the data set of `spec` into `folder` (created if needed) and return the folder.

    Bar files by layout: `<SYM>.<fmt>`, `<YYYY-MM-DD>.<fmt>` (one per session, all symbols) or
    `bars.<fmt>`. Ticks of the first symbol go to `<SYM>_trades.<fmt>` and `<SYM>_quotes.<fmt>`.
    Existing files of other names are left alone.
    """
    _check(spec)
    tape = _tape(spec)  # refuses an unknown calendar or empty date range before writing anything
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files = _bar_files(_bars(tape, spec), spec)
    if spec.bad_rows:
        first = next(iter(files))
        files[first] = pd.concat([files[first], _bad_rows(files[first], spec)], ignore_index=True)
    for name, frame in files.items():
        _write(frame[list(BAR_COLUMNS)], folder / f"{name}.{spec.fmt}", spec.fmt)
    symbol = spec.symbols[0]
    if spec.trades_per_minute:
        _write(_trades(tape, spec), folder / f"{symbol}_trades.{spec.fmt}", spec.fmt)
    if spec.quotes_per_minute:
        _write(_quotes(tape, spec), folder / f"{symbol}_quotes.{spec.fmt}", spec.fmt)
    return folder


def expected_bars(spec: DemoSpec = DEMO) -> pd.DataFrame:
    """Every bar `generate(spec)` writes, bad rows excluded, ordered by (time, symbol).

    Columns are BAR_COLUMNS, with `timestamp` as the exact text written.
    """
    _check(spec)
    return _bars(_tape(spec), spec)[list(BAR_COLUMNS)].reset_index(drop=True)


def _check(spec: DemoSpec) -> None:
    """Refuse a bad spec with one sentence, before anything is written."""
    if not spec.symbols or len(set(spec.symbols)) != len(spec.symbols):
        raise ValueError(
            f"symbols must be a non-empty list of distinct names, got {spec.symbols!r}"
        )
    if spec.layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {spec.layout!r}")
    if spec.fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {', '.join(FORMATS)}, got {spec.fmt!r}")
    if not 0.0 <= spec.gap_rate < 1.0:
        raise ValueError(f"gap_rate must be in [0, 1), got {spec.gap_rate!r}")
    for name in ("trades_per_minute", "quotes_per_minute"):
        if not 0 <= getattr(spec, name) <= MS_PER_MINUTE:
            raise ValueError(f"{name} must be between 0 and {MS_PER_MINUTE}")
    if spec.bad_rows < 0:
        raise ValueError(f"bad_rows must be >= 0, got {spec.bad_rows!r}")
    try:
        zoneinfo.ZoneInfo(spec.tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {spec.tz!r}") from None


# --- the tape: every minute of every session for every symbol, with or without a bar ------------


def _rng(spec: DemoSpec, symbol: str, stream: int) -> np.random.Generator:
    """One stream per (seed, symbol, kind): no setting shifts another symbol's or kind's numbers."""
    return np.random.default_rng([spec.seed, zlib.crc32(symbol.encode()), stream])


def _session_minutes(session: Session, tz: str) -> tuple[np.ndarray, np.ndarray]:
    """Minute starts (ns UTC) from pre-market open to post-market close, and which are regular.

    Extended hours are 04:00 to 20:00 local, clipped to the session's data window so that calendars
    with overnight or 24-hour sessions simply get no extended minutes. A midday break is not
    regular: its minutes get bars only with extended hours, like the pre-market's.
    """
    midnight = pd.Timestamp(session.label, tz=tz)
    pre = max((midnight + PRE_MARKET_OPEN).value, session.window_start)
    pre = min(-(-pre // NS_PER_MINUTE) * NS_PER_MINUTE, session.open)  # round up onto the grid
    post = max(min((midnight + POST_MARKET_CLOSE).value, session.window_end), session.close)
    start = np.arange(pre, post, NS_PER_MINUTE, dtype=np.int64)
    return start, session.regular(start)


def _tape(spec: DemoSpec) -> pd.DataFrame:
    """All minutes of all sessions for each symbol, with the bar each would have and if it does."""
    calendar = TradingCalendar(spec.calendar)
    sessions = calendar.sessions(spec.start, spec.end)
    if not sessions:
        raise ValueError(f"no {spec.calendar} sessions between {spec.start} and {spec.end}")
    grids = [_session_minutes(s, calendar.tz) for s in sessions]
    parts: list[pd.DataFrame] = []
    for symbol in spec.symbols:
        rng = _rng(spec, symbol, 0)
        price = rng.uniform(50.0, 300.0)
        base_volume = rng.uniform(5_000.0, 60_000.0)
        for session, (start, regular) in zip(sessions, grids, strict=True):
            price *= np.exp(rng.standard_normal() * OVERNIGHT_VOLATILITY)
            minutes = _session_tape(rng, regular, price, base_volume, spec.gap_rate)
            price = minutes.pop("last_price")
            frame = pd.DataFrame({"ts": start, "regular": regular, **minutes})
            parts.append(frame.assign(symbol=symbol, day=session.label))
    return pd.concat(parts, ignore_index=True)


def _session_tape(
    rng: np.random.Generator,
    regular: np.ndarray,
    price: float,
    base_volume: float,
    gap_rate: float,
) -> dict[str, np.ndarray | float]:
    """OHLCV and presence of one symbol's bars for each minute of one session, vectorized.

    Prices are a geometric random walk through every minute (gaps included: a real price moves on
    when nobody trades), floored at 1.00 and rounded to cents. Rounding is monotone, so OHLC stays
    valid. Volume is U-shaped over regular hours, with the closing auction in the last bar, and
    a few odd lots outside them.
    """
    n = len(regular)
    sigma = np.where(regular, MINUTE_VOLATILITY, EXTENDED_VOLATILITY)
    path = price * np.exp(np.concatenate([[0.0], np.cumsum(rng.standard_normal(n) * sigma)]))
    wick = np.abs(rng.standard_normal((2, n))) * sigma / 2
    drawn = rng.random(n)
    noise = rng.lognormal(0.0, 0.4, n)
    volume = (rng.integers(1, 30, n) * 100).astype(np.float64)

    open_, close = path[:-1], path[1:]
    high = np.maximum(open_, close) * (1 + wick[0])
    low = np.minimum(open_, close) * (1 - wick[1])
    present = np.where(regular, drawn >= gap_rate, drawn < EXTENDED_DENSITY)
    hours = np.flatnonzero(regular)
    if len(hours):
        present[hours[[0, -1]]] = True  # the opening and closing prints always happen
        x = np.linspace(-1.0, 1.0, len(hours))
        volume[hours] = base_volume * (1 + 3 * x**2) * noise[hours]
        volume[hours[-1]] *= CLOSING_AUCTION
    prices = {"open": open_, "high": high, "low": low, "close": close}
    return {
        "present": present,
        **{name: np.round(np.maximum(value, 1.0), 2) for name, value in prices.items()},
        "volume": np.maximum(np.round(volume), 1).astype(np.int64),
        "last_price": float(path[-1]),
    }


def _in_hours(tape: pd.DataFrame, spec: DemoSpec) -> pd.DataFrame:
    return tape if spec.extended_hours else tape[tape["regular"]]


def _bars(tape: pd.DataFrame, spec: DemoSpec) -> pd.DataFrame:
    """The bars to write, by (time, symbol), with their timestamp text; `ts` and `day` kept."""
    bars = _in_hours(tape, spec)
    bars = bars[bars["present"]]
    bars = bars.iloc[np.lexsort((bars["symbol"].to_numpy(), bars["ts"].to_numpy()))].copy()
    bars["timestamp"] = _iso(bars["ts"].to_numpy(), spec.tz, "s")
    return bars


def _bar_files(bars: pd.DataFrame, spec: DemoSpec) -> dict[str, pd.DataFrame]:
    """File stem -> its rows; the first entry is the file that bad rows go into."""
    if spec.layout == "single":
        return {"bars": bars}
    if spec.layout == "by_day":
        return {day: rows for day, rows in bars.groupby("day", sort=True)}
    return {symbol: bars[bars["symbol"] == symbol] for symbol in spec.symbols}


# --- ticks of the first symbol ------------------------------------------------------------------


def _tick_times(rng: np.random.Generator, minutes: np.ndarray, per_minute: int) -> np.ndarray:
    """`per_minute` strictly increasing ms stamps inside each minute, one per equal slot."""
    slot = MS_PER_MINUTE // per_minute
    offsets = np.arange(per_minute) * slot + rng.integers(0, slot, (len(minutes), per_minute))
    return (minutes[:, None] + offsets * NS_PER_MS).ravel()


def _trades(tape: pd.DataFrame, spec: DemoSpec) -> pd.DataFrame:
    """Trades inside the minutes that have a bar, within its range; the first and last print its
    open and close, so the bars read as if built from these trades (volumes are not matched)."""
    symbol, k = spec.symbols[0], spec.trades_per_minute
    bars = _bars(tape[tape["symbol"] == symbol], spec)
    rng = _rng(spec, symbol, 1)
    ts = _tick_times(rng, bars["ts"].to_numpy(), k)
    low, high = bars["low"].to_numpy()[:, None], bars["high"].to_numpy()[:, None]
    price = np.round(low + (high - low) * rng.random((len(bars), k)), 2)
    price[:, 0] = bars["open"].to_numpy()
    price[:, -1] = bars["close"].to_numpy()
    size = rng.integers(1, 10, (len(bars), k)) * 100
    return pd.DataFrame(
        {
            "symbol": symbol,
            "timestamp": _iso(ts, spec.tz, "ms"),
            "price": price.ravel(),
            "size": size.ravel(),
        }
    )


def _quotes(tape: pd.DataFrame, spec: DemoSpec) -> pd.DataFrame:
    """Quotes in every minute of the hours, gaps included (quotes go on when nobody trades).

    A fifth are bid-only and a fifth ask-only, the absent side written as 0/0 as in the real files.
    Two-sided quotes have a spread of 1 to 5 cents around a mid inside the minute's range.
    """
    symbol, k = spec.symbols[0], spec.quotes_per_minute
    minutes = _in_hours(tape[tape["symbol"] == symbol], spec)
    rng = _rng(spec, symbol, 2)
    ts = _tick_times(rng, minutes["ts"].to_numpy(), k)
    low = np.repeat(minutes["low"].to_numpy(), k)
    high = np.repeat(minutes["high"].to_numpy(), k)
    n = len(ts)
    mid = low + (high - low) * rng.random(n)
    spread = rng.integers(1, 6, n)
    bid = np.round(mid - spread * 0.005, 2)
    ask = np.round(bid + spread * 0.01, 2)
    bid_size = rng.integers(1, 50, n) * 100
    ask_size = rng.integers(1, 50, n) * 100
    side = rng.random(n)
    ask_absent, bid_absent = side < 0.2, (side >= 0.2) & (side < 0.4)
    ask[ask_absent], ask_size[ask_absent] = 0.0, 0
    bid[bid_absent], bid_size[bid_absent] = 0.0, 0
    return pd.DataFrame(
        {
            "symbol": symbol,
            "timestamp": _iso(ts, spec.tz, "ms"),
            "bid": bid,
            "bid_size": bid_size,
            "ask": ask,
            "ask_size": ask_size,
        }
    )


# --- bad rows ------------------------------------------------------------------------------------


def _bad_rows(file_bars: pd.DataFrame, spec: DemoSpec) -> pd.DataFrame:
    """`spec.bad_rows` rows for the end of a bar file, each with exactly one fault (BAD_ROW_KINDS).

    Apart from the duplicate, each row is stamped at a fresh minute after the file's last row (so
    it is neither out of order nor a duplicate) and is otherwise a plausible bar of the first
    symbol. The duplicate repeats that symbol's last good bar; appended first, it directly follows
    its original in a by-symbol file. When kinds repeat (bad_rows > len(BAD_ROW_KINDS)), a later
    duplicate comes after later-stamped rows: a validator that compares each row with the last
    *accepted* row of its symbol still sees only the duplicate.
    """
    symbol = spec.symbols[0]
    last_good = file_bars[file_bars["symbol"] == symbol].iloc[-1]
    after = int(file_bars["ts"].max())
    p = float(last_good["close"])
    rows = []
    for i in range(spec.bad_rows):
        kind = BAD_ROW_KINDS[i % len(BAD_ROW_KINDS)]
        ts = after + (i + 1) * NS_PER_MINUTE
        row = {"symbol": symbol, "ts": ts, "open": p, "high": p + 0.05, "low": p - 0.05, "close": p}
        row["volume"] = 100
        if kind == "duplicate_timestamp":
            row = {name: last_good[name] for name in ("ts", *BAR_COLUMNS)}
        elif kind == "nan_close":
            row["close"] = float("nan")
        elif kind == "non_positive_price":
            row.update(open=0.0, high=0.0, low=0.0, close=0.0)
        elif kind == "negative_volume":
            row["volume"] = -100
        elif kind == "high_below_low":
            row.update(high=p - 0.05, low=p + 0.05)
        elif kind == "high_below_body":
            row["close"] = p + 0.10
        elif kind == "low_above_body":
            row["close"] = p - 0.10
        elif kind == "off_grid":
            row["ts"] = ts + 30 * NS_PER_SECOND
        if "timestamp" not in row:
            row["timestamp"] = str(_iso(np.array([row["ts"]]), spec.tz, "s")[0])
        if kind == "no_timezone":
            row["timestamp"] = row["timestamp"][:-6]  # drop the "+HH:MM"
        rows.append(row)
    bad = pd.DataFrame(rows)
    for name in ("open", "high", "low", "close"):
        bad[name] = bad[name].astype(np.float64).round(2)
    bad["volume"] = bad["volume"].astype(np.int64)
    return bad


# --- writing -------------------------------------------------------------------------------------


def _iso(ns: np.ndarray, tz: str, unit: str) -> np.ndarray:
    """ISO-8601 text of ns-UTC instants as wall time in `tz` plus its UTC offset, vectorized.

    `unit` is "s" for bars and "ms" for ticks, as in the real files.
    """
    ns = np.asarray(ns, dtype=np.int64)
    wall = pd.to_datetime(ns, utc=True).tz_convert(tz).tz_localize(None).asi8
    text = np.datetime_as_string(wall.view("datetime64[ns]").astype(f"datetime64[{unit}]"))
    offsets, which = np.unique((wall - ns) // NS_PER_SECOND // 60, return_inverse=True)
    suffix = np.array(
        [f"{'-' if m < 0 else '+'}{abs(m) // 60:02d}:{abs(m) % 60:02d}" for m in offsets]
    )
    return np.char.add(text, suffix[which])


def _write(frame: pd.DataFrame, path: Path, fmt: str) -> None:
    """CSV without index or quotes (like the real files), or Parquet; byte-stable for one spec."""
    if fmt == "csv":
        frame.to_csv(path, index=False, lineterminator="\n", na_rep="NaN")
    else:
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
