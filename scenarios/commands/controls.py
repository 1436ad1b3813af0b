"""Control keys for an interactive run, and stopping on Ctrl-C or SIGTERM.

Keys (when stdin is a terminal): p pause/resume, s step one slice while paused, + and - double or
halve the speed (pacing only), q stop. Each is a method of the Python API (System.pause, resume,
step, set_speed, stop), so scripts and people drive a run the same way.
"""

from __future__ import annotations

import contextlib
import select
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

from ticktape.store import stopping

KEYS = "p pause/resume · s step · +/- speed · q stop"
_KEY_WAIT = 0.5


class Interrupted(Exception):
    """Ctrl-C or SIGTERM: the run stops gracefully and the process exits 128 + the signal."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.exit_code = 128 + signum
        self.totals: Any = None  # the stopped run's totals, when a run had begun


class _Signals:
    """What the handler knows: the last signal, and how to stop the run in hand (if any)."""

    signum: int | None = None
    stop_run: Callable[[], object] | None = None


def _handle(signum: int, frame: Any) -> None:
    """A run in hand is asked to stop gracefully (it is never interrupted mid-write); before a
    run exists (the input scan), the command itself is interrupted."""
    _Signals.signum = signum
    if _Signals.stop_run is None:
        stopping.request()  # the scan's threads stop too, not only this one
        raise Interrupted(signum)
    _Signals.stop_run()


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """In the main thread: Ctrl-C and SIGTERM stop the command gracefully."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _Signals.signum, _Signals.stop_run = None, None
    stopping.clear()
    previous = {s: signal.signal(s, _handle) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        stopping.clear()


def interrupted() -> Interrupted:
    """The signal that stopped the command (SIGINT if none was seen: the scan was stopped)."""
    return Interrupted(_Signals.signum or signal.SIGINT)


@contextlib.contextmanager
def graceful(stop_run: Callable[[], object]) -> Iterator[None]:
    """While a run is in hand, a signal calls `stop_run`; afterwards `Interrupted` is raised if
    a signal came (during the block or before it)."""
    _Signals.stop_run = stop_run
    try:
        if _Signals.signum is not None:
            stop_run()
        yield
    finally:
        _Signals.stop_run = None
    if _Signals.signum is not None:
        raise Interrupted(_Signals.signum)


class KeyReader:
    """Reads single keys from a terminal on a daemon thread and drives the run with them."""

    def __init__(self, system: Any, status: Any) -> None:
        self.system = system
        self.status = status  # called with a short text after each key
        self.speed = system.speed if hasattr(system, "speed") else system.config.speed
        self.paused = False
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._read, name="ticktape-keys", daemon=True)

    def __enter__(self) -> KeyReader:
        if sys.stdin.isatty():
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        if self._thread.is_alive():
            self._thread.join(2 * _KEY_WAIT)

    def _read(self) -> None:
        import termios
        import tty

        fd = sys.stdin.fileno()
        saved = termios.tcgetattr(fd)
        try:
            tty.setcbreak(fd)
            while not self._done.is_set():
                ready, _, _ = select.select([fd], [], [], _KEY_WAIT)
                if ready:
                    self.press(sys.stdin.read(1))
        finally:
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)

    def press(self, key: str) -> None:
        system = self.system
        if key == "p":
            self.paused = not self.paused
            (system.pause if self.paused else system.resume)()
            self.status("paused" if self.paused else "running")
        elif key == "s" and self.paused:
            system.step()
            self.status("stepped one slice")
        elif key in "+-" and key and self.speed > 0:
            self.speed = self.speed * 2 if key == "+" else self.speed / 2
            system.set_speed(self.speed)
            self.status(f"speed {self.speed:g}x")
        elif key == "q":
            self._done.set()
            system.request_stop()


@contextlib.contextmanager
def live_status(counted: Callable[[], str]) -> Iterator[Callable[[str], None]]:
    """A spinner on stderr saying `replaying: <counted()>  <note>` every 0.2 s while the block
    runs; yields what sets the note (the keys' feedback, the keys' help at first)."""
    from rich.progress import SpinnerColumn, TextColumn, TimeElapsedColumn

    from ticktape.scenarios.commands.common import stderr_progress

    with stderr_progress(SpinnerColumn(), TextColumn("{task.description}"),
                         TimeElapsedColumn()) as progress:  # fmt: skip
        task = progress.add_task("replaying", total=None)
        note = [KEYS if sys.stdin.isatty() else ""]
        done = threading.Event()

        def report() -> None:
            while not done.wait(0.2):
                progress.update(task, description=f"replaying: {counted()}  {note[0]}")

        reporter = threading.Thread(target=report, daemon=True)
        reporter.start()
        try:
            yield lambda text: note.__setitem__(0, text)
        finally:
            done.set()
            reporter.join(1.0)
