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

from ticktape.actors.coordinator_core import RunTotals
from ticktape.actors.system import ConfigError, System
from ticktape.messages.config import RunConfig
from ticktape.messages.events import ActorFailed, Paused, Resumed, RunFinished, Stepped, Stopped
from ticktape.store.eventlog import EventLog, LogError
from ticktape.store.inspect import Divergence, diff

_CONTROLS = (Paused, Resumed, Stepped)


def logged_config(opened: EventLog, **changes: object) -> RunConfig:
    """The run's config as its manifest keeps it, with `changes` (pacing, paths) applied."""
    stored = opened.manifest().get("config")
    if not stored:
        raise LogError(f"log {opened.path} has no run config in its manifest")
    config = msgspec.convert(stored, RunConfig)
    return msgspec.structs.replace(config, **{k: v for k, v in changes.items() if v is not None})


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
    """Continue a run that died (even by kill -9) from its last committed event."""
    with EventLog.open(path) as log:
        seq, _ = log.committed()
        last = next(iter(log.events(seq, seq + 1)), (0, None))[1] if seq else None
        if isinstance(last, RunFinished | Stopped | ActorFailed):
            raise ConfigError(
                f"log {path} already ended ({type(last).__name__}): nothing to resume"
            )
        if any(isinstance(e, _CONTROLS) for _, e in log.events()):
            raise ConfigError(
                f"log {path} holds pause/resume/step inputs; resume re-runs without them, "
                "so it cannot reproduce this run (re-run it instead)"
            )
        config = logged_config(log, speed=speed, data=data, log=path, output_queue=0)
        changed = changed_inputs(log, config.data)
    if changed:  # a re-run over other inputs cannot reproduce the committed prefix
        shown = ", ".join(changed[:5]) + (" ..." if len(changed) > 5 else "")
        raise ConfigError(
            f"log {path}: {len(changed)} input file(s) changed since the run: {shown}"
        )
    began = time.perf_counter()
    writer = EventLog.open_for_resume(path, sync=config.sync, group_size=config.group_size)
    totals = System(config, log=writer).run()
    if writer.resuming:  # closed by the run; reopen only to say so
        raise LogError(f"resume of {path} ended before the committed prefix did")
    with EventLog.open(path, writable=True) as log:
        log.note_resume(
            {
                "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "host": platform.node(),
                "from_seq": seq,
                "seconds": round(time.perf_counter() - began, 3),
            }
        )
    return totals


def rerun(path: str, *, data: str | None = None) -> tuple[RunTotals, Divergence | None, Path]:
    """Run again from the inputs into a fresh log beside a temp folder; compare with `path`."""
    with EventLog.open(path) as log:
        config = logged_config(log, data=data, speed=0.0, output_queue=0)
    out = Path(tempfile.mkdtemp(prefix="ticktape-rerun-")) / "rerun.lmdb"
    totals = System(msgspec.structs.replace(config, log=str(out), sync="none")).run()
    with EventLog.open(path) as a, EventLog.open(out) as b:
        return totals, diff(a, b), out
