"""Everything a run needs before any actor starts: sessions, input, facts, the pacing start.

Shared by the threaded System, the deterministic simulation and `resume`, so all three build the
same run from the same config. Every problem is one sentence (ValueError).
"""

from __future__ import annotations

import datetime as dt
import platform
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from loguru import logger

from ticktape.actors.coordinator_core import CoordinatorCore
from ticktape.actors.upkeep_core import UpkeepCore
from ticktape.messages.commands import ControlAt
from ticktape.messages.config import RunConfig
from ticktape.messages.events import SCHEMA_VERSION, RunStarted
from ticktape.messages.session import Session
from ticktape.store.calendar import CalendarError, TradingCalendar
from ticktape.store.catalog_reader import CatalogRepository
from ticktape.store.repository import DataConfigError, MarketDataRepository
from ticktape.store.sources import open_repository, warn_uncovered


@dataclass(frozen=True)
class RunSetup:
    config: RunConfig
    sessions: list[Session]
    history: list[Session]
    repository: MarketDataRepository | CatalogRepository
    backfill: MarketDataRepository | CatalogRepository | None
    run_started: RunStarted
    pace_from: int  # paced runs release data-driven (catch-up) before this time

    def coordinator_core(self, script: tuple[ControlAt, ...] = ()) -> CoordinatorCore:
        """`script`: an earlier run's control inputs, for a re-run or resume of it."""
        config = self.config
        return CoordinatorCore(
            sessions=self.sessions,
            history=self.history,
            run_started=self.run_started,
            file_rejections=self.repository.file_rejections,
            step_minutes=config.step_minutes,
            speed=config.speed,
            pace_from=self.pace_from,
            script=script,
        )

    def upkeep_core(self) -> UpkeepCore:
        config = self.config
        return UpkeepCore(
            self.repository.symbols,
            derived=tuple(sorted(set(config.derived))),
            gap_policy=config.gap_policy,
            fill_retries=config.fill_retries,
        )


def prepare(config: RunConfig) -> RunSetup:
    try:
        config.validate()
        calendar = TradingCalendar(config.calendar)
        sessions = calendar.sessions(config.start_date, config.end_date)
        history = calendar.sessions_before(config.start_date, config.trailing_days)
        if not sessions:
            raise ValueError(
                f"no {config.calendar} sessions between {config.start_date} and {config.end_date}"
            )
        pace_from = _pace_from(config, calendar, sessions[0])
        logger.info("scanning {}", config.data)
        repository = open_repository(
            config.data, config.symbols, label=config.label, sessions=[*history, *sessions]
        )
        warn_uncovered(repository, sessions, calendar.tz)
        if config.backfill and Path(config.backfill).resolve().is_relative_to(
            repository.folder.resolve()
        ):
            raise ValueError("`backfill` must not be inside `data` (it would be read twice)")
        backfill = (
            open_repository(
                config.backfill,
                config.symbols,
                label=config.label,
                role="backfill",
                sessions=sessions,
            )
            if config.backfill
            else None
        )
    except (CalendarError, DataConfigError) as e:
        raise ValueError(str(e)) from None
    first = sessions[0]
    return RunSetup(
        config=config,
        sessions=sessions,
        history=history,
        repository=repository,
        backfill=backfill,
        run_started=RunStarted(
            ts=first.window_start if config.extended_hours else first.open, **config.facts()
        ),
        pace_from=pace_from,
    )


def _pace_from(config: RunConfig, calendar: TradingCalendar, first: Session) -> int:
    """A mid-session start: the time (exchange time zone) from which the speed applies."""
    if config.start_time is None:
        return 0
    local = dt.datetime.fromisoformat(f"{config.start_date}T{config.start_time}")
    zone = ZoneInfo(calendar.tz)
    # An overnight session's evening falls on the day before its label (CMES opens at 17:00).
    when, evening = (
        int(day.replace(tzinfo=zone).timestamp()) * 1_000_000_000
        for day in (local, local - dt.timedelta(days=1))
    )
    if when >= first.close and first.open <= evening:
        when = evening
    if when >= first.close:
        raise ValueError(f"`start` {config.start} is at or after the {first.label} session's close")
    return when


def code_version() -> str:
    try:
        return metadata.version("ticktape")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def manifest(config: RunConfig, setup: RunSetup) -> dict[str, Any]:
    """What the log keeps beside the chain: config, pacing, paths, file hashes, host, times."""
    backfill = setup.backfill
    return {
        "schema": SCHEMA_VERSION,
        "code_version": code_version(),
        "config": msgspec.to_builtins(config),
        # Where the inputs were, as the run resolved them: a re-run started elsewhere finds them.
        "paths": {
            name: str(Path(folder).resolve())
            for name, folder in (("data", config.data), ("backfill", config.backfill))
            if folder
        },
        "facts": msgspec.to_builtins(config.facts()),
        "inputs": {f.name: f.sha256 for f in setup.repository.files},
        "backfill_inputs": {f.name: f.sha256 for f in backfill.files} if backfill else {},
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "host": platform.node(),
        "resumes": [],
    }
