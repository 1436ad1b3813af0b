"""A run split into date shards on Ray, written as a run set (DESIGN §14).

Each shard is the same run over a contiguous part of the sessions, with the same trailing days:
its trailing history is loaded from the sessions before its first, so it starts from the state
the whole run has there, and its sessions' digests equal the whole run's. One Ray task per shard
(one CPU each, so Ray bounds how many run at once). A worker reads the inputs and writes its
shard log on a path every node sees, and sends back only small results: the shard's event count
and digest. (Session digests are read from the logs when asked, as for an unsharded log: hashing
every record again would cost a shard a third more.) A task that fails is retried by Ray and
resumes its log from the committed prefix (`resume` checks that prefix record by record, so
nothing is appended twice).
"""

from __future__ import annotations

import platform
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from ticktape.actors.errors import ActorFailure, ConfigError
from ticktape.actors.system import System
from ticktape.messages.config import RunConfig
from ticktape.messages.errors import TicktapeError
from ticktape.messages.events import ActorFailed, RunFinished, Stopped
from ticktape.scenarios.audit import resume
from ticktape.scenarios.ray_session import import_ray, one_line, ray_cluster
from ticktape.store.calendar import TradingCalendar
from ticktape.store.eventlog import EventLog, LogError
from ticktape.store.runset import (
    RunSetManifest,
    Shard,
    read_manifest,
    seal,
    write_manifest,
)

RETRIES = 2  # Ray retries of a shard task (a killed worker, a failed actor) before giving up


class ShardFailed(TicktapeError):
    """A shard that still failed after its retries; the message names it and its dates."""


def plan(config: RunConfig, count: int) -> list[Shard]:
    """The run's sessions in `count` contiguous shards of near equal length (fewer when there
    are fewer sessions)."""
    if count < 1:
        raise ConfigError("--shards must be 1 or more")
    try:
        config.validate()
        sessions = TradingCalendar(config.calendar).sessions(config.start_date, config.end_date)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    labels = [s.label for s in sessions]
    if not labels:
        raise ConfigError(f"no {config.calendar} sessions between {config.start} and {config.end}")
    count = min(count, len(labels))
    size, extra = divmod(len(labels), count)
    shards, at = [], 0
    for index in range(count):
        n = size + (index < extra)
        part = tuple(labels[at : at + n])
        shards.append(Shard(index=index, log=f"shard-{index:03d}.lmdb", sessions=part))
        at += n
    return shards


def shard_config(config: RunConfig, shard: Shard) -> RunConfig:
    """The whole run's config narrowed to one shard's sessions, data-driven, into its log."""
    return msgspec.structs.replace(
        config,
        start=shard.sessions[0],
        end=shard.sessions[-1],
        log=str(Path(config.log) / shard.log),
        speed=0.0,
        output_queue=0,
    )


def run_shard(config: RunConfig) -> dict[str, Any]:
    """The body of a shard task: run the shard, or resume its log when an earlier attempt left
    one. Returns only small results (the log itself stays on the shared path)."""
    path = Path(config.log)
    began = time.perf_counter()
    if (path / "data.mdb").exists():
        with EventLog.open(path) as log:
            head = log.committed()[0]
            last = next(iter(log.events(head, head + 1)), (0, None))[1] if head else None
        if not head or isinstance(last, ActorFailed | Stopped):  # no prefix to resume from
            shutil.rmtree(path)
            System(config).run()
        elif not isinstance(last, RunFinished):
            resume(str(path))
    else:
        System(config).run()
    with EventLog.open(path) as log:
        events, digest = log.committed()
        return {
            "events": events,
            "digest": digest,
            "attempts": 1 + len(log.manifest().get("resumes", [])),
            "host": platform.node(),
            "seconds": round(time.perf_counter() - began, 3),
        }


def run_sharded(
    config: RunConfig,
    shards: int,
    *,
    address: str | None = None,
    retries: int = RETRIES,
    runtime_env: dict[str, Any] | None = None,
    progress: Callable[[RunSetManifest], None] | None = None,
) -> RunSetManifest:
    """Run `config` as `shards` date shards on Ray into the run set at `config.log`.

    Raises ShardFailed naming the first shard that failed after its retries; the run set is then
    left incomplete (`verify` fails on it, `resume_sharded` finishes it)."""
    import_ray()  # before anything is written: without Ray, one line
    folder = Path(config.log)
    if folder.exists() and any(folder.iterdir()):
        raise ConfigError(f"--log {folder} already exists: a run set needs a new folder")
    if config.speed:
        raise ConfigError("a sharded run is data-driven: leave --speed out")
    manifest = RunSetManifest(config=msgspec.to_builtins(config), shards=plan(config, shards))
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"cannot create the run set folder {folder}: {e.strerror}") from None
    return _run(folder, manifest, address, retries, runtime_env, progress)


def resume_sharded(
    folder: str | Path,
    *,
    address: str | None = None,
    retries: int = RETRIES,
    progress: Callable[[RunSetManifest], None] | None = None,
) -> RunSetManifest:
    """Run the shards of an incomplete run set that are not done, each resuming its log."""
    import_ray()
    manifest = read_manifest(folder)
    if manifest.complete:
        raise ConfigError(f"run set {folder} is complete: nothing to resume")
    for shard in manifest.shards:
        if shard.state != "done":
            shard.state, shard.error = "pending", ""
    return _run(Path(folder), manifest, address, retries, None, progress)


def _run(
    folder: Path,
    manifest: RunSetManifest,
    address: str | None,
    retries: int,
    runtime_env: dict[str, Any] | None,
    progress: Callable[[RunSetManifest], None] | None,
) -> RunSetManifest:
    """One task per shard not done yet; the manifest rewritten as each one settles."""
    config = msgspec.convert({**manifest.config, "log": str(folder)}, RunConfig)
    write_manifest(folder, seal(manifest))
    with ray_cluster(address) as ray:
        task = ray.remote(run_shard).options(
            num_cpus=1,
            max_retries=retries,
            retry_exceptions=[ActorFailure, LogError, OSError],
            runtime_env=runtime_env,
        )
        running = {
            task.remote(shard_config(config, s)): s for s in manifest.shards if s.state != "done"
        }
        while running:
            done, _ = ray.wait(list(running), num_returns=1, timeout=0.5)
            for ref in done:
                _settle(ray, ref, running.pop(ref), retries)
                write_manifest(folder, seal(manifest))
            if progress is not None:
                progress(manifest)
    failed = [s for s in manifest.shards if s.state == "failed"]
    if failed:
        first = failed[0]
        raise ShardFailed(f"{first.name} failed after {first.attempts} attempt(s): {first.error}")
    return manifest


def _settle(ray: Any, ref: Any, shard: Shard, retries: int) -> None:
    try:
        result = ray.get(ref)
    except Exception as e:  # a task's failure after its retries: recorded, named, raised later
        shard.state, shard.error, shard.attempts = "failed", one_line(e), retries + 1
        return
    shard.state = "done"
    shard.events, shard.digest = result["events"], result["digest"]
    shard.attempts, shard.host = result["attempts"], result["host"]
    shard.seconds = result["seconds"]
