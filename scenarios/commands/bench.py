"""`ticktape bench`: throughput medians against same-process baselines, as a table."""

from __future__ import annotations

import argparse
import json

import msgspec
from rich.table import Table

from scenarios.commands.common import console


def register(sub: argparse._SubParsersAction) -> None:
    bench = sub.add_parser("bench", help="measure throughput (medians) and print a table")
    bench.add_argument("--symbols", type=int, default=20, help="generated symbols")
    bench.add_argument("--start", default="2024-03-04")
    bench.add_argument("--end", default="2024-03-15")
    bench.add_argument("--repeat", type=int, default=5)
    bench.add_argument("--json", action="store_true")
    bench.set_defaults(handler=cmd_bench)


def cmd_bench(args: argparse.Namespace) -> int:
    from scenarios.bench import bench

    rows = bench(args.symbols, args.start, args.end, args.repeat)
    if args.json:
        print(json.dumps([msgspec.to_builtins(r) for r in rows]))
        return 0
    table = Table(title=f"ticktape bench (median of {args.repeat})")
    for column in ("case", "bars", "events", "seconds", "bars/s", "events/s", "vs log ceiling"):
        table.add_column(column, justify="left" if column == "case" else "right")
    for r in rows:
        table.add_row(
            r.case,
            f"{r.bars:,}",
            f"{r.events:,}",
            f"{r.seconds:.3f}",
            f"{r.bars_per_s:,.0f}",
            f"{r.events_per_s:,.0f}",
            f"{r.ratio:.2f}x",
        )
    console.print(table)
    return 0
