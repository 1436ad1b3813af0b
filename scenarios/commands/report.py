"""`ticktape report LOG --out FILE.html`: one self-contained page about a run (DESIGN §15)."""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path

from ticktape.scenarios.commands.common import UsageError, console, exchange_tz
from ticktape.store.calendar import CalendarError
from ticktape.store.runset_log import open_log


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="draw a run's coverage, gaps, fills and quality as HTML")
    p.add_argument("path", help="the event log of the run, or its run set")
    p.add_argument("--out", required=True, help="the HTML file to write")
    p.set_defaults(handler=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("plotly") is None:
        raise UsageError("report needs Plotly: pip install 'ticktape[report]'")
    from ticktape.scenarios.report import write_report

    started = time.perf_counter()
    with open_log(args.path) as log:
        try:
            tz = exchange_tz(log)
        except CalendarError:
            tz = "UTC"  # a calendar this install does not know: times are shown in UTC
    summary = write_report(args.path, args.out, tz)
    size = Path(args.out).stat().st_size
    seconds = time.perf_counter() - started
    verdict = "intact" if summary.verify.ok else f"BROKEN: {summary.verify.reason}"
    console.print(
        f"wrote {args.out} ({size / 1e6:.1f} MB) in {seconds:.1f} s: "
        f"{len(summary.symbols)} symbols x {len(summary.sessions)} sessions, log {verdict}"
    )
    return 0 if summary.verify.ok else 1
