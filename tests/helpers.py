"""Small shared pieces for the end-to-end tests: configs, log reading, independent references."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from ticktape.actors.system import System
from ticktape.messages.config import RunConfig
from ticktape.messages.events import Event
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
