"""The `ticktape` command line. Errors are one line on stderr and a non-zero exit, no traceback.

Exit codes: 0 ok, 1 a check failed (or a run failed), 2 a usage or input error.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from loguru import logger

from actors.system import ActorFailure, ConfigError
from scenarios.commands import bench, ingest, log, run
from scenarios.commands.common import Parser, UsageError
from store.eventlog import LogError

COMMANDS = (run, ingest, log, bench)


def _parser() -> Parser:
    parser = Parser(prog="ticktape", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
        logger.remove()
        level = "INFO" if args.verbose else "WARNING"
        logger.add(sys.stderr, level=level, format="{level}: {message}")
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


if __name__ == "__main__":
    sys.exit(main())
