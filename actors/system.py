"""System: builds a run from its config, starts the actors, supervises them, and stops them.

Everything that can be wrong with the config or the input folder is found here, before any actor
starts, and raised as a one-sentence `ConfigError`. Once running, the first exception in any actor
(or on the clock's timer thread) stops the whole System (fail-stop), is written to the log as
`ActorFailed`, and reaches the caller as `ActorFailure` naming the actor.
"""

from __future__ import annotations

import gc
import queue
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import msgspec
import pykka
from loguru import logger

from ticktape.actors.clock import Clock
from ticktape.actors.consumer import Consumer, Kinds
from ticktape.actors.coordinator import StreamCoordinator
from ticktape.actors.coordinator_core import RunTotals
from ticktape.actors.errors import ActorFailure, ConfigError
from ticktape.actors.prefetch import Prefetch
from ticktape.actors.run_setup import manifest, prepare
from ticktape.actors.session_data import QUERIES, SessionData, SessionDataCore
from ticktape.actors.session_view import SessionView
from ticktape.actors.shell import Connect, RunSupervisor
from ticktape.actors.upkeep import Upkeep
from ticktape.messages.codec import EncodedBatch
from ticktape.messages.commands import (
    CLOCK,
    COORDINATOR,
    PREFETCH,
    SESSION_DATA,
    UPKEEP,
    ControlAt,
    Pause,
    Resume,
    SetSpeed,
    Start,
    StepOnce,
    Stop,
)
from ticktape.messages.config import RunConfig
from ticktape.messages.events import ActorFailed, Event
from ticktape.store.eventlog import EventLog, LogError

_STOP_TIMEOUT = 10.0
_GRACEFUL_STOP = 1.0  # leaving a run early: how long `Stopped` may take to be written
_POLL = 0.25  # how often a waiting caller checks that every actor is still alive


class System(Consumer):
    """One run: `System(config).run()`, or start/events/pause/resume/step/stop for finer control.

    `log` may be an already open log (resume opens one that checks the prefix it regenerates);
    `controls` are an earlier run's control inputs, taken again in their places (a re-run or
    resume of a paused, stepped or stopped run: `ticktape.scenarios.audit`).
    """

    def __init__(
        self,
        config: RunConfig,
        *,
        log: EventLog | None = None,
        controls: Sequence[ControlAt] = (),
    ) -> None:
        try:
            self.setup = prepare(config)
            self.log = log or EventLog.create(
                config.log,
                manifest(config, self.setup),
                sync=config.sync,
                group_size=config.group_size,
            )
        except (ValueError, LogError) as e:
            raise ConfigError(str(e)) from None
        self.config = config
        self.sessions = self.setup.sessions
        self.run_started = self.setup.run_started
        self.supervisor = RunSupervisor()
        self.output: queue.Queue | None = (
            queue.Queue(maxsize=config.output_queue) if config.output_queue > 0 else None
        )
        self._refs: dict[str, pykka.ActorRef] = {}
        self._closed = False
        self._frozen = False  # gc.freeze() at start, undone at close
        self._failure_logged = False
        self.view = SessionView()  # SessionData as of what the consumer took
        self._consuming = False
        self._controls = tuple(controls)

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> System:
        if self._refs:
            return self
        config, sup, setup = self.config, self.supervisor, self.setup
        # What exists now (modules, the calendar, the scan) lives as long as the run: frozen, a
        # full collection does not walk it, which otherwise stalls a release for tens of ms.
        gc.freeze()
        self._frozen = True
        core = setup.coordinator_core(self._controls)
        symbols = setup.repository.symbols
        self._refs = {  # Upkeep first, then the coordinator: the order they stop in (DESIGN §10)
            UPKEEP: Upkeep.start(sup, setup.upkeep_core()),
            COORDINATOR: StreamCoordinator.start(sup, core, self.log, self.output),
            PREFETCH: Prefetch.start(sup, setup.repository, setup.backfill, config.extended_hours),
            CLOCK: Clock.start(sup, config.speed),
            SESSION_DATA: SessionData.start(sup, SessionDataCore(symbols, config.trailing_days)),
        }
        for ref in self._refs.values():
            ref.tell(Connect(self._refs))
        self._refs[COORDINATOR].tell(Start())
        return self

    def wait(self, timeout: float | None = None) -> RunTotals:
        """Block until the run ends; raise `ActorFailure` if any actor failed.

        Waits in short slices and checks that every actor is alive, so a run whose actor died
        without a word fails here instead of hanging.
        """
        waited = 0.0
        while not self.supervisor.done.wait(_POLL):
            waited += _POLL
            dead = [name for name, ref in self._refs.items() if not ref.is_alive()]
            if dead and not self.supervisor.done.is_set():
                self.supervisor.actor_failed(dead[0], RuntimeError("stopped without a word"))
            if timeout is not None and waited >= timeout:
                raise TimeoutError(f"run did not finish within {timeout} s")
        if self.supervisor.failure is None:
            self._stop_actors(keep=(SESSION_DATA,))  # their last messages are handled first
        if self.supervisor.failure is not None:
            self._fail_stop()
        return self.supervisor.result

    def run(self, timeout: float | None = None) -> RunTotals:
        """Start, wait for the end, close. Nobody reads `events()` here, so a bounded
        `output_queue` would fill and hold the run forever: that is refused at once."""
        try:
            if self.output is not None and not self._consuming:
                raise ConfigError(
                    f"run() reads no events, so output_queue={self.config.output_queue} would "
                    "fill and hold the run: iterate events() (or subscribe) after start(), "
                    "or leave output_queue at 0"
                )
            return self.start().wait(timeout)
        finally:
            self.close()

    def pause(self) -> None:
        self._control(Pause())

    def resume(self) -> None:
        self._control(Resume())

    def step(self) -> None:
        """While paused: release exactly the next slice and its upkeep, then stay paused."""
        self._control(StepOnce())

    def set_speed(self, speed: float) -> None:
        """Pacing, not a fact: the log is the same at any speed."""
        RunConfig(**{**msgspec.structs.asdict(self.config), "speed": speed}).validate()
        self._control(SetSpeed(speed))

    def _control(self, message: Any) -> None:
        if self.supervisor.failure is not None:
            self._fail_stop()
        try:
            self._refs[COORDINATOR].tell(message)
        except (KeyError, pykka.ActorDeadError):
            raise RuntimeError("the run is not running") from None

    def stop(self, timeout: float = _STOP_TIMEOUT) -> RunTotals:
        """Graceful: the step in hand is logged, then `Stopped`, then the actors stop."""
        self.request_stop()
        return self.wait(timeout)

    def request_stop(self) -> None:
        """Ask for a graceful stop and return at once (safe from a signal handler)."""
        self.supervisor.stop_requested.set()
        coordinator = self._refs.get(COORDINATOR)
        if coordinator is not None and coordinator.is_alive():
            coordinator.tell(Stop())

    def close(self) -> None:
        """Stops a run still going (gracefully, within a second), the actors, and the log."""
        if self._closed:
            return
        self._closed = True
        if self._refs and not self.supervisor.done.is_set():
            self.request_stop()
            self.supervisor.done.wait(_GRACEFUL_STOP)
        self._stop_actors()
        for thread in self.supervisor.threads:
            if thread is not threading.current_thread():
                thread.join(_STOP_TIMEOUT)
        self.log.close()
        if self._frozen:
            gc.unfreeze()

    def __enter__(self) -> System:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _stop_actors(self, keep: tuple[str, ...] = ()) -> None:
        for name, ref in self._refs.items():
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
        # Said once, by the ActorFailure raised below (the CLI's one line); this is the early
        # notice for -v, before the actors' stop, which may take a while.
        logger.info("{} failed: {!r}; stopping the system", actor, error)
        self._stop_actors()
        self.log.flush()
        last = self.log.next_seq - 1
        ts = next(iter(self.log.events(last, last + 1)), (0, self.run_started))[1].ts
        self.log.append(ActorFailed(ts=ts, actor=actor, error=f"{type(error).__name__}: {error}"))
        self.log.flush()
        raise ActorFailure(actor, error)

    # -- consuming -----------------------------------------------------------------------------

    def events(
        self, *, kinds: Kinds = None, symbols: Iterable[str] | None = None
    ) -> Iterator[Event]:
        """The ordered event stream, as the log receives it (needs `output_queue` > 0). `kinds`
        (event types or names) and `symbols` narrow what this consumer sees (an event with no
        symbol, such as `SessionOpened`, passes a symbol filter); the log is unchanged.

        Leaving the loop early stops the run (gracefully, `Stopped` written) within a second.
        The run starts here if `start()` was not called.
        """
        if self.output is None:
            raise RuntimeError("events() needs a RunConfig with output_queue > 0")
        if not self._refs:  # not started yet: taking the stream starts the run
            self.start()
        self._consuming = True
        return self._deliver(self._published(), kinds, symbols)

    def _published(self) -> Iterator[tuple[EncodedBatch, None, None]]:
        finished = False
        try:
            while True:
                try:
                    batch = self.output.get(timeout=_POLL)
                except queue.Empty:
                    if self.supervisor.done.is_set() and self.output.empty():
                        finished = True
                        if self.supervisor.failure is not None:
                            self._fail_stop()
                        return
                    continue
                yield batch, None, None
        finally:
            if not finished and not self.supervisor.done.is_set():
                self.request_stop()

    def _core(self) -> SessionDataCore | None:
        return self.view.core() if self._consuming else None

    def _symbols(self) -> tuple[str, ...]:
        return self.setup.repository.symbols

    def _no_view(self, name: str, args: tuple, kwargs: dict) -> Any:
        """No consumer takes the stream: SessionData answers as of its own present."""
        return self._ask_session_data(name, *args, **kwargs)

    def _ask_session_data(self, name: str, *args: Any, timeout: float = 10.0, **kwargs: Any) -> Any:
        if name not in (*QUERIES, "retained_bytes"):
            raise ValueError(f"{name!r} is not a query; the queries are: {', '.join(QUERIES)}")
        ok, answer = self._refs[SESSION_DATA].ask((name, args, kwargs), timeout=timeout)
        if not ok:
            raise answer
        return answer

    def query(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """A query by name, e.g. `query("last_bars", "SPY", 5)`; the typed methods say more.
        A consumer of `events()` is answered as of the last event it took."""
        if name == "retained_bytes":
            return self._ask_session_data(name)
        return super().query(name, *args, **kwargs)
