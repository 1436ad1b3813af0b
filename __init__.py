"""ticktape: replay recorded market data the way a live session delivers it, into a verifiable log.

The public API. Names load on first use, so `import ticktape` (and the command line, which lives
inside the package) stays light:

    import ticktape
    config = ticktape.RunConfig(data="demo", symbols=("AAA",), start="2024-01-02",
                                end="2024-01-02", log="runs/day.lmdb")
    with ticktape.System(config) as system:
        system.start()
        for event in system.events():
            ...
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ticktape.messages.errors import TicktapeError

_EVENTS = [
    "Event",
    "RunStarted",
    "RunFinished",
    "Bar",
    "Trade",
    "Quote",
    "TimeAdvanced",
    "SessionOpened",
    "SessionBreak",
    "SessionClosed",
    "DerivedBar",
    "DerivedBarRevised",
    "GapDetected",
    "GapFilled",
    "QualityUpdated",
    "DataRejected",
    "Paused",
    "Resumed",
    "Stopped",
    "Stepped",
    "TrailingBars",
    "ActorFailed",
]

_WHERE: dict[str, str] = {
    "System": "ticktape.actors.system",
    "RunTotals": "ticktape.actors.coordinator_core",
    "Replay": "ticktape.actors.replay",
    "RunConfig": "ticktape.messages.config",
    "ConfigError": "ticktape.actors.errors",
    "ActorFailure": "ticktape.actors.errors",
    "LogError": "ticktape.store.eventlog",
    "LogDamaged": "ticktape.store.eventlog",
    "DataConfigError": "ticktape.store.repository",
    "CalendarError": "ticktape.store.calendar",
    "Columns": "ticktape.actors.results",
    "timestamp": "ticktape.actors.results",
    "run_sharded": "ticktape.scenarios.shards",
    "ShardFailed": "ticktape.scenarios.shards",
    "sweep_configs": "ticktape.scenarios.sweep",
    "sweep_script": "ticktape.scenarios.sweep",
    "open_log": "ticktape.store.runset_log",
    **{name: "ticktape.messages.events" for name in _EVENTS},
}

__all__ = ["TicktapeError", *_WHERE]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'ticktape' has no attribute {name!r}")
    _quiet()
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value


_quieted = False


def _quiet() -> None:
    """A library prints nothing unless asked: on first use of the public API, ticktape's loguru
    messages are switched off; `logger.enable("ticktape")` after that shows its progress and
    warnings. (Not at import: the command line, which logs, imports no loguru before it has
    installed its signal handlers.)"""
    global _quieted
    if not _quieted:
        _quieted = True
        from loguru import logger

        logger.disable("ticktape")


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:
    from ticktape.actors.coordinator_core import RunTotals
    from ticktape.actors.errors import ActorFailure, ConfigError
    from ticktape.actors.replay import Replay
    from ticktape.actors.results import Columns, timestamp
    from ticktape.actors.system import System
    from ticktape.messages.config import RunConfig
    from ticktape.messages.events import (
        ActorFailed,
        Bar,
        DataRejected,
        DerivedBar,
        DerivedBarRevised,
        Event,
        GapDetected,
        GapFilled,
        Paused,
        QualityUpdated,
        Quote,
        Resumed,
        RunFinished,
        RunStarted,
        SessionBreak,
        SessionClosed,
        SessionOpened,
        Stepped,
        Stopped,
        TimeAdvanced,
        Trade,
        TrailingBars,
    )
    from ticktape.scenarios.shards import ShardFailed, run_sharded
    from ticktape.scenarios.sweep import sweep_configs, sweep_script
    from ticktape.store.calendar import CalendarError
    from ticktape.store.eventlog import LogDamaged, LogError
    from ticktape.store.repository import DataConfigError
    from ticktape.store.runset_log import open_log
