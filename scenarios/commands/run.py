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
    p.add_argument("--log", help="path of the event log to create (default: runs/START_END.lmdb)")
    p.add_argument(
        "--config", help="a TOML file of RunConfig settings; options given here override it"
    )
    p.add_argument("--force", action="store_true", help="replace an existing event log at --log")
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


def _given(args: argparse.Namespace) -> dict[str, object]:
    """The run options given on the command line (a default given explicitly included)."""
    parser = argparse.ArgumentParser(add_help=False)
    add_run_options(parser)
    for action in parser._actions:
        action.default = argparse.SUPPRESS
    argv = getattr(args, "argv", [])
    after = argv[argv.index(args.command) + 1 :] if args.command in argv else []
    return vars(parser.parse_known_args(after)[0])


def _from_file(args: argparse.Namespace) -> argparse.Namespace:
    """--config FILE.toml: its settings (RunConfig's names) under the options given."""
    import tomllib

    try:
        with open(args.config, "rb") as f:
            settings = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise UsageError(f"--config {args.config}: {e}") from None
    fields = set(RunConfig.__struct_fields__)
    unknown = sorted(set(settings) - fields)
    if unknown:
        raise UsageError(f"--config {args.config}: unknown setting {unknown[0]!r}")
    for name in ("symbols", "derived"):
        if isinstance(settings.get(name), str):
            settings[name] = csv_list(settings[name])
    merged = {**vars(args), **{k.replace("-", "_"): v for k, v in settings.items()}}
    return argparse.Namespace(**{**merged, **_given(args)})


def _config(args: argparse.Namespace) -> RunConfig:
    if args.config:
        args = _from_file(args)
    missing = [f"--{k}" for k in ("data", "symbols", "start", "end") if not getattr(args, k)]
    if missing:
        raise UsageError(f"run needs {', '.join(missing)} (or a scenario script)")
    if not args.log:
        args.log = f"runs/{args.start.replace(':', '')}_{args.end}.lmdb"
        console.print(f"log: {args.log}")
    if Path(args.log).exists() and args.force:
        _remove_log(Path(args.log))
    given = {f: getattr(args, f) for f in RunConfig.__struct_fields__ if hasattr(args, f)}
    return RunConfig(**given)


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


def _remove_log(path: Path) -> None:
    """--force: an event log (or run set) is replaced; anything else at the path is not."""
    import shutil

    if not ((path / "data.mdb").exists() or (path / "manifest.json").exists()):
        raise UsageError(f"--force replaces an event log; {path} is not one")
    shutil.rmtree(path)


def cmd_run(args: argparse.Namespace) -> int:
    if args.scenario:
        script = Path(args.scenario)
        if not script.is_file():
            raise UsageError(f"no scenario script at {script}")
        given = sorted(f"--{k.replace('_', '-')}" for k in _given(args) if k != "scenario")
        if given:
            raise UsageError(
                f"{', '.join(given)} would not reach the scenario script: a script makes its "
                "own RunConfig (set them there)"
            )
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
