"""What a run is asked to do. Facts that change what is released are chained into the log via
`RunStarted`; pacing, paths and durability settings live only in the manifest (DESIGN §6)."""

from __future__ import annotations

import datetime as dt
import math
import threading

import msgspec

GAP_POLICIES = ("leave", "forward-fill")
MIN_SPEED = 60.0 / threading.TIMEOUT_MAX  # slower, and waiting out one minute overflows
MAX_SPEED = 1e9  # faster paces nothing a clock can tell from data-driven (0)


class RunConfig(msgspec.Struct, frozen=True, kw_only=True):
    data: str
    symbols: tuple[str, ...]
    start: str
    end: str
    log: str
    speed: float = 0.0  # 0: data-driven; >0: simulated seconds per wall second (pacing)
    calendar: str = "XNYS"
    extended_hours: bool = False
    derived: tuple[int, ...] = (5, 15)
    trailing_days: int = 0
    backfill: str | None = None
    gap_policy: str = "leave"
    fill_retries: int = 3
    label: str = "start"  # "end" for vendors that stamp bars at their end
    sync: str = "full"  # "full" | "data" | "none": fsync policy of the log
    group_size: int = 65536  # events per log transaction
    step_minutes: int = 0  # boundaries per data-driven step; 0: steps of a steady record count
    output_queue: int = 0  # >0: bounded queue of event batches for `System.events()`

    def validate(self) -> None:
        """Raise ValueError with one sentence for the first setting that cannot work."""
        if not self.symbols or any(not s.strip() for s in self.symbols):
            raise ValueError("--symbols needs at least one non-empty symbol")
        try:
            first = dt.date.fromisoformat(self.start_date)
            if self.start_time is not None:
                dt.time.fromisoformat(self.start_time)
        except (TypeError, ValueError):
            raise ValueError(
                f"--start is not a date (YYYY-MM-DD) or a time (YYYY-MM-DDTHH:MM): {self.start!r}"
            ) from None
        try:
            last = dt.date.fromisoformat(self.end)
        except (TypeError, ValueError):
            raise ValueError(f"--end is not a date (YYYY-MM-DD): {self.end!r}") from None
        if first > last:
            raise ValueError(f"--start {self.start} is after --end {self.end}")
        if math.isnan(self.speed) or math.isinf(self.speed) or self.speed < 0:
            raise ValueError("--speed must be 0 (data-driven) or a finite positive number")
        if self.speed > MAX_SPEED:
            raise ValueError(
                f"--speed {self.speed:g} is beyond {MAX_SPEED:g}; use 0 for data-driven"
            )
        if 0 < self.speed < MIN_SPEED:
            raise ValueError(
                f"--speed {self.speed} is too slow to pace (a minute would never pass)"
            )
        if not self.derived or any(n < 1 or n > 1440 for n in self.derived):
            raise ValueError("--derived intervals must be whole minutes between 1 and 1440")
        if self.trailing_days < 0:
            raise ValueError("--trailing-days must be 0 or more")
        if self.gap_policy not in GAP_POLICIES:
            raise ValueError(f"--gap-policy must be one of {', '.join(GAP_POLICIES)}")
        if self.step_minutes < 0 or self.fill_retries < 0 or self.group_size < 1:
            raise ValueError("group_size must be positive, step_minutes and fill_retries >= 0")

    @property
    def start_date(self) -> str:
        """The first session, as YYYY-MM-DD; a time after it (a mid-session start) is pacing."""
        day = self.start.partition("T")[0]
        try:
            return dt.date.fromisoformat(day).isoformat()
        except ValueError:
            return day

    @property
    def end_date(self) -> str:
        try:
            return dt.date.fromisoformat(self.end).isoformat()
        except ValueError:
            return self.end

    @property
    def start_time(self) -> str | None:
        """HH:MM in the exchange's time zone, for a mid-session start."""
        return self.start.partition("T")[2] or None

    def facts(self) -> dict[str, object]:
        """The settings that change what is released, as chained into RunStarted."""
        return {
            "symbols": tuple(sorted(set(self.symbols))),
            "start": self.start_date,
            "end": self.end_date,
            "calendar": self.calendar,
            "extended_hours": self.extended_hours,
            "derived": tuple(sorted(set(self.derived))),
            "trailing_days": self.trailing_days,
            "gap_policy": self.gap_policy,
            "backfill": self.backfill is not None,
            "label": self.label,
            "fill_retries": self.fill_retries,
        }
