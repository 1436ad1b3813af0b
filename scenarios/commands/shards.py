"""`ticktape run ... --shards N [--ray ADDRESS]`: a run as date shards on Ray, into a run set."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from rich.progress import TextColumn, TimeElapsedColumn
from rich.table import Table

from ticktape.messages.config import RunConfig
from ticktape.scenarios.commands.common import UsageError, console, stderr_progress
from ticktape.scenarios.shards import ShardFailed, resume_sharded, run_sharded
from ticktape.store.eventlog import EventLog, LogError
from ticktape.store.runset import RunSetManifest, Shard


def run_shards(config: RunConfig, shards: int | None, address: str | None) -> int:
    if shards is None:
        raise UsageError("--ray needs --shards N")
    return _with_progress(
        Path(config.log),
        lambda show: run_sharded(config, shards, address=address, progress=show),
    )


def resume_shards(folder: str, address: str | None) -> int:
    """`ticktape resume SET`: the shards of an incomplete run set that are not done."""
    return _with_progress(
        Path(folder), lambda show: resume_sharded(folder, address=address, progress=show)
    )


def _with_progress(
    folder: Path, go: Callable[[Callable[[RunSetManifest], None]], RunSetManifest]
) -> int:
    with stderr_progress(TextColumn("{task.description}"), TimeElapsedColumn()) as progress:
        rows: dict[int, object] = {}

        def show(manifest: RunSetManifest) -> None:
            for shard in manifest.shards:
                if shard.index not in rows:
                    rows[shard.index] = progress.add_task("", total=None)
                progress.update(rows[shard.index], description=_status(folder, shard))

        try:
            manifest = go(show)
        except ShardFailed as e:
            print(f"ticktape: {e}; the run set {folder} is incomplete", file=sys.stderr)
            return 1
    console.print(shards_table(manifest))
    print(f"next: ticktape log verify {folder}  (checks every shard; prints the set's digest)")
    print(f"chain {manifest.chain}")
    return 0


def _status(folder: Path, shard: Shard) -> str:
    """One shard's line: its dates, its state, and while it runs, the events its log holds."""
    events = shard.events
    if shard.state == "pending" and (folder / shard.log / "data.mdb").exists():
        try:
            with EventLog.open(folder / shard.log) as log:
                events = log.committed()[0]
        except LogError:
            pass  # being created: counted on the next look
    return f"{shard.name}: {shard.state}, {events:,} events"


def shards_table(manifest: RunSetManifest) -> Table:
    table = Table(title=f"run set: {len(manifest.shards)} shards, complete={manifest.complete}")
    for column in ("shard", "sessions", "events", "attempts", "digest"):
        table.add_column(column, justify="right" if column in ("events", "attempts") else "left")
    for s in manifest.shards:
        table.add_row(
            str(s.index), f"{s.dates} ({len(s.sessions)})", f"{s.events:,}", str(s.attempts),
            f"{s.digest[:16]}…" if s.digest else s.state,
        )  # fmt: skip
    return table
