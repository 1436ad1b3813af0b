"""Crash points for the kill -9 tests: `TICKTAPE_CRASH_AT=point:n` kills the process with SIGKILL
the n-th time `point` is reached ("commit" inside a log transaction, between the blocks and the
head; the coordinator's "open", "step" and "close" between two writes). `point:n:FILE` kills only
the first process to get there (it creates FILE), so a retried task then runs through. Unset, as
always outside those tests, it costs nothing: the log's writer is the plain one unless "commit" is
armed."""

from __future__ import annotations

import os
import signal
from collections import Counter
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ticktape.store.log_writer import LogWriter

_POINT, _, _REST = os.environ.get("TICKTAPE_CRASH_AT", "").partition(":")
_AT, _, _ONCE = _REST.partition(":")
_reached: Counter[str] = Counter()


def reached(point: str) -> None:
    if not _POINT or point != _POINT:
        return
    _reached[point] += 1
    if _reached[point] == int(_AT or 1) and _first_to_crash():
        os.kill(os.getpid(), signal.SIGKILL)


def _first_to_crash() -> bool:
    if not _ONCE:
        return True
    try:
        os.close(os.open(_ONCE, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


def writer_type(plain: type[LogWriter]) -> type[LogWriter]:
    """`plain`, or when the "commit" point is armed, a writer that reaches it inside each commit."""
    if _POINT != "commit":
        return plain

    class CrashingWriter(plain):  # type: ignore[valid-type, misc]
        def _put_blocks(self, txn, blocks):  # type: ignore[no-untyped-def]
            super()._put_blocks(txn, blocks)
            reached("commit")

    return CrashingWriter
