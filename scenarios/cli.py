"""The `ticktape` command line. Errors are one line on stderr and a non-zero exit, no traceback.

Exit codes: 0 ok, 1 a check failed (or a run failed), 2 a usage or input error, 130/143 stopped by
Ctrl-C/SIGTERM. Signal handling is installed before the heavy imports, so Ctrl-C is graceful at
any moment.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from scenarios.commands.controls import Interrupted, stop_on_signals


def _parser():
    from scenarios.commands import bench, ingest, log, replay, resume, run
    from scenarios.commands.common import Parser

    parser = Parser(prog="ticktape", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for command in (run, replay, resume, ingest, log, bench):
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    with stop_on_signals():
        try:
            return _main(argv)
        except Interrupted as stopped:  # before a run had started: nothing was logged
            print(f"ticktape: stopped by {stopped}", file=sys.stderr)
            return stopped.exit_code


def _main(argv: Sequence[str] | None) -> int:
    from loguru import logger

    from actors.system import ActorFailure, ConfigError
    from scenarios.commands.common import UsageError
    from store.eventlog import LogError

    sink = None
    try:
        args = _parser().parse_args(argv)
        logger.remove()
        level = "INFO" if args.verbose else "WARNING"
        sink = logger.add(sys.stderr, level=level, format="{level}: {message}", catch=False)
        return args.handler(args)
    except (UsageError, ConfigError, LogError) as e:
        print(f"ticktape: error: {e}", file=sys.stderr)
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
