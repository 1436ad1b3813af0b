"""What a run is asked to do. Facts that change what is released are chained into the log via
`RunStarted`; pacing, paths and durability settings live only in the manifest (DESIGN §6)."""

from __future__ import annotations

import datetime as dt
import math
import threading
from typing import Literal, get_args

import msgspec

GapPolicy = Literal["leave", "forward-fill"]
Label = Literal["start", "end"]
Sync = Literal["full", "data", "none"]
GAP_POLICIES: tuple[str, ...] = get_args(GapPolicy)
LABELS: tuple[str, ...] = get_args(Label)
SYNCS: tuple[str, ...] = get_args(Sync)
MIN_SPEED = 60.0 / threading.TIMEOUT_MAX  # slower, and waiting out one minute overflows
MAX_SPEED = 1e9  # faster paces nothing a clock can tell from data-driven (0)


class RunConfig(msgspec.Struct, frozen=True, kw_only=True):
    """One run. The first five are required; `validate()` names the first argument that
    cannot work (`System` calls it before anything starts).

    - `data`: a folder of CSV/Parquet files, or a catalog built by `ticktape ingest`.
    - `symbols`: the symbols to stream (the universe; ids follow their sorted order).
    - `start`, `end`: the first and last session, YYYY-MM-DD (exchange calendar dates);
      `start` may be YYYY-MM-DDTHH:MM for a mid-session start (pacing, not a fact).
    - `log`: where the event log is created (an LMDB folder; it must not exist yet).
    - `speed`: 0 releases as fast as the machine allows; X > 0 paces simulated time at X times
      wall time.
    - `calendar`: the exchange calendar (exchange-calendars code, e.g. XNYS, XLON, XHKG).
    - `extended_hours`: also release rows outside regular hours.
    - `derived`: the N-minute bars Upkeep derives from 1m bars (minutes, 1..1440).
    - `trailing_days`: sessions of history before `start` that queries can reach into.
    - `backfill`: a folder or catalog that gaps are filled from.
    - `gap_policy`: "leave" a gap, or "forward-fill" it with a synthetic bar (volume 0).
    - `fill_retries`: how many later minutes a gap the backfill lacks is tried again.
    - `label`: "start" if the data stamps a bar with its start, "end" if with its end.
    - `sync`: the log's fsync policy: "full" (every commit), "data", or "none" (tests, scratch).
    - `group_size`: events per log transaction.
    - `step_minutes`: boundaries per data-driven step; 0: steps of a steady record count.
    - `output_queue`: > 0 gives `System.events()` a bounded queue of that many batches (a slow
      consumer then slows the run instead of filling memory); 0: nobody reads events.
    """

    data: str
    symbols: tuple[str, ...]
    start: str
    end: str
    log: str
    speed: float = 0.0
    calendar: str = "XNYS"
    extended_hours: bool = False
    derived: tuple[int, ...] = (5, 15)
    trailing_days: int = 0
    backfill: str | None = None
    gap_policy: GapPolicy = "leave"
    fill_retries: int = 3
    label: Label = "start"
    sync: Sync = "full"
    group_size: int = 65536
    step_minutes: int = 0
    output_queue: int = 0

    def validate(self) -> None:
        """Raise ValueError with one sentence for the first setting that cannot work."""
        if not self.symbols or any(not s.strip() for s in self.symbols):
            raise ValueError("`symbols` needs at least one non-empty symbol")
        try:
            first = dt.date.fromisoformat(self.start_date)
            if self.start_time is not None:
                dt.time.fromisoformat(self.start_time)
        except (TypeError, ValueError):
            raise ValueError(
                f"`start` is not a date (YYYY-MM-DD) or a time (YYYY-MM-DDTHH:MM): {self.start!r}"
            ) from None
        try:
            last = dt.date.fromisoformat(self.end)
        except (TypeError, ValueError):
            raise ValueError(f"`end` is not a date (YYYY-MM-DD): {self.end!r}") from None
        if first > last:
            raise ValueError(f"`start` {self.start} is after `end` {self.end}")
        if math.isnan(self.speed) or math.isinf(self.speed) or self.speed < 0:
            raise ValueError("`speed` must be 0 (data-driven) or a finite positive number")
        if self.speed > MAX_SPEED:
            raise ValueError(
                f"`speed` {self.speed:g} is beyond {MAX_SPEED:g}; use 0 for data-driven"
            )
        if 0 < self.speed < MIN_SPEED:
            raise ValueError(
                f"`speed` {self.speed} is too slow to pace (a minute would never pass)"
            )
        if not self.derived or any(n < 1 or n > 1440 for n in self.derived):
            raise ValueError("`derived` intervals must be whole minutes between 1 and 1440")
        if self.trailing_days < 0:
            raise ValueError("`trailing_days` must be 0 or more")
        if self.gap_policy not in GAP_POLICIES:
            raise ValueError(f"`gap_policy` must be one of {', '.join(GAP_POLICIES)}")
        if self.label not in LABELS:
            raise ValueError(f"`label` must be one of {', '.join(LABELS)}")
        if self.sync not in SYNCS:
            raise ValueError(f"`sync` must be one of {', '.join(SYNCS)}")
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
