"""Small shared pieces for the end-to-end tests: configs, log reading, independent references."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from ticktape.actors.system import System
from ticktape.messages.config import RunConfig
from ticktape.messages.events import Event
from ticktape.scenarios.demo_data import DemoSpec, generate
from ticktape.store.eventlog import EventLog

ET = "America/New_York"
REAL_SYMBOLS = ("AIG", "BAC", "IBM", "SPY")


def bar_files_only(realdata: Path, folder: Path, symbols: tuple[str, ...] = REAL_SYMBOLS) -> Path:
    """The real minute-bar files without the large tick files, for quicker runs."""
    folder.mkdir(parents=True, exist_ok=True)
    for symbol in symbols:
        shutil.copy(realdata / f"{symbol}.csv", folder / f"{symbol}.csv")
    return folder


def config(data: Path, log: Path, **overrides: object) -> RunConfig:
    settings: dict[str, object] = {
        "data": str(data),
        "symbols": REAL_SYMBOLS,
        "start": "2013-10-07",
        "end": "2013-10-07",
        "log": str(log),
        "sync": "none",
    }
    settings.update(overrides)
    return RunConfig(**settings)


def run(cfg: RunConfig) -> str:
    """Run to the end; returns the digest."""
    return System(cfg).run(timeout=300).digest


def read(log: Path | str) -> list[Event]:
    with EventLog.open(log) as opened:
        return [event for _, event in opened.events()]


def of_kind(events: list[Event], kind: str) -> list[Event]:
    return [e for e in events if type(e).__name__ == kind]


def file_bars(paths: list[Path]) -> pd.DataFrame:
    """Bars straight from the CSVs with pandas: the independent reference."""
    frame = pd.concat([pd.read_csv(p) for p in paths], ignore_index=True)
    frame["ts_start"] = (
        pd.to_datetime(frame["timestamp"], utc=True).dt.as_unit("ns").astype("int64")
    )
    local = pd.to_datetime(frame["timestamp"], utc=True).dt.tz_convert(ET)
    frame["day"] = local.dt.strftime("%Y-%m-%d")
    minutes = local.dt.hour * 60 + local.dt.minute
    frame["regular"] = (minutes >= 9 * 60 + 30) & (minutes < 16 * 60)
    return frame


SPANS = {  # sessions of the real October 2013 week, and their like in the generated data
    "real": {"day": ("2013-10-07",) * 2, "days": ("2013-10-04", "2013-10-08"),
             "week": ("2013-10-04", "2013-10-11")},
    "generated": {"day": ("2024-11-26",) * 2, "days": ("2024-11-22", "2024-11-26"),
                  "week": ("2024-11-22", "2024-11-29")},
}  # fmt: skip


@dataclass(frozen=True)
class Market:
    """A bar data set the end-to-end tests run on: generated (so they run on a fresh clone), or
    the real week on top. `main` is the symbol that single-symbol tests follow."""

    kind: str  # "generated" or "real"
    data: Path
    symbols: tuple[str, ...]
    main: str

    def config(self, log: Path, span: str = "day", **overrides: object) -> RunConfig:
        start, end = SPANS[self.kind][span]
        return config(self.data, log, **{"symbols": self.symbols, "start": start, "end": end,
                                         **overrides})  # fmt: skip

    def regular_bars(self, span: str = "day", symbols: tuple[str, ...] | None = None) -> int:
        """Regular-hours bars in the files over `span`, counted by pandas (the reference)."""
        start, end = SPANS[self.kind][span]
        frame = file_bars([self.data / f"{s}.csv" for s in symbols or self.symbols])
        return int(((frame.day >= start) & (frame.day <= end) & frame.regular).sum())


def market(kind: str, folder: Path) -> Market:
    """The generated market (always there), or the real one (a skip when ../shared is absent)."""
    if kind == "real":
        from tests.conftest import REALDATA

        if not (REALDATA / "SPY.csv").exists():
            pytest.skip("../shared/realdata is not present")
        return Market(kind, bar_files_only(REALDATA, folder), REAL_SYMBOLS, "SPY")
    spec = DemoSpec(symbols=("ACME", "BOLT", "CRUX", "DUNE"), start="2024-11-21", end="2024-11-29")
    return Market(kind, generate(folder, spec), spec.symbols, "ACME")


def run_argv(data: Path, log: Path, spec: DemoSpec, *more: object) -> list[str]:
    """`ticktape run` over data generated from `spec`: all its symbols, all its dates."""
    argv = ["run", "--data", data, "--symbols", ",".join(spec.symbols), "--start", spec.start,
            "--end", spec.end, "--log", log, "--sync", "none", *more]  # fmt: skip
    return [str(a) for a in argv]


def cli_process(*args: str, cwd: Path | None = None) -> subprocess.Popen[str]:
    """`ticktape ARGS` as its own process (signals, kills, another working folder), text pipes."""
    return subprocess.Popen(
        [sys.executable, "-m", "ticktape.scenarios.cli", *args],
        cwd=cwd or Path(__file__).resolve().parent.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
