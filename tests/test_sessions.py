"""Many sessions: day transitions, holidays, early closes, gaps, fills, derived bars, history."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.helpers import ET, REAL_SYMBOLS, bar_files_only, config, file_bars, of_kind, read, run
from ticktape.actors.system import System
from ticktape.scenarios.demo_data import DemoSpec, generate
from ticktape.store.calendar import TradingCalendar
from ticktape.store.eventlog import EventLog

MINUTE = 60_000_000_000
WEEK = {"start": "2013-10-04", "end": "2013-10-11"}


@pytest.fixture(scope="module")
def real_week(realdata: Path, tmp_path_factory: pytest.TempPathFactory) -> list:
    tmp = tmp_path_factory.mktemp("week")
    data = bar_files_only(realdata, tmp / "data")
    run(config(data, tmp / "log", **WEEK))
    return read(tmp / "log")


@pytest.fixture(scope="module")
def realdata() -> Path:  # module scope for the shared run above
    from tests.conftest import REALDATA

    if not (REALDATA / "SPY.csv").exists():
        pytest.skip("../shared/realdata is not present")
    return REALDATA


@pytest.fixture(scope="module")
def week_files(realdata: Path) -> pd.DataFrame:
    frame = file_bars([realdata / f"{s}.csv" for s in REAL_SYMBOLS])
    return frame[frame.regular]


def test_real_week_opens_and_closes_six_sessions(real_week: list) -> None:
    opened = of_kind(real_week, "SessionOpened")
    closed = of_kind(real_week, "SessionClosed")
    labels = ["2013-10-04", "2013-10-07", "2013-10-08", "2013-10-09", "2013-10-10", "2013-10-11"]
    assert [s.session for s in opened] == labels
    assert [s.session for s in closed] == labels
    assert all(not s.early_close for s in opened)
    kinds = [type(e).__name__ for e in real_week]
    for label in labels:  # each session opens before its data and closes after it
        o = next(i for i, e in enumerate(real_week) if getattr(e, "session", None) == label)
        assert kinds[o] == "SessionOpened" and kinds[o - 1] == "TimeAdvanced"
    assert closed[0].ts == opened[0].close  # time moved to the close first


def test_real_week_releases_every_regular_hours_bar(
    real_week: list, week_files: pd.DataFrame
) -> None:
    bars = of_kind(real_week, "Bar")
    assert sorted((b.symbol, b.ts_start) for b in bars) == sorted(
        zip(week_files.symbol, week_files.ts_start, strict=True)
    )
    assert of_kind(real_week, "RunFinished")[0].bars == len(week_files)


def test_real_week_gaps_are_exactly_the_missing_minutes(
    real_week: list, week_files: pd.DataFrame
) -> None:
    calendar = TradingCalendar()
    expected = set()
    present = set(zip(week_files.symbol, week_files.ts_start, strict=True))
    for session in calendar.sessions(WEEK["start"], WEEK["end"]):
        for m in range(session.open, session.close, MINUTE):
            expected |= {(s, m) for s in REAL_SYMBOLS if (s, m) not in present}
    gaps = {(g.symbol, g.ts_start) for g in of_kind(real_week, "GapDetected")}
    assert gaps == expected
    assert len(expected) == 3  # AIG once, IBM twice: real market gaps
    for gap in of_kind(real_week, "GapDetected"):
        assert gap.ts >= gap.ts_start + MINUTE  # only once its minute has passed


@pytest.mark.parametrize("interval", [5, 15])
def test_real_week_derived_bars_equal_an_independent_resample(
    real_week: list, week_files: pd.DataFrame, interval: int
) -> None:
    reference = []
    for (symbol, _), day in week_files.groupby(["symbol", "day"]):
        frame = day.set_index(pd.to_datetime(day.ts_start, utc=True).dt.tz_convert(ET))
        open_ = frame.index[0].normalize() + pd.Timedelta(hours=9, minutes=30)
        sampled = frame.resample(f"{interval}min", origin=open_, label="left").agg(
            {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
        )
        sampled = sampled.dropna(subset=["open"])
        for start, row in sampled.iterrows():
            reference.append(
                (symbol, start.value, row.open, row.high, row.low, row.close, float(row.volume))
            )
    derived = [d for d in of_kind(real_week, "DerivedBar") if d.interval == interval]
    got = [(d.symbol, d.ts_start, d.open, d.high, d.low, d.close, d.volume) for d in derived]
    assert sorted(got) == sorted(reference)
    assert all(d.ts == d.ts_start + interval * MINUTE for d in derived)  # released at its end


def test_real_week_quality(real_week: list) -> None:
    final = {}
    for q in of_kind(real_week, "QualityUpdated"):
        final[(q.symbol, q.session)] = q
    assert final[("AIG", "2013-10-07")].real == 389
    assert final[("AIG", "2013-10-07")].quality == pytest.approx(389 / 390)
    assert final[("SPY", "2013-10-07")].quality == 1.0
    assert len(final) == 6 * 4


def test_thanksgiving_week_holiday_and_early_close(tmp_path: Path) -> None:
    data = generate(tmp_path / "data", DemoSpec(start="2024-11-26", end="2024-12-02"))
    log = tmp_path / "log"
    run(config(data, log, symbols=DemoSpec().symbols, start="2024-11-26", end="2024-12-02"))
    events = read(log)
    opened = of_kind(events, "SessionOpened")
    assert [s.session for s in opened] == ["2024-11-26", "2024-11-27", "2024-11-29", "2024-12-02"]
    assert [s.early_close for s in opened] == [False, False, True, False]
    friday = opened[2]
    assert pd.Timestamp(friday.close, tz="UTC").tz_convert(ET).strftime("%H:%M") == "13:00"
    bars_friday = [
        b
        for b in of_kind(events, "Bar")
        if friday.open <= b.ts_start < friday.open + 86_400 * 10**9
    ]
    assert bars_friday and max(b.ts_start for b in bars_friday) < friday.close
    derived_friday = [
        d for d in of_kind(events, "DerivedBar") if friday.open <= d.ts_start < friday.close
    ]
    for interval in (5, 15):
        last = max(d.ts_start + interval * MINUTE for d in derived_friday if d.interval == interval)
        assert last == friday.close
    closed = of_kind(events, "SessionClosed")
    assert closed[2].ts == friday.close


def test_other_time_zone_lands_on_the_same_sessions(tmp_path: Path) -> None:
    spec = DemoSpec(start="2024-11-27", end="2024-11-29", extended_hours=True)
    chicago = DemoSpec(
        start="2024-11-27", end="2024-11-29", extended_hours=True, tz="America/Chicago"
    )
    logs = []
    for name, s in (("ny", spec), ("chi", chicago)):
        data = generate(tmp_path / name, s)
        logs.append(tmp_path / f"{name}.log")
        run(config(data, logs[-1], symbols=s.symbols, start=s.start, end=s.end))
    ny, chi = (read(p) for p in logs)
    assert ny == chi  # different bytes in the files, the same facts


def test_lossy_feed_is_filled_from_the_backfill_repository(realdata: Path, tmp_path: Path) -> None:
    spy = pd.read_csv(realdata / "SPY.csv")
    stamp = pd.to_datetime(spy.timestamp, utc=True).dt.tz_convert(ET)
    minutes = stamp.dt.hour * 60 + stamp.dt.minute
    regular = np.flatnonzero(((minutes >= 570) & (minutes < 960)).to_numpy())
    rng = np.random.default_rng(20131004)
    dropped = np.sort(rng.choice(regular, size=round(0.02 * len(regular)), replace=False))
    lossy = tmp_path / "lossy"
    lossy.mkdir()
    spy.drop(index=dropped).to_csv(lossy / "SPY.csv", index=False)
    log = tmp_path / "log"
    with System(config(lossy, log, symbols=("SPY",), backfill=str(realdata), **WEEK)) as system:
        system.start()
        system.wait(timeout=120)
        metrics = system.query("session_metrics", "SPY")  # the last session
    events = read(log)
    friday = pd.to_datetime(spy.timestamp.iloc[dropped], utc=True).dt.tz_convert(ET).dt.day == 11
    assert metrics["filled"] == int(friday.sum()) and metrics["real"] + metrics["filled"] == 390
    assert metrics["quality"] == 1.0

    dropped_minutes = set(
        pd.to_datetime(spy.timestamp.iloc[dropped], utc=True).dt.as_unit("ns").astype("int64")
    )
    assert {g.ts_start for g in of_kind(events, "GapDetected")} == dropped_minutes
    filled = of_kind(events, "GapFilled")
    assert {f.ts_start for f in filled} == dropped_minutes
    assert not any(f.synthetic for f in filled)
    assert not of_kind(events, "DerivedBarRevised")  # filled before the derived bars were built
    final = {q.session: q for q in of_kind(events, "QualityUpdated")}
    assert len(final) == 6 and all(q.quality == 1.0 for q in final.values())
    assert sum(q.filled for q in final.values()) == len(dropped) > 20


def test_forward_fill_adds_flagged_synthetic_bars(tmp_path: Path) -> None:
    spec = DemoSpec(start="2024-11-26", end="2024-11-26", gap_rate=0.05, extended_hours=False)
    data = generate(tmp_path / "data", spec)
    log = tmp_path / "log"
    run(
        config(
            data,
            log,
            symbols=spec.symbols,
            start=spec.start,
            end=spec.end,
            gap_policy="forward-fill",
        )
    )
    events = read(log)
    gaps = of_kind(events, "GapDetected")
    filled = of_kind(events, "GapFilled")
    assert len(gaps) > 10 and len(filled) == len(gaps)
    assert all(f.synthetic and f.volume == 0 and f.open == f.close for f in filled)
    assert not any(b.volume == 0 for b in of_kind(events, "Bar"))  # synthetic bars are not Bars
    final = {q.symbol: q for q in of_kind(events, "QualityUpdated")}
    assert all(q.quality < 1.0 and q.synthetic > 0 for q in final.values())


def test_session_without_data_still_opens_and_closes_with_quality_zero(
    realdata: Path, tmp_path: Path
) -> None:
    spy = pd.read_csv(realdata / "SPY.csv")
    data = tmp_path / "data"
    data.mkdir()
    spy[~spy.timestamp.str.startswith("2013-10-08")].to_csv(data / "SPY.csv", index=False)
    log = tmp_path / "log"
    run(config(data, log, symbols=("SPY",), start="2013-10-07", end="2013-10-09"))
    events = read(log)
    assert [s.session for s in of_kind(events, "SessionClosed")] == [
        "2013-10-07",
        "2013-10-08",
        "2013-10-09",
    ]
    final = {q.session: q for q in of_kind(events, "QualityUpdated")}
    assert final["2013-10-08"].quality == 0.0 and final["2013-10-08"].expected == 390
    assert final["2013-10-09"].quality == 1.0


def test_custom_derived_intervals(realdata: Path, tmp_path: Path) -> None:
    data = bar_files_only(realdata, tmp_path / "data", ("SPY",))
    run(config(data, tmp_path / "log", symbols=("SPY",), derived=(3, 30)))
    derived = of_kind(read(tmp_path / "log"), "DerivedBar")
    assert {d.interval for d in derived} == {3, 30}
    assert (
        sum(d.interval == 3 for d in derived) == 130
        and sum(d.interval == 30 for d in derived) == 13
    )


def test_extended_hours_keeps_pre_and_post_market(realdata: Path, tmp_path: Path) -> None:
    data = bar_files_only(realdata, tmp_path / "data", ("SPY",))
    run(config(data, tmp_path / "log", symbols=("SPY",), extended_hours=True))
    events = read(tmp_path / "log")
    frame = file_bars([data / "SPY.csv"])
    day = frame[frame.day == "2013-10-07"]
    assert len(of_kind(events, "Bar")) == len(day) > 390
    assert of_kind(events, "SessionClosed")[0].left_out == 0
    assert not of_kind(events, "GapDetected")


def test_trailing_history_answers_across_sessions(realdata: Path, tmp_path: Path) -> None:
    data = bar_files_only(realdata, tmp_path / "data")
    cfg = config(data, tmp_path / "log", start="2013-10-09", end="2013-10-10", trailing_days=2)
    with System(cfg) as system:
        system.start()
        system.wait(timeout=120)
        bars = system.query("bars", "SPY")
        days = pd.to_datetime(bars.ts_start, utc=True).tz_convert(ET).strftime("%Y-%m-%d")
        # current session plus two previous ones (rolled: 10-08 was history, now 10-09 is too)
        assert sorted(set(days)) == ["2013-10-08", "2013-10-09", "2013-10-10"]
        assert len(bars) == 3 * 390
        last = system.query("last_bars", "SPY", 400)
        assert len(last) == 400 and last.ts_start[0] < system.sessions[-1].open
        fifteen = system.query("last_bars", "SPY", 30, interval=15)
        assert len(fifteen) == 30 and np.all(np.diff(fifteen.ts_start) > 0)
        metrics = system.query("session_metrics", "SPY")
        assert metrics["real"] == 390 and metrics["quality"] == 1.0
        assert metrics["volume"] == pytest.approx(
            file_bars([data / "SPY.csv"]).query("regular and day == '2013-10-10'").volume.sum()
        )


def test_retained_memory_is_flat_over_many_sessions(tmp_path: Path) -> None:
    retained = {}
    for sessions, (start, end) in {
        5: ("2024-01-02", "2024-01-08"),
        40: ("2024-01-02", "2024-02-28"),
    }.items():
        spec = DemoSpec(start=start, end=end, extended_hours=False)
        data = generate(tmp_path / f"data{sessions}", spec)
        cfg = config(
            data,
            tmp_path / f"log{sessions}",
            symbols=spec.symbols,
            start=start,
            end=end,
            trailing_days=2,
        )
        with System(cfg) as system:
            system.start()
            totals = system.wait(timeout=300)
            assert totals.sessions == len(TradingCalendar().sessions(start, end))
            retained[sessions] = system.query("retained_bytes")
    assert retained[40] == retained[5]


def test_backfill_is_part_of_the_facts_and_its_bad_rows_are_logged(
    realdata: Path, tmp_path: Path
) -> None:
    spy = pd.read_csv(realdata / "SPY.csv")
    day = spy[spy.timestamp.str.startswith("2013-10-07")]
    lossy, backfill = tmp_path / "lossy", tmp_path / "backfill"
    lossy.mkdir()
    backfill.mkdir()
    missing = day.index[day.timestamp.str.contains("T10:0[0-2]:00")]
    day.drop(index=missing).to_csv(lossy / "SPY.csv", index=False)
    bad = day.loc[[missing[0]]].assign(close=float("nan"))
    pd.concat([day.drop(index=missing[0]), bad]).to_csv(backfill / "SPY.csv", index=False)

    log = tmp_path / "log"
    run(config(lossy, log, symbols=("SPY",), backfill=str(backfill)))
    events = read(log)
    with EventLog.open(log) as opened:
        assert list(opened.manifest()["backfill_inputs"]) == ["SPY.csv"]
    rejected = of_kind(events, "DataRejected")
    assert [(r.file, r.reason) for r in rejected] == [("SPY.csv", "NaN price")]
    assert len(of_kind(events, "GapFilled")) == 2  # the bad row is not a fill
    with pytest.raises(Exception, match="must not be inside"):
        System(config(tmp_path, tmp_path / "log2", symbols=("SPY",), backfill=str(backfill)))
