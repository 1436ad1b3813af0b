"""The thin pykka shell every actor shares: hand a message to the core, carry out its `Tell`s, and
never swallow a failure."""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any, Protocol

import pykka

from ticktape.actors.effects import Effect
from ticktape.actors.interpreter import Interpreter


class Supervisor(Protocol):
    threads: list[threading.Thread]
    done: threading.Event

    def actor_failed(self, actor: str, error: BaseException) -> None: ...


class Connect:
    """Every actor's address book, sent once by the System before anything else."""

    def __init__(self, peers: dict[str, pykka.ActorRef]) -> None:
        self.peers = peers


class ActorCrash(Exception):
    """A BaseException (SystemExit, KeyboardInterrupt...) raised in an actor. pykka would stop every
    actor of the process on one; as an Exception it fail-stops this System like any failure."""


class Shell(pykka.ThreadingActor):
    """Reports any failure to the supervisor with the actor's name (pykka's `on_failure`)."""

    name = "actor"
    use_daemon_thread = True  # a hung actor must never keep the process alive; close() joins

    def __init__(self, supervisor: Supervisor) -> None:
        super().__init__()
        self.supervisor = supervisor
        self.peers: dict[str, pykka.ActorRef] = {}
        self.effects = Interpreter(self.send)

    def on_start(self) -> None:
        self.supervisor.threads.append(threading.current_thread())

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Connect):
            self.peers = message.peers
            return None
        try:
            return self.handle(message)
        except Exception:
            raise
        except BaseException as error:
            raise ActorCrash(f"{type(error).__name__}: {error}") from error

    def on_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        error = exception_value
        if isinstance(error, ActorCrash) and error.__cause__ is not None:
            error = error.__cause__
        self.supervisor.actor_failed(self.name, error or RuntimeError("unknown failure"))

    def handle(self, message: Any) -> Any:
        raise NotImplementedError

    def carry_out(self, effects: list[Effect]) -> None:
        self.effects.carry_all(effects)

    def send(self, to: str, message: Any) -> None:
        """Tell a peer. Once the run is over its actors stop in order, and a message still on its
        way to one that has stopped (a session loaded ahead, a late wake) is moot, not a failure."""
        try:
            self.peers[to].tell(message)
        except pykka.ActorDeadError:
            if not self.supervisor.done.is_set():
                raise


class RunSupervisor:
    """Collects the first failure or the end of the run, for the System waiting on it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.done = threading.Event()
        self.stop_requested = threading.Event()  # lets a blocked publisher give up at once
        self.failure: tuple[str, BaseException] | None = None
        self.result: Any = None
        self.threads: list[threading.Thread] = []  # every thread of the run, joined by close()

    def actor_failed(self, actor: str, error: BaseException) -> None:
        with self._lock:
            if self.failure is None:
                self.failure = (actor, error)
        self.stop_requested.set()
        self.done.set()

    def finished(self, result: Any) -> None:
        self.result = result
        self.done.set()
