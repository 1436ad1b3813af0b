"""Markets beyond New York (DESIGN §3): midday breaks, overnight and 24/7 sessions, daylight saving.

Each calendar runs on generated data with every regular minute present, extended-hours bars (the
pre-market, the post-market and the break) in the files, and a trailing session. The references
come from exchange-calendars' own schedule, not from ticktape's calendar table.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import exchange_calendars as xcals
import numpy as np
import pandas as pd
import pytest

from tests.helpers import read
from ticktape.actors.replay import Replay
from ticktape.actors.run_setup import prepare
from ticktape.actors.simulation import simulate
from ticktape.actors.system import System
from ticktape.messages.config import RunConfig
from ticktape.messages.events import (
    Bar,
    DerivedBar,
    Event,
    GapDetected,
    QualityUpdated,
    SessionBreak,
    SessionOpened,
    TrailingBars,
)
from ticktape.scenarios.demo_data import DemoSpec, generate

MINUTE = pd.Timedelta(minutes=1)
SYMBOLS = ("AAA", "BBB")
DERIVED = (5, 15, 60, 7)

# calendar: (history from, first session, last session, zone of the files' timestamps)
CALENDARS = {
    "XNYS": ("2024-03-06", "2024-03-08", "2024-03-11", "America/New_York"),  # US DST: 10 March
    "XLON": ("2024-03-25", "2024-03-28", "2024-04-02", "Europe/London"),  # UK DST: 31 March
    "XHKG": ("2024-02-28", "2024-03-01", "2024-03-04", "Asia/Hong_Kong"),  # lunch 12:00-13:00
    "XTKS": ("2024-02-28", "2024-03-01", "2024-03-04", "Asia/Tokyo"),  # lunch 11:30-12:30
    "XSHG": ("2024-02-28", "2024-03-01", "2024-03-04", "Asia/Shanghai"),  # lunch 11:30-13:00
    "CMES": (
        "2024-03-06",
        "2024-03-08",
        "2024-03-11",
        "America/Chicago",
    ),  # opens 17:00 the day before
    "24/7": ("2024-03-08", "2024-03-09", "2024-03-10", "UTC"),
}
BREAKS = ("XHKG", "XTKS", "XSHG")


def schedule(calendar: str, first: str, last: str) -> pd.DataFrame:
    """exchange-calendars' sessions, straight from its schedule (the reference)."""
    cal = xcals.get_calendar(calendar, start="2024-01-01", end="2024-12-31")
    return cal.schedule.loc[first:last]


def regular_minutes(row: pd.Series) -> pd.DatetimeIndex:
    minutes = pd.date_range(row["open"], row["close"], freq="1min", inclusive="left")
    if pd.notna(row["break_start"]):
        minutes = minutes[(minutes < row["break_start"]) | (minutes >= row["break_end"])]
    return minutes


def regular(ts: np.ndarray, sessions: pd.DataFrame) -> np.ndarray:
    """Which ns-UTC instants fall in the regular hours of any of `sessions`."""
    every = np.concatenate([regular_minutes(r).asi8 for _, r in sessions.iterrows()])
    return np.isin(np.asarray(ts, np.int64) // 60_000_000_000 * 60_000_000_000, every)


def run_config(calendar: str, data: Path, log: Path, **more: object) -> RunConfig:
    _, first, last, _ = CALENDARS[calendar]
    settings = dict(data=str(data), symbols=SYMBOLS, start=first, end=last, calendar=calendar)
    return RunConfig(**{**settings, "log": str(log), "sync": "none", **more})


def write_data(calendar: str, folder: Path, **more: object) -> Path:
    """Complete minute bars: history sessions in regular hours only, the run's sessions with
    their extended hours (the break's minutes included), one file per session."""
    history, first, last, zone = CALENDARS[calendar]
    common = dict(symbols=SYMBOLS, calendar=calendar, tz=zone, gap_rate=0.0, layout="by_day")
    before = (pd.Timestamp(first) - pd.Timedelta(days=1)).date().isoformat()
    generate(folder, DemoSpec(start=history, end=before, extended_hours=False, **common))
    return generate(folder, DemoSpec(start=first, end=last, **{**common, **more}))


@pytest.fixture(scope="module", params=list(CALENDARS))
def complete(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict:
    calendar = request.param
    root = tmp_path_factory.mktemp(calendar.replace("/", "_"))
    data = write_data(calendar, root / "data")
    config = run_config(calendar, data, root / "log", derived=DERIVED, trailing_days=1)
    totals = System(config).run(timeout=300)
    history, first, last, _ = CALENDARS[calendar]
    rows = pd.concat([pd.read_csv(p) for p in sorted(data.glob("*.csv"))], ignore_index=True)
    return {
        "calendar": calendar,
        "config": config,
        "totals": totals,
        "events": read(config.log),
        "sessions": schedule(calendar, first, last),
        "history": schedule(calendar, history, first).iloc[-2:-1],
        "every_session": schedule(calendar, history, last),  # the sessions the files hold
        "file_ts": pd.to_datetime(rows["timestamp"], utc=True)
        .dt.as_unit("ns")
        .astype("int64")
        .to_numpy(),
    }


def final_quality(events: list[Event]) -> dict[tuple[str, str], QualityUpdated]:
    return {(e.session, e.symbol): e for e in events if isinstance(e, QualityUpdated)}


def test_complete_data_has_no_gap_and_full_quality(complete: dict) -> None:
    events, sessions = complete["events"], complete["sessions"]
    assert complete["totals"].state == "finished"
    assert not [e for e in events if isinstance(e, GapDetected)]
    quality = final_quality(events)
    assert len(quality) == len(sessions) * len(SYMBOLS)
    for label, row in sessions.iterrows():
        for symbol in SYMBOLS:
            q = quality[(label.date().isoformat(), symbol)]
            assert q.quality == 1.0
            assert q.real == q.expected == len(regular_minutes(row))


def test_sessions_are_the_calendars_with_their_own_window(complete: dict) -> None:
    events, sessions = complete["events"], complete["sessions"]
    opened = [e for e in events if isinstance(e, SessionOpened)]
    assert [o.session for o in opened] == [d.date().isoformat() for d in sessions.index]
    assert [o.open for o in opened] == sessions["open"].astype("int64").tolist()
    assert [o.close for o in opened] == sessions["close"].astype("int64").tolist()
    breaks = [e for e in events if isinstance(e, SessionBreak)]
    has_break = sessions["break_start"].notna()
    expected = sessions[has_break]
    history = complete["history"]
    expected = pd.concat([history[history["break_start"].notna()], expected])
    assert [(b.session, b.break_start, b.break_end) for b in breaks] == [
        (d.date().isoformat(), int(r["break_start"].value), int(r["break_end"].value))
        for d, r in expected.iterrows()
    ]
    if complete["calendar"] == "CMES":  # the evening before the label, in Chicago
        local = pd.to_datetime([o.open for o in opened], utc=True).tz_convert("America/Chicago")
        assert [t.date() for t in local] == [
            (d - pd.Timedelta(days=1)).date() for d in sessions.index
        ]
        assert {t.strftime("%H:%M") for t in local} == {"17:00"}


def test_bars_outside_regular_hours_are_left_out_and_counted(complete: dict) -> None:
    events, sessions = complete["events"], complete["sessions"]
    released = np.array([e.ts_start for e in events if isinstance(e, Bar)])
    assert regular(released, sessions).all()
    outside = ~regular(complete["file_ts"], complete["every_session"])
    assert complete["totals"].left_out == int(outside.sum())
    if complete["calendar"] in BREAKS:
        in_break = np.zeros(len(complete["file_ts"]), bool)
        for _, row in sessions.iterrows():
            lo, hi = row["break_start"].value, row["break_end"].value
            in_break |= (complete["file_ts"] >= lo) & (complete["file_ts"] < hi)
        assert in_break.any()  # the files do print in the break


def test_derived_bars_are_aligned_to_the_open_and_never_straddle_a_break(complete: dict) -> None:
    events, sessions = complete["events"], complete["sessions"]
    derived = [e for e in events if isinstance(e, DerivedBar)]
    minute = 60_000_000_000
    for label, row in sessions.iterrows():
        day = label.date().isoformat()
        segments = [(row["open"].value, row["close"].value)]
        if pd.notna(row["break_start"]):
            segments = [
                (row["open"].value, row["break_start"].value),
                (row["break_end"].value, row["close"].value),
            ]
        mine = [
            d for d in derived if segments[0][0] <= d.ts_start < segments[-1][1]
        ]  # this session's
        for interval in DERIVED:
            bars = [d for d in mine if d.interval == interval]
            for d in bars:
                lo, hi = next((a, b) for a, b in segments if a <= d.ts_start < b)
                end = min(d.ts_start + interval * minute, hi)
                assert (d.ts_start - lo) % (interval * minute) == 0, (day, d)
                assert d.bars == (end - d.ts_start) // minute, (day, d)  # all inside the segment
                assert d.ts >= end, (day, d)
            for symbol in SYMBOLS:  # every regular minute in exactly one bucket
                counted = sum(d.bars for d in bars if d.symbol == symbol)
                assert counted == len(regular_minutes(row)), (day, interval, symbol)
    if complete["calendar"] == "XHKG":  # the morning's last hour is short, the afternoon's new
        hours = [d for d in mine if d.interval == 60 and d.symbol == "AAA"]
        local = [
            (pd.Timestamp(d.ts_start, tz="UTC").tz_convert("Asia/Hong_Kong").strftime("%H:%M"),
             d.bars)
            for d in hours
        ]  # fmt: skip
        assert local == [("09:30", 60), ("10:30", 60), ("11:30", 30), ("13:00", 60),
                         ("14:00", 60), ("15:00", 60)]  # fmt: skip


def test_derived_bars_keep_their_local_time_across_daylight_saving(complete: dict) -> None:
    """The same local bucket starts every session, whatever the UTC offset that day."""
    zone = xcals.get_calendar(complete["calendar"]).tz
    events = complete["events"]
    opened = [e for e in events if isinstance(e, SessionOpened)]
    starts: dict[str, list[str]] = {}
    for o in opened:
        starts[o.session] = [
            pd.Timestamp(d.ts_start, tz="UTC").tz_convert(zone).strftime("%H:%M")
            for d in events
            if isinstance(d, DerivedBar)
            and d.interval == 15
            and d.symbol == "AAA"
            and o.open <= d.ts_start < o.close
        ]
    assert len({tuple(s) for s in starts.values()}) == 1, starts
    offsets = {pd.Timestamp(o.open, tz="UTC").tz_convert(zone).utcoffset() for o in opened}
    if complete["calendar"] in ("XNYS", "XLON", "CMES"):
        assert len(offsets) == 2  # the run really spans a change of offset


def test_trailing_history_is_the_previous_session_with_its_break(complete: dict) -> None:
    events, history = complete["events"], complete["history"]
    [trailing] = [e for e in events if isinstance(e, TrailingBars)]
    [(label, row)] = list(history.iterrows())
    assert trailing.session == label.date().isoformat()
    assert len(trailing.symbol) // 4 == len(SYMBOLS) * len(regular_minutes(row))
    after = events[events.index(trailing) + 1]
    assert isinstance(after, SessionBreak) == pd.notna(row["break_start"])


# --- one missing minute ---------------------------------------------------------------------------


def one_day(calendar: str, day: str, folder: Path, keep: Callable[[pd.Series], pd.Series]) -> Path:
    """Complete regular-hours bars of AAA and BBB for one session, less BBB's rows not kept
    (`keep` is given their UTC timestamps)."""
    zone = CALENDARS[calendar][3]
    spec = DemoSpec(symbols=SYMBOLS, start=day, end=day, calendar=calendar, tz=zone,
                    gap_rate=0.0, extended_hours=False)  # fmt: skip
    data = generate(folder, spec)
    frame = pd.read_csv(data / "BBB.csv")
    kept = keep(pd.to_datetime(frame["timestamp"], utc=True))
    frame[kept].to_csv(data / "BBB.csv", index=False, lineterminator="\n")
    return data


@pytest.mark.parametrize("calendar", list(CALENDARS))
def test_one_missing_minute_is_exactly_one_gap(calendar: str, tmp_path: Path) -> None:
    first = CALENDARS[calendar][1]
    [(_, row)] = list(schedule(calendar, first, first).iterrows())
    minutes = regular_minutes(row)
    # the first minute after the break; else one in the evening before the label, or at 01:01
    missing = minutes[minutes >= row["break_end"]][0] if pd.notna(row["break_end"]) else minutes[61]
    data = one_day(calendar, first, tmp_path / "data", lambda ts: ts != missing)
    config = run_config(calendar, data, tmp_path / "log", end=first)
    System(config).run(timeout=300)
    events = read(config.log)
    gaps = [(e.symbol, e.ts_start) for e in events if isinstance(e, GapDetected)]
    assert gaps == [("BBB", missing.value)]
    quality = final_quality(events)[(first, "BBB")]
    assert (quality.real, quality.expected) == (len(minutes) - 1, len(minutes))


# --- replay, pacing, mid-session start, determinism ----------------------------------------------


def test_a_replay_answers_like_the_live_run_over_a_break(tmp_path: Path) -> None:
    data = write_data("XHKG", tmp_path / "data")
    config = run_config("XHKG", data, tmp_path / "log", trailing_days=1, output_queue=64,
                        extended_hours=True, derived=DERIVED)  # fmt: skip

    def observe(run: System | Replay) -> list[object]:
        seen: list[object] = []
        for event in run.events():
            if isinstance(event, SessionOpened | GapDetected) or (
                isinstance(event, Bar) and event.ts_start % (47 * 60_000_000_000) == 0
            ):
                for interval in (1, 60, 7):
                    bars = run.query("bars", "AAA", interval=interval, as_of=event.ts)
                    seen.append((bars.ts_start.tolist(), bars.close.tolist()))
        return seen

    with System(config) as system:
        system.start()
        live = observe(system)
        system.wait(timeout=120)
    with Replay(config.log) as replay:
        again = observe(replay)
        replay.wait()
    assert again == live
    hour_starts = {
        pd.Timestamp(t, tz="UTC").tz_convert("Asia/Hong_Kong").strftime("%H:%M")
        for starts, _ in live[1::3]  # the 60-minute bars
        for t in starts
    }
    assert "12:30" not in hour_starts and {"11:30", "13:00"} <= hour_starts


def paced_against_data_driven(config: Callable[..., RunConfig], **paced: object) -> float:
    """Seconds the paced run took; its digest must be the data-driven run's."""
    data_driven = System(config("dd")).run(timeout=60)
    began = time.monotonic()
    totals = System(config("paced", **paced)).run(timeout=60)
    assert totals.digest == data_driven.digest
    return time.monotonic() - began


def test_a_paced_run_skips_the_break_like_the_night(tmp_path: Path) -> None:
    """BBB's data ends at 13:05 and the run starts at 11:55 at 600x: 5 + 5 paced minutes take
    one second; pacing through the hour's break would take six more."""
    day = "2024-03-01"
    ends = pd.Timestamp(f"{day}T13:05", tz="Asia/Hong_Kong")
    data = one_day("XHKG", day, tmp_path / "data", lambda ts: ts < ends)

    def config(name: str, **more: object) -> RunConfig:
        settings = {"symbols": ("BBB",), "start": day, "end": day, **more}
        return run_config("XHKG", data, tmp_path / name, **settings)

    took = paced_against_data_driven(config, speed=600.0, start=f"{day}T11:55")
    assert 0.9 < took < 4.0, took


def test_an_overnight_session_can_start_in_its_evening(tmp_path: Path) -> None:
    """CMES's 2024-03-05 session opens at 17:00 on the 4th (Chicago): 20:00 is inside it."""
    day, zone = "2024-03-05", "America/Chicago"
    ends = pd.Timestamp("2024-03-04T20:05", tz=zone)
    data = one_day("CMES", day, tmp_path / "data", lambda ts: ts < ends)

    def config(name: str, **more: object) -> RunConfig:
        settings = {"symbols": ("BBB",), "start": day, "end": day, **more}
        return run_config("CMES", data, tmp_path / name, **settings)

    def pace_from(start: str) -> int:
        return prepare(config("x", start=f"{day}T{start}")).pace_from

    assert pace_from("20:00") == pd.Timestamp("2024-03-04T20:00", tz=zone).value
    assert pace_from("09:00") == pd.Timestamp("2024-03-05T09:00", tz=zone).value
    assert pace_from("17:00") == pd.Timestamp("2024-03-04T17:00", tz=zone).value  # the open
    took = paced_against_data_driven(config, speed=600.0, start=f"{day}T20:00")
    assert took < 4.0, took  # three hours of catch-up at 600x would take 18 s


def test_every_seed_gives_the_threaded_digest_over_breaks(tmp_path: Path) -> None:
    """Gaps filled from a backfill, forward-fill, ticks, history, pacing from inside a break."""
    common = dict(symbols=SYMBOLS, calendar="XHKG", tz="Asia/Hong_Kong", extended_hours=True)
    data = generate(tmp_path / "data", DemoSpec(start="2024-02-29", end="2024-03-04",
                    gap_rate=0.05, trades_per_minute=2, quotes_per_minute=1, **common))  # fmt: skip
    backfill = generate(tmp_path / "backfill", DemoSpec(start="2024-03-01", end="2024-03-04",
                        gap_rate=0.0, seed=8, **common))  # fmt: skip
    settings = dict(data=str(data), symbols=SYMBOLS, start="2024-03-01", end="2024-03-04",
                    calendar="XHKG", trailing_days=1, backfill=str(backfill),
                    gap_policy="forward-fill", extended_hours=True, sync="none")  # fmt: skip
    threaded = System(RunConfig(**settings, log=str(tmp_path / "threaded"))).run(timeout=120)
    digests = {
        simulate(RunConfig(**settings, log=str(tmp_path / f"s{seed}"), step_minutes=1 + seed % 7),
                 seed).digest
        for seed in range(4)
    }  # fmt: skip
    paced = simulate(
        RunConfig(**{**settings, "start": "2024-03-01T12:30"}, log=str(tmp_path / "p"), speed=60.0),
        5,
    ).digest
    assert digests == {threaded.digest} == {paced}
    kinds = Counter(type(e).__name__ for e in read(tmp_path / "s0"))
    assert {"GapFilled", "SessionBreak", "Trade", "Quote", "DerivedBar", "TrailingBars"} <= set(
        kinds
    )


# --- the pieces: the calendar's table and the minute grid ----------------------------------------


def test_the_calendar_table_carries_each_break_as_exchange_calendars_has_it() -> None:
    from ticktape.store.calendar import TradingCalendar

    for name in ("XHKG", "XNYS"):
        ours = TradingCalendar(name).sessions("2024-03-01", "2024-03-08")
        theirs = schedule(name, "2024-03-01", "2024-03-08")
        assert [(s.break_start, s.break_end) for s in ours] == [
            (0, 0) if pd.isna(r["break_start"]) else (r["break_start"].value, r["break_end"].value)
            for _, r in theirs.iterrows()
        ]
    # XSHG's holidays are known only to 2026: its table stops there instead of failing
    assert TradingCalendar("XSHG").tz == "Asia/Shanghai"


def test_the_grid_refuses_a_bar_in_the_break() -> None:
    from ticktape.actors.minute_grid import MinuteGrid
    from ticktape.messages.columns import BarColumns
    from ticktape.store.calendar import TradingCalendar

    [session] = TradingCalendar("XHKG").sessions("2024-03-01", "2024-03-01")
    grid = MinuteGrid(session, 1)
    assert int(grid.expected.sum()) == 330 and grid.minutes == 390

    def bar(ts: int) -> BarColumns:
        one = np.ones(1)
        return BarColumns(np.zeros(1, np.int32), np.array([ts]), one, one, one, one, one,
                          np.zeros(1, np.int64))  # fmt: skip

    grid.put(bar(session.break_start - 60_000_000_000))  # 11:59 is the morning's last minute
    grid.put(bar(session.break_end))  # 13:00 the afternoon's first
    with pytest.raises(ValueError, match="regular hours"):
        grid.put(bar(session.break_start))


def test_a_24_7_session_can_start_at_midday(tmp_path: Path) -> None:
    """12 hours of catch-up, then five paced minutes: catching up at 600x would take 72 s."""
    day = "2024-03-09"
    ends = pd.Timestamp(f"{day}T12:05", tz="UTC")
    data = one_day("24/7", day, tmp_path / "data", lambda ts: ts < ends)

    def config(name: str, **more: object) -> RunConfig:
        settings = {"symbols": ("BBB",), "start": day, "end": day, **more}
        return run_config("24/7", data, tmp_path / name, **settings)

    assert prepare(config("x", start=f"{day}T12:00")).pace_from == ends.value - 5 * MINUTE.value
    took = paced_against_data_driven(config, speed=600.0, start=f"{day}T12:00")
    assert 0.4 < took < 4.0, took
