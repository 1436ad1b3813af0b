"""`ticktape bench`: whole-process and streaming medians against same-run baselines, as a table."""

from __future__ import annotations

import argparse
import importlib.util
import json

import msgspec
from rich.table import Table

from ticktape.scenarios.commands.common import UsageError, console


def register(sub: argparse._SubParsersAction) -> None:
    bench = sub.add_parser("bench", help="measure throughput (medians) and print a table")
    bench.add_argument(
        "--case",
        action="append",
        choices=("quick", "default"),
        help="quick: 10 symbols x 2 sessions; default: 100 x 20 (repeatable; both if omitted)",
    )
    bench.add_argument("--symbols", type=int, help="a custom case instead: this many symbols")
    bench.add_argument("--start", default="2024-03-04", help="first day of the custom case")
    bench.add_argument("--end", default="2024-03-04", help="last day of the custom case")
    bench.add_argument("--repeat", type=int, default=3, help="processes per engine and case")
    bench.add_argument(
        "--peers", action="store_true", help="also NautilusTrader (pip install 'ticktape[peers]')"
    )
    bench.add_argument("--json", action="store_true", help="print the results as one JSON object")
    bench.set_defaults(handler=cmd_bench)


def cmd_bench(args: argparse.Namespace) -> int:
    from ticktape.scenarios.bench import CASES, Case, bench

    if args.peers and importlib.util.find_spec("nautilus_trader") is None:
        raise UsageError("--peers needs NautilusTrader: pip install 'ticktape[peers]'")
    if args.symbols:
        name = f"{args.symbols} symbols, {args.start} to {args.end}"
        cases = (Case(name, args.symbols, args.start, args.end),)
    else:
        cases = tuple(CASES[key] for key in args.case or ("quick", "default"))
    rows = bench(cases, args.repeat, args.peers)
    if args.json:
        print(json.dumps([msgspec.to_builtins(r) for r in rows]))
        return 0
    console.print(f"ticktape bench (median of {args.repeat} processes each)")
    for table in bench_tables(rows):
        console.print(table)
    return 0


def bench_tables(rows: list) -> list[Table]:
    """One table per case, within 80 columns: whole-process seconds and bars/s, streaming
    bars/s, peak RSS, log bytes per bar, time against ticktape; the replay rates as its caption."""
    tables = []
    for case in dict.fromkeys(r.case for r in rows):
        mine = [r for r in rows if r.case == case]
        table = Table(title=f"{case}: {mine[0].bars:,} bars")
        for column in ("engine", "s", "bars/s", "stream/s", "RSS MB", "B/bar", "vs"):
            table.add_column(column, justify="left" if column == "engine" else "right")
        for r in mine:
            if r.engine == "replay":  # that process also ran the run it replays
                table.caption = (
                    f"replay: {r.replay_events_per_s:,.0f} events/s as objects, "
                    f"{r.replay_batch_events_per_s:,.0f} as columns"
                )
                continue
            table.add_row(
                r.engine,
                f"{r.wall_s:.2f}",
                f"{r.bars_per_s:,.0f}",
                f"{r.stream_bars_per_s:,.0f}" if r.stream_bars_per_s else "-",
                f"{r.peak_rss_mb:,.0f}",
                f"{r.log_bytes_per_bar:.1f}" if r.log_bytes_per_bar else "-",
                f"{r.vs_ticktape:.1f}x",
            )
        tables.append(table)
    return tables
