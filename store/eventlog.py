"""The event log: one append-only, hash-chained LMDB environment per run, stored in blocks.

`EventLog` is the one handle callers open: it reads like a `LogReader` and, opened for writing,
appends through its `LogWriter`. The rooms behind it:
- store/chain.py: blocks and the one chain hasher (a block's link is computed there only);
- store/log_file.py: the LMDB environment, its `meta` facts, the errors;
- store/log_reader.py: committed events by seq range, beside a live writer;
- store/log_writer.py: the sequencer (group commit, resume over a stored prefix);
- store/log_verifier.py: recompute the chain, name the first bad block;
- store/legacy_log.py: logs of the first (per-record) layout, read-only.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from ticktape.messages.codec import EncodedBatch
from ticktape.messages.events import Event
from ticktape.store import faults
from ticktape.store.chain import BLOCK_EVENTS, Block, ChainHasher, seq_key
from ticktape.store.log_file import (
    INITIAL_MAP,
    SYNC_POLICIES,
    DiskRefused,
    LogDamaged,
    LogError,
    LogFile,
)
from ticktape.store.log_reader import LogReader
from ticktape.store.log_verifier import VerifyResult, check_head, verify
from ticktape.store.log_writer import LogWriter

__all__ = [
    "BLOCK_EVENTS",
    "SYNC_POLICIES",
    "Block",
    "ChainHasher",
    "DiskRefused",
    "EventLog",
    "LogDamaged",
    "LogError",
    "VerifyResult",
    "seq_key",
]


class EventLog(LogReader):
    """A log opened for reading, or for writing when it has a writer."""

    def __init__(self, file: LogFile, writer: LogWriter | None = None) -> None:
        super().__init__(file)
        self._writer = writer

    @classmethod
    def create(
        cls,
        path: str | Path,
        manifest: dict[str, Any],
        *,
        sync: str = "full",
        group_size: int = 65536,
        map_size: int = INITIAL_MAP,
        block_events: int = BLOCK_EVENTS,
        commit_interval: float = 0.25,
    ) -> EventLog:
        """A new, empty log; refuses to write over an existing one."""
        file = LogFile.create(Path(path), sync=sync, map_size=map_size, block_events=block_events)
        log = cls._writing(file, group_size=group_size, commit_interval=commit_interval)
        try:
            log.write_manifest(manifest)
            file.publish()  # in place with its manifest, or not at all
        except BaseException:
            staging = file.path
            log.close()
            if staging != Path(path):
                shutil.rmtree(staging, ignore_errors=True)
            raise
        return log

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        writable: bool = False,
        group_size: int = 65536,
        sync: str = "full",
        commit_interval: float = 0.25,
    ) -> EventLog:
        """An existing log: read-only by default (safe beside a running writer). A log whose
        head, layout and chain disagree is refused (LogDamaged)."""
        file = _checked(LogFile.open(Path(path), writable=writable, sync=sync))
        if not writable:
            return cls(file)
        return cls._writing(file, group_size=group_size, commit_interval=commit_interval)

    @classmethod
    def open_for_resume(
        cls,
        path: str | Path,
        *,
        sync: str = "full",
        group_size: int = 65536,
        replace_last: bool = False,
    ) -> EventLog:
        """A writable log that starts again from seq 1 over its stored prefix (see LogWriter);
        `replace_last`: the run was stopped, and goes on in place of its `Stopped`."""
        file = _checked(LogFile.open(Path(path), writable=True, sync=sync))
        return cls._writing(file, group_size=group_size, resume=True, replace_last=replace_last)

    @classmethod
    def _writing(cls, file: LogFile, **options: Any) -> EventLog:
        try:
            return cls(file, faults.writer_type(LogWriter)(file, **options))
        except BaseException:
            file.close()
            raise

    def close(self) -> None:
        try:
            if self._writer is not None:
                self._writer.close()
        finally:
            self.file.close()

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def verify(self) -> VerifyResult:
        return verify(self.file)

    # -- writing: the writer's, on a log opened for writing -------------------------------------

    @property
    def writer(self) -> LogWriter:
        if self._writer is None:
            raise LogError(f"log {self.path} is open for reading only")
        return self._writer

    @property
    def next_seq(self) -> int:
        if self._writer is None:
            return self.committed()[0] + 1
        return self._writer.next_seq

    @property
    def digest(self) -> str:
        """BLAKE2b chain head over every appended (or, read-only, committed) record."""
        if self._writer is None:
            return self.committed()[1]
        return self._writer.digest

    @property
    def resuming(self) -> bool:
        return self._writer is not None and self._writer.resuming

    @property
    def commits(self) -> int:
        return self.writer.commits

    @property
    def map_growths(self) -> int:
        return self.file.map_growths

    @property
    def commit_interval(self) -> float:
        return self.writer.commit_interval

    @commit_interval.setter
    def commit_interval(self, seconds: float) -> None:
        self.writer.commit_interval = seconds

    def append(self, event: Event) -> int:
        return self.writer.append(event)

    def append_batch(self, batch: EncodedBatch, *, commit: bool = True) -> int:
        return self.writer.append_batch(batch, commit=commit)

    def commit_due(self) -> None:
        self.writer.commit_due()

    def flush(self) -> None:
        self.writer.flush()

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        self.writer.write_manifest(manifest)

    def note_resume(self, info: dict[str, Any]) -> None:
        self.writer.note_resume(info)


def _checked(file: LogFile) -> LogFile:
    """`file`, when its head agrees with its chain; else LogDamaged naming the problem and the
    last seq the chain still proves."""
    problem = check_head(file)
    if problem is None:
        return file
    try:
        trusted = verify(file).events
    finally:
        file.close()
    raise file.damaged(problem, trusted)
