"""`ticktape ingest`: validate folders of market data once and add them to a Parquet catalog."""

from __future__ import annotations

import argparse
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from ticktape.scenarios.commands.common import UsageError, console, key_values, stderr_progress
from ticktape.store.calendar import CalendarError
from ticktape.store.catalog_ingest import IngestSummary, ingest
from ticktape.store.formats import FORMATS
from ticktape.store.repository import DataConfigError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ingest", help="validate folders of market data into a session catalog")
    p.add_argument(
        "sources", nargs="+", metavar="SRC", help="folders of CSV/Parquet, LEAN or DBN files"
    )
    p.add_argument("--catalog", required=True, help="catalog folder to create or extend")
    p.add_argument("--calendar", default="XNYS", help="exchange calendar (exchange-calendars code)")
    p.add_argument(
        "--label",
        choices=("start", "end"),
        default="start",
        help="bar stamp convention of CSV/Parquet (LEAN and DBN stamp bars at the start)",
    )
    p.add_argument(
        "--format",
        choices=FORMATS,
        default="auto",
        help="format of the sources (auto: by content and layout)",
    )
    add_read_as_options(p)
    p.set_defaults(handler=cmd_ingest)


def add_read_as_options(p: argparse.ArgumentParser) -> None:
    """How CSV/Parquet files not in ticktape's own terms are read (ingest and data info)."""
    p.add_argument(
        "--columns",
        metavar="NAME=HEADER,...",
        help="the files' header names of ticktape's columns, e.g. timestamp=Date,close=Last",
    )
    p.add_argument(
        "--tz",
        metavar="ZONE",
        help="IANA zone of timestamps written without an offset, e.g. America/New_York "
        "(without it they are rejected; a local time a DST change skips or repeats always is)",
    )
    p.add_argument(
        "--symbol-from-file",
        action="store_true",
        help="a file with no symbol column holds one symbol, named by the file "
        "(SPY.csv, spy.csv.gz: SPY); a file with a symbol column keeps its own",
    )


def read_as_options(args: argparse.Namespace) -> dict[str, Any]:
    """The `columns`, `tz` and `symbol_from_file` keywords of `ingest` from the options."""
    columns: dict[str, str] = {}
    for pair in (args.columns or "").split(","):
        if not pair.strip():
            continue
        name, equals, header = pair.partition("=")
        if not equals or not name.strip() or not header.strip():
            raise UsageError(f"--columns takes NAME=HEADER pairs, not {pair.strip()!r}")
        columns[name.strip()] = header.strip()
    return {"columns": columns, "tz": args.tz, "symbol_from_file": args.symbol_from_file}


def cmd_ingest(args: argparse.Namespace) -> int:
    with stderr_progress(
        TextColumn("ingesting sessions"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    ) as progress:
        task = progress.add_task("ingest", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        try:
            summary = ingest(
                args.sources,
                args.catalog,
                calendar=args.calendar,
                label=args.label,
                progress=advance,
                data_format=args.format,
                **read_as_options(args),
            )
        except (DataConfigError, CalendarError) as e:
            raise UsageError(str(e)) from None
    console.print(_summary(summary, args.catalog))
    return 0


def _summary(summary: IngestSummary, catalog: str) -> Table:
    return key_values(
        "ticktape ingest",
        {
            "catalog": catalog,
            "data files found": f"{summary.sources:,}",
            "new files ingested": f"{summary.new_files:,}",
            "sessions written": f"{summary.sessions:,}",
            "rows written": f"{summary.rows:,}",
            "rows rejected": f"{summary.rejected:,}",
            "rows outside regular hours": f"{summary.outside_hours:,}",
        },
    )
