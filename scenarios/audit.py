"""Runs that check a log against its inputs: `resume` after a crash, and `verify --rerun`.

Both stand on the deterministic core (DESIGN §12): the same inputs and config give the same log, so
a re-run reproduces a committed prefix byte for byte and a finished log entirely.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import platform
import tempfile
import time
from pathlib import Path

import msgspec
import numpy as np

from ticktape.actors.coordinator_core import RunTotals
from ticktape.actors.system import ConfigError, System
from ticktape.messages.codec import decode_many, record_kinds
from ticktape.messages.commands import ControlAt, Pause, Resume, StepOnce, Stop
from ticktape.messages.config import RunConfig
from ticktape.messages.events import ActorFailed, RunFinished
from ticktape.store.eventlog import EventLog, LogError
from ticktape.store.inspect import Divergence, diff

# A control input's fact in the log -> the input that wrote it.
_CONTROLS = {"Paused": Pause(), "Resumed": Resume(), "Stepped": StepOnce(), "Stopped": Stop()}


def control_inputs(log: EventLog) -> list[ControlAt]:
    """The run's control inputs, each with its place: the events before it in the log. Only the
    records' kinds are read, and only the controls are decoded."""
    found = []
    for first, batch in log.batches(1, log.committed()[0] + 1, blocks=64):
        at = np.flatnonzero(np.isin(record_kinds(batch), list(_CONTROLS)))
        for i, event in zip(at.tolist(), decode_many(batch.take(at)), strict=True):
            control = _CONTROLS[type(event).__name__]
            found.append(ControlAt(after=first + i - 1, control=control, ts=event.ts))
    return found


def logged_config(opened: EventLog, **changes: object) -> RunConfig:
    """The run's config as its manifest keeps it, with `changes` (pacing, paths) applied. Input
    folders are the ones the run resolved (a relative `data` means where the run was started)."""
    manifest = opened.manifest()
    stored = manifest.get("config")
    if not stored:
        raise LogError(f"log {opened.path} has no run config in its manifest")
    config = msgspec.convert(stored, RunConfig)
    resolved = {k: v for k, v in manifest.get("paths", {}).items() if k in ("data", "backfill")}
    changes = {**resolved, **{k: v for k, v in changes.items() if v is not None}}
    return msgspec.structs.replace(config, **changes)


def changed_inputs(log: EventLog, data: str) -> list[str]:
    """Files the run read whose sha256 is not what the manifest recorded (or that are gone)."""
    changed = []
    for name, digest in sorted(log.manifest().get("inputs", {}).items()):
        path = Path(data) / name
        try:
            with path.open("rb") as fh:
                now = hashlib.file_digest(fh, "sha256").hexdigest()
        except OSError:
            changed.append(f"{name} (missing)")
            continue
        if now != digest:
            changed.append(name)
    return changed


def resume(path: str, *, speed: float = 0.0, data: str | None = None) -> RunTotals:
    """Continue a run that died (even by kill -9) or was stopped (Ctrl-C) from its last committed
    event. The run is done again from its inputs, its control inputs taken in their places, and
    checked against the stored prefix; then it goes on. A stopped run goes on in place of its
    `Stopped` (noted in the manifest), so its finished log is the uninterrupted run's."""
    with EventLog.open(path) as log:
        seq, _ = log.committed()
        last = next(iter(log.events(seq, seq + 1)), (0, None))[1] if seq else None
        if isinstance(last, RunFinished | ActorFailed):
            raise ConfigError(
                f"log {path} already ended ({type(last).__name__}): nothing to resume"
            )
        controls = control_inputs(log)
        config = logged_config(log, speed=speed, data=data, log=path, output_queue=0)
        changed = changed_inputs(log, config.data)
    if changed:  # a re-run over other inputs cannot reproduce the committed prefix
        shown = ", ".join(changed[:5]) + (" ..." if len(changed) > 5 else "")
        raise ConfigError(
            f"log {path}: {len(changed)} input file(s) changed since the run: {shown}"
        )
    stopped = bool(controls) and controls[-1].after == seq - 1 and controls[-1].control == Stop()
    if stopped:
        del controls[-1]
    if _paused_at_end(controls):  # it goes on unpaused: that is a fact too
        controls.append(ControlAt(after=seq - stopped, control=Resume(), ts=controls[-1].ts))
    began = time.perf_counter()
    writer = EventLog.open_for_resume(
        path, sync=config.sync, group_size=config.group_size, replace_last=stopped
    )
    totals = System(config, log=writer, controls=controls).run()
    if writer.resuming:  # closed by the run; reopen only to say so
        raise LogError(f"resume of {path} ended before the committed prefix did")
    with EventLog.open(path, writable=True) as log:
        log.note_resume(
            {
                "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "host": platform.node(),
                "from_seq": seq,
                "stopped_at_seq": seq if stopped else None,
                "seconds": round(time.perf_counter() - began, 3),
            }
        )
    return totals


def _paused_at_end(controls: list[ControlAt]) -> bool:
    paused = False
    for taken in controls:
        if taken.control == Pause():
            paused = True
        elif taken.control == Resume():
            paused = False
    return paused


def rerun(path: str, *, data: str | None = None) -> tuple[RunTotals, Divergence | None, Path]:
    """Run again from the inputs, its control inputs taken in their places, into a fresh log in
    a temp folder; compare with `path`."""
    with EventLog.open(path) as log:
        config = logged_config(log, data=data, speed=0.0, output_queue=0)
        controls = control_inputs(log)
    out = Path(tempfile.mkdtemp(prefix="ticktape-rerun-")) / "rerun.lmdb"
    config = msgspec.structs.replace(config, log=str(out), sync="none")
    totals = System(config, controls=controls).run()
    with EventLog.open(path) as a, EventLog.open(out) as b:
        return totals, diff(a, b), out
