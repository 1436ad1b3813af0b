"""The one effect interpreter (DESIGN §12): where the cores' effects meet the world.

The pykka shells and the deterministic simulation both hand every effect to an `Interpreter`; they
differ only in what they give it: how a message is sent (a pykka tell, or a mailbox in one thread),
what the wall clock is (`time.monotonic`, or a virtual one), and where published batches go (the
bounded output queue, or nowhere). So the simulation proves the code that runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from loguru import logger

from ticktape.actors.effects import Commit, Effect, Finish, Measure, Tell, Write
from ticktape.actors.lateness import LatenessHistogram, WallProgress
from ticktape.messages.codec import EncodedBatch
from ticktape.store import faults
from ticktape.store.eventlog import EventLog

Send = Callable[[str, Any], None]


class Interpreter:
    """Carries out effects in the order a core decides them.

    A run of `Write`s is appended to the log at once, then published part by part, before anything
    else happens: the log never lags what the consumer or another actor has seen. An actor without
    a log (all but the coordinator) only sends messages.
    """

    def __init__(
        self,
        send: Send,
        *,
        log: EventLog | None = None,
        wall: Callable[[], float] | None = None,
        publish: Callable[[EncodedBatch], None] | None = None,
        finished: Callable[[Any], None] | None = None,
    ) -> None:
        self.send = send
        self.log = log
        self.wall = wall
        self.publish = publish
        self.finished = finished
        self.lateness = LatenessHistogram()
        self.progress = None if wall is None else WallProgress(wall)
        self._point = ""
        self._carried = 0
        self._unwritten: list[Write] = []

    def carry_all(self, effects: list[Effect], point: str = "") -> None:
        self.begin(point)
        for effect in effects:
            self(effect)
        self.end()

    def begin(self, point: str = "") -> None:
        """A message begins; `point` names it for the kill -9 tests (`store.faults`)."""
        self._point = point
        self._carried = 0

    def __call__(self, effect: Effect) -> None:
        """Carry out one effect, as soon as the core decides it."""
        self._carried += 1
        if self._carried == 2 and self._point:
            faults.reached(self._point)  # between two writes of one message (kill -9 tests)
        if isinstance(effect, Write):
            self._unwritten.append(effect)
            return
        self._write_out(commit=not isinstance(effect, Measure))
        match effect:
            case Tell(to=to, message=message):
                self.send(to, message)
            case Measure(due=due, line=line):  # a paced step is out: its lateness, then a commit
                self._measure(due, line)
                self._own_log().commit_due()
                self._note_progress(often=False)
            case Commit():
                self._own_log().flush()
                self._note_progress()
            case Finish(totals=totals):
                self._finish(totals)
            case _:
                raise TypeError(f"cannot carry out {type(effect).__name__}")

    def end(self) -> None:
        """The message is handled: what it wrote goes out."""
        self._write_out()

    def _own_log(self) -> EventLog:
        if self.log is None:
            raise TypeError("an actor without the log cannot write, commit or finish a run")
        return self.log

    def _write_out(self, commit: bool = True) -> None:
        if not self._unwritten:
            return
        writes, self._unwritten = self._unwritten, []
        batch = EncodedBatch.concat([w.records for w in writes])
        self._own_log().append_batch(batch, commit=commit)
        if self.publish is None:
            return
        for write in writes:
            start = 0
            for end in [len(write.records)] if write.parts is None else write.parts.tolist():
                self.publish(write.records.take(slice(start, end)))
                start = end

    def _measure(self, due: np.ndarray, line: tuple[int, float, float]) -> None:
        if self.wall is None:
            raise TypeError("measuring lateness needs a wall clock")
        anchor_sim, anchor_wall, speed = line
        due_wall = anchor_wall + (due - anchor_sim) / (speed * 1e9)
        self.lateness.add(self.wall() - due_wall)

    def _note_progress(self, *, often: bool = True) -> None:
        if self.progress is not None:
            self.progress.note(self._own_log().next_seq - 1, often=often)

    def _finish(self, totals: Any) -> None:
        log = self._own_log()
        totals.events = log.next_seq - 1
        totals.digest = log.digest
        totals.lateness = self.lateness.summary()
        # Pacing and wall-clock figures: the manifest and loguru, never the chain.
        manifest = log.manifest()
        if self.progress is not None:
            manifest["wall"] = self.progress.summary()
        if totals.lateness:
            manifest["lateness"] = totals.lateness
            logger.info("lateness (s): {}", totals.lateness)
        log.write_manifest(manifest)
        if self.finished is not None:
            self.finished(totals)
