"""The StreamCoordinator's state machine: what is written to the log, and where.

A pure, single-threaded core: a message in, effects out (`actors.effects`). It is the only place
that moves time within a session and the only writer of the log's order. Upkeep's findings for each
minute boundary are placed right after the records released up to that boundary, whichever thread
produced them and however the steps were cut, so the log is a pure function of inputs plus config.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any, ClassVar

import msgspec
import numpy as np

from ticktape.actors.effects import Commit, Effect, Finish, Measure, Tell, Write
from ticktape.actors.session_plan import StreamCursor, session_break
from ticktape.messages.codec import EMPTY_BATCH, EncodedBatch
from ticktape.messages.columns import BarColumns, SessionInput
from ticktape.messages.commands import (
    CLOCK,
    COORDINATOR,
    PREFETCH,
    SESSION_DATA,
    UPKEEP,
    AddHistory,
    AdvanceTo,
    BeginSession,
    CloseSession,
    ControlAt,
    LoadSession,
    NextStep,
    OpenSession,
    Pause,
    Released,
    Resume,
    SessionLoaded,
    SetSpeed,
    Start,
    StepOnce,
    Stop,
    UpkeepReply,
    UpkeepStep,
    WakeAt,
)
from ticktape.messages.events import (
    DataRejected,
    Event,
    Paused,
    Resumed,
    RunFinished,
    RunStarted,
    Stepped,
    Stopped,
    TrailingBars,
)
from ticktape.messages.session import Session

STEP_RECORDS = 32_768  # about this many records per data-driven step, unless step_minutes is set


class RunTotals(msgspec.Struct):
    sessions: int = 0
    bars: int = 0
    events: int = 0
    left_out: int = 0
    rejected: int = 0
    digest: str = ""
    state: str = ""  # "finished" or "stopped"
    lateness: dict[str, float] = {}  # paced runs: p50/p99/max seconds (pacing, never a fact)


def trailing_bars(ts: int, session: Session, bars: BarColumns) -> list[Event]:
    """A history session's regular-hours bars as one event of columns (and its break)."""
    regular = bars.take(session.regular(bars.ts_start))
    history = TrailingBars(
        ts=ts,
        session=session.label,
        session_open=session.open,
        session_close=session.close,
        early_close=session.early_close,
        symbol=regular.symbol.astype("<i4").tobytes(),
        ts_start=regular.ts_start.astype("<i8").tobytes(),
        open=regular.open.astype("<f8").tobytes(),
        high=regular.high.astype("<f8").tobytes(),
        low=regular.low.astype("<f8").tobytes(),
        close=regular.close.astype("<f8").tobytes(),
        volume=regular.volume.astype("<f8").tobytes(),
    )
    return [history, *session_break(ts, session)]


class Phase(enum.Enum):
    """Where the coordinator is in the run. Each phase has one handler (`CoordinatorCore._HANDLERS`)
    for the messages that move it on; controls are taken in every phase."""

    IDLE = "idle"  # before Start
    AWAITING_SESSION = "awaiting-session"  # the next session is not loaded yet
    OPENING = "opening"  # Upkeep is opening the session (the day transition)
    STREAMING = "streaming"  # between steps: the next one is scheduled, or paused
    UPKEEP = "upkeep"  # a step's findings are awaited from Upkeep
    CLOSING = "closing"  # Upkeep is closing the session
    FINISHED = "finished"
    STOPPED = "stopped"


_AWAITING_REPLY = (Phase.OPENING, Phase.UPKEEP, Phase.CLOSING)  # Upkeep owes an answer
_ENDED = (Phase.FINISHED, Phase.STOPPED)
_CONTROLS = (Pause, Resume, StepOnce, SetSpeed, Stop)


class CoordinatorCore:
    """Walks the sessions and releases steps; every fact gets its fixed place in the log.

    `speed` > 0 paces releases on the Clock from `pace_from` (a mid-session start) on; before that,
    and with speed 0, steps of `step_minutes` boundaries (or of about `STEP_RECORDS` records) run
    as fast as the machine allows. Neither changes what is written, only when.

    The run's progress is one `Phase`; the controls are orthogonal to it: `paused`, the steps
    asked for while paused, and `stopping` (a stop asked for while Upkeep owes an answer).
    """

    def __init__(
        self,
        *,
        sessions: list[Session],
        history: list[Session],
        run_started: RunStarted,
        file_rejections: tuple[DataRejected, ...],
        step_minutes: int,
        speed: float = 0.0,
        pace_from: int = 0,
        script: tuple[ControlAt, ...] = (),
    ) -> None:
        self.sessions = sessions
        self.history = history
        self.run_started = run_started
        self.file_rejections = file_rejections
        self.step_minutes = step_minutes
        self.speed = speed
        self.pace_from = pace_from
        self.totals = RunTotals()
        self.phase = Phase.IDLE
        self.loaded: dict[str, SessionLoaded] = {}  # by session label, planned by Prefetch
        self.next_index = 0
        self.cursor: StreamCursor | None = None  # the open session's; None between sessions
        self.pending: _PendingStep | None = None  # the step handed to Upkeep
        self.paused = False
        self.stopping = False
        self.waiting_step = False  # a NextStep is asked for (of the Clock or of itself)
        self.steps_requested = 0  # StepOnce inputs not yet carried out
        self.controls: list[type[Event]] = []
        self.script = list(script)  # an earlier run's control inputs, still to be taken again
        self.written = 0  # events written so far: where in the log the next one goes
        self._now_between = run_started.ts  # time while no session is open
        self._rejections: tuple[DataRejected, ...] = ()
        self._out: list[Effect] = []
        self._emit: Callable[[Effect], None] = self._out.append

    @property
    def state(self) -> str:
        return self.phase.value

    # -- the state machine -----------------------------------------------------------------

    def receive(self, message: Any, emit: Callable[[Effect], None] | None = None) -> list[Effect]:
        """The effects of `message`, in order. With `emit`, each is handed out as soon as it is
        decided (and the list stays empty): a paced step's first write then goes out before the
        column work for the other actors, which is what its lateness measures."""
        self._out = []
        self._emit = self._out.append if emit is None else emit
        if isinstance(message, _CONTROLS):
            self._on_control(message)
        elif isinstance(message, SessionLoaded) and message.history:
            self._on_history(message.input)
        else:
            if isinstance(message, SessionLoaded):  # D+1 may arrive in any phase
                self.loaded[message.input.session.label] = message
            elif isinstance(message, NextStep):
                self.waiting_step = False
            self._HANDLERS[self.phase](self, message)
        if self.script and self.phase in (Phase.AWAITING_SESSION, Phase.STREAMING):
            self._take_scripted()  # where a control is written as soon as it comes
        return self._out

    def _on_idle(self, message: Any) -> None:
        if isinstance(message, Start):
            self._start()

    def _on_awaiting_session(self, message: Any) -> None:
        if isinstance(message, SessionLoaded):
            self._begin_session()

    def _on_opening(self, message: Any) -> None:
        if isinstance(message, UpkeepReply):
            self._put(message.findings)
            self._write_rejections(self._rejections, self.cursor.now)
            self._ready()

    def _on_streaming(self, message: Any) -> None:
        if isinstance(message, NextStep) and not self.paused:
            self._step(message)

    def _on_upkeep(self, message: Any) -> None:
        if isinstance(message, UpkeepReply):
            step, self.pending = self.pending, None
            findings, ends = message.findings, message.ends
            self._write_records(
                step.first, step.last, step.due, step.line, step.cuts, findings, ends
            )
            self._ready()

    def _on_closing(self, message: Any) -> None:
        if isinstance(message, UpkeepReply):
            self._put(message.findings)
            self.totals.sessions += 1
            self._emit(Commit())  # a closed session is durable
            self._now_between, self.cursor = self.cursor.now, None
            self._ready()

    def _on_ended(self, message: Any) -> None:
        """A late wake or a session loaded ahead: nothing is left to do with them."""

    _HANDLERS: ClassVar[dict[Phase, Callable[[CoordinatorCore, Any], None]]] = {
        Phase.IDLE: _on_idle,
        Phase.AWAITING_SESSION: _on_awaiting_session,
        Phase.OPENING: _on_opening,
        Phase.STREAMING: _on_streaming,
        Phase.UPKEEP: _on_upkeep,
        Phase.CLOSING: _on_closing,
        Phase.FINISHED: _on_ended,
        Phase.STOPPED: _on_ended,
    }

    def _ready(self) -> None:
        """The one way back to streaming, once Upkeep has answered: write the controls that came
        meanwhile, then stop, close the session, open the next one, finish, or take a step."""
        if self.script and self.phase in _AWAITING_REPLY:
            self._take_scripted()  # the earlier run's controls that came meanwhile: they wait
        self.phase = Phase.STREAMING
        self._write_controls()
        cursor = self.cursor
        if self.stopping:
            self._write_stopped()
        elif cursor is None:
            if self.totals.sessions < len(self.sessions):
                self._begin_session()
            else:
                self._finish()
        elif cursor.finished:
            self.phase = Phase.CLOSING
            self._tell(UPKEEP, CloseSession(cursor.now, cursor.bars_released, cursor.plan.left_out))
            self.totals.left_out += cursor.plan.left_out
        elif self.paused and self.steps_requested:
            self._step_once()
        else:
            self._schedule_step()

    def _on_control(self, message: Any) -> None:
        streaming = self.phase is Phase.STREAMING
        match message:
            case Pause():
                if not self.paused and self.phase not in _ENDED:
                    self.paused = True
                    self._tell(CLOCK, Pause())
                    self._control(Paused)
            case Resume():
                if self.paused:
                    self.paused = False
                    self.steps_requested = 0  # running again: steps not yet taken are moot
                    self._tell(CLOCK, Resume())
                    self._control(Resumed)
                    if streaming:
                        self._schedule_step()
            case StepOnce():
                if self.paused:
                    self.steps_requested += 1
                    if streaming:
                        self._step_once()
            case SetSpeed(speed=speed):
                self.speed = speed
                self._tell(CLOCK, message)
                if streaming and not self.paused:
                    self.waiting_step = False
                    self._schedule_step()
            case Stop():
                self._stop_gracefully()

    def _on_history(self, data: SessionInput) -> None:
        self._write_rejections(data.rejected, self._now())
        self._write(trailing_bars(self._now(), data.session, data.bars))
        self._tell(SESSION_DATA, AddHistory(data.session, data.bars))

    # -- effects -----------------------------------------------------------------------------

    def _tell(self, to: str, message: Any) -> None:
        self._emit(Tell(to, message))

    def _write(self, events: list[Event]) -> None:
        if events:
            self._put(EncodedBatch.of(events))

    def _put(self, records: EncodedBatch, parts: np.ndarray | None = None) -> None:
        self.written += len(records)
        self._emit(Write(records, parts=parts))

    def _write_rejections(self, rejected: tuple[DataRejected, ...], ts: int) -> None:
        self._write([msgspec.structs.replace(r, ts=ts) for r in rejected])
        self.totals.rejected += len(rejected)

    def _now(self) -> int:
        return self.cursor.now if self.cursor else self._now_between

    def _paced(self) -> bool:
        cursor = self.cursor
        return self.speed > 0 and not cursor.exhausted and cursor.now >= self.pace_from

    # -- sessions ----------------------------------------------------------------------------

    def _start(self) -> None:
        self._write([self.run_started])
        self._write_rejections(self.file_rejections, self.run_started.ts)
        for session in self.history:
            self._tell(PREFETCH, LoadSession(session, history=True))
        self._request_next_load()
        self.phase = Phase.AWAITING_SESSION

    def _request_next_load(self) -> None:
        if self.next_index < len(self.sessions):
            self._tell(PREFETCH, LoadSession(self.sessions[self.next_index], history=False))
            self.next_index += 1

    def _begin_session(self) -> None:
        label = self.sessions[self.totals.sessions].label
        if label not in self.loaded:
            self.phase = Phase.AWAITING_SESSION
            return
        loaded = self.loaded.pop(label)
        self._request_next_load()  # Prefetch reads and plans D+1 while D streams
        plan = loaded.plan
        self._rejections = loaded.input.rejected
        self.cursor = StreamCursor(plan)
        self._tell(SESSION_DATA, BeginSession(plan.session))
        self._tell(UPKEEP, OpenSession(plan.session, plan.start, loaded.backfill))
        self.phase = Phase.OPENING

    # -- steps -------------------------------------------------------------------------------

    def _schedule_step(self) -> None:
        if self.paused or self.waiting_step:
            return
        self.waiting_step = True
        if self._paced():
            if (resume := self.cursor.break_skipped()) is not None:
                self._tell(CLOCK, AdvanceTo(resume))  # pacing only: the break is skipped
            self._tell(CLOCK, WakeAt(self.cursor.next_time()))
        else:
            self._tell(COORDINATOR, NextStep())

    def _step_once(self) -> None:
        self.steps_requested -= 1
        self.controls.append(Stepped)
        self._release(self.cursor.next_time(), None)

    def _step(self, wake: NextStep) -> None:
        cursor = self.cursor
        if wake.until is not None and self._paced():
            self._release(self._scripted_until(max(wake.until, cursor.next_time())), wake)
            return
        if self.step_minutes:
            until = cursor.boundary_after(self.step_minutes)
        else:
            until = cursor.boundary_within(STEP_RECORDS)
        if self.speed > 0 and cursor.now < self.pace_from:
            until = min(until, max(self.pace_from, cursor.next_time()))  # catch-up ends there
        self._release(self._scripted_until(until), None)

    def _scripted_until(self, until: int) -> int:
        """Where a re-run's step must end so the earlier run's next control lands in its place:
        at the time it was taken, then boundary by boundary (a paced step may have gone past its
        last record into empty minutes before the control came)."""
        if not self.script or self.written >= self.script[0].after:
            return until
        cursor, taken = self.cursor, self.script[0].ts
        if cursor.next_time() <= taken:
            return min(until, taken)
        return min(until, cursor.boundary_after(1))

    def _release(self, until: int, wake: NextStep | None) -> None:
        step = self.cursor.release(until)
        self.totals.bars += step.n_bars
        line = None if wake is None else (wake.anchor_sim, wake.anchor_wall, wake.speed)
        # Records up to the first boundary go out first: its findings come after them anyway,
        # so only what follows waits for Upkeep (the log's order is the same either way), and
        # the columns for the other actors are taken only once the release is out.
        head = int(step.cuts[0]) if len(step.boundaries) else step.last
        self._write_records(step.first, head, self._due(step.first, head, line), line)
        self._tell(CLOCK, AdvanceTo(step.now))
        self._tell(SESSION_DATA, Released(step.now, step.bars, step.trades, step.quotes))
        if len(step.boundaries):
            rest = self._due(head, step.last, line)
            self.pending = _PendingStep(head, step.last, step.cuts, rest, line)
            self._tell(UPKEEP, UpkeepStep(step.boundaries, *step.upkeep_bars()))
            self.phase = Phase.UPKEEP
        else:
            self._ready()

    def _due(self, first: int, last: int, line: tuple | None) -> np.ndarray | None:
        """Release times of plan records [first, last) of a paced step, for lateness."""
        if line is None or last <= first:
            return None
        return self.cursor.plan.record_time[first:last]

    def _write_records(
        self,
        first: int,
        last: int,
        due: np.ndarray | None,
        line: tuple[int, float, float] | None,
        cuts: np.ndarray | None = None,
        findings: EncodedBatch = EMPTY_BATCH,
        ends: np.ndarray | None = None,
    ) -> None:
        """Plan records [first, last), with each boundary's findings right after its cut.

        One copy puts them in that order; `parts` lets the consumer have them boundary by
        boundary."""
        records = self.cursor.plan.records.take(slice(first, last))
        if cuts is not None and ends is not None and len(cuts):
            record_ends = np.append(np.clip(cuts, first, last), last) - first
            records, parts = EncodedBatch.interleave(records, record_ends, findings, ends)
            self._put(records, parts)
        elif len(records):
            self._put(records)
        if due is not None and line is not None:  # measured once the whole step is out
            self._emit(Measure(due, line))

    # -- controls and the end ----------------------------------------------------------------

    def _take_scripted(self) -> None:
        """Take the earlier run's controls that are due, once a step's records are all written.
        A step asked for while paused is due once the controls before it are written (it is
        carried out at the first chance, as it was then); the others when the log reaches their
        place, counting the controls taken and not yet written (in a phase that awaits Upkeep
        they wait, as they did then)."""
        while self.script and self.phase not in (Phase.IDLE, *_ENDED):
            due = self.script[0]
            if isinstance(due.control, StepOnce):
                if not self.paused or self.controls:
                    return
            elif self.written + len(self.controls) < due.after:
                return
            del self.script[0]
            self._on_control(due.control)

    def _control(self, kind: type[Event]) -> None:
        """Control inputs are facts, written after the step in hand so time never runs back."""
        self.controls.append(kind)
        if self.phase not in _AWAITING_REPLY:
            self._write_controls()

    def _write_controls(self) -> None:
        if self.controls:
            self._write([kind(ts=self._now()) for kind in self.controls])
            self.controls.clear()
            self._emit(Commit())

    def _finish(self) -> None:
        totals = self.totals
        self._write([RunFinished(ts=self._now(), sessions=totals.sessions, bars=totals.bars)])
        self._end(Phase.FINISHED)

    def _stop_gracefully(self) -> None:
        """Graceful: a step already handed to Upkeep is written first, then `Stopped`."""
        if self.phase in _ENDED:
            return
        self.stopping = True
        if self.phase not in _AWAITING_REPLY:
            self._write_stopped()

    def _write_stopped(self) -> None:
        self._write_controls()
        self._write([Stopped(ts=self._now())])
        self._end(Phase.STOPPED)

    def _end(self, phase: Phase) -> None:
        self.phase = phase
        self.totals.state = phase.value
        self._emit(Commit())
        self._emit(Finish(phase.value, self.totals))


class _PendingStep(msgspec.Struct, frozen=True):
    """The part of a step that waits for Upkeep: records [first, last), cut at each boundary."""

    first: int
    last: int
    cuts: np.ndarray
    due: np.ndarray | None
    line: tuple[int, float, float] | None
