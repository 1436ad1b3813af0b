"""`ticktape replay` and `ticktape resume`: the log as the run's whole truth."""

from __future__ import annotations

import argparse

from ticktape.actors.coordinator_core import RunTotals
from ticktape.actors.replay import Replay
from ticktape.scenarios.commands.common import console, exchange_tz, local_time
from ticktape.scenarios.commands.controls import KeyReader, graceful, live_status
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
    counted = lambda: f"{replay.totals.events:,} events at {replay.speed:g}x"  # noqa: E731
    with live_status(counted) as note, graceful(replay.request_stop), KeyReader(replay, note):
        return replay.run()
