"""System: builds a run from its config, starts the actors, supervises them, and stops them.

Everything that can be wrong with the config or the input folder is found here, before any actor
starts, and raised as a one-sentence `ConfigError`. Once running, the first exception in any actor
stops the whole System (fail-stop), is written to the log as `ActorFailed`, and reaches the caller
as `ActorFailure` naming the actor.
"""

from __future__ import annotations

import datetime as dt
import platform
import queue
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import msgspec
import pykka
from loguru import logger

from actors.clock import Clock
from actors.coordinator import RunTotals, StreamCoordinator
from actors.prefetch import Prefetch
from actors.session_data import SessionData, SessionDataCore
from actors.shell import RunSupervisor
from actors.upkeep import Upkeep
from actors.upkeep_core import UpkeepCore
from messages.codec import decode
from messages.commands import Pause, Resume, Start, Stop
from messages.config import RunConfig
from messages.events import SCHEMA_VERSION, ActorFailed, Event, RunStarted
from store.backfill import BackfillSource
from store.calendar import CalendarError, TradingCalendar
from store.eventlog import EventLog, LogError
from store.repository import DataConfigError, MarketDataRepository
from store.sources import open_repository

_STOP_TIMEOUT = 10.0


class ConfigError(ValueError):
    """A run that cannot start; the message is one sentence naming the problem."""


class ActorFailure(RuntimeError):
    def __init__(self, actor: str, error: BaseException) -> None:
        super().__init__(f"{actor} failed: {type(error).__name__}: {error}")
        self.actor = actor
        self.error = error


def code_version() -> str:
    try:
        return metadata.version("ticktape")
    except metadata.PackageNotFoundError:
        return "0+unknown"


class System:
    """One run: `System(config).run()`, or start/events/pause/resume/stop for finer control."""

    def __init__(self, config: RunConfig) -> None:
        try:
            config.validate()
            calendar = TradingCalendar(config.calendar)
            self.sessions = calendar.sessions(config.start, config.end)
            history = calendar.sessions_before(config.start, config.trailing_days)
            if not self.sessions:
                raise ConfigError(
                    f"no {config.calendar} sessions between {config.start} and {config.end}"
                )
            repository = open_repository(
                config.data, config.symbols, label=config.label, sessions=[*history, *self.sessions]
            )
            if config.backfill and Path(config.backfill).resolve().is_relative_to(
                repository.folder.resolve()
            ):
                raise ConfigError("--backfill must not be inside --data (it would be read twice)")
            backfill = (
                open_repository(
                    config.backfill,
                    config.symbols,
                    label=config.label,
                    role="backfill",
                    sessions=self.sessions,
                )
                if config.backfill
                else None
            )
            first = self.sessions[0]
            self.run_started = RunStarted(
                ts=first.window_start if config.extended_hours else first.open,
                **config.facts(),
            )
            self.log = EventLog.create(
                config.log,
                self._manifest(config, repository, backfill),
                sync=config.sync,
                group_size=config.group_size,
            )
        except (ValueError, CalendarError, DataConfigError, LogError) as e:
            raise ConfigError(str(e)) from None
        self.config = config
        self.supervisor = RunSupervisor()
        self.output: queue.Queue | None = (
            queue.Queue(maxsize=config.output_queue) if config.output_queue > 0 else None
        )
        self._repository, self._backfill, self._history = repository, backfill, history
        self._refs: dict[str, pykka.ActorRef] = {}
        self._closed = False
        self._failure_logged = False

    @staticmethod
    def _manifest(
        config: RunConfig, repository: MarketDataRepository, backfill: MarketDataRepository | None
    ) -> dict[str, Any]:
        return {
            "schema": SCHEMA_VERSION,
            "code_version": code_version(),
            "config": msgspec.to_builtins(config),
            "facts": msgspec.to_builtins(config.facts()),
            "inputs": {f.name: f.sha256 for f in repository.files},
            "backfill_inputs": {f.name: f.sha256 for f in backfill.files} if backfill else {},
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "host": platform.node(),
            "resumes": [],
        }

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> System:
        config, sup = self.config, self.supervisor
        backfill = self._backfill
        clock = Clock.start(sup, config.speed)
        symbols = self._repository.symbols
        session_data = SessionData.start(sup, SessionDataCore(symbols, config.trailing_days))
        upkeep_core = UpkeepCore(
            symbols,
            derived=tuple(sorted(set(config.derived))),
            gap_policy=config.gap_policy,
            backfill=BackfillSource(backfill) if backfill else None,
            fill_retries=config.fill_retries,
        )
        upkeep = Upkeep.start(sup, upkeep_core, clock, session_data)
        prefetch = Prefetch.start(sup, self._repository)
        coordinator = StreamCoordinator.start(
            sup,
            config,
            self.sessions,
            self._history,
            self.run_started,
            self._repository.file_rejections,
            self.log,
            prefetch,
            upkeep,
            session_data,
            clock,
            self.output,
        )
        self._refs = {
            "Upkeep": upkeep,
            "StreamCoordinator": coordinator,
            "Prefetch": prefetch,
            "Clock": clock,
            "SessionData": session_data,
        }
        coordinator.tell(Start())
        return self

    def wait(self, timeout: float | None = None) -> RunTotals:
        """Block until the run ends; raise `ActorFailure` if any actor failed."""
        waited = 0.0
        while not self.supervisor.done.wait(0.25):
            waited += 0.25
            if timeout is not None and waited >= timeout:
                raise TimeoutError(f"run did not finish within {timeout} s")
        if self.supervisor.failure is None:
            self._stop_actors(keep=("SessionData",))  # their last messages are handled first
        if self.supervisor.failure is not None:
            self._fail_stop()
        return self.supervisor.result

    def run(self, timeout: float | None = None) -> RunTotals:
        try:
            return self.start().wait(timeout)
        finally:
            self.close()

    def pause(self) -> None:
        self._control(Pause())

    def resume(self) -> None:
        self._control(Resume())

    def _control(self, message: Pause | Resume) -> None:
        if self.supervisor.failure is not None:
            self._fail_stop()
        try:
            self._refs["StreamCoordinator"].tell(message)
        except pykka.ActorDeadError:
            raise RuntimeError("the run has already ended") from None

    def stop(self, timeout: float = _STOP_TIMEOUT) -> RunTotals:
        """Graceful: the step in hand is logged, then `Stopped`, then the actors stop."""
        self.supervisor.stop_requested.set()
        coordinator = self._refs.get("StreamCoordinator")
        if coordinator is not None and coordinator.is_alive():
            coordinator.tell(Stop())
        return self.wait(timeout)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop_actors()
        self.log.close()

    def __enter__(self) -> System:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _stop_actors(self, keep: tuple[str, ...] = ()) -> None:
        for name, ref in self._refs.items():  # Upkeep first, then the coordinator (DESIGN §10)
            if name in keep or not ref.is_alive():
                continue
            try:
                ref.stop(block=True, timeout=_STOP_TIMEOUT)
            except pykka.Timeout:
                logger.error("{} did not stop within {} s", name, _STOP_TIMEOUT)

    def _fail_stop(self) -> None:
        actor, error = self.supervisor.failure
        if self._failure_logged:
            raise ActorFailure(actor, error)
        self._failure_logged = True
        logger.error("{} failed: {!r}; stopping the system", actor, error)
        self._stop_actors()
        self.log.flush()
        last = self.log.next_seq - 1
        ts = next(iter(self.log.events(last, last + 1)), (0, self.run_started))[1].ts
        self.log.append(ActorFailed(ts=ts, actor=actor, error=f"{type(error).__name__}: {error}"))
        self.log.flush()
        raise ActorFailure(actor, error)

    # -- consuming -----------------------------------------------------------------------------

    def events(self) -> Iterator[Event]:
        """The ordered event stream, as the log receives it (needs `output_queue` > 0)."""
        if self.output is None:
            raise RuntimeError("events() needs a RunConfig with output_queue > 0")
        while True:
            try:
                batch = self.output.get(timeout=0.25)
            except queue.Empty:
                if self.supervisor.done.is_set() and self.output.empty():
                    if self.supervisor.failure is not None:
                        self._fail_stop()
                    return
                continue
            for record in batch.records():
                yield decode(record)

    def query(self, name: str, *args: Any, timeout: float = 10.0, **kwargs: Any) -> Any:
        """Ask SessionData, e.g. `query("last_bars", "SPY", 5)`."""
        ok, answer = self._refs["SessionData"].ask((name, args, kwargs), timeout=timeout)
        if not ok:
            raise answer
        return answer
