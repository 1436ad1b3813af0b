"""The setup every scenario script shares: generated data in a temporary folder, a run config
for it, and its log read back, verified. Beside this, scripts use only the public API
(`import ticktape`)."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ticktape.messages.config import RunConfig
from ticktape.messages.events import Event
from ticktape.scenarios.demo_data import DemoSpec, generate
from ticktape.store.eventlog import EventLog


class Scenario:
    """A scenario's folder, its generated `data`, and the configs of its runs."""

    def __init__(self, folder: Path, spec: DemoSpec) -> None:
        self.folder = folder
        self.spec = spec
        self.data = generate(folder / "data", spec)

    def log(self, name: str = "run") -> Path:
        return self.folder / f"{name}.lmdb"

    def config(self, name: str = "run", **settings: Any) -> RunConfig:
        """A run of the whole generated span, logged to `name`; `settings` override."""
        spec = self.spec
        defaults = {"data": str(self.data), "symbols": spec.symbols, "start": spec.start,
                    "end": spec.end, "log": str(self.log(name)), "sync": "none"}  # fmt: skip
        return RunConfig(**{**defaults, **settings})

    def events(self, name: str = "run", digest: str | None = None) -> list[Event]:
        """The events of a finished run's log, which must verify (to `digest`, when given)."""
        with EventLog.open(self.log(name)) as opened:
            verified = opened.verify()
            assert verified.ok, verified
            assert digest is None or verified.digest == digest, (verified.digest, digest)
            return [event for _, event in opened.events()]


@contextlib.contextmanager
def scenario(name: str, spec: DemoSpec) -> Iterator[Scenario]:
    """Generated data for `spec` in a temporary folder that is gone afterwards."""
    with tempfile.TemporaryDirectory(prefix=f"ticktape-{name}-") as tmp:
        yield Scenario(Path(tmp), spec)
