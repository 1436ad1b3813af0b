"""The thin pykka shell every actor shares: dispatch to `handle`, and never swallow a failure."""

from __future__ import annotations

import threading
from typing import Any, Protocol

import pykka


class Supervisor(Protocol):
    def actor_failed(self, actor: str, error: BaseException) -> None: ...


class Shell(pykka.ThreadingActor):
    """Reports any exception to the supervisor with the actor's name, then lets pykka see it too."""

    name = "actor"

    def __init__(self, supervisor: Supervisor) -> None:
        super().__init__()
        self.supervisor = supervisor

    def on_receive(self, message: Any) -> Any:
        try:
            return self.handle(message)
        except Exception as error:
            self.supervisor.actor_failed(self.name, error)
            raise

    def handle(self, message: Any) -> Any:
        raise NotImplementedError


class RunSupervisor:
    """Collects the first failure or the end of the run, for the System waiting on it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.done = threading.Event()
        self.stop_requested = threading.Event()  # lets a blocked publisher give up at once
        self.failure: tuple[str, BaseException] | None = None
        self.result: Any = None

    def actor_failed(self, actor: str, error: BaseException) -> None:
        with self._lock:
            if self.failure is None:
                self.failure = (actor, error)
        self.stop_requested.set()
        self.done.set()

    def finished(self, result: Any) -> None:
        self.result = result
        self.done.set()
