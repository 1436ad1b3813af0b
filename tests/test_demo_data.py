"""The demo-data generator: deterministic, true to the calendar, real-looking, any layout alike."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ticktape.scenarios.demo_data import BAD_ROW_KINDS, DEMO, DemoSpec, expected_bars, generate
from ticktape.store.calendar import TradingCalendar

NY = "America/New_York"
SESSIONS = ["2024-11-25", "2024-11-26", "2024-11-27", "2024-11-29", "2024-12-02", "2024-12-03"]
ISO_WITH_OFFSET = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?[+-]\d\d:\d\d$"


def read(path: Path) -> pd.DataFrame:
    """One data file as written: timestamps kept as text."""
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path, dtype={"timestamp": str})


def read_bars(folder: Path) -> pd.DataFrame:
    """All bar files of a folder, ordered by (time, symbol)."""
    files = [p for p in sorted(folder.iterdir()) if "_" not in p.stem]
    bars = pd.concat([read(p) for p in files], ignore_index=True)
    bars["at"] = pd.to_datetime(bars["timestamp"], utc=True)
    return bars.sort_values(["at", "symbol"], kind="stable").reset_index(drop=True)


def local(bars: pd.DataFrame) -> pd.Series:
    return bars["at"].dt.tz_convert(NY)


def regular_only(bars: pd.DataFrame, spec: DemoSpec = DEMO) -> pd.DataFrame:
    """Bars inside [open, close) of their session, from the calendar."""
    ts = bars["at"].dt.tz_convert(None).to_numpy().astype("datetime64[ns]").view(np.int64)
    inside = np.zeros(len(bars), dtype=bool)
    for s in TradingCalendar(spec.calendar).sessions(spec.start, spec.end):
        inside |= (ts >= s.open) & (ts < s.close)
    return bars[inside]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """The default demo data set, as read back from its files."""
    return read_bars(generate(tmp_path_factory.mktemp("demo")))


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_same_spec_same_bytes_other_seed_differs(tmp_path: Path, fmt: str) -> None:
    spec = DemoSpec(trades_per_minute=3, quotes_per_minute=2, bad_rows=4, fmt=fmt)
    first = files_of(generate(tmp_path / "a", spec))
    assert set(first) == {
        f"{s}.{fmt}" for s in ("ACME", "BOLT", "CRUX", "ACME_trades", "ACME_quotes")
    }
    assert files_of(generate(tmp_path / "b", spec)) == first
    other = files_of(generate(tmp_path / "c", DemoSpec(seed=8, fmt=fmt)))
    assert all(other[name] != first[name] for name in other)


def test_thanksgiving_week_sessions(demo: pd.DataFrame) -> None:
    days = sorted(set(local(demo).dt.strftime("%Y-%m-%d")))
    assert days == SESSIONS and "2024-11-28" not in days  # Thanksgiving, and the weekend


def test_early_close_on_the_day_after_thanksgiving(tmp_path: Path) -> None:
    bars = read_bars(generate(tmp_path, DemoSpec(extended_hours=False, gap_rate=0.0)))
    day = local(bars).dt.strftime("%Y-%m-%d")
    friday = local(bars[day == "2024-11-29"]).dt.strftime("%H:%M")
    assert friday.min() == "09:30" and friday.max() == "12:59"
    counts = bars.groupby([bars["symbol"], day]).size()
    assert counts.xs("2024-11-29", level=1).eq(210).all()  # 09:30 to 13:00
    assert counts.drop("2024-11-29", level=1).eq(390).all()


def test_post_market_after_the_early_close_starts_at_the_close(demo: pd.DataFrame) -> None:
    friday = demo[local(demo).dt.strftime("%Y-%m-%d") == "2024-11-29"]
    late = local(friday).dt.strftime("%H:%M")
    assert late.max() < "20:00"
    after = late[late >= "12:59"]
    assert "12:59" in set(after) and (after >= "13:00").sum() > 0
    # after 13:00 it is post-market: sparse, not one bar a minute per symbol
    assert (after >= "13:00").sum() < 0.6 * 3 * 7 * 60


def test_extended_hours_are_sparse_and_leave_regular_bars_alone(
    demo: pd.DataFrame, tmp_path: Path
) -> None:
    times = local(demo).dt.strftime("%H:%M")
    pre = demo[times < "09:30"]
    assert len(pre) > 0 and times.min() >= "04:00" and times.max() < "20:00"
    pre_minutes = 3 * 6 * 330  # symbols x sessions x 04:00-09:30
    assert len(pre) < 0.6 * pre_minutes
    plain = read_bars(generate(tmp_path, DemoSpec(extended_hours=False)))
    pd.testing.assert_frame_equal(regular_only(demo).reset_index(drop=True), plain)


def test_gaps_in_regular_hours(demo: pd.DataFrame, tmp_path: Path) -> None:
    regular = regular_only(demo)
    full = regular_only(read_bars(generate(tmp_path, DemoSpec(gap_rate=0.0))))
    missing = len(full) - len(regular)
    assert 0 < missing < 0.05 * len(full)
    assert set(regular["timestamp"] + regular["symbol"]) < set(full["timestamp"] + full["symbol"])


def test_bars_are_valid(demo: pd.DataFrame) -> None:
    o, h, lo, c, v = (demo[k].to_numpy() for k in ("open", "high", "low", "close", "volume"))
    assert (lo > 0).all() and (lo <= np.minimum(o, c)).all() and (h >= np.maximum(o, c)).all()
    assert demo["volume"].dtype.kind == "i" and (v > 0).all()
    for prices in (o, h, lo, c):
        assert np.allclose(prices, np.round(prices, 2))
    assert demo.groupby("symbol")["open"].first().between(50, 350).all()  # where the walks start
    assert not demo.duplicated(["symbol", "timestamp"]).any()


def test_timestamps_carry_the_offset_and_sit_on_the_minute(demo: pd.DataFrame) -> None:
    assert demo["timestamp"].str.match(ISO_WITH_OFFSET).all()
    assert demo["timestamp"].str.endswith("-05:00").all()  # EST all week
    assert (demo["at"].dt.second == 0).all()


def test_other_time_zone_writes_other_offsets_same_instants(
    demo: pd.DataFrame, tmp_path: Path
) -> None:
    chicago = read_bars(generate(tmp_path, DemoSpec(tz="America/Chicago")))
    assert chicago["timestamp"].str.endswith("-06:00").all()
    assert chicago["timestamp"].iloc[0].startswith("2024-11-25T03:00:00")
    pd.testing.assert_series_equal(chicago["at"], demo["at"])
    cols = ["symbol", "open", "high", "low", "close", "volume"]
    pd.testing.assert_frame_equal(chicago[cols], demo[cols])


@pytest.mark.parametrize(
    ("layout", "fmt", "names"),
    [
        ("by_day", "csv", [f"{day}.csv" for day in SESSIONS]),
        ("single", "csv", ["bars.csv"]),
        ("by_symbol", "parquet", ["ACME.parquet", "BOLT.parquet", "CRUX.parquet"]),
        ("single", "parquet", ["bars.parquet"]),
    ],
)
def test_layouts_and_formats_hold_the_same_rows(
    demo: pd.DataFrame, tmp_path: Path, layout: str, fmt: str, names: list[str]
) -> None:
    folder = generate(tmp_path, DemoSpec(layout=layout, fmt=fmt))
    assert sorted(p.name for p in folder.iterdir()) == names
    pd.testing.assert_frame_equal(read_bars(folder), demo, check_dtype=False)


def test_expected_bars_are_what_is_written(demo: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(expected_bars(), demo.drop(columns="at"))


@pytest.mark.parametrize("layout", ["by_symbol", "by_day", "single"])
def test_bad_rows_each_have_one_fault(tmp_path: Path, layout: str) -> None:
    """The appended rows, one per kind: each breaks one rule, the rest of the file is untouched."""
    n = len(BAD_ROW_KINDS)
    folder = generate(tmp_path, DemoSpec(bad_rows=n, layout=layout))
    first = sorted(folder.iterdir())[0]
    rows = read(first)
    good, bad = rows.iloc[:-n], rows.iloc[-n:].set_axis(list(BAD_ROW_KINDS))
    want = expected_bars(DemoSpec(layout=layout))
    want = want[want["timestamp"].isin(good["timestamp"]) & want["symbol"].isin(good["symbol"])]
    pd.testing.assert_frame_equal(good, want.reset_index(drop=True), check_dtype=False)
    assert (bad["symbol"] == "ACME").all()

    last_good = good[good["symbol"] == "ACME"].iloc[-1]
    assert bad.loc["duplicate_timestamp"].tolist() == last_good.tolist()
    assert np.isnan(bad.loc["nan_close", "close"])
    assert (bad.loc["non_positive_price", ["open", "high", "low", "close"]] <= 0).all()
    assert bad.loc["negative_volume", "volume"] < 0
    r = bad.loc["high_below_low"]
    assert r["high"] < r["low"]
    r = bad.loc["high_below_body"]
    assert r["high"] < max(r["open"], r["close"]) and r["low"] <= min(r["open"], r["close"])
    r = bad.loc["low_above_body"]
    assert r["low"] > min(r["open"], r["close"]) and r["high"] >= max(r["open"], r["close"])
    assert pd.Timestamp(bad.loc["off_grid", "timestamp"]).second == 30
    assert pd.Timestamp(bad.loc["no_timezone", "timestamp"]).tzinfo is None

    # Apart from its own fault, each row is a fine bar stamped after everything else in the file.
    fresh = bad.drop(["duplicate_timestamp", "no_timezone"])
    at = pd.to_datetime(fresh["timestamp"], utc=True)
    assert at.is_monotonic_increasing
    assert (at > pd.to_datetime(good["timestamp"], utc=True).max()).all()
    assert not fresh.drop("negative_volume")["volume"].lt(0).any()


def test_bad_rows_repeat_the_kinds_in_order(tmp_path: Path) -> None:
    n = len(BAD_ROW_KINDS) + 2
    rows = read(generate(tmp_path, DemoSpec(bad_rows=n)) / "ACME.csv")
    assert len(rows) == len(expected_bars().query("symbol == 'ACME'")) + n
    assert np.isnan(rows["close"].iloc[-1])  # the second round's nan_close


def test_trades_sit_inside_their_bars(tmp_path: Path) -> None:
    folder = generate(tmp_path, DemoSpec(trades_per_minute=4))
    trades = read(folder / "ACME_trades.csv")
    assert list(trades.columns) == ["symbol", "timestamp", "price", "size"]
    assert trades["timestamp"].str.match(ISO_WITH_OFFSET).all()
    at = pd.to_datetime(trades["timestamp"], utc=True)
    assert at.is_monotonic_increasing and at.is_unique
    bars = read(folder / "ACME.csv")
    bars.index = pd.to_datetime(bars["timestamp"], utc=True)
    assert len(trades) == 4 * len(bars)
    bar = bars.loc[at.dt.floor("min")]
    assert (trades["price"].to_numpy() >= bar["low"].to_numpy()).all()
    assert (trades["price"].to_numpy() <= bar["high"].to_numpy()).all()
    assert (trades["size"] > 0).all()


def test_quotes_are_sometimes_one_sided(tmp_path: Path) -> None:
    quotes = read(generate(tmp_path, DemoSpec(quotes_per_minute=3)) / "ACME_quotes.csv")
    assert list(quotes.columns) == ["symbol", "timestamp", "bid", "bid_size", "ask", "ask_size"]
    no_bid = (quotes["bid"] == 0) & (quotes["bid_size"] == 0)
    no_ask = (quotes["ask"] == 0) & (quotes["ask_size"] == 0)
    assert no_bid.any() and no_ask.any() and not (no_bid & no_ask).any()
    both = quotes[~no_bid & ~no_ask]
    assert len(both) > len(quotes) / 2 and (both["bid"] < both["ask"]).all()
    assert ((quotes["bid"] > 0) == (quotes["bid_size"] > 0)).all()
    assert pd.to_datetime(quotes["timestamp"], utc=True).is_monotonic_increasing


def test_other_calendars_get_their_own_sessions(tmp_path: Path) -> None:
    spec = DemoSpec(calendar="24/7", start="2024-11-28", end="2024-11-28", gap_rate=0.0, tz="UTC")
    bars = read_bars(generate(tmp_path, spec))
    assert len(bars) == 3 * 1440 and bars["timestamp"].str.endswith("+00:00").all()


@pytest.mark.parametrize(
    "bad",
    [
        DemoSpec(layout="by_week"),
        DemoSpec(fmt="xlsx"),
        DemoSpec(symbols=()),
        DemoSpec(gap_rate=1.5),
        DemoSpec(tz="Mars/Olympus"),
        DemoSpec(start="2024-11-28", end="2024-11-28"),
        DemoSpec(calendar="NOPE"),
    ],
)
def test_bad_spec_is_refused_before_writing(tmp_path: Path, bad: DemoSpec) -> None:
    with pytest.raises(ValueError):
        generate(tmp_path / "out", bad)
    assert not (tmp_path / "out").exists()
