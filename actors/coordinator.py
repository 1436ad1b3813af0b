"""StreamCoordinator: the pykka shell around `CoordinatorCore`. It only does I/O: the log, the
output queue, and lateness figures; every decision is the core's."""

from __future__ import annotations

import queue
import time
from typing import Any

import numpy as np
from loguru import logger

from ticktape.actors.coordinator_core import CoordinatorCore
from ticktape.actors.effects import Commit, Effect, Finish, Measure, Tell, Write
from ticktape.actors.lateness import LatenessHistogram
from ticktape.actors.shell import Shell
from ticktape.messages.codec import EncodedBatch
from ticktape.store import faults
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
        self.log = log
        self.output = output
        self.lateness = LatenessHistogram()
        self._point = ""
        self._carried = 0
        self._unwritten: list[Write] = []

    def handle(self, message: Any) -> None:
        self._point = _CRASH_POINTS.get(self.core.state, "step")
        self._carried = 0
        self.core.receive(message, emit=self.carry_one)
        self._write_out()

    def carry_one(self, effect: Effect) -> None:
        """Carry out one effect as soon as the core decides it; a run of writes is appended to
        the log at once, then published part by part, before anything else happens."""
        self._carried += 1
        if self._carried == 2:
            faults.reached(self._point)  # between two writes of one message (kill -9 tests)
        if isinstance(effect, Write):
            self._unwritten.append(effect)
            return
        self._write_out(commit=not isinstance(effect, Measure))
        match effect:
            case Tell():
                self.tell(effect)
            case Measure(due=due, line=line):  # a paced step is out: its lateness, then a commit
                self._measure(due, line)
                self.log.commit_due()
            case Commit():
                self.log.flush()
            case Finish(totals=totals):
                totals.events = self.log.next_seq - 1
                totals.digest = self.log.digest
                totals.lateness = self.lateness.summary()
                if totals.lateness:  # pacing figures: the manifest and loguru, never the chain
                    self.log.write_manifest({**self.log.manifest(), "lateness": totals.lateness})
                    logger.info("lateness (s): {}", totals.lateness)
                self.supervisor.finished(totals)

    def _write_out(self, commit: bool = True) -> None:
        if not self._unwritten:
            return
        writes, self._unwritten = self._unwritten, []
        self.log.append_batch(EncodedBatch.concat([w.records for w in writes]), commit=commit)
        if self.output is None:
            return
        for write in writes:
            start = 0
            for end in [len(write.records)] if write.parts is None else write.parts.tolist():
                self._publish(write.records.take(slice(start, end)))
                start = end

    def _measure(self, due: np.ndarray, line: tuple[int, float, float]) -> None:
        anchor_sim, anchor_wall, speed = line
        due_wall = anchor_wall + (due - anchor_sim) / (speed * 1e9)
        self.lateness.add(time.monotonic() - due_wall)

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
