"""Clock: the run's simulated time. Data-driven (speed 0) it just follows the coordinator; at
speed > 0 it paces releases against wall time with timers, and a paused clock costs no CPU."""

from __future__ import annotations

import threading
import time
from typing import Any

from actors.shell import Shell
from messages.commands import AdvanceTo, NextStep, Pause, Resume, WakeAt


class ClockError(RuntimeError):
    pass


class ClockCore:
    """Simulated time and its mapping to wall time. Pure: wall time is passed in."""

    def __init__(self, speed: float, start: int = 0) -> None:
        self.speed = speed
        self.now = start
        self.paused = False
        self._anchor_sim = start
        self._anchor_wall = 0.0

    def advance(self, ts: int, wall: float) -> None:
        """Move forward to `ts` (the coordinator within a session, Upkeep at a day transition)."""
        if ts < self.now:
            raise ClockError(f"time may only move forward: {ts} < {self.now}")
        if self.speed <= 0 or ts > self.sim_at(wall):
            self._anchor_sim, self._anchor_wall = ts, wall  # a jump: pace from here
        self.now = ts

    def sim_at(self, wall: float) -> int:
        if self.paused or self.speed <= 0:
            return self.now
        return self._anchor_sim + int((wall - self._anchor_wall) * self.speed * 1e9)

    def wall_delay(self, ts: int, wall: float) -> float:
        """Seconds of wall time until simulated time reaches `ts`."""
        return max(0.0, (ts - self.sim_at(wall)) / (self.speed * 1e9))

    def pause(self, wall: float, limit: int | None = None) -> None:
        """Freeze; never past `limit`, the next release, which must not be skipped on resume."""
        frozen = self.sim_at(wall) if limit is None else min(self.sim_at(wall), limit)
        self.now = max(self.now, frozen)
        self.paused = True

    def resume(self, wall: float) -> None:
        """Continue from the frozen time: no burst of catch-up."""
        self.paused = False
        self._anchor_sim, self._anchor_wall = self.now, wall


class Clock(Shell):
    name = "Clock"

    def __init__(self, supervisor: Any, speed: float) -> None:
        super().__init__(supervisor)
        self.core = ClockCore(speed)
        self._timer: threading.Timer | None = None
        self._wake: WakeAt | None = None

    def handle(self, message: Any) -> None:
        wall = time.monotonic()
        match message:
            case AdvanceTo(ts=ts):
                self.core.advance(ts, wall)
            case WakeAt():
                self._wake = message
                self._arm(wall)
            case Pause():
                self.core.pause(wall, self._wake.ts if self._wake else None)
                self._disarm()
            case Resume():
                self.core.resume(wall)
                self._arm(wall)

    def _arm(self, wall: float) -> None:
        self._disarm()
        if self._wake is None or self.core.paused:
            return
        wake = self._wake
        self._timer = threading.Timer(self.core.wall_delay(wake.ts, wall), self._fire, args=(wake,))
        self._timer.daemon = True
        self._timer.start()

    def _fire(self, wake: WakeAt) -> None:
        """Runs on the timer's thread, so a failure is reported here, not lost."""
        try:
            if self._wake is wake:
                self._wake = None
                wake.reply_to.tell(NextStep())
        except Exception as error:
            self.supervisor.actor_failed(self.name, error)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def on_stop(self) -> None:
        self._disarm()
