"""`ticktape log ...`: read a finished or running log for people."""

from __future__ import annotations

import argparse
import json
import sys

import pandas as pd
from rich.table import Table

from messages.codec import to_dict
from scenarios.commands.common import console, csv_list
from store.calendar import TradingCalendar
from store.eventlog import EventLog
from store.inspect import export_jsonl, select, stats


def register(sub: argparse._SubParsersAction) -> None:
    log = sub.add_parser("log", help="inspect an event log")
    log_sub = log.add_subparsers(dest="log_command", required=True)
    for name in ("stats", "show", "verify", "export"):
        p = log_sub.add_parser(name)
        p.add_argument("path")
        p.set_defaults(handler=cmd_log)
        if name == "stats":
            p.add_argument("--json", action="store_true", help="print one JSON object")
        if name in ("show", "export"):
            p.add_argument(
                "--kind", type=csv_list, default=(), help="event kinds, e.g. Bar,GapDetected"
            )
            p.add_argument("--symbol", type=csv_list, default=(), help="symbols")
            p.add_argument("--from-seq", type=int, default=1)
        if name == "show":
            p.add_argument("--limit", type=int, default=50)
        if name == "export":
            p.add_argument("--format", choices=("jsonl",), default="jsonl")
            p.add_argument("--out", help="file to write (default: stdout)")


def stats_table(summary: dict) -> Table:
    table = Table(title=f"{summary['events']:,} events  digest {summary['digest'][:16]}…")
    for column in ("session", "symbol", "bars", "gaps", "filled", "quality"):
        table.add_column(column, justify="left" if column in ("session", "symbol") else "right")
    for r in summary["symbols"]:
        quality = f"{r['quality']:.2%}" if "quality" in r else "-"
        table.add_row(
            r["session"], r["symbol"], str(r["bars"]), str(r["gaps"]), str(r["filled"]), quality
        )
    return table


_TIME_FIELDS = {"ts", "ts_start", "open", "close"}


def _local(ns: object, tz: str) -> object:
    """Times for people, in the exchange's time zone (prices named open/close stay numbers)."""
    if not isinstance(ns, int) or isinstance(ns, bool) or ns < 10**17:
        return ns
    return pd.Timestamp(ns, tz="UTC").tz_convert(tz).isoformat()


def cmd_log(args: argparse.Namespace) -> int:
    with EventLog.open(args.path) as log:
        if args.log_command == "stats":
            summary = stats(log)
            if args.json:
                print(json.dumps(summary))
            else:
                console.print(stats_table(summary))
                console.print({k: v for k, v in summary["kinds"].items()})
        elif args.log_command == "verify":
            result = log.verify()
            if result.ok:
                print(f"ok: {result.events} events, digest {result.digest}")
                return 0
            print(f"FAILED at seq {result.first_bad_seq}: {result.reason}", file=sys.stderr)
            return 1
        elif args.log_command == "show":
            calendar = log.manifest().get("config", {}).get("calendar", "XNYS")
            tz = TradingCalendar(calendar).tz
            chosen = select(log, kinds=args.kind, symbols=args.symbol, start_seq=args.from_seq)
            for n, (seq, event) in enumerate(chosen):
                if n >= args.limit:
                    break
                fields = to_dict(event)
                kind = fields.pop("kind")
                for name in _TIME_FIELDS.intersection(fields):
                    fields[name] = _local(fields[name], tz)
                shown = " ".join(f"{k}={v}" for k, v in fields.items())
                print(f"{seq:>10}  {kind:<18} {shown}")
        elif args.log_command == "export":
            chosen = select(log, kinds=args.kind, symbols=args.symbol, start_seq=args.from_seq)
            if args.out:
                with open(args.out, "wb") as out:
                    export_jsonl(chosen, out)
            else:
                export_jsonl(chosen, sys.stdout.buffer)
    return 0
