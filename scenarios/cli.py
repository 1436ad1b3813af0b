"""The `ticktape` command line. Errors are one line on stderr and a non-zero exit, no traceback."""

from __future__ import annotations

import argparse
import json
import runpy
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import msgspec
import pandas as pd
from loguru import logger
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from actors.coordinator import RunTotals
from actors.system import ActorFailure, ConfigError, System
from messages.codec import to_dict
from messages.config import GAP_POLICIES, RunConfig
from store.calendar import TradingCalendar
from store.eventlog import SYNC_POLICIES, EventLog, LogError
from store.inspect import export_jsonl, select, stats

console = Console()


class UsageError(Exception):
    pass


def _csv(text: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in text.split(",") if s.strip())


def _minutes(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(s) for s in _csv(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of minutes: {text!r}") from None


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenario", nargs="?", help="a scenario script to run instead of the options")
    p.add_argument("--data", help="folder of CSV or Parquet files")
    p.add_argument("--symbols", type=_csv, help="comma-separated symbols, e.g. SPY,AIG")
    p.add_argument("--start", help="first session, YYYY-MM-DD")
    p.add_argument("--end", help="last session, YYYY-MM-DD")
    p.add_argument("--log", help="path of the event log to create")
    p.add_argument("--speed", type=float, default=0.0, help="0 = data-driven; else sim/wall ratio")
    p.add_argument("--calendar", default="XNYS")
    p.add_argument("--extended-hours", action="store_true")
    p.add_argument("--derived", type=_minutes, default=(5, 15), help="derived intervals, e.g. 5,15")
    p.add_argument("--trailing-days", type=int, default=0)
    p.add_argument("--backfill", help="folder to fetch missing bars from")
    p.add_argument("--gap-policy", choices=GAP_POLICIES, default="leave")
    p.add_argument(
        "--label", choices=("start", "end"), default="start", help="bar stamp convention"
    )
    p.add_argument("--sync", choices=SYNC_POLICIES, default="full", help="log fsync policy")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ticktape", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", required=True)

    _add_run_options(sub.add_parser("run", help="run a backtest (or a scenario script)"))

    demo = sub.add_parser("demo", help="generate the bundled demo data set and run it")
    demo.add_argument("--out", help="folder for the demo data and log (default: a temp folder)")

    bench = sub.add_parser("bench", help="measure throughput (medians) and print a table")
    bench.add_argument("--symbols", type=int, default=20, help="generated symbols")
    bench.add_argument("--start", default="2024-03-04")
    bench.add_argument("--end", default="2024-03-15")
    bench.add_argument("--repeat", type=int, default=5)
    bench.add_argument("--json", action="store_true")

    log = sub.add_parser("log", help="inspect an event log")
    log_sub = log.add_subparsers(dest="log_command", required=True)
    for name in ("stats", "show", "verify", "export"):
        p = log_sub.add_parser(name)
        p.add_argument("path")
        if name == "stats":
            p.add_argument("--json", action="store_true", help="print one JSON object")
        if name in ("show", "export"):
            p.add_argument(
                "--kind", type=_csv, default=(), help="event kinds, e.g. Bar,GapDetected"
            )
            p.add_argument("--symbol", type=_csv, default=(), help="symbols")
            p.add_argument("--from-seq", type=int, default=1)
        if name == "show":
            p.add_argument("--limit", type=int, default=50)
        if name == "export":
            p.add_argument("--format", choices=("jsonl",), default="jsonl")
            p.add_argument("--out", help="file to write (default: stdout)")
    return parser


def _config(args: argparse.Namespace) -> RunConfig:
    missing = [f"--{k}" for k in ("data", "symbols", "start", "end", "log") if not getattr(args, k)]
    if missing:
        raise UsageError(f"run needs {', '.join(missing)} (or a scenario script)")
    return RunConfig(
        data=args.data,
        symbols=args.symbols,
        start=args.start,
        end=args.end,
        log=args.log,
        speed=args.speed,
        calendar=args.calendar,
        extended_hours=args.extended_hours,
        derived=args.derived,
        trailing_days=args.trailing_days,
        backfill=args.backfill,
        gap_policy=args.gap_policy,
        label=args.label,
        sync=args.sync,
    )


def run_with_progress(config: RunConfig) -> tuple[RunTotals, float]:
    """Run a System with a live event counter; returns totals and wall seconds (setup included)."""
    began = time.perf_counter()
    system = System(config)
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
        disable=not sys.stderr.isatty(),
    ) as progress:
        task = progress.add_task("replaying", total=None)
        system.start()
        done = threading.Event()

        def report() -> None:
            while not done.wait(0.2):
                progress.update(task, description=f"replaying: {system.log.next_seq - 1:,} events")

        reporter = threading.Thread(target=report, daemon=True)
        reporter.start()
        try:
            totals = system.wait()
        except KeyboardInterrupt:
            totals = system.stop()
        finally:
            done.set()
            system.close()
    return totals, time.perf_counter() - began


def _summary(totals: RunTotals, seconds: float, log: str) -> Table:
    table = Table(title="ticktape run", show_header=False)
    table.add_row("log", log)
    table.add_row("sessions", f"{totals.sessions}")
    table.add_row("bars released", f"{totals.bars:,}")
    table.add_row("events logged", f"{totals.events:,}")
    table.add_row("rows outside regular hours", f"{totals.left_out:,}")
    table.add_row("rows rejected", f"{totals.rejected:,}")
    table.add_row("wall time", f"{seconds:.3f} s")
    table.add_row("bars/s", f"{totals.bars / seconds:,.0f}" if seconds > 0 else "-")
    table.add_row("events/s", f"{totals.events / seconds:,.0f}" if seconds > 0 else "-")
    return table


def _stats_table(summary: dict) -> Table:
    table = Table(title=f"{summary['events']:,} events  digest {summary['digest'][:16]}…")
    for column in ("session", "symbol", "bars", "gaps", "filled", "quality"):
        table.add_column(column, justify="left" if column in ("session", "symbol") else "right")
    for r in summary["symbols"]:
        quality = f"{r['quality']:.2%}" if "quality" in r else "-"
        table.add_row(
            r["session"], r["symbol"], str(r["bars"]), str(r["gaps"]), str(r["filled"]), quality
        )
    return table


def cmd_run(args: argparse.Namespace) -> int:
    if args.scenario:
        script = Path(args.scenario)
        if not script.is_file():
            raise UsageError(f"no scenario script at {script}")
        runpy.run_path(str(script), run_name="__main__")
        return 0
    config = _config(args)
    totals, seconds = run_with_progress(config)
    console.print(_summary(totals, seconds, config.log))
    print(f"digest {totals.digest}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from scenarios.demo_data import DemoSpec, generate

    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="ticktape-demo-"))
    spec = DemoSpec()
    data = generate(out / "data", spec)
    config = RunConfig(
        data=str(data),
        symbols=spec.symbols,
        start=spec.start,
        end=spec.end,
        log=str(out / "demo.lmdb"),
        trailing_days=0,
    )
    console.print(f"demo data: {len(spec.symbols)} symbols, {spec.start} to {spec.end}, in {data}")
    totals, seconds = run_with_progress(config)
    console.print(_summary(totals, seconds, config.log))
    print(f"digest {totals.digest}")
    with EventLog.open(config.log) as log:
        console.print(_stats_table(stats(log)))
    console.print(f"next: ticktape log show {config.log} --kind SessionOpened,GapDetected")
    return 0


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
                console.print(_stats_table(summary))
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logger.remove()
    logger.add(sys.stderr, level="INFO" if args.verbose else "WARNING", format="{level}: {message}")
    try:
        if args.command == "run":
            return cmd_run(args)
        if args.command == "demo":
            return cmd_demo(args)
        if args.command == "bench":
            return cmd_bench(args)
        return cmd_log(args)
    except (UsageError, ConfigError, LogError) as e:
        print(f"ticktape: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"ticktape: error: {e.strerror or e}: {e.filename}", file=sys.stderr)
        return 2
    except ActorFailure as e:
        print(f"ticktape: run failed: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
