"""Scenario: a consumer in another process follows a paced run live over Arrow Flight.

`ticktape serve` serves a folder; a run at 7200x writes its log there; this process follows the
log with a Flight client (`"follow": true`) while the run is writing, as a trading system under
test in another process (or language) would.

Asserts: the follower gets every event, contiguously from seq 1 to the run's `RunFinished`, equal
to the finished log; it sees each slice soon after its paced release.

Run it with `ticktape run scenarios/scripts/flight_follower.py` (or `python` on this file). To
follow a run of your own: `python scenarios/scripts/flight_follower.py grpc://127.0.0.1:8815 LOG`
(LOG as `ticktape serve` names it; set TICKTAPE_TOKEN if the server wants a token).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # runnable without an install

import numpy as np
import pyarrow.flight as flight

from ticktape.scenarios.demo_data import DemoSpec, generate
from ticktape.store.eventlog import EventLog

DAY = "2024-11-26"
SPEED = 7200.0
LAG_BOUND_S = 1.5  # behind the paced release, at the p99: commits come every 0.25 s at most
TICKTAPE = (sys.executable, "-m", "ticktape.scenarios.cli")


def follow(location: str, log: str, token: str | None = None, **ticket: object):
    """Yield (record batch, wall time it arrived) for a live log until its run ends."""
    client = flight.connect(location)
    headers = [(b"authorization", f"Bearer {token}".encode())] if token else []
    options = flight.FlightCallOptions(headers=headers)
    body = json.dumps({"log": log, "follow": True, **ticket}).encode()
    for chunk in client.do_get(flight.Ticket(body), options):
        yield chunk.data, time.time()


def start(argv: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        [*TICKTAPE, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="ticktape-follow-") as tmp:
        spec = DemoSpec(start=DAY, end=DAY, extended_hours=False)
        data = generate(Path(tmp) / "data", spec)
        served = Path(tmp) / "served"
        served.mkdir()
        server = start(["serve", str(served), "--port", "0"])
        run = None
        try:
            banner = server.stdout.readline()
            assert "serving" in banner, f"no server: {server.stderr.read()[-2000:]}"
            port = int(banner.rsplit(":", 1)[1])
            run = start(["run", "--data", str(data), "--symbols", ",".join(spec.symbols),
                         "--start", DAY, "--end", DAY, "--log", str(served / "live.lmdb"),
                         "--sync", "none", "--speed", str(SPEED)])  # fmt: skip
            while not (served / "live.lmdb" / "data.mdb").exists():
                time.sleep(0.02)
            seqs, kinds, offsets = [], [], []
            for batch, arrived in follow(f"grpc://127.0.0.1:{port}", "live.lmdb"):
                ts = batch.column("ts").cast("int64").to_numpy()
                offsets.append(arrived - ts / (SPEED * 1e9))  # wall time - paced simulated time
                seqs.append(batch.column("seq").to_numpy())
                kinds += batch.column("kind").to_pylist()[-1:]
            assert run.wait(timeout=60) == 0, f"the run failed: {run.stderr.read()[-2000:]}"
        finally:
            for process in (run, server):
                if process is not None and process.poll() is None:
                    process.terminate()
                    process.wait(timeout=30)
        with EventLog.open(served / "live.lmdb") as log:
            count = log.count()
    got = np.concatenate(seqs)
    assert np.array_equal(got, np.arange(1, count + 1)), "the follower missed or repeated events"
    assert kinds[-1] == "RunFinished", f"the stream ended at {kinds[-1]}"
    offset = np.concatenate(offsets)
    lag = offset - offset.min()  # behind the event that came soonest after its release
    p99 = float(np.percentile(lag, 99))
    assert p99 < LAG_BOUND_S, f"the follower was {p99:.2f} s behind the paced release (p99)"
    print(
        f"flight_follower: followed {count:,} events live over Flight in {len(seqs)} batches; "
        f"behind the paced release by p50 {np.percentile(lag, 50) * 1e3:.0f} ms, "
        f"p99 {p99 * 1e3:.0f} ms"
    )


def follow_and_print(location: str, log: str) -> None:
    """Follow someone's run and print a line per batch: what a consumer would act on."""
    for batch, _ in follow(location, log, os.environ.get("TICKTAPE_TOKEN")):
        seq = batch.column("seq")
        print(f"seq {seq[0]}..{seq[-1]}: {batch.num_rows} events, last {batch.column('kind')[-1]}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and "://" in sys.argv[1]:  # a server and a log to follow
        follow_and_print(sys.argv[1], sys.argv[2])
    else:
        main()
