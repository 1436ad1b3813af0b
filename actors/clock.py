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
        self.wake: int | None = None  # the coordinator wants a step when sim time reaches this

    def receive(self, message: Any, wall: float) -> None:
        """A message from the coordinator (or Upkeep), at wall time `wall`."""
        match message:
            case AdvanceTo(ts=ts):
                self.advance(ts, wall)
            case WakeAt(ts=ts):
                self.wake = ts
            case Pause():
                self.pause(wall, self.wake)
            case Resume():
                self.resume(wall)
            case SetSpeed(speed=speed):
                self.set_speed(speed, wall)
            case _:
                raise TypeError(f"Clock cannot handle {type(message).__name__}")

    @property
    def armed(self) -> bool:
        """A wake is pending and the clock runs: the timer has something to wait for."""
        return self.wake is not None and not self.paused and self.speed > 0

    def poll(self, wall: float) -> NextStep | float | None:
        """What the timer does at `wall`: None, wait until told; seconds, wait that long; a
        `NextStep`, hand it to the coordinator now (everything due by the time it carries)."""
        if not self.armed:
            return None
        delay = self.wall_delay(self.wake, wall)
        if delay > 0:
            return delay
        self.wake = None
        return NextStep(
            until=self.sim_at(wall),
            anchor_sim=self.anchor_sim,
            anchor_wall=self.anchor_wall,
            speed=self.speed,
        )

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
            self.core.receive(message, time.monotonic())
            self._cond.notify()

    def _timer(self) -> None:
        """The one timer: wait until the pending wake is due, then hand the coordinator a step."""
        try:
            _tight_timer_slack()
            with self._cond:
                while not self._stopping:
                    due = self.core.poll(time.monotonic())
                    if due is None:
                        self._cond.wait(_LONGEST_WAIT)
                    elif isinstance(due, float):
                        early = due - _LAST_WAIT if due > 2 * _LAST_WAIT else due
                        self._cond.wait(min(early, _LONGEST_WAIT))
                    else:
                        self.send(COORDINATOR, due)
        except BaseException as error:  # a timer failure fail-stops the System, named
            self.supervisor.actor_failed(self.name, error)
