"""Benchmarks of `ticktape serve` (DESIGN §16 goals), each a real server and real Flight clients.

    python -m ticktape.scenarios.serve_bench drain LOG [--repeat 5]
    python -m ticktape.scenarios.serve_bench live --data DIR [--repeat 3] [--speed 7200]

`drain`: a Python client drains a finished log over localhost (events/s, median).
`live`: a run writes into a served folder while clients follow it. Reports how soon a follower
sees each event after its commit (a separate process notes when each head was first committed,
polling every millisecond, in every case), and the run's wall time alone, with 1 and 8
followers (one process each), and with one client that stalls for the whole run and then reads
everything (A/B in one sitting, interleaved, medians).
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TICKTAPE = (sys.executable, "-m", "ticktape.scenarios.cli")
SELF = (sys.executable, "-m", "ticktape.scenarios.serve_bench")
_POLL_S = 0.001


def _serve(folder: Path) -> tuple[subprocess.Popen, str]:
    server = subprocess.Popen(
        [*TICKTAPE, "serve", str(folder), "--port", "0"], stdout=subprocess.PIPE, text=True
    )
    return server, f"grpc://127.0.0.1:{int(server.stdout.readline().rsplit(':', 1)[1])}"


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        process.wait(timeout=30)


def _ticket(**fields: object):
    import pyarrow.flight as flight

    return flight.Ticket(json.dumps(fields).encode())


def drain(log: Path, repeat: int) -> None:
    import pyarrow.flight as flight

    server, location = _serve(log.parent)
    try:
        client = flight.connect(location)
        for ticket in ({"log": log.name}, {"log": log.name, "kinds": ["Trade", "Quote"]}):
            seconds, events = [], 0
            for _ in range(repeat):
                started = time.perf_counter()
                events = sum(c.data.num_rows for c in client.do_get(_ticket(**ticket)))
                seconds.append(time.perf_counter() - started)
            middle = statistics.median(seconds)
            print(
                f"drain {json.dumps(ticket)}: {events:,} events, median {middle:.3f} s = "
                f"{events / middle / 1e6:.2f}M events/s (min {min(seconds):.3f}, "
                f"max {max(seconds):.3f}, n={repeat})"
            )
    finally:
        _stop(server)


def follower(location: str, log: str, out: Path, release: Path | None) -> None:
    """One client process: wait for the log, follow it to the end, and write (first seq, last
    seq, arrival wall time) per batch. With `release`, it stalls after its first batch until
    that file exists."""
    import pyarrow.flight as flight

    client = flight.connect(location)
    while True:
        try:
            client.get_flight_info(flight.FlightDescriptor.for_path(log))
            break
        except flight.FlightServerError:  # not there yet
            time.sleep(0.01)
    rows = []
    for n, chunk in enumerate(client.do_get(_ticket(log=log, follow=True))):
        seq = chunk.data.column("seq")
        rows.append((seq[0].as_py(), seq[-1].as_py(), time.time()))
        while n == 0 and release is not None and not release.exists():
            time.sleep(0.05)
    out.write_text(json.dumps(rows))


def heads(log: Path, out: Path, done: Path) -> None:
    """Note the wall time at which each committed head is first seen, every millisecond,
    until `done` exists."""
    from ticktape.store.eventlog import EventLog, LogError

    while True:  # the file appears a moment before the writer has made its databases
        try:
            opened = EventLog.open(log)
            break
        except LogError:
            time.sleep(_POLL_S)
    seen, last = [], 0
    with opened:
        while not done.exists():
            head = opened.committed()[0]
            if head > last:
                seen.append((head, time.time()))
                last = head
            time.sleep(_POLL_S)
    out.write_text(json.dumps(seen))


def _run(args: argparse.Namespace, log: Path) -> float:
    """One run of the tick day into `log`; returns its wall time as the run reports it."""
    argv = ["run", "--data", args.data, "--symbols", args.symbols, "--start", args.day,
            "--end", args.day, "--log", str(log), "--speed", str(args.speed)]  # fmt: skip
    done = subprocess.run([*TICKTAPE, *argv], capture_output=True, text=True, check=True)
    line = next(x for x in done.stdout.splitlines() if "wall time" in x)
    return float(line.split("│")[2].split()[0])


def _latency(batches: Path, commits: Path) -> np.ndarray:
    """Seconds from each event's commit (first seen) to its arrival at the follower."""
    rows = np.array(json.loads(batches.read_text()))
    seen = np.array(json.loads(commits.read_text()))
    out = []
    for first, last, arrived in rows:
        seqs = np.arange(int(first), int(last) + 1)
        committed = seen[np.searchsorted(seen[:, 0], seqs), 1]
        out.append(arrived - committed)
    return np.concatenate(out)


CASES = (("alone", 0, False), ("1 follower", 1, False), ("8 followers", 8, False),
         ("1 stalled client", 1, True))  # fmt: skip


def live(args: argparse.Namespace) -> None:
    walls: dict[str, list[float]] = {case: [] for case, _, _ in CASES}
    latencies: dict[str, list[np.ndarray]] = {"1 follower": [], "8 followers": []}
    with tempfile.TemporaryDirectory(prefix="ticktape-serve-bench-") as tmp:
        served = Path(tmp)
        server, location = _serve(served)
        try:
            for r in range(args.repeat):
                for case, clients, stall in CASES:
                    name = f"{r}-{case.replace(' ', '-')}.lmdb"
                    outs = [served / f"{name}.{i}.json" for i in range(clients)]
                    release, done = served / f"{name}.release", served / f"{name}.done"
                    commits = served / f"{name}.heads.json"
                    stalled = ["--release", str(release)] if stall else []
                    clients_up = [
                        subprocess.Popen([*SELF, "follower", location, name, str(o), *stalled])
                        for o in outs
                    ]
                    poller = subprocess.Popen(
                        [*SELF, "heads", str(served / name), str(commits), str(done)]
                    )
                    time.sleep(2)  # the clients are up and waiting before the run starts
                    walls[case].append(_run(args, served / name))
                    release.touch()  # the run is over: the stalled client reads everything now
                    done.touch()
                    for p in [*clients_up, poller]:
                        p.wait(timeout=300)
                    if case in latencies:
                        latencies[case].append(_latency(outs[0], commits))
                    if stall:
                        print(f"stalled client: {_stalled_reads(outs[0], served / name)}")
        finally:
            _stop(server)
    alone = statistics.median(walls["alone"])
    for case, seconds in walls.items():
        middle = statistics.median(seconds)
        shown = ", ".join(f"{s:.3f}" for s in seconds)
        print(f"{case}: run wall median {middle:.3f} s ({middle / alone - 1:+.1%}) [{shown}]")
    for case, parts in latencies.items():
        lag = np.concatenate(parts) * 1e3
        print(
            f"{case}: latency from commit to the (first) follower: p50 "
            f"{np.percentile(lag, 50):.1f} ms, p99 {np.percentile(lag, 99):.1f} ms, "
            f"max {lag.max():.1f} ms over {len(lag):,} events"
        )


def _stalled_reads(out: Path, log: Path) -> str:
    from ticktape.store.eventlog import EventLog

    rows = json.loads(out.read_text()) if out.exists() else []
    with EventLog.open(log) as opened:
        count = opened.count()
    got = sum(last - first + 1 for first, last, _ in rows)
    contiguous = all(a[1] + 1 == b[0] for a, b in itertools.pairwise(rows))
    return f"read {got:,} of {count:,} events after the run, contiguous: {contiguous}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="serve_bench", description=__doc__)
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("drain")
    p.add_argument("log", type=Path)
    p.add_argument("--repeat", type=int, default=5)
    p = sub.add_parser("live")
    p.add_argument("--data", required=True)
    p.add_argument("--symbols", default="SPY,AIG,BAC,IBM")
    p.add_argument("--day", default="2013-10-07")
    p.add_argument("--speed", type=float, default=7200)
    p.add_argument("--repeat", type=int, default=3)
    p = sub.add_parser("follower")
    p.add_argument("location")
    p.add_argument("log")
    p.add_argument("out", type=Path)
    p.add_argument("--release", type=Path)
    p = sub.add_parser("heads")
    p.add_argument("log", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("done", type=Path)
    args = parser.parse_args(argv)
    if args.what == "drain":
        drain(args.log, args.repeat)
    elif args.what == "live":
        live(args)
    elif args.what == "follower":
        follower(args.location, args.log, args.out, args.release)
    else:
        heads(args.log, args.out, args.done)


if __name__ == "__main__":
    main()
