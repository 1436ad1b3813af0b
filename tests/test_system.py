"""The spine end to end: real files -> real actors -> a real LMDB log that verifies."""

from __future__ import annotations

import random
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pykka
import pytest

from tests.helpers import REAL_SYMBOLS, Market, config, file_bars, of_kind, read, run
from tests.helpers import market as open_market
from ticktape.actors.clock import ClockCore
from ticktape.actors.session_data import SessionDataCore
from ticktape.actors.session_plan import StreamCursor
from ticktape.actors.shell import Shell
from ticktape.actors.system import ActorFailure, ConfigError, System
from ticktape.actors.upkeep_core import UpkeepCore
from ticktape.messages.events import (
    ActorFailed,
    Bar,
    DataRejected,
    RunFinished,
    RunStarted,
    TimeAdvanced,
)
from ticktape.store.eventlog import EventLog
from ticktape.store.repository import MarketDataRepository


@pytest.fixture(scope="module", params=["generated", "real"])
def market(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Market:
    """Each test below runs on generated data, and again on the real week when it is there."""
    return open_market(request.param, tmp_path_factory.mktemp(request.param))


def test_real_session_releases_exactly_the_regular_hours_bars(
    realdata: Path, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    first = run(config(realdata, log))
    events = read(log)

    expected = file_bars([realdata / f"{s}.csv" for s in REAL_SYMBOLS])
    expected = expected[(expected.day == "2013-10-07") & expected.regular]
    released = of_kind(events, "Bar")
    got = sorted((b.symbol, b.ts_start, b.open, b.high, b.low, b.close, b.volume) for b in released)
    want = sorted(
        zip(
            expected.symbol,
            expected.ts_start,
            expected.open,
            expected.high,
            expected.low,
            expected.close,
            expected.volume.astype(float),
            strict=True,
        )
    )
    assert got == want  # none from pre/post market, none missing
    assert all(b.ts == b.ts_start + 60_000_000_000 for b in released)  # no look-ahead

    times = [e.ts for e in events if not isinstance(e, RunStarted | RunFinished)]
    assert times == sorted(times)  # one time order for bars, trades and quotes
    advances = [e.ts for e in events if isinstance(e, TimeAdvanced)]
    assert len(advances) == len(set(advances))
    kinds = {type(e).__name__ for e in events}
    assert {"Trade", "Quote", "DerivedBar", "SessionOpened", "SessionClosed"} <= kinds

    with EventLog.open(log) as opened:
        assert opened.verify().ok
    assert run(config(realdata, tmp_path / "again")) == first


def test_slice_order_is_time_then_kind_then_symbol(realdata: Path, tmp_path: Path) -> None:
    run(config(realdata, tmp_path / "log"))
    rank = {"Quote": 0, "Trade": 1, "Bar": 2}
    previous = None
    for event in read(tmp_path / "log"):
        kind = type(event).__name__
        if kind == "TimeAdvanced":
            previous = None
            continue
        if kind not in rank:
            continue
        key = (event.ts, rank[kind], event.symbol)
        assert previous is None or key >= previous
        previous = key


def test_same_digest_with_random_delays_in_every_actor(
    market: Market, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = run(market.config(tmp_path / "plain", "days", step_minutes=7))

    original = Shell.on_receive
    jitter = random.Random(11)
    lock = threading.Lock()

    def delayed(self: Shell, message: object) -> object:
        with lock:
            pause = jitter.random() * 0.002
        threading.Event().wait(pause)
        return original(self, message)

    monkeypatch.setattr(Shell, "on_receive", delayed)
    assert run(market.config(tmp_path / "delayed", "days", step_minutes=7)) == plain
    assert run(market.config(tmp_path / "bigsteps", "days", step_minutes=390)) == plain


def test_digest_ignores_paths_speed_and_sync_but_not_facts(market: Market, tmp_path: Path) -> None:
    copy = Market(market.kind, tmp_path / "copy", market.symbols, market.main)
    shutil.copytree(market.data, copy.data)
    a = run(market.config(tmp_path / "la"))
    b = run(copy.config(tmp_path / "x" / "lb", sync="full"))
    assert a == b
    c = run(market.config(tmp_path / "lc", derived=(5,)))
    assert c != a


def _boom(*args: object, **kwargs: object) -> None:
    raise RuntimeError("injected failure")


FAILURES = {
    "Upkeep": (UpkeepCore, "advance_many"),
    "SessionData": (SessionDataCore, "released"),
    "Prefetch": (MarketDataRepository, "load_session"),
    "Clock": (ClockCore, "advance"),
    "StreamCoordinator": (StreamCursor, "release"),
}


@pytest.mark.parametrize("actor", sorted(FAILURES))
def test_actor_failure_stops_the_system_and_is_logged(
    actor: str, market: Market, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target, attribute = FAILURES[actor]
    monkeypatch.setattr(target, attribute, _boom)
    log = tmp_path / "log"
    system = System(market.config(log))
    with pytest.raises(
        ActorFailure, match=f"^{actor} failed: RuntimeError: injected failure"
    ) as caught:
        system.run(timeout=60)
    assert caught.value.actor == actor
    assert pykka.ActorRegistry.get_all() == []  # fail-stop: nothing left running
    events = read(log)
    assert events[0] == system.run_started
    assert events[-1] == ActorFailed(
        ts=events[-1].ts, actor=actor, error="RuntimeError: injected failure"
    )
    with EventLog.open(log) as opened:
        assert opened.verify().ok


BAD_BARS = """symbol,timestamp,open,high,low,close,volume
SPY,2013-10-07T09:30:00-04:00,10,11,9,10.5,100
SPY,2013-10-07T09:31:00-04:00,NaN,11,9,10.5,100
SPY,2013-10-07T09:32:00-04:00,10,11,9,10.5,100
SPY,2013-10-07T09:33:00-04:00,0,11,9,10.5,100
SPY,2013-10-07T09:34:00-04:00,10,9,11,10,100
SPY,2013-10-07T09:35:00-04:00,10,11,9,10.5,-5
SPY,2013-10-07T09:36:30-04:00,10,11,9,10.5,100
SPY,2013-10-07T09:32:00-04:00,10,11,9,10.5,100
SPY,not-a-time,10,11,9,10.5,100
SPY,2013-10-07T09:38:00,10,11,9,10.5,100
SPY,2013-10-07T09:39:00-04:00,10,11,9,10.5,100
"""


def test_bad_rows_are_rejected_one_by_one_and_good_rows_stream(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "SPY.csv").write_text(BAD_BARS)
    log = tmp_path / "log"
    run(config(data, log, symbols=("SPY",)))
    events = read(log)
    rejected = of_kind(events, "DataRejected")
    assert [(r.row, r.reason) for r in rejected] == [
        (3, "NaN price"),  # line numbers: the header is line 1
        (5, "non-positive price"),
        (6, "high below low"),
        (7, "negative volume"),
        (8, "off the minute grid"),
        (9, "duplicate timestamp"),
        (10, "unparseable timestamp"),
        (11, "timestamp has no time zone"),
    ]
    assert all(isinstance(r, DataRejected) and r.file == "SPY.csv" for r in rejected)
    bars = of_kind(events, "Bar")
    assert [(b.ts_start - bars[0].ts_start) // 60_000_000_000 for b in bars] == [0, 2, 9]
    assert events[-1].bars == 3
    with EventLog.open(log) as opened:
        assert opened.verify().ok


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"data": "/no/such/folder"}, "does not exist"),
        ({"symbols": ("SPY", "NOPE")}, "NOPE"),
        ({"start": "2013-13-01"}, "not a date"),
        ({"start": "2013-10-09", "end": "2013-10-08"}, "after"),
        ({"calendar": "MOON"}, "unknown calendar"),
        ({"start": "2013-10-05", "end": "2013-10-06"}, "no XNYS sessions"),
        ({"gap_policy": "guess"}, "`gap_policy` must be one of"),
    ],
)
def test_bad_config_is_one_sentence_before_any_actor_starts(
    market: Market, tmp_path: Path, change: dict, message: str
) -> None:
    settings = {"data": market.data, **change}
    with pytest.raises(ConfigError, match=message) as caught:
        System(config(settings.pop("data"), tmp_path / "log", **settings))
    assert "\n" not in str(caught.value)
    assert pykka.ActorRegistry.get_all() == []


def test_events_stream_to_a_slow_consumer_with_backpressure(market: Market, tmp_path: Path) -> None:
    cfg = market.config(tmp_path / "log", output_queue=2, step_minutes=5)
    with System(cfg) as system:
        system.start()
        seen = []
        for event in system.events():
            seen.append(event)
            if len(seen) % 500 == 0:
                assert system.output.qsize() <= 2
                time.sleep(0.01)
        totals = system.wait(timeout=60)
        real = market.regular_bars(symbols=(market.main,))
        assert system.query("session_metrics", market.main)["real"] == real
    assert seen == read(tmp_path / "log")
    assert totals.events == len(seen)
    assert isinstance(seen[-1], RunFinished)


def test_pause_and_resume_are_logged_and_nothing_is_released_while_paused(
    market: Market, tmp_path: Path
) -> None:
    cfg = market.config(tmp_path / "log", output_queue=1, step_minutes=1)
    with System(cfg) as system:
        system.start()
        stream = system.events()
        before = [next(stream) for _ in range(50)]
        system.pause()
        time.sleep(0.2)
        released_while_paused = system.log.next_seq
        time.sleep(0.3)
        assert system.log.next_seq - released_while_paused <= 3  # at most what was in hand
        system.resume()
        rest = list(stream)
        system.wait(timeout=60)
    events = before + rest
    kinds = [type(e).__name__ for e in events]
    assert kinds.count("Paused") == 1 and kinds.count("Resumed") == 1
    assert kinds.index("Paused") < kinds.index("Resumed")
    assert sum(isinstance(e, Bar) for e in events) == market.regular_bars()
    times = [e.ts for e in events[1:]]
    assert times == sorted(times)  # a control input never runs time backwards


def test_stop_is_graceful(market: Market, tmp_path: Path) -> None:
    cfg = market.config(tmp_path / "log", "week", output_queue=1)
    system = System(cfg)
    system.start()
    stream = system.events()
    for _ in range(100):
        next(stream)
    stopper = threading.Thread(target=system.stop)
    stopper.start()
    for _ in stream:
        pass
    stopper.join(30)
    system.close()
    events = read(tmp_path / "log")
    assert type(events[-1]).__name__ == "Stopped"
    assert not any(isinstance(e, RunFinished) for e in events)
    with EventLog.open(tmp_path / "log") as opened:
        assert opened.verify().ok
    assert np.all(np.diff([e.ts for e in events[1:]]) >= 0)


def ten_minutes_of_spy(folder: Path) -> Path:
    """Ten flat SPY bars from the open: a short day that paced tests can afford to wait for."""
    folder.mkdir()
    rows = [f"SPY,2013-10-07T09:{30 + m}:00-04:00,10,11,9,10.5,{100 + m}" for m in range(10)]
    header = "symbol,timestamp,open,high,low,close,volume\n"
    (folder / "SPY.csv").write_text(header + "\n".join(rows))
    return folder


def test_clock_driven_mode_paces_releases_and_logs_the_same_facts(tmp_path: Path) -> None:
    data = ten_minutes_of_spy(tmp_path / "data")
    fast = run(config(data, tmp_path / "fast", symbols=("SPY",)))
    began = time.perf_counter()
    paced = run(config(data, tmp_path / "paced", symbols=("SPY",), speed=1200.0))
    elapsed = time.perf_counter() - began
    assert paced == fast  # speed is pacing, not a fact
    assert elapsed >= 10 * 60 / 1200 * 0.9  # ten simulated minutes at 1200x take ~0.5 s


def test_a_bad_query_is_the_callers_error_not_a_failure(market: Market, tmp_path: Path) -> None:
    with System(market.config(tmp_path / "log", symbols=(market.main,))) as system:
        system.start()
        system.wait(timeout=60)
        with pytest.raises(KeyError, match="MSFT is not in this run"):
            system.query("last_bars", "MSFT", 3)
        assert len(system.query("last_bars", market.main, 3)) == 3
        with pytest.raises(ValueError, match="'begin' is not a query"):
            system.query("begin", system.sessions[0])  # state belongs to the run, not to callers
    assert system.supervisor.failure is None


def test_stop_does_not_wait_for_a_consumer_that_went_away(market: Market, tmp_path: Path) -> None:
    system = System(market.config(tmp_path / "log", "week", output_queue=1))
    system.start()
    next(system.events())  # read one event, then stop reading
    time.sleep(0.2)
    totals = system.stop(timeout=10)
    system.close()
    assert totals.events == len(read(tmp_path / "log"))
    assert type(read(tmp_path / "log")[-1]).__name__ == "Stopped"


def test_pause_and_resume_at_speed_hold_time_without_a_burst(tmp_path: Path) -> None:
    data = ten_minutes_of_spy(tmp_path / "data")
    cfg = config(data, tmp_path / "log", symbols=("SPY",), speed=1200.0)
    with System(cfg) as system:
        system.start()
        time.sleep(0.2)
        system.pause()
        time.sleep(0.1)
        held = system.log.next_seq
        time.sleep(0.4)  # nearly another whole run's worth of simulated time, frozen
        assert system.log.next_seq == held
        began = time.perf_counter()
        system.resume()
        totals = system.wait(timeout=30)
        assert time.perf_counter() - began >= 0.15  # the rest is paced again, not burst out
    events = read(tmp_path / "log")
    assert totals.bars == 10 and [type(e).__name__ for e in events].count("Paused") == 1
    times = [e.ts for e in events[1:]]
    assert times == sorted(times)


def test_queries_as_of_the_consumers_event_see_no_future_bar(
    market: Market, tmp_path: Path
) -> None:
    symbol = market.main
    cfg = market.config(tmp_path / "log", symbols=(symbol,), output_queue=4, step_minutes=30)
    checked = 0
    with System(cfg) as system:
        system.start()
        for event in system.events():
            if isinstance(event, Bar) and event.ts_start % (37 * 60_000_000_000) == 0:
                last = system.query("last_bars", symbol, 1, as_of=event.ts)
                assert last.ts_start.tolist() == [event.ts_start]
                checked += 1
        system.wait(timeout=60)
    assert checked >= 5
