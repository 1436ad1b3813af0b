"""`ticktape replay` and `ticktape resume`: the log as the run's whole truth."""

from __future__ import annotations

import argparse

from actors.replay import Replay
from scenarios.commands.common import console, local_time
from store.calendar import TradingCalendar
from store.eventlog import EventLog


def register(sub: argparse._SubParsersAction) -> None:
    replay = sub.add_parser("replay", help="re-deliver a run from its log, at any speed")
    replay.add_argument("path", help="the event log")
    replay.add_argument("--speed", type=float, default=0.0, help="0 = as fast as possible")
    replay.add_argument("--from", dest="start", help="first time delivered (exchange time zone)")
    replay.add_argument("--to", dest="end", help="deliver up to this time (exchange time zone)")
    replay.set_defaults(handler=cmd_replay)


def _tz(path: str) -> str:
    with EventLog.open(path) as log:
        calendar = log.manifest().get("config", {}).get("calendar", "XNYS")
    return TradingCalendar(calendar).tz


def cmd_replay(args: argparse.Namespace) -> int:
    tz = _tz(args.path) if args.start or args.end else "UTC"
    start = local_time(args.start, tz) if args.start else None
    end = local_time(args.end, tz) if args.end else None
    totals = Replay(args.path, speed=args.speed, start_ts=start, end_ts=end).run()
    console.print(f"replayed {totals.events:,} events ({totals.bars:,} bars), {totals.state}")
    print(f"digest {totals.digest}")
    return 0
