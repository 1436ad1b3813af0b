"""Clock: the run's simulated time. Data-driven (speed 0) it just follows the coordinator; at
speed > 0 it paces releases against wall time. One timer thread waits on a condition until the next
release is due (never polling); when it wakes it tells the coordinator the simulated time the wall
clock gives now, so everything due by then is released as one step. A paused clock costs no CPU."""

from __future__ import annotations

import ctypes
import sys
import threading
import time
from typing import Any

import pykka

from ticktape.actors.shell import Shell
from ticktape.messages.commands import (
    COORDINATOR,
    AdvanceTo,
    NextStep,
    Pause,
    Resume,
    SetSpeed,
    WakeAt,
)
from ticktape.messages.errors import TicktapeError

_LONGEST_WAIT = 60.0  # seconds per wait; a longer delay is waited in pieces, so none overflows
_LAST_WAIT = 0.002  # a long wait ends this early and the rest is waited again: a thread woken
# from a short wait is on time, one woken from a long idle one can be a millisecond late
_JOIN_TIMEOUT = 5.0
_PR_SET_TIMERSLACK = 29  # Linux prctl: how late the kernel may end this thread's timed waits


def _tight_timer_slack() -> None:
    """Ask Linux to end this thread's timed waits on time: the default slack lets a wake come up
    to 50 µs late, which is a tenth of the lateness budget. Elsewhere, nothing to do."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_TIMERSLACK, 1, 0, 0, 0)


class ClockError(TicktapeError, RuntimeError):
    pass


class ClockCore:
    """Simulated time and its mapping to wall time. Pure: wall time is passed in.

    `now` is the run's time: only releases (and day transitions) move it. The pacing line
    (`anchor_sim` at `anchor_wall`, at `speed`) says when the next release is due; pausing,
    resuming and a new speed move the line, never `now`.
    """

    def __init__(self, speed: float, start: int = 0) -> None:
        self.speed = speed
        self.now = start
        self.paused = False
        self.frozen = start  # the simulated time a paused clock shows
        self.anchor_sim = start
        self.anchor_wall = 0.0

    def advance(self, ts: int, wall: float) -> None:
        """Move forward to `ts` (the coordinator within a session, Upkeep at a day transition)."""
        if ts < self.now:
            raise ClockError(f"time may only move forward: {ts} < {self.now}")
        jump = self.speed <= 0 or ts > self.sim_at(wall)
        self.now = ts
        if self.paused:
            self.frozen = max(self.frozen, ts)
        elif jump:
            self.anchor_sim, self.anchor_wall = ts, wall  # pace from here

    def sim_at(self, wall: float) -> int:
        if self.paused:
            return self.frozen
        if self.speed <= 0:
            return self.now
        return max(self.now, self.anchor_sim + int((wall - self.anchor_wall) * self.speed * 1e9))

    def wall_delay(self, ts: int, wall: float) -> float:
        """Seconds of wall time until simulated time reaches `ts`."""
        return max(0.0, (ts - self.sim_at(wall)) / (self.speed * 1e9))

    def pause(self, wall: float, limit: int | None = None) -> None:
        """Freeze; never past `limit`, the next release, which must not be skipped on resume."""
        shown = self.sim_at(wall)
        self.frozen = max(self.now, shown if limit is None else min(shown, limit))
        self.paused = True

    def resume(self, wall: float) -> None:
        """Continue from the frozen time: no burst of catch-up."""
        self.paused = False
        self.anchor_sim, self.anchor_wall = self.frozen, wall

    def set_speed(self, speed: float, wall: float) -> None:
        """Pacing only: re-anchor at the simulated time shown now, then run at the new speed."""
        if not self.paused:
            self.anchor_sim, self.anchor_wall = self.sim_at(wall), wall
        self.speed = speed


class Clock(Shell):
    name = "Clock"

    def __init__(self, supervisor: Any, speed: float) -> None:
        super().__init__(supervisor)
        self.core = ClockCore(speed)
        self._cond = threading.Condition()
        self._wake: WakeAt | None = None
        self._stopping = False
        self._thread = threading.Thread(target=self._timer, name="ticktape-clock", daemon=True)

    def on_start(self) -> None:
        super().on_start()
        self._thread.start()
        self.supervisor.threads.append(self._thread)

    def on_failure(self, *exc_info: Any) -> None:
        super().on_failure(*exc_info)
        self.on_stop()  # pykka skips on_stop for a failed actor; the timer must end with it

    def on_stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(_JOIN_TIMEOUT)

    def handle(self, message: Any) -> None:
        with self._cond:
            wall = time.monotonic()
            match message:
                case AdvanceTo(ts=ts):
                    self.core.advance(ts, wall)
                case WakeAt():
                    self._wake = message
                case Pause():
                    self.core.pause(wall, self._wake.ts if self._wake else None)
                case Resume():
                    self.core.resume(wall)
                case SetSpeed(speed=speed):
                    self.core.set_speed(speed, wall)
            self._cond.notify()

    def _timer(self) -> None:
        """The one timer: wait until the pending wake is due, then hand the coordinator a step."""
        try:
            _tight_timer_slack()
            with self._cond:
                while not self._stopping:
                    wake, core = self._wake, self.core
                    if wake is None or core.paused or core.speed <= 0:
                        self._cond.wait(_LONGEST_WAIT)
                        continue
                    wall = time.monotonic()
                    delay = core.wall_delay(wake.ts, wall)
                    if delay > 0:
                        early = delay - _LAST_WAIT if delay > 2 * _LAST_WAIT else delay
                        self._cond.wait(min(early, _LONGEST_WAIT))
                        continue
                    self._wake = None
                    step = NextStep(
                        until=core.sim_at(wall),
                        anchor_sim=core.anchor_sim,
                        anchor_wall=core.anchor_wall,
                        speed=core.speed,
                    )
                    try:
                        self.peers[COORDINATOR].tell(step)
                    except pykka.ActorDeadError:
                        return  # the run is stopping: the coordinator went first
        except BaseException as error:  # a timer failure fail-stops the System, named
            self.supervisor.actor_failed(self.name, error)
