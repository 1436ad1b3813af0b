"""Deterministic simulation (DESIGN §12): the actors' cores in one thread, with no pykka, their
messages delivered in a seeded random order, their effects carried out by the shells' own
interpreter, and the real `ClockCore` paced from a virtual wall clock.

Each actor has one FIFO mailbox and a sent message is in it at once, as with pykka; which actor
handles its next message is the seed's choice, which models every way the threads could be
scheduled. The virtual wall clock moves a little with every message handled, and the Clock's timer
wakes late by a seeded amount, so paced steps are cut at random places. Every seed must give the
digest of a real threaded run: that is the proof that the log is a pure function of inputs plus
config.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from ticktape.actors.clock import ClockCore
from ticktape.actors.coordinator_core import RunTotals
from ticktape.actors.effects import Effect, Tell
from ticktape.actors.interpreter import Interpreter
from ticktape.actors.prefetch import prefetch_receive
from ticktape.actors.run_setup import manifest, prepare
from ticktape.actors.session_data import SessionDataCore
from ticktape.actors.upkeep import upkeep_receive
from ticktape.messages.commands import (
    CLOCK,
    COORDINATOR,
    PREFETCH,
    SESSION_DATA,
    UPKEEP,
    ControlAt,
    NextStep,
    Start,
)
from ticktape.messages.config import RunConfig
from ticktape.messages.session import NS_PER_MINUTE
from ticktape.store.eventlog import EventLog

_MAX_DELIVERIES = 10_000_000
_TIMER = "the Clock's timer"
_BUSY = (0.0, 0.0, 1e-6, 1e-3, 0.05)  # wall seconds a handled message may take
_LATE = (0, 0, 1, 7_000_000_000, 3 * NS_PER_MINUTE)  # how late a wake may come, in sim ns


class _VirtualWall:
    """The wall clock of a simulated run: it moves only when the scheduler says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def simulate(config: RunConfig, seed: int, controls: Sequence[ControlAt] = ()) -> RunTotals:
    """Run `config` to the end in one thread, delivering messages in the order `seed` picks;
    `controls`, an earlier run's control inputs, are taken in their places (as a re-run does)."""
    setup = prepare(config)
    rng = random.Random(seed)
    wall = _VirtualWall()
    clock = ClockCore(config.speed)
    coordinator = setup.coordinator_core(tuple(controls))
    mailboxes: dict[str, deque[Any]] = {
        name: deque() for name in (COORDINATOR, UPKEEP, PREFETCH, SESSION_DATA, CLOCK)
    }
    result: list[RunTotals] = []
    log = EventLog.create(
        config.log, manifest(config, setup), sync=config.sync, group_size=config.group_size
    )
    effects = Interpreter(
        lambda to, message: mailboxes[to].append(message),
        log=log,
        wall=wall,
        finished=result.append,
    )
    receivers: dict[str, Callable[[Any], Any]] = {
        COORDINATOR: partial(coordinator.receive, emit=effects),
        UPKEEP: partial(upkeep_receive, setup.upkeep_core()),
        PREFETCH: partial(
            prefetch_receive, setup.repository, setup.backfill, config.extended_hours
        ),
        SESSION_DATA: SessionDataCore(setup.repository.symbols, config.trailing_days).receive,
        CLOCK: lambda message: clock.receive(message, wall.now),
        _TIMER: lambda _: _timer(clock, wall, rng),
    }
    mailboxes[COORDINATOR].append(Start())
    try:
        for _ in range(_MAX_DELIVERIES):
            ready = [name for name, waiting in mailboxes.items() if waiting]
            if clock.armed:
                ready.append(_TIMER)
            if not ready:
                raise RuntimeError("simulation stalled: no message in flight and no result")
            receiver = rng.choice(ready)
            message = mailboxes[receiver].popleft() if receiver in mailboxes else None
            effects.begin()
            for effect in receivers[receiver](message) or ():
                effects(effect)
            effects.end()
            wall.now += rng.choice(_BUSY)
            if result:
                return result[0]
        raise RuntimeError(f"simulation did not finish within {_MAX_DELIVERIES} deliveries")
    finally:
        log.close()


def _timer(clock: ClockCore, wall: _VirtualWall, rng: random.Random) -> list[Effect]:
    """The timer thread's wait, in virtual time: sleep until the wake is due, wake a seeded
    amount late, and hand the coordinator the step the real Clock would."""
    due = clock.poll(wall.now)
    if isinstance(due, float):
        wall.now += due + rng.choice(_LATE) / (clock.speed * 1e9)
        due = clock.poll(wall.now)
    return [Tell(COORDINATOR, due)] if isinstance(due, NextStep) else []
