"""`ticktape run` and `ticktape demo`: start a System and show its progress and totals."""

from __future__ import annotations

import argparse
import runpy
import tempfile
import time
from pathlib import Path

from rich.table import Table

from ticktape.actors.coordinator_core import RunTotals
from ticktape.actors.system import System
from ticktape.messages.config import GAP_POLICIES, RunConfig
from ticktape.scenarios.commands.common import (
    UsageError,
    console,
    csv_list,
    key_values,
)
from ticktape.scenarios.commands.controls import Interrupted, KeyReader, graceful, live_status
from ticktape.scenarios.commands.log import stats_table
from ticktape.store.eventlog import SYNC_POLICIES, EventLog
from ticktape.store.inspect import stats


def _minutes(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(s) for s in csv_list(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of minutes: {text!r}") from None


def register(sub: argparse._SubParsersAction) -> None:
    run = sub.add_parser("run", help="run a backtest (or a scenario script)")
    add_run_options(run)
    run.set_defaults(handler=cmd_run)
    demo = sub.add_parser("demo", help="generate the bundled demo data set and run it")
    demo.add_argument("--out", help="folder for the demo data and log (default: a temp folder)")
    demo.set_defaults(handler=cmd_demo)


def add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenario", nargs="?", help="a scenario script to run instead of the options")
    p.add_argument("--data", help="folder of CSV or Parquet files")
    p.add_argument("--symbols", type=csv_list, help="comma-separated symbols, e.g. SPY,AIG")
    p.add_argument(
        "--start", help="first session, YYYY-MM-DD, or YYYY-MM-DDTHH:MM to pace from that time"
    )
    p.add_argument("--end", help="last session, YYYY-MM-DD")
    p.add_argument("--log", help="path of the event log to create")
    p.add_argument("--speed", type=float, default=0.0, help="0 = data-driven; else sim/wall ratio")
    p.add_argument("--calendar", default="XNYS", help="exchange calendar (exchange-calendars code)")
    p.add_argument(
        "--extended-hours", action="store_true", help="also release rows outside regular hours"
    )
    p.add_argument("--derived", type=_minutes, default=(5, 15), help="derived intervals, e.g. 5,15")
    p.add_argument(
        "--trailing-days", type=int, default=0, help="sessions of history queries reach into"
    )
    p.add_argument("--backfill", help="folder to fetch missing bars from")
    p.add_argument(
        "--gap-policy", choices=GAP_POLICIES, default="leave",
        help="leave a gap, or fill it with a synthetic bar",
    )  # fmt: skip
    p.add_argument(
        "--label", choices=("start", "end"), default="start", help="bar stamp convention"
    )
    p.add_argument("--sync", choices=SYNC_POLICIES, default="full", help="log fsync policy")
    p.add_argument(
        "--shards", type=int, help="run as N date shards on Ray; --log is then a run set folder"
    )
    p.add_argument(
        "--ray", dest="ray_address", help="with --shards: a Ray cluster (`auto`: a running one)"
    )


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
    """Run a System with a live event counter and control keys; returns totals and wall seconds
    (setup included). Ctrl-C or SIGTERM stop it gracefully, then raise `Interrupted`."""
    began = time.perf_counter()
    system = System(config)
    counted = lambda: f"{system.log.next_seq - 1:,} events"  # noqa: E731
    try:
        with graceful(system.request_stop), live_status(counted) as note:  # a signal during
            try:  # close() waits for it too
                system.start()
                with KeyReader(system, note):
                    totals = system.wait()
            finally:
                system.close()
    except Interrupted as stopped:
        stopped.totals = system.supervisor.result
        raise
    return totals, time.perf_counter() - began


def _summary(totals: RunTotals, seconds: float, log: str) -> Table:
    rows = {
        "log": log,
        "sessions": f"{totals.sessions}",
        "bars released": f"{totals.bars:,}",
        "events logged": f"{totals.events:,}",
        "rows outside regular hours": f"{totals.left_out:,}",
        "rows rejected": f"{totals.rejected:,}",
        "wall time": f"{seconds:.3f} s",
        "bars/s": f"{totals.bars / seconds:,.0f}" if seconds > 0 else "-",
        "events/s": f"{totals.events / seconds:,.0f}" if seconds > 0 else "-",
    }
    if totals.lateness:
        late = {k: totals.lateness[k] * 1e3 for k in ("p50", "p99", "max")}
        rows["lateness p50 / p99 / max"] = (
            f"{late['p50']:.3f} / {late['p99']:.3f} / {late['max']:.3f} ms"
        )
    return key_values("ticktape run", rows)


def cmd_run(args: argparse.Namespace) -> int:
    if args.scenario:
        script = Path(args.scenario)
        if not script.is_file():
            raise UsageError(f"no scenario script at {script}")
        runpy.run_path(str(script), run_name="__main__")
        return 0
    config = _config(args)
    if getattr(args, "shards", None) is not None or getattr(args, "ray_address", None):
        from ticktape.scenarios.commands.shards import run_shards

        return run_shards(config, args.shards, args.ray_address)
    try:
        totals, seconds = run_with_progress(config)
    except Interrupted as stopped:
        totals = stopped.totals
        if totals is None:  # stopped before the run began: nothing was logged
            raise
        print(f"ticktape: stopped by {stopped}; the log holds {totals.events:,} events")
        print(f"digest {totals.digest}")
        return stopped.exit_code
    console.print(_summary(totals, seconds, config.log))
    print(f"digest {totals.digest}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from ticktape.scenarios.demo_data import DemoSpec, generate

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
        console.print(stats_table(stats(log)))
    console.print(f"next: ticktape log show {config.log} --kind SessionOpened,GapDetected")
    return 0
