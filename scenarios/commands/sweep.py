"""`ticktape sweep`: independent runs on Ray, one task each, into one folder with a summary.

    ticktape sweep --out DIR --data D --start S --end E --universe SPY,IBM --universe AIG,BAC \\
        --grid trailing_days=0,1 --grid derived=5+15,30
    ticktape sweep SCRIPT.py --out DIR --grid window=5,10,20
"""

from __future__ import annotations

import argparse
import sys

from rich.table import Table

from ticktape.scenarios.commands.common import UsageError, console, csv_list
from ticktape.scenarios.commands.run import _config, add_run_options


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="fan out independent runs on Ray: a grid of settings")
    add_run_options(p)
    p.add_argument("--out", required=True, help="a new folder: one log per run and a summary")
    p.add_argument(
        "--grid", action="append", default=[], type=_axis,
        help="NAME=V1,V2,... one axis (a list value joins items with +, e.g. derived=5+15)",
    )  # fmt: skip
    p.add_argument(
        "--universe", action="append", default=[], type=csv_list, help="symbols of one run, A,B"
    )
    p.set_defaults(handler=cmd_sweep)


def _axis(text: str) -> tuple[str, list[object]]:
    name, sep, values = text.partition("=")
    if not sep or not name.strip() or not csv_list(values):
        raise argparse.ArgumentTypeError(f"--grid wants NAME=V1,V2,...: {text!r}")
    return name.strip().replace("-", "_"), [_value(v) for v in csv_list(values)]


def _value(text: str) -> object:
    if "+" in text:
        return [_value(part) for part in text.split("+")]
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def cmd_sweep(args: argparse.Namespace) -> int:
    from ticktape.scenarios.sweep import sweep_configs, sweep_script

    if args.shards is not None:
        raise UsageError("a sweep runs each run whole: leave --shards out")
    axes = dict(args.grid)
    if len(axes) != len(args.grid):
        raise UsageError("--grid names an axis twice")
    if args.scenario:
        rows = sweep_script(args.scenario, axes, args.out, address=args.ray_address)
    else:
        args.log = args.log or args.out  # each run's log is set by the sweep
        if args.universe and not args.symbols:
            args.symbols = args.universe[0]
        base = _config(args)
        rows = sweep_configs(
            base, axes, args.out, universes=args.universe, address=args.ray_address
        )
    console.print(summary_table(rows))
    failed = [r for r in rows if r["state"] != "done"]
    for row in failed:
        print(f"ticktape: {row['run']} {row['settings']} failed: {row['error']}", file=sys.stderr)
    print(f"summary: {args.out}/summary.json, {args.out}/summary.csv")
    return 1 if failed else 0


def summary_table(rows: list[dict]) -> Table:
    table = Table(title=f"sweep: {len(rows)} runs")
    for column in ("run", "settings", "state", "events", "seconds", "digest"):
        table.add_column(column)
    for r in rows:
        settings = " ".join(f"{k}={v}" for k, v in r["settings"].items())
        digest = r.get("digest", "")[:16] or r.get("error", "")[:60]
        table.add_row(
            r["run"], settings, r["state"], f"{r.get('events', 0):,}", str(r.get("seconds", "")),
            digest,
        )  # fmt: skip
    return table
