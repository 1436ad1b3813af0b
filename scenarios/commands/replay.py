"""`ticktape replay` and `ticktape resume`: the log as the run's whole truth."""

from __future__ import annotations

import argparse
import sys
import threading

from ticktape.actors.coordinator_core import RunTotals
from ticktape.actors.replay import Replay
from ticktape.scenarios.commands.common import console, exchange_tz, local_time, stderr_progress
from ticktape.scenarios.commands.controls import KEYS, KeyReader, graceful
from ticktape.store.runset_log import open_log


def register(sub: argparse._SubParsersAction) -> None:
    replay = sub.add_parser("replay", help="re-deliver a run from its log, at any speed")
    replay.add_argument("path", help="the event log, or a run set")
    replay.add_argument("--speed", type=float, default=0.0, help="0 = as fast as possible")
    replay.add_argument("--from", dest="start", help="first time delivered (exchange time zone)")
    replay.add_argument("--to", dest="end", help="deliver up to this time (exchange time zone)")
    replay.set_defaults(handler=cmd_replay)


def cmd_replay(args: argparse.Namespace) -> int:
    tz = "UTC"
    if args.start or args.end:
        with open_log(args.path) as log:
            tz = exchange_tz(log)
    start = local_time(args.start, tz, "--from")
    end = local_time(args.end, tz, "--to")
    replay = Replay(args.path, speed=args.speed, start_ts=start, end_ts=end)
    totals = replay_with_status(replay) if args.speed > 0 else replay.run()
    console.print(f"replayed {totals.events:,} events ({totals.bars:,} bars), {totals.state}")
    print(f"digest {totals.digest}")
    return 0


def replay_with_status(replay: Replay) -> RunTotals:
    """A paced replay shows what it delivered and takes the same keys as `run` (p, s, +/-, q);
    Ctrl-C or SIGTERM stop it at the next slice."""
    from rich.progress import SpinnerColumn, TextColumn, TimeElapsedColumn

    with stderr_progress(SpinnerColumn(), TextColumn("{task.description}"),
                         TimeElapsedColumn()) as progress:  # fmt: skip
        task = progress.add_task("replaying", total=None)
        note = [KEYS if sys.stdin.isatty() else ""]
        done = threading.Event()

        def report() -> None:
            while not done.wait(0.2):
                events = f"{replay.totals.events:,} events at {replay.speed:g}x"
                progress.update(task, description=f"replaying: {events}  {note[0]}")

        reporter = threading.Thread(target=report, daemon=True)
        reporter.start()
        try:
            with (
                graceful(replay.request_stop),
                KeyReader(replay, lambda text: note.__setitem__(0, text)),
            ):
                return replay.run()
        finally:
            done.set()
            reporter.join(1.0)
