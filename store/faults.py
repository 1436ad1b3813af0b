"""Crash points for the kill -9 tests: `TICKTAPE_CRASH_AT=point:n` kills the process with SIGKILL
the n-th time `point` is reached ("commit" inside a log transaction, between the blocks and the
head; the coordinator's "open", "step" and "close" between two writes). Unset, as always outside
those tests, it costs nothing: the log's writer is the plain one unless "commit" is armed."""

from __future__ import annotations

import os
import signal
from collections import Counter
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ticktape.store.log_writer import LogWriter

_POINT, _, _AT = os.environ.get("TICKTAPE_CRASH_AT", "").partition(":")
_reached: Counter[str] = Counter()


def reached(point: str) -> None:
    if not _POINT or point != _POINT:
        return
    _reached[point] += 1
    if _reached[point] == int(_AT or 1):
        os.kill(os.getpid(), signal.SIGKILL)


def writer_type(plain: type[LogWriter]) -> type[LogWriter]:
    """`plain`, or when the "commit" point is armed, a writer that reaches it inside each commit."""
    if _POINT != "commit":
        return plain

    class CrashingWriter(plain):  # type: ignore[valid-type, misc]
        def _put_blocks(self, txn, blocks):  # type: ignore[no-untyped-def]
            super()._put_blocks(txn, blocks)
            reached("commit")

    return CrashingWriter
