"""The `ticktape` command line. Errors are one line on stderr and a non-zero exit, no traceback.

Exit codes: 0 ok, 1 a check failed (or a run failed), 2 a usage or input error, 130/143 stopped by
Ctrl-C/SIGTERM. Signal handling is installed before the heavy imports, so Ctrl-C is graceful at
any moment.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from ticktape.scenarios.commands.controls import Interrupted, interrupted, stop_on_signals
from ticktape.store.stopping import ScanStopped

# Which module registers each command; only the one asked for is imported, so a command pays
# for no other's imports (a replay needs neither pandas nor the calendar).
_MODULES = {
    "run": "run",
    "demo": "run",
    "replay": "replay",
    "resume": "resume",
    "ingest": "ingest",
    "data": "data",
    "log": "log",
    "bench": "bench",
    "sweep": "sweep",
    "report": "report",
    "serve": "serve",
}


def _parser(argv: Sequence[str]):
    import importlib

    from ticktape.scenarios.commands.common import Parser

    parser = Parser(prog="ticktape", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    parser.add_argument("--version", action="version", version=f"ticktape {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    asked = next((a for a in argv if not a.startswith("-")), None)
    names = [_MODULES[asked]] if asked in _MODULES else sorted(set(_MODULES.values()))
    for name in dict.fromkeys(names):
        importlib.import_module(f"ticktape.scenarios.commands.{name}").register(sub)
    _verbose_anywhere(parser)
    return parser


def as_flags(message: str) -> str:
    """An error raised to Python names its arguments (`trailing_days`); said on the command
    line, it names the options (--trailing-days)."""
    import re

    return re.sub(r"`([a-z][a-z_]*)`", lambda m: "--" + m[1].replace("_", "-"), message)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ticktape")
    except PackageNotFoundError:
        return "(not installed)"


def _verbose_anywhere(parser) -> None:
    """`-v` after a command (`ticktape run -v ...`, `ticktape log show -v ...`) as before it."""
    import argparse

    for action in parser._subparsers._group_actions if parser._subparsers else ():
        if isinstance(action, argparse._SubParsersAction):
            for command in action.choices.values():
                if not any("-v" in a.option_strings for a in command._actions):
                    command.add_argument(
                        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="log progress to stderr",
                    )  # fmt: skip
                _verbose_anywhere(command)


def main(argv: Sequence[str] | None = None) -> int:
    # Arrow's default allocator (mimalloc) keeps the pages of freed tables; a run reads each
    # session's tables and drops them, and the system allocator gives them back (about 20 MB
    # less peak memory, at no measured cost). Set before pyarrow is imported; a user's choice wins.
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
    with stop_on_signals():
        try:
            return _main(argv)
        except Exception as error:  # before a run had started: nothing was logged
            stopped = _interruption(error)
            if stopped is None:
                raise
            print(f"ticktape: stopped by {stopped}", file=sys.stderr)
            return stopped.exit_code


def _interruption(error: BaseException | None) -> Interrupted | None:
    """The signal behind `error`: itself, or wrapped by the code it interrupted (an import turns
    it into a RuntimeError), or lost and seen by the scan as a stop request."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, Interrupted):
            return error
        if isinstance(error, ScanStopped):
            return interrupted()
        error = error.__cause__ or (None if error.__suppress_context__ else error.__context__)
    return None


def _main(argv: Sequence[str] | None) -> int:
    from loguru import logger

    from ticktape.actors.errors import ActorFailure, ConfigError
    from ticktape.scenarios.commands.common import UsageError
    from ticktape.store.eventlog import DiskRefused, LogDamaged, LogError

    sink = None
    try:
        argv = sys.argv[1:] if argv is None else list(argv)
        args = _parser(argv).parse_args(argv)
        args.argv = argv  # which options were given, not only their values (run --config)
        logger.remove()
        logger.enable("ticktape")
        level = "INFO" if args.verbose else "WARNING"
        sink = logger.add(sys.stderr, level=level, format="{level}: {message}", catch=False)
        return args.handler(args)
    except (LogDamaged, DiskRefused) as e:  # one line: the damage or the disk, the last seq
        print(f"ticktape: {e}", file=sys.stderr)
        return 1
    except (UsageError, ConfigError, LogError) as e:
        print(f"ticktape: error: {as_flags(str(e))}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except OSError as e:
        print(f"ticktape: error: {e.strerror or e}: {e.filename}", file=sys.stderr)
        return 2
    except ActorFailure as e:
        print(f"ticktape: run failed: {e}", file=sys.stderr)
        return 1
    finally:
        if sink is not None:  # main() may run again in this process, with another stderr
            logger.remove(sink)


if __name__ == "__main__":
    sys.exit(main())
