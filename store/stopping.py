"""A request to stop reading input, made from a signal handler before a run exists: the scan's
loops check it between chunks and files, so Ctrl-C during a long input scan ends it promptly
instead of waiting for every file to be read."""

from __future__ import annotations

import threading

_requested = threading.Event()


class ScanStopped(Exception):
    """The input scan was asked to stop (the command is being interrupted)."""


def request() -> None:
    _requested.set()


def clear() -> None:
    _requested.clear()


def check() -> None:
    """Raises ScanStopped once a stop was requested."""
    if _requested.is_set():
        raise ScanStopped("the input scan was stopped")
