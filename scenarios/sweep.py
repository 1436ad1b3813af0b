"""Sweeps: independent runs fanned out on Ray, one task each, into one folder (DESIGN §14).

Two kinds: run configs over a grid of settings (and universes of symbols), or a scenario script
over a grid of parameters. A script takes part by defining `run(log, **params)`, which writes its
run's log at `log` and may return a dict of figures. Each run writes `run-NNN.lmdb` in the
folder; `summary.json` and `summary.csv` list each run's settings, state, digest and figures. A run
that fails is reported in its row (its state and the error, in one line); the others finish.
"""

from __future__ import annotations

import csv
import itertools
import json
import runpy
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec

from ticktape.actors.errors import ConfigError
from ticktape.actors.system import System
from ticktape.messages.config import RunConfig
from ticktape.scenarios.ray_session import import_ray, one_line, ray_cluster
from ticktape.store.eventlog import EventLog

SUMMARY = "summary.json"


def grid(axes: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of the axes' values, the first axis slowest."""
    names = list(axes)
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*axes.values())]


def config_of(base: RunConfig, settings: Mapping[str, Any], log: str) -> RunConfig:
    """`base` with a run's settings, data-driven, into `log`; a bad name or value is one line.
    A single value for a list setting is a list of one (`derived=30`)."""
    settings = {
        k: [v] if isinstance(getattr(base, k, None), tuple) and not isinstance(v, list | tuple)
        else v
        for k, v in settings.items()
    }  # fmt: skip
    fields = {**msgspec.to_builtins(base), **settings, "log": log, "speed": 0.0, "output_queue": 0}
    try:
        config = msgspec.convert(fields, RunConfig, strict=False)
        config.validate()
    except (msgspec.ValidationError, ValueError) as e:
        raise ConfigError(f"sweep settings {dict(settings)}: {e}") from None
    return config


def _run_config(base: dict[str, Any], settings: dict[str, Any], log: str) -> dict[str, Any]:
    totals = System(config_of(msgspec.convert(base, RunConfig), settings, log)).run()
    return {"sessions": totals.sessions, "bars": totals.bars, "rejected": totals.rejected}


def _run_script(script: str, settings: dict[str, Any], log: str) -> dict[str, Any]:
    entry = runpy.run_path(script, run_name="ticktape_sweep").get("run")
    if not callable(entry):
        raise ConfigError(f"{script} defines no run(log, **params) to sweep")
    figures = entry(log=log, **settings)
    return dict(figures) if isinstance(figures, Mapping) else {}


def _task(kind: str, target: Any, settings: dict[str, Any], log: str) -> dict[str, Any]:
    """One run, in a worker; returns its small results."""
    began = time.perf_counter()
    body = _run_config if kind == "config" else _run_script
    figures = body(target, settings, log)
    row: dict[str, Any] = {"seconds": round(time.perf_counter() - began, 3), "figures": figures}
    if (Path(log) / "data.mdb").exists():
        with EventLog.open(log) as opened:
            row["events"], row["digest"] = opened.committed()
    return row


def sweep_configs(
    base: RunConfig,
    axes: Mapping[str, Sequence[Any]],
    out: str | Path,
    *,
    universes: Sequence[Sequence[str]] = (),
    address: str | None = None,
) -> list[dict[str, Any]]:
    """`base` run over every combination of `axes` (RunConfig fields) and `universes` (symbol
    lists). Every combination is checked before any run starts."""
    if universes:
        axes = {**axes, "symbols": [tuple(u) for u in universes]}
    runs = grid(axes)
    for settings in runs:
        config_of(base, settings, "")
    return _fan_out("config", msgspec.to_builtins(base), runs, out, address)


def sweep_script(
    script: str | Path,
    axes: Mapping[str, Sequence[Any]],
    out: str | Path,
    *,
    address: str | None = None,
) -> list[dict[str, Any]]:
    """A scenario script's `run(log, **params)` over every combination of `axes`."""
    if not Path(script).is_file():
        raise ConfigError(f"no scenario script at {script}")
    return _fan_out("script", str(Path(script).resolve()), grid(axes), out, address)


def _fan_out(
    kind: str, target: Any, runs: list[dict[str, Any]], out: str | Path, address: str | None
) -> list[dict[str, Any]]:
    import_ray()
    folder = Path(out)
    if folder.exists() and any(folder.iterdir()):
        raise ConfigError(f"--out {folder} already exists: a sweep needs a new folder")
    folder.mkdir(parents=True, exist_ok=True)
    rows = [
        {"run": f"run-{i:03d}", "log": f"run-{i:03d}.lmdb", "settings": s, "state": "pending"}
        for i, s in enumerate(runs)
    ]
    with ray_cluster(address) as ray:
        task = ray.remote(_task).options(num_cpus=1, max_retries=1, retry_exceptions=False)
        pending = {
            task.remote(kind, target, row["settings"], str(folder / row["log"])): row
            for row in rows
        }
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                row = pending.pop(ref)
                try:
                    row.update(ray.get(ref), state="done")
                except Exception as e:  # one run's failure is its row; the others go on
                    row.update(state="failed", error=one_line(e))
    write_summary(folder, rows)
    return rows


def write_summary(folder: Path, rows: list[dict[str, Any]]) -> None:
    """summary.json (the rows as they are) and summary.csv (one flat line per run)."""
    (folder / SUMMARY).write_text(json.dumps(rows, indent=1, default=list) + "\n")
    flat = [
        {
            "run": r["run"],
            **{k: _cell(v) for k, v in r["settings"].items()},
            "state": r["state"],
            "digest": r.get("digest", ""),
            "events": r.get("events", ""),
            "seconds": r.get("seconds", ""),
            **{k: _cell(v) for k, v in r.get("figures", {}).items()},
            "error": r.get("error", ""),
        }
        for r in rows
    ]
    columns = list(dict.fromkeys(k for row in flat for k in row))
    with (folder / "summary.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, columns)
        writer.writeheader()
        writer.writerows(flat)


def _cell(value: Any) -> Any:
    return "+".join(map(str, value)) if isinstance(value, list | tuple) else value
