"""`ticktape resume LOG`: continue a run that died or was stopped, from its last committed event."""

from __future__ import annotations

import argparse

from ticktape.scenarios.audit import resume
from ticktape.scenarios.commands.common import console
from ticktape.store.runset import is_run_set


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "resume", help="continue a crashed or stopped (Ctrl-C) run from its last committed event"
    )
    p.add_argument("path", help="the event log of the run, or an incomplete run set")
    p.add_argument("--speed", type=float, default=0.0, help="pacing of the rest (0 = fast)")
    p.add_argument("--data", help="the input folder, if it moved since the run")
    p.add_argument("--ray", dest="ray_address", help="a run set: the Ray cluster to use")
    p.set_defaults(handler=cmd_resume)


def cmd_resume(args: argparse.Namespace) -> int:
    if is_run_set(args.path):
        from ticktape.scenarios.commands.shards import resume_shards

        return resume_shards(args.path, args.ray_address)
    totals = resume(args.path, speed=args.speed, data=args.data)
    console.print(f"resumed: {totals.events:,} events in the log, {totals.state}")
    print(f"digest {totals.digest}")
    return 0
