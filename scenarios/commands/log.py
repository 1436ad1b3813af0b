"""`ticktape log ...`: read a finished or running log for people.

Exit codes: 0 ok, 1 a check failed, the logs differ or the log is damaged, 2 usage or input error.
A damaged log is one line naming the seq it stopped at, never a traceback.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

from rich.table import Table

from ticktape.messages.codec import to_dict
from ticktape.messages.events import EVENT_TYPES, ActorFailed, Event, RunFinished, Stopped
from ticktape.scenarios.audit import changed_inputs, logged_config, rerun
from ticktape.scenarios.commands.common import (
    UsageError,
    console,
    csv_list,
    exchange_tz,
    local_time,
)
from ticktape.store.eventlog import EventLog, LogDamaged
from ticktape.store.inspect import Selection, diff, export_jsonl, select, stats
from ticktape.store.runset import is_run_set, session_digests, sessions_digest, verify
from ticktape.store.runset_log import open_log

_END_KINDS = (RunFinished, Stopped, ActorFailed)
_FOLLOW_POLL_S = 0.2


def register(sub: argparse._SubParsersAction) -> None:
    log = sub.add_parser("log", help="inspect an event log")
    log_sub = log.add_subparsers(dest="log_command", required=True)
    for name in ("stats", "show", "tail", "verify", "export", "diff"):
        p = log_sub.add_parser(name)
        p.add_argument("path", help="the event log, or a run set")
        p.set_defaults(handler=cmd_log)
        if name == "stats":
            p.add_argument("--json", action="store_true", help="print one JSON object")
        if name in ("show", "export", "tail"):
            p.add_argument(
                "--kind", type=csv_list, default=(), help="event kinds, e.g. Bar,GapDetected"
            )
            p.add_argument(
                "--symbol", type=csv_list, default=(),
                help="symbols (events that carry none, such as SessionOpened, are kept)",
            )  # fmt: skip
        if name in ("show", "export"):
            p.add_argument("--from", dest="start", help="simulated time, exchange time zone")
            p.add_argument("--to", dest="end", help="simulated time (exclusive)")
            p.add_argument("--from-seq", type=int, default=1, help="first sequence number")
        if name == "show":
            p.add_argument("--limit", type=int, default=50, help="most events to print")
        if name == "tail":
            p.add_argument("-n", type=int, default=10, help="how many events")
            p.add_argument(
                "--follow", action="store_true",
                help="keep printing new events (waits for a log that does not exist yet)",
            )  # fmt: skip
            p.add_argument("--timeout", type=float, help="give up following after S seconds")
        if name == "export":
            p.add_argument(
                "--format", choices=("jsonl", "parquet"), default="jsonl", help="output format"
            )
            p.add_argument(
                "--out",
                help="file to write (default: stdout); parquet: a folder, one file per kind",
            )
            p.add_argument(
                "--union",
                action="store_true",
                help="parquet: one file, one table of every kind in seq order",
            )
        if name == "diff":
            p.add_argument("other", help="the log to compare with")
        if name == "verify":
            p.add_argument("--rerun", action="store_true", help="also run again and compare")
            p.add_argument("--data", help="with --rerun: the input folder, if it moved")


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


def kinds_table(summary: dict) -> Table:
    table = Table(title="events by kind")
    table.add_column("kind")
    table.add_column("events", justify="right")
    for kind, count in sorted(summary["kinds"].items(), key=lambda kv: -kv[1]):
        table.add_row(kind, f"{count:,}")
    return table


def sessions_table(summary: dict) -> Table:
    table = Table(title="session digests")
    table.add_column("session")
    table.add_column("digest")
    for session, digest in summary["session_digests"].items():
        table.add_row(session, f"{digest[:32]}…")
    return table


_TIME_FIELDS = {"ts", "ts_start", "open", "close", "break_start", "break_end"}


def _local(ns: object, tz: str) -> object:
    """Times for people, in the exchange's time zone (prices named open/close stay numbers)."""
    if not isinstance(ns, int) or isinstance(ns, bool) or ns < 10**17:
        return ns
    import pandas as pd  # only for showing events: `run` and the other commands stay without it

    return pd.Timestamp(ns, tz="UTC").tz_convert(tz).isoformat()


def line(seq: int, event: Event, tz: str) -> str:
    fields = to_dict(event)
    kind = fields.pop("kind")
    for name in _TIME_FIELDS.intersection(fields):
        fields[name] = _local(fields[name], tz)
    shown = " ".join(f"{k}={v}" for k, v in fields.items())
    return f"{seq:>10}  {kind:<18} {shown}"


def _selection(args: argparse.Namespace, log: EventLog) -> Selection:
    unknown = [k for k in args.kind if k not in EVENT_TYPES]
    if unknown:
        raise UsageError(f"unknown event kind {unknown[0]!r}: use one of {', '.join(EVENT_TYPES)}")
    tz = exchange_tz(log)
    return Selection(
        kinds=args.kind,
        symbols=args.symbol,
        start_ts=local_time(getattr(args, "start", None), tz, "--from"),
        end_ts=local_time(getattr(args, "end", None), tz, "--to"),
        start_seq=getattr(args, "from_seq", 1),
    )


def cmd_log(args: argparse.Namespace) -> int:
    try:
        code = _COMMANDS[args.log_command](args)
        sys.stdout.flush()
        return code
    except LogDamaged as e:
        sys.stdout.flush()
        print(f"ticktape: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader went away (`| head`): point stdout at devnull so the exit flush is quiet.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def _stats(args: argparse.Namespace) -> int:
    with open_log(args.path) as log:
        summary = stats(log)
    summary["sessions_digest"] = sessions_digest(summary["session_digests"])
    if is_run_set(args.path):  # a set's digest is defined from its session digests
        summary["chain"], summary["digest"] = summary["digest"], summary["sessions_digest"]
    if args.json:
        print(json.dumps(summary))
    else:
        console.print(stats_table(summary))
        if summary["session_digests"]:
            console.print(sessions_table(summary))
        console.print(kinds_table(summary))
    return 0


def _verify(args: argparse.Namespace) -> int:
    if is_run_set(args.path):
        return _verify_set(args)
    with EventLog.open(args.path) as log:
        result = log.verify()
        data, changed = args.data or "", []
        if result.ok and args.rerun:
            data = logged_config(log, data=args.data).data
            changed = changed_inputs(log, data)
    if result.ok and not args.rerun:
        print(f"ok: {result.events} events, digest {result.digest}")
        return 0
    if result.ok:
        return _rerun(args, data, changed)
    where = "" if result.first_bad_seq is None else f" at seq {result.first_bad_seq}"
    print(
        f"ticktape: verify failed{where}: {result.reason} "
        f"(events up to seq {result.events} verify)",
        file=sys.stderr,
    )
    return 1


def _verify_set(args: argparse.Namespace) -> int:
    if args.rerun:
        raise UsageError("verify --rerun takes a log; give it one shard log of the run set")
    check = verify(args.path)
    if check.ok:
        print(f"ok: run set of {check.events} events in its shards, digest {check.digest}")
        return 0
    for problem in check.problems:
        print(f"ticktape: verify failed: {problem}", file=sys.stderr)
    return 1


def _rerun(args: argparse.Namespace, data: str, changed: list[str]) -> int:
    """The chain holds; now the inputs: their hashes, then a whole second run, compared."""
    if changed:
        shown = ", ".join(changed[:5]) + (" ..." if len(changed) > 5 else "")
        print(f"ticktape: {len(changed)} input file(s) changed since the run: {shown}")
        return 1
    totals, divergence, out = rerun(args.path, data=data)
    if divergence is None:
        shutil.rmtree(out.parent, ignore_errors=True)  # kept only to look at a divergence
        print(f"ok: the re-run gave the same {totals.events} events, digest {totals.digest}")
        return 0
    with EventLog.open(args.path) as log:
        tz = exchange_tz(log)
    print(
        f"ticktape: the re-run differs from the log at seq {divergence.seq} (re-run kept in {out})"
    )
    for side, event in (("log   ", divergence.left), ("re-run", divergence.right)):
        print(f"  {side} " + (line(divergence.seq, event, tz) if event else "(ends before it)"))
    if divergence.fields:
        print(f"  fields that differ: {', '.join(divergence.fields)}")
    return 1


def _appears(path: Path, deadline: float | None) -> bool:
    """`tail --follow` of a run about to start: wait for its log to be created."""
    while not (path / "data.mdb").exists() and not path.is_file():
        if deadline is not None and time.monotonic() >= deadline:
            return False
        time.sleep(_FOLLOW_POLL_S)
    time.sleep(_FOLLOW_POLL_S)  # the writer has opened it; its first commit follows
    return True


def _show(args: argparse.Namespace) -> int:
    with open_log(args.path) as log:
        chosen = select(log, _selection(args, log))
        tz = exchange_tz(log)
        for n, (seq, event) in enumerate(chosen):
            if n >= args.limit:
                more = f"more events match: --from-seq {seq}, or a larger --limit"
                print(f"ticktape: stopped at --limit {args.limit}; {more}", file=sys.stderr)
                break
            print(line(seq, event, tz))
    return 0


def _tail(args: argparse.Namespace) -> int:
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    if args.follow and not _appears(Path(args.path), deadline):
        print(f"ticktape: no log at {args.path} within {args.timeout:g} s", file=sys.stderr)
        return 1
    with open_log(args.path) as log:
        tz = exchange_tz(log)
        last = log.committed()[0]
        wanted = _selection(args, log).takes
        ended = False
        start = 1 if args.kind or args.symbol else max(1, last - args.n + 1)
        shown = collections.deque(
            ((s, e) for s, e in log.events(start, last + 1) if wanted(e)), maxlen=args.n
        )
        for seq, event in shown:
            print(line(seq, event, tz))
        if last:
            ended = isinstance(next(iter(log.events(last, last + 1)))[1], _END_KINDS)
        if not args.follow:
            return 0
        try:
            while not ended:
                sys.stdout.flush()
                if deadline is not None and time.monotonic() >= deadline:
                    print(f"ticktape: no end of run within {args.timeout:g} s", file=sys.stderr)
                    return 1
                head = log.committed()[0]
                if head == last:
                    time.sleep(_FOLLOW_POLL_S)
                    continue
                for seq, event in log.events(last + 1, head + 1):
                    if wanted(event):
                        print(line(seq, event, tz))
                    ended = ended or isinstance(event, _END_KINDS)
                last = head
        except KeyboardInterrupt:
            return 0
    return 0


def _export(args: argparse.Namespace) -> int:
    with open_log(args.path) as log:
        selection = _selection(args, log)
        if args.union and args.format != "parquet":
            raise UsageError("--union is for --format parquet")
        if args.format == "parquet":
            if not args.out:
                what = "FILE" if args.union else "FOLDER"
                raise UsageError(f"export --format parquet needs --out {what}")
            from ticktape.store.export import export_parquet  # Arrow tables: not on run's path

            export_parquet(log, selection, Path(args.out), union=args.union)
        elif args.out:
            with open(args.out, "wb") as out:
                export_jsonl(select(log, selection), out)
        else:
            export_jsonl(select(log, selection), sys.stdout.buffer)
    return 0


def _diff(args: argparse.Namespace) -> int:
    if is_run_set(args.path) or is_run_set(args.other):
        return _diff_sessions(args.path, args.other)
    if Path(args.path).resolve() == Path(args.other).resolve():
        with EventLog.open(args.path) as a:  # LMDB opens an environment once per process
            seq, digest = a.committed()
        print(f"same: {seq} events, digest {digest} (one log given twice)")
        return 0
    with EventLog.open(args.path) as a, EventLog.open(args.other) as b:
        found = diff(a, b)
        if found is None:
            seq, digest = a.committed()
            print(f"same: {seq} events, digest {digest}")
            return 0
        tz = exchange_tz(a)
    print(f"logs differ at seq {found.seq} (left seq {found.seq}, right seq {found.seq})")
    if found.left is None or found.right is None:
        shorter = args.path if found.left is None else args.other
        print(f"{shorter} ends at seq {found.seq - 1}")
    elif found.fields:
        print(f"fields that differ: {', '.join(found.fields)}")
    else:
        print(f"kinds differ: {type(found.left).__name__} vs {type(found.right).__name__}")
    for seq, left, right in found.context:
        mark = ">" if seq == found.seq else " "
        for side, event in (("left ", left), ("right", right)):
            shown = line(seq, event, tz) if event is not None else f"{seq:>10}  (none)"
            print(f"{mark} {side} {shown}")
    return 1


def _diff_sessions(left: str, right: str) -> int:
    """A run set against a log (or another set): session by session, naming the first session
    that differs or that only one side has."""
    sides = []
    for path in (left, right):
        with open_log(path) as log:
            sides.append(session_digests(log))
    a, b = sides
    for session in sorted(set(a) | set(b)):
        if a.get(session) != b.get(session):
            missing = right if session not in b else left if session not in a else None
            why = f"only in {left if missing == right else right}" if missing else "differs"
            print(f"sessions differ: the first is {session} ({why})")
            return 1
    print(f"same: {len(a)} sessions, sessions digest {sessions_digest(a)}")
    return 0


_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "stats": _stats,
    "verify": _verify,
    "show": _show,
    "tail": _tail,
    "export": _export,
    "diff": _diff,
}
