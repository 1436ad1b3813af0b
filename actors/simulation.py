"""Deterministic simulation (DESIGN §12): the actors' cores in one thread, with no pykka and no wall
clock, their messages delivered in a seeded random order.

Each actor has one FIFO mailbox and a sent message is in it at once, as with pykka; which actor
handles its next message is the seed's choice, which models every way the threads could be
scheduled. The virtual clock answers a wake late by a random amount, so paced steps are cut at
random places. Every seed must give the digest of a real threaded run: that is the proof that the
log is a pure function of inputs plus config.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import Any

from ticktape.actors.coordinator_core import RunTotals
from ticktape.actors.effects import Commit, Effect, Finish, Tell, Write
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
    NextStep,
    Start,
    WakeAt,
)
from ticktape.messages.config import RunConfig
from ticktape.messages.session import NS_PER_MINUTE
from ticktape.store.eventlog import EventLog

_MAX_DELIVERIES = 10_000_000


class VirtualClock:
    """Wakes the coordinator at the asked time plus a seeded lateness of up to a few minutes."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def receive(self, message: Any) -> list[Effect]:
        if isinstance(message, WakeAt):
            late = self.rng.choice((0, 0, 1, 7_000_000_000, 3 * NS_PER_MINUTE))
            return [Tell(COORDINATOR, NextStep(until=message.ts + late))]
        return []  # time moves, pauses and speeds change nothing without a wall clock


def simulate(config: RunConfig, seed: int) -> RunTotals:
    """Run `config` to the end in one thread, delivering messages in the order `seed` picks."""
    setup = prepare(config)
    rng = random.Random(seed)
    coordinator = setup.coordinator_core()
    receivers: dict[str, Callable[[Any], list[Effect]]] = {
        COORDINATOR: coordinator.receive,
        UPKEEP: partial(upkeep_receive, setup.upkeep_core()),
        PREFETCH: partial(prefetch_receive, setup.repository, config.extended_hours),
        SESSION_DATA: SessionDataCore(setup.repository.symbols, config.trailing_days).receive,
        CLOCK: VirtualClock(rng).receive,
    }
    mailboxes: dict[str, deque[Any]] = {name: deque() for name in receivers}
    mailboxes[COORDINATOR].append(Start())
    log = EventLog.create(
        config.log, manifest(config, setup), sync=config.sync, group_size=config.group_size
    )
    result: RunTotals | None = None
    try:
        for _ in range(_MAX_DELIVERIES):
            ready = [name for name, waiting in mailboxes.items() if waiting]
            if not ready:
                raise RuntimeError("simulation stalled: no message in flight and no result")
            receiver = rng.choice(ready)
            for effect in receivers[receiver](mailboxes[receiver].popleft()):
                match effect:
                    case Tell(to=to, message=sent):
                        mailboxes[to].append(sent)
                    case Write(records=records):
                        log.append_batch(records)
                    case Commit():
                        log.flush()
                    case Finish(totals=totals):
                        result = totals
            if result is not None:
                log.flush()
                result.events, result.digest = log.next_seq - 1, log.digest
                return result
        raise RuntimeError(f"simulation did not finish within {_MAX_DELIVERIES} deliveries")
    finally:
        log.close()
