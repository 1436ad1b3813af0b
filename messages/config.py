"""What a run is asked to do. Facts that change what is released are chained into the log via
`RunStarted`; pacing, paths and durability settings live only in the manifest (DESIGN §6)."""

from __future__ import annotations

import datetime as dt

import msgspec

GAP_POLICIES = ("leave", "forward-fill")


class RunConfig(msgspec.Struct, frozen=True, kw_only=True):
    data: str
    symbols: tuple[str, ...]
    start: str
    end: str
    log: str
    speed: float = 0.0  # 0: data-driven; >0: simulated seconds per wall second
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
    step_minutes: int = 30  # minute boundaries per coordinator step in data-driven mode
    output_queue: int = 0  # >0: bounded queue of event batches for `System.events()`

    def validate(self) -> None:
        """Raise ValueError with one sentence for the first setting that cannot work."""
        if not self.symbols or any(not s.strip() for s in self.symbols):
            raise ValueError("--symbols needs at least one non-empty symbol")
        for name in ("start", "end"):
            value = getattr(self, name)
            try:
                dt.date.fromisoformat(value)
            except (TypeError, ValueError):
                raise ValueError(f"--{name} is not a date (YYYY-MM-DD): {value!r}") from None
        if self.start > self.end:
            raise ValueError(f"--start {self.start} is after --end {self.end}")
        if self.speed < 0:
            raise ValueError("--speed must be 0 (data-driven) or positive")
        if not self.derived or any(n < 1 or n > 1440 for n in self.derived):
            raise ValueError("--derived intervals must be whole minutes between 1 and 1440")
        if self.trailing_days < 0:
            raise ValueError("--trailing-days must be 0 or more")
        if self.gap_policy not in GAP_POLICIES:
            raise ValueError(f"--gap-policy must be one of {', '.join(GAP_POLICIES)}")
        if self.step_minutes < 1 or self.fill_retries < 0 or self.group_size < 1:
            raise ValueError("step_minutes and group_size must be positive, fill_retries >= 0")

    def facts(self) -> dict[str, object]:
        """The settings that change what is released, as chained into RunStarted."""
        return {
            "symbols": tuple(sorted(set(self.symbols))),
            "start": self.start,
            "end": self.end,
            "calendar": self.calendar,
            "extended_hours": self.extended_hours,
            "derived": tuple(sorted(set(self.derived))),
            "trailing_days": self.trailing_days,
            "gap_policy": self.gap_policy,
            "backfill": self.backfill is not None,
            "label": self.label,
            "fill_retries": self.fill_retries,
        }
