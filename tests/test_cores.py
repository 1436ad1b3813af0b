"""The pure cores, directly (DESIGN §12): this state and this message give these effects. No
threads, no files: sessions and columns are made here, in memory."""

from __future__ import annotations

import dataclasses

import msgspec
import numpy as np
import pytest

from ticktape.actors.backfill import SessionBackfill
from ticktape.actors.clock import ClockCore, ClockError
from ticktape.actors.coordinator_core import CoordinatorCore, Phase
from ticktape.actors.effects import Finish, Measure, Tell, Write
from ticktape.actors.session_plan import StreamCursor, plan_session
from ticktape.actors.upkeep_core import UpkeepCore
from ticktape.messages.codec import EncodedBatch, decode_many
from ticktape.messages.columns import BarColumns, QuoteColumns, SessionInput, TradeColumns
from ticktape.messages.commands import (
    CLOCK,
    COORDINATOR,
    PREFETCH,
    SESSION_DATA,
    UPKEEP,
    AdvanceTo,
    BeginSession,
    CloseSession,
    LoadSession,
    NextStep,
    OpenSession,
    Pause,
    Resume,
    SessionLoaded,
    Start,
    StepOnce,
    Stop,
    UpkeepReply,
    WakeAt,
)
from ticktape.messages.events import (
    DataRejected,
    GapDetected,
    Paused,
    QualityUpdated,
    Resumed,
    RunStarted,
    SessionClosed,
    SessionOpened,
    Stepped,
    Stopped,
    TimeAdvanced,
)
from ticktape.messages.session import NS_PER_MINUTE, Session

MINUTE = NS_PER_MINUTE
OPEN = 1_704_205_800 * 1_000_000_000  # 2024-01-02 09:30 New York
SYMBOLS = ("ACME", "BOLT")


def _session(label: str = "2024-01-02", open_: int = OPEN, minutes: int = 5) -> Session:
    return Session(label, open_, open_ + minutes * MINUTE, False, open_ - 60 * MINUTE,
                   open_ + (minutes + 60) * MINUTE)  # fmt: skip


def _bars(
    session: Session, minutes: range, missing: set[tuple[int, int]] = frozenset()
) -> BarColumns:
    cells = [(m, s) for m in minutes for s in range(len(SYMBOLS)) if (m, s) not in missing]
    minute = np.array([m for m, _ in cells], dtype=np.int64)
    price = 100.0 + minute
    return BarColumns(
        symbol=np.array([s for _, s in cells], dtype=np.int32),
        ts_start=session.open + minute * MINUTE,
        open=price,
        high=price + 1,
        low=price - 1,
        close=price + 0.5,
        volume=np.full(len(cells), 10.0),
        source=np.arange(len(cells), dtype=np.int64),
    )


def _input(session: Session, bars: BarColumns) -> SessionInput:
    return SessionInput(session, SYMBOLS, bars, TradeColumns.empty(), QuoteColumns.empty())


def _events(batch: EncodedBatch) -> list:
    return decode_many(batch.packed())


def _shape(effects: list) -> list[tuple]:
    """Effects as (kind, address or event kinds, message kind): what a test compares."""
    shape: list[tuple] = []
    for effect in effects:
        match effect:
            case Tell(to=to, message=message):
                shape.append(("tell", to, type(message).__name__))
            case Write(records=records):
                shape.append(
                    ("write", tuple(dict.fromkeys(type(e).__name__ for e in _events(records))))
                )
            case _:
                shape.append((type(effect).__name__.lower(),))
    return shape


# -- plan_session and StreamCursor ----------------------------------------------------------------


def test_a_plan_lays_out_each_minute_as_time_then_the_bars_that_ended() -> None:
    session = _session(minutes=3)
    plan = plan_session(_input(session, _bars(session, range(3))), extended_hours=False)
    kinds = [(type(e).__name__, e.ts) for e in _events(plan.records)]
    want = []
    for m in range(1, 4):
        want += [("TimeAdvanced", OPEN + m * MINUTE)] + [("Bar", OPEN + m * MINUTE)] * 2
    assert kinds == want
    assert plan.boundaries.tolist() == [OPEN + m * MINUTE for m in range(1, 4)]
    assert plan.boundary_cuts.tolist() == [3, 6, 9]  # the records out by each boundary


def test_a_plan_keeps_out_of_hours_bars_out_unless_asked() -> None:
    session = _session(minutes=2)
    bars = BarColumns.concat([_bars(session, range(-2, 0)), _bars(session, range(2))])
    regular = plan_session(_input(session, bars), extended_hours=False)
    extended = plan_session(_input(session, bars), extended_hours=True)
    assert regular.left_out == 4 and len(regular.bars) == 4
    assert extended.left_out == 0 and len(extended.bars) == 8
    assert extended.regular.tolist() == [False] * 4 + [True] * 4


def test_a_plan_moves_straight_to_the_close_once_the_data_ends() -> None:
    session = _session(minutes=30)
    plan = plan_session(_input(session, _bars(session, range(2))), extended_hours=False)
    assert plan.boundaries.tolist() == [OPEN + MINUTE, OPEN + 2 * MINUTE, session.close]
    assert plan.data_end == OPEN + 2 * MINUTE


def test_a_cursor_releases_what_is_due_and_time_stops_at_the_last_record() -> None:
    session = _session(minutes=4)
    cursor = StreamCursor(plan_session(_input(session, _bars(session, range(4))), False))
    assert cursor.next_time() == OPEN + MINUTE
    step = cursor.release(OPEN + 2 * MINUTE + 30_000_000_000)  # a wake 30 s past a minute
    assert (step.first, step.last, step.now) == (0, 6, OPEN + 2 * MINUTE)  # not the wake time
    assert step.boundaries.tolist() == [OPEN + MINUTE, OPEN + 2 * MINUTE]
    assert step.n_bars == 4 and len(step.upkeep_bars()[0]) == 4
    assert cursor.boundary_after(1) == OPEN + 3 * MINUTE
    assert cursor.boundary_within(3) == OPEN + 3 * MINUTE  # at least the next boundary
    assert cursor.boundary_within(6) == OPEN + 4 * MINUTE
    cursor.release(session.close)
    assert cursor.finished and cursor.bars_released == 8


# -- ClockCore -------------------------------------------------------------------------------------


def test_a_data_driven_clock_follows_and_never_wakes_anyone() -> None:
    clock = ClockCore(speed=0.0)
    clock.receive(AdvanceTo(OPEN), wall=5.0)
    clock.receive(WakeAt(OPEN + MINUTE), wall=5.0)
    assert clock.sim_at(99.0) == OPEN and clock.poll(99.0) is None
    with pytest.raises(ClockError, match="only move forward"):
        clock.receive(AdvanceTo(OPEN - 1), wall=6.0)


def test_a_paced_clock_waits_then_hands_over_everything_due_by_the_wall_time() -> None:
    clock = ClockCore(speed=60.0)
    clock.receive(AdvanceTo(OPEN), wall=10.0)  # a jump: pacing starts here
    clock.receive(WakeAt(OPEN + MINUTE), wall=10.0)
    assert clock.poll(10.5) == pytest.approx(0.5)  # one simulated minute is a second
    step = clock.poll(11.25)  # woke a quarter second late
    assert step == NextStep(until=OPEN + 75 * 1_000_000_000, anchor_sim=OPEN, anchor_wall=10.0,
                            speed=60.0)  # fmt: skip
    assert clock.poll(12.0) is None  # a wake is handed over once


def test_a_paused_clock_freezes_at_the_next_release_and_resumes_without_a_burst() -> None:
    clock = ClockCore(speed=60.0)
    clock.receive(AdvanceTo(OPEN), wall=0.0)
    clock.receive(WakeAt(OPEN + MINUTE), wall=0.0)
    clock.receive(Pause(), wall=3.0)  # the wall says three minutes; the next release is at one
    assert clock.sim_at(100.0) == OPEN + MINUTE and clock.poll(100.0) is None
    clock.receive(Resume(), wall=100.0)
    assert clock.sim_at(100.0) == OPEN + MINUTE  # no catch-up of the paused time
    assert isinstance(clock.poll(100.0), NextStep)


# -- CoordinatorCore -------------------------------------------------------------------------------


def _coordinator(sessions: list[Session], speed: float = 0.0) -> CoordinatorCore:
    started = RunStarted(ts=sessions[0].open, **_facts())
    return CoordinatorCore(sessions=sessions, history=[], run_started=started,
                           file_rejections=(), step_minutes=2, speed=speed)  # fmt: skip


def _facts() -> dict:
    from ticktape.messages.config import RunConfig

    config = RunConfig(data="d", symbols=SYMBOLS, start="2024-01-02", end="2024-01-02", log="l")
    return config.facts()


def _loaded(session: Session, minutes: int) -> SessionLoaded:
    data = _input(session, _bars(session, range(minutes)))
    return SessionLoaded(data, history=False, plan=plan_session(data, extended_hours=False))


def _opened(session: Session) -> UpkeepReply:
    opened = SessionOpened(ts=session.open, session=session.label, open=session.open,
                           close=session.close, early_close=False)  # fmt: skip
    return UpkeepReply(EncodedBatch.of([TimeAdvanced(ts=session.open), opened]))


def _streaming(speed: float = 0.0) -> tuple[CoordinatorCore, Session]:
    session = _session(minutes=4)
    core = _coordinator([session], speed)
    core.receive(Start())
    core.receive(_loaded(session, 4))
    core.receive(_opened(session))
    return core, session


def test_start_writes_the_run_and_asks_for_the_first_session() -> None:
    session = _session()
    core = _coordinator([session])
    effects = core.receive(Start())
    assert _shape(effects) == [("write", ("RunStarted",)), ("tell", PREFETCH, "LoadSession")]
    assert effects[1].message == LoadSession(session, history=False)
    assert core.phase is Phase.AWAITING_SESSION


def test_a_loaded_session_is_opened_by_upkeep_then_streams() -> None:
    session = _session(minutes=4)
    core = _coordinator([session])
    core.receive(Start())
    effects = core.receive(_loaded(session, 4))
    assert _shape(effects) == [
        ("tell", SESSION_DATA, "BeginSession"),
        ("tell", UPKEEP, "OpenSession"),
    ]
    assert effects[1].message == OpenSession(session, session.open) and core.phase is Phase.OPENING
    effects = core.receive(_opened(session))
    assert _shape(effects) == [("write", ("TimeAdvanced", "SessionOpened")),
                               ("tell", COORDINATOR, "NextStep")]  # fmt: skip
    assert core.phase is Phase.STREAMING


def test_a_step_writes_up_to_its_first_boundary_and_waits_for_upkeep() -> None:
    core, _ = _streaming()
    effects = core.receive(NextStep())
    assert _shape(effects) == [
        ("write", ("TimeAdvanced", "Bar")),
        ("tell", CLOCK, "AdvanceTo"),
        ("tell", SESSION_DATA, "Released"),
        ("tell", UPKEEP, "UpkeepStep"),
    ]
    assert len(_events(effects[0].records)) == 3  # out at once: what the first boundary released
    assert effects[1].message == AdvanceTo(OPEN + 2 * MINUTE)  # step_minutes=2
    assert effects[3].message.boundaries.tolist() == [OPEN + MINUTE, OPEN + 2 * MINUTE]
    assert core.phase is Phase.UPKEEP
    gap = GapDetected(ts=OPEN + MINUTE, symbol="ACME", ts_start=OPEN)
    effects = core.receive(UpkeepReply(EncodedBatch.of([gap]), ends=np.array([1, 1])))
    written = [type(e).__name__ for e in _events(effects[0].records)]
    # each boundary's findings right after the records released by it
    assert written == ["GapDetected", "TimeAdvanced", "Bar", "Bar"]
    assert effects[0].parts.tolist() == [1, 4]  # the consumer gets them boundary by boundary
    assert _shape(effects[1:]) == [("tell", COORDINATOR, "NextStep")]
    assert core.phase is Phase.STREAMING


def test_the_last_step_closes_the_session_and_the_close_finishes_the_run() -> None:
    core, session = _streaming()
    for _ in range(2):
        core.receive(NextStep())
        effects = core.receive(UpkeepReply(EncodedBatch.of([]), ends=np.array([0, 0])))
    assert _shape(effects[-1:]) == [("tell", UPKEEP, "CloseSession")]
    assert effects[-1].message == CloseSession(session.close, 8, 0) and core.phase is Phase.CLOSING
    closed = SessionClosed(ts=session.close, session=session.label, bars=8, left_out=0)
    effects = core.receive(UpkeepReply(EncodedBatch.of([closed])))
    assert _shape(effects) == [("write", ("SessionClosed",)), ("commit",),
                               ("write", ("RunFinished",)), ("commit",), ("finish",)]  # fmt: skip
    assert effects[-1] == Finish("finished", core.totals) and core.totals.sessions == 1
    assert core.receive(NextStep()) == [] and core.phase is Phase.FINISHED  # a late wake


def test_a_stop_while_upkeep_owes_an_answer_waits_for_it() -> None:
    core, _ = _streaming()
    core.receive(NextStep())
    assert core.receive(Stop()) == [] and core.phase is Phase.UPKEEP
    effects = core.receive(UpkeepReply(EncodedBatch.of([]), ends=np.array([0, 0])))
    assert _shape(effects) == [("write", ("TimeAdvanced", "Bar")), ("write", ("Stopped",)),
                               ("commit",), ("finish",)]  # fmt: skip
    assert _events(effects[1].records) == [Stopped(ts=OPEN + 2 * MINUTE)]


def test_pause_holds_steps_and_step_once_releases_exactly_one_slice() -> None:
    core, _ = _streaming()
    effects = core.receive(Pause())
    assert _shape(effects) == [("tell", CLOCK, "Pause"), ("write", ("Paused",)), ("commit",)]
    assert _events(effects[1].records) == [Paused(ts=OPEN)]
    assert core.receive(NextStep()) == []  # the nudge already asked for: nothing while paused
    effects = core.receive(StepOnce())
    assert _shape(effects)[:2] == [("write", ("TimeAdvanced", "Bar")), ("tell", CLOCK, "AdvanceTo")]
    assert effects[1].message == AdvanceTo(OPEN + MINUTE)  # one slice
    effects = core.receive(UpkeepReply(EncodedBatch.of([]), ends=np.array([0])))
    effects = [e for e in effects if not isinstance(e, Write) or len(e.records)]
    assert _shape(effects) == [("write", ("Stepped",)), ("commit",)]  # then stays paused
    assert _events(effects[0].records) == [Stepped(ts=OPEN + MINUTE)]
    effects = core.receive(Resume())
    assert _shape(effects) == [("tell", CLOCK, "Resume"), ("write", ("Resumed",)), ("commit",),
                               ("tell", COORDINATOR, "NextStep")]  # fmt: skip
    assert _events(effects[1].records) == [Resumed(ts=OPEN + MINUTE)]


def test_a_paced_coordinator_asks_the_clock_and_measures_its_releases() -> None:
    session = _session(minutes=4)
    core = _coordinator([session], 60.0)
    core.receive(Start())
    core.receive(_loaded(session, 4))
    effects = core.receive(_opened(session))  # the next release is asked of the Clock
    assert effects[-1] == Tell(CLOCK, WakeAt(OPEN + MINUTE))
    wake = NextStep(until=OPEN + MINUTE + 1, anchor_sim=OPEN, anchor_wall=1.0, speed=60.0)
    effects = core.receive(wake)
    assert _shape(effects)[:2] == [("write", ("TimeAdvanced", "Bar")), ("measure",)]
    assert effects[1] == Measure(effects[1].due, (OPEN, 1.0, 60.0))  # lateness on the wake's line
    assert effects[1].due.tolist() == [OPEN + MINUTE] * 3
    reply = core.receive(UpkeepReply(EncodedBatch.of([]), ends=np.array([0])))
    assert reply[-1] == Tell(CLOCK, WakeAt(OPEN + 2 * MINUTE))


def test_the_next_session_may_load_in_any_phase_and_opens_after_the_close() -> None:
    first, second = _session(), _session("2024-01-03", OPEN + 86_400 * 1_000_000_000)
    core = _coordinator([first, second])
    core.receive(Start())
    effects = core.receive(_loaded(first, 5))
    assert effects[0] == Tell(PREFETCH, LoadSession(second, history=False))  # D+1 ahead
    core.receive(_loaded(second, 5))  # arrives while the first is opening: kept
    assert core.phase is Phase.OPENING and second.label in core.loaded
    assert isinstance(effects[1].message, BeginSession)


# -- UpkeepCore ------------------------------------------------------------------------------------


def _upkeep(**options: object) -> tuple[UpkeepCore, Session]:
    session = _session(minutes=10)
    core = UpkeepCore(SYMBOLS, derived=(5,), **options)
    core.open_session(session)
    return core, session


def test_a_missing_bar_is_a_gap_at_the_boundary_after_its_minute() -> None:
    core, session = _upkeep()
    bars = _bars(session, range(3), missing={(1, 1)})
    boundaries = OPEN + MINUTE * np.arange(1, 4)
    findings = core.advance_many(boundaries, bars, bars.ts_start + MINUTE).events()
    assert findings[0] == [] and findings[2] == []
    gap, quality = findings[1]
    assert gap == GapDetected(ts=OPEN + 2 * MINUTE, symbol="BOLT", ts_start=OPEN + MINUTE)
    assert isinstance(quality, QualityUpdated) and quality.symbol == "BOLT"
    assert (quality.expected, quality.real, quality.quality) == (2, 1, 0.5)


def test_a_step_gives_what_its_boundaries_one_by_one_give() -> None:
    bars = _bars(_session(minutes=10), range(10), missing={(1, 1), (6, 0)})
    release = bars.ts_start + MINUTE
    whole, _ = _upkeep()
    one_by_one, _ = _upkeep()
    boundaries = OPEN + MINUTE * np.arange(1, 11)
    together = whole.advance_many(boundaries, bars, release).events()
    apart = []
    for boundary in boundaries:
        mine = bars.take(release == boundary)
        apart += one_by_one.advance_many(
            np.array([boundary]), mine, release[release == boundary]
        ).events()
    assert together == apart
    assert [type(e).__name__ for e in together[4]] == ["DerivedBar", "DerivedBar"]


def test_forward_fill_turns_a_gap_into_a_flat_synthetic_bar() -> None:
    core, session = _upkeep(gap_policy="forward-fill")
    bars = _bars(session, range(3), missing={(1, 0)})
    findings = core.advance_many(OPEN + MINUTE * np.arange(1, 4), bars, bars.ts_start + MINUTE)
    kinds = [type(e).__name__ for e in findings.events()[1]]
    assert kinds == ["GapDetected", "GapFilled", "QualityUpdated"]
    filled = findings.events()[1][1]
    assert filled.synthetic and filled.close == filled.open == 100.5  # minute 0's close


def test_a_close_reports_every_quality_then_closes() -> None:
    core, session = _upkeep()
    bars = _bars(session, range(10))
    core.advance_many(OPEN + MINUTE * np.arange(1, 11), bars, bars.ts_start + MINUTE)
    events = core.close(session.close, released=20, left_out=3).events()[0]
    assert [type(e).__name__ for e in events] == [
        "QualityUpdated",
        "QualityUpdated",
        "SessionClosed",
    ]
    assert events[-1] == SessionClosed(ts=session.close, session=session.label, bars=20, left_out=3)
    with pytest.raises(RuntimeError, match="already closed"):
        core.advance_many(np.array([session.close]), BarColumns.empty(), np.empty(0, np.int64))


def test_upkeep_refuses_a_bar_from_the_future() -> None:
    core, session = _upkeep()
    bars = _bars(session, range(2))
    with pytest.raises(ValueError, match="look-ahead"):
        core.advance_many(np.array([OPEN + MINUTE]), bars, bars.ts_start + MINUTE)


def test_a_gap_is_filled_from_the_backfill_handed_in_with_the_session() -> None:
    core, session = _upkeep()
    bad = DataRejected(ts=0, reason="high below low", file="bf.csv", row=3, symbol="BOLT")
    data = _input(session, _bars(session, range(3)))
    backfill = SessionBackfill(dataclasses.replace(data, rejected=(bad,)))
    core.open_session(session, backfill)
    bars = _bars(session, range(3), missing={(1, 1)})
    boundaries = OPEN + MINUTE * np.arange(1, 4)
    findings = core.advance_many(boundaries, bars, bars.ts_start + MINUTE).events()
    at = OPEN + 2 * MINUTE
    kinds = [type(e).__name__ for e in findings[1]]
    # the backfill's bad row is logged where it was first consulted, before the fills
    assert kinds == ["GapDetected", "DataRejected", "GapFilled", "QualityUpdated"]
    assert findings[1][1] == msgspec.structs.replace(bad, ts=at)
    filled = findings[1][2]
    assert (filled.symbol, filled.ts_start, filled.close, filled.synthetic) == (
        "BOLT", OPEN + MINUTE, 101.5, False)  # fmt: skip
    assert backfill.rejected == []  # logged once
