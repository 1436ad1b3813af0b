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
    p.add_argument("--sweep-end", default="2024-01-31", help="each sweep run: --start to this")
    args = p.parse_args(argv)
    symbols = ",".join(f"S{i:03d}" for i in range(args.symbols))
    work = Path(tempfile.mkdtemp(prefix="ticktape-ray-bench-"))
    run = ["run", "--data", args.data, "--symbols", symbols, "--start", args.start]

    def fresh(name: str) -> str:
        shutil.rmtree(work / name, ignore_errors=True)
        return str(work / name)

    figures: dict[str, object] = {}
    wall: dict[str, list[float]] = {"unsharded": [], "warm": [], "cold": []}
    digests: set[str] = set()
    for _ in range(args.repeat):
        seconds, _ = _timed([*run, "--end", args.end, "--log", fresh("whole.lmdb")])
        wall["unsharded"].append(seconds)
        seconds, digest = _timed(
            [*run, "--end", args.end, "--log", fresh("cold"), "--shards", str(args.shards)]
        )
        wall["cold"].append(seconds)
        digests.add(digest)
    _ray("start", "--head", f"--num-cpus={args.shards}", "--include-dashboard=false")
    try:
        shard_seconds = []
        for _ in range(args.repeat + 1):  # the first warms the workers' imports
            seconds, digest = _timed(
                [*run, "--end", args.end, "--log", fresh("warm"), "--shards", str(args.shards),
                 "--ray", "auto"]
            )  # fmt: skip
            wall["warm"].append(seconds)
            digests.add(digest)
            shard_seconds.append(max(s.seconds for s in read_manifest(work / "warm").shards))
        figures["warm first run s"] = wall["warm"].pop(0)
        shard_seconds.pop(0)
        # 8 independent runs, one after another, then as one sweep on the same Ray.
        settings = [(t, d) for t in (0, 1) for d in (5, 15, 30, 60)]
        one_by_one = 0.0
        for trailing, derived in settings:
            seconds, _ = _timed(
                [*run, "--end", args.sweep_end, "--log", fresh("one.lmdb"), "--trailing-days",
                 str(trailing), "--derived", str(derived)]
            )  # fmt: skip
            one_by_one += seconds
        seconds, _ = _timed(
            ["sweep", "--out", fresh("sweep"), "--data", args.data, "--symbols", symbols,
             "--start", args.start, "--end", args.sweep_end, "--grid", "trailing_days=0,1",
             "--grid", "derived=5,15,30,60", "--ray", "auto"]
        )  # fmt: skip
        rows = json.loads((work / "sweep" / "summary.json").read_text())
    finally:
        _ray("stop")
    median = {k: statistics.median(v) for k, v in wall.items()}
    figures.update(
        {f"{k} s (median of {len(wall[k])})": round(v, 2) for k, v in median.items()},
        **{
            "unsharded runs s": [round(x, 2) for x in wall["unsharded"]],
            "warm runs s": [round(x, 2) for x in wall["warm"]],
            "cold runs s": [round(x, 2) for x in wall["cold"]],
            "speed-up warm": round(median["unsharded"] / median["warm"], 2),
            "speed-up cold": round(median["unsharded"] / median["cold"], 2),
            "longest shard in its worker s": round(statistics.median(shard_seconds), 2),
            "Ray overhead per shard s (warm wall - longest shard)": round(
                median["warm"] - statistics.median(shard_seconds), 2
            ),
            "one set digest for every sharded run": len(digests) == 1,
            "8 runs one by one s": round(one_by_one, 2),
            "sweep of the 8 s": round(seconds, 2),
            "sweep runs in their workers s": round(sum(r["seconds"] for r in rows), 2),
            "sweep states": sorted({r["state"] for r in rows}),
        },
    )
    print(json.dumps(figures, indent=1))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
