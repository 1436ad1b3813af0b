"""One writer per log or catalog: an exclusive lock on `writer.lock` in its folder, taken before
anything is written and held until the writer closes (or its process dies: the kernel drops the
lock, so a killed run never leaves a stale one).

`flock` locks belong to an open file, so a second writer is refused whether it is another process
or the same one. Readers never take it: they stay safe beside a live writer (DESIGN §7).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from ticktape.messages.errors import TicktapeError

LOCK_NAME = "writer.lock"


class Busy(TicktapeError):
    """Another writer holds the lock; the message is one sentence naming it."""


class WriterLock:
    def __init__(self, fd: int, path: Path) -> None:
        self._fd: int | None = fd
        self.path = path

    @classmethod
    def take(cls, folder: Path, what: str) -> WriterLock:
        """The lock of `folder` (which must exist), or Busy naming the process that holds it."""
        path = folder / LOCK_NAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise Busy(
                f"{what} {folder} is being written by another process (pid {holder}); "
                "wait for it to finish, or stop it"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return cls(fd, path)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the only descriptor drops the lock
            self._fd = None


def held(folder: Path) -> bool:
    """Whether a writer holds the lock of `folder` now. It probes with a shared lock released at
    once, which would refuse a writer taking the lock in that instant: ask only about a log that
    is not readable yet (store/log_file.py), never on every read."""
    try:
        fd = os.open(folder / LOCK_NAME, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
