"""`ticktape data info DIR`: what a folder or catalog of market data holds, symbol by symbol."""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from zoneinfo import ZoneInfo

from rich.table import Table

from ticktape.scenarios.commands.common import UsageError, console
from ticktape.scenarios.commands.ingest import add_read_as_options, read_as_options
from ticktape.store.calendar import CalendarError, TradingCalendar
from ticktape.store.formats import FORMATS
from ticktape.store.repository import DataConfigError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="look at market data before running on it")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    info = actions.add_parser(
        "info", help="symbols, kinds, date coverage and rows of a data folder or catalog"
    )
    info.add_argument("folder", metavar="DIR", help="a catalog, or a folder of data files")
    info.add_argument(
        "--calendar", default="XNYS", help="exchange calendar (times shown in its zone)"
    )
    info.add_argument(
        "--label",
        choices=("start", "end"),
        default="start",
        help="bar stamp convention of CSV/Parquet (a raw folder only)",
    )
    info.add_argument("--format", choices=FORMATS, default="auto", help="format of a raw folder")
    add_read_as_options(info)
    info.add_argument("--json", action="store_true", help="print JSON instead of a table")
    info.set_defaults(handler=cmd_info)


def cmd_info(args: argparse.Namespace) -> int:
    from ticktape.store.coverage import describe_folder

    try:
        tz = TradingCalendar(args.calendar).tz
        rows = describe_folder(
            args.folder,
            calendar=args.calendar,
            label=args.label,
            data_format=args.format,
            **read_as_options(args),
        )
    except (DataConfigError, CalendarError) as e:
        raise UsageError(str(e)) from None
    if args.json:
        print(json.dumps([r.to_dict() for r in rows], indent=1))
        return 0
    zone = ZoneInfo(tz)

    def local(ns: int) -> str:
        return f"{datetime.fromtimestamp(ns / 1e9, zone):%Y-%m-%d %H:%M}"

    table = Table(title=f"ticktape data info {args.folder} (times in {tz})")
    for name in ("symbol", "kind", "first", "last", "sessions", "rows"):
        table.add_column(name, justify="right" if name in ("sessions", "rows") else "left")
    for r in rows:
        table.add_row(
            r.symbol,
            r.kind,
            local(r.first),
            local(r.last),
            f"{r.sessions:,}",
            f"{r.rows:,}",
        )
    console.print(table)
    return 0
