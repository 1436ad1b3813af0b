"""StreamCoordinator: the pykka shell around `CoordinatorCore`. It only does I/O: the log, the
output queue and the wall clock, which it hands to the one effect interpreter; every decision
is the core's."""

from __future__ import annotations

import queue
import time
from typing import Any

from ticktape.actors.coordinator_core import CoordinatorCore
from ticktape.actors.interpreter import Interpreter
from ticktape.actors.shell import Shell
from ticktape.messages.codec import EncodedBatch
from ticktape.store.eventlog import EventLog

_PUBLISH_WAIT = 0.2
_CRASH_POINTS = {"opening": "open", "closing": "close"}


class StreamCoordinator(Shell):
    name = "StreamCoordinator"

    def __init__(
        self,
        supervisor: Any,
        core: CoordinatorCore,
        log: EventLog,
        output: queue.Queue | None,
    ) -> None:
        super().__init__(supervisor)
        self.core = core
        self.output = output
        self.effects = Interpreter(
            self.send,
            log=log,
            wall=time.monotonic,
            publish=None if output is None else self._publish,
            finished=supervisor.finished,
        )

    def handle(self, message: Any) -> None:
        self.effects.begin(_CRASH_POINTS.get(self.core.state, "step"))
        self.core.receive(message, emit=self.effects)
        self.effects.end()

    def _publish(self, batch: EncodedBatch) -> None:
        """Bounded queue: a slow consumer slows the run; a stop request ends the wait at once."""
        if self.output is None or not len(batch):
            return
        while not self.supervisor.stop_requested.is_set():
            try:
                self.output.put(batch, timeout=_PUBLISH_WAIT)
                return
            except queue.Full:
                continue
