"""Scale-out figures: an unsharded run against the same run in date shards on Ray, warm (a Ray
started beforehand with `ray start --head`) and cold (a local Ray started by the run); Ray's
overhead per shard; a sweep of runs against the same runs one after another. Every figure is a
whole `ticktape` process (interpreter, imports, Ray's connection), the median of `--repeat`.

    python -m ticktape.scenarios.ray_bench CATALOG --symbols 100 --start 2024-01-02 \\
        --end 2024-12-31 --shards 2 [--repeat 3] [--sweep-end 2024-01-31]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ticktape.store.runset import read_manifest

_CLI = [sys.executable, "-m", "ticktape.scenarios.cli"]


def _timed(args: list[str]) -> tuple[float, str]:
    began = time.perf_counter()
    done = subprocess.run([*_CLI, *args], capture_output=True, text=True, timeout=3600)
    seconds = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed: {done.stderr.strip()[-400:]}")
    return seconds, done.stdout.strip().splitlines()[-1]


def _ray(*args: str) -> None:
    ray = Path(sys.executable).with_name("ray")
    subprocess.run([str(ray), *args], check=True, capture_output=True, timeout=300)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("data")
    p.add_argument("--symbols", type=int, default=100)
    p.add_argument("--start", default="2024-01-02")
    p.add_argument("--end", default="2024-12-31")
    p.add_argument("--shards", type=int, default=2)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--sync", default="full", help="the log's fsync policy, both sides")
    p.add_argument("--sweep-end", default="2024-01-31", help="each sweep run: --start to this")
    args = p.parse_args(argv)
    symbols = ",".join(f"S{i:03d}" for i in range(args.symbols))
    work = Path(tempfile.mkdtemp(prefix="ticktape-ray-bench-"))
    run = ["run", "--data", args.data, "--symbols", symbols, "--start", args.start, "--sync",
           args.sync]  # fmt: skip
    whole = [*run, "--end", args.end]
    sharded = [*whole, "--shards", str(args.shards)]

    def fresh(name: str) -> str:
        shutil.rmtree(work / name, ignore_errors=True)
        return str(work / name)

    wall: dict[str, list[float]] = {"unsharded": [], "warm": [], "cold": []}
    longest: list[float] = []
    figures: dict[str, object] = {}
    _ray("start", "--head", f"--num-cpus={args.shards}", "--include-dashboard=false")
    try:
        figures["warm first run s (workers import ticktape)"] = round(
            _timed([*sharded, "--log", fresh("warm"), "--ray", "auto"])[0], 2
        )
        for _ in range(args.repeat):  # A/B in turns, so load from elsewhere hits both
            wall["unsharded"].append(_timed([*whole, "--log", fresh("whole.lmdb")])[0])
            wall["warm"].append(_timed([*sharded, "--log", fresh("warm"), "--ray", "auto"])[0])
            longest.append(max(s.seconds for s in read_manifest(work / "warm").shards))
        figures.update(_sweep(args, symbols, run, fresh, work))
    finally:
        _ray("stop")
    for _ in range(args.repeat):
        wall["cold"].append(_timed([*sharded, "--log", fresh("cold")])[0])
    median = {k: statistics.median(v) for k, v in wall.items()}
    figures.update(
        {f"{k} s": [round(x, 2) for x in v] for k, v in wall.items()},
        **{f"{k} s, median": round(v, 2) for k, v in median.items()},
        **{
            "speed-up warm": round(median["unsharded"] / median["warm"], 2),
            "speed-up cold": round(median["unsharded"] / median["cold"], 2),
            "longest shard in its worker s, median": round(statistics.median(longest), 2),
            "Ray's overhead, warm (wall - longest shard) s": round(
                median["warm"] - statistics.median(longest), 2
            ),
            "Ray's overhead, cold (wall - longest shard) s": round(
                median["cold"] - statistics.median(longest), 2
            ),
        },
    )
    print(json.dumps(figures, indent=1))
    shutil.rmtree(work, ignore_errors=True)


def _sweep(args: argparse.Namespace, symbols: str, run: list[str], fresh, work: Path) -> dict:
    """8 independent runs one after another, then the same 8 as one sweep on the running Ray."""
    one_by_one = []
    for trailing in (0, 1):
        for derived in (5, 15, 30, 60):
            one_by_one.append(
                _timed(
                    [*run, "--end", args.sweep_end, "--log", fresh("one.lmdb"), "--trailing-days",
                     str(trailing), "--derived", str(derived)]
                )[0]
            )  # fmt: skip
    seconds, _ = _timed(
        ["sweep", "--out", fresh("sweep"), "--data", args.data, "--symbols", symbols, "--start",
         args.start, "--end", args.sweep_end, "--sync", args.sync, "--grid", "trailing_days=0,1",
         "--grid", "derived=5,15,30,60", "--ray", "auto"]
    )  # fmt: skip
    rows = json.loads((work / "sweep" / "summary.json").read_text())
    return {
        "8 runs one by one s (whole processes)": round(sum(one_by_one), 2),
        "8 runs / 2 cores s": round(sum(one_by_one) / 2, 2),
        "sweep of the 8 s (whole process)": round(seconds, 2),
        "sweep runs in their workers s (sum)": round(sum(r["seconds"] for r in rows), 2),
        "sweep states": sorted({r["state"] for r in rows}),
    }


if __name__ == "__main__":
    main()
