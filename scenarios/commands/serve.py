"""`ticktape serve DIR`: serve every log under DIR over Arrow Flight until Ctrl-C or SIGTERM.

pyarrow.flight is imported only here, when the command runs.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from pathlib import Path

from ticktape.scenarios.commands.common import UsageError
from ticktape.scenarios.commands.controls import Interrupted, graceful

TOKEN_VARIABLE = "TICKTAPE_TOKEN"
_WAKE_S = 0.5


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve the logs under DIR over Arrow Flight")
    p.add_argument("dir", help="folder whose logs (and live logs) are served")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8815, help="port (default 8815; 0 picks one)")
    p.add_argument(
        "--token",
        default=os.environ.get(TOKEN_VARIABLE),
        help=f"require this bearer token on every call (default: ${TOKEN_VARIABLE})",
    )
    p.add_argument("--tls-cert", help="PEM certificate: serve over TLS (with --tls-key)")
    p.add_argument("--tls-key", help="PEM private key of --tls-cert")
    p.set_defaults(handler=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    root = Path(args.dir)
    if not root.is_dir():
        raise UsageError(f"{root} is not a folder")
    if bool(args.tls_cert) != bool(args.tls_key):
        raise UsageError("TLS needs both --tls-cert and --tls-key")
    tls = (
        (Path(args.tls_cert).read_bytes(), Path(args.tls_key).read_bytes())
        if args.tls_cert
        else None
    )
    from ticktape.scenarios.serve import LogServer

    scheme = "grpc+tls" if tls else "grpc+tcp"
    try:
        server = LogServer(root, f"{scheme}://{args.host}:{args.port}", token=args.token, tls=tls)
    except OSError as e:  # pyarrow raises its own errors as OSError subclasses
        raise UsageError(f"cannot serve on {args.host}:{args.port}: {e}") from None
    print(f"serving {root} on {scheme}://{args.host}:{server.port}", flush=True)
    stop = threading.Event()
    try:
        with graceful(stop.set):  # only Ctrl-C or SIGTERM ends the wait
            while not stop.wait(_WAKE_S):
                pass
    except Interrupted as stopped:
        if not server.close():
            # A stalled client's stream would hold the process forever; nothing is lost by
            # cutting it (the log is the broker: it reconnects with start_seq).
            print(f"ticktape: stopped by {stopped}; cut the streams of stalled clients",
                  file=sys.stderr, flush=True)  # fmt: skip
            sys.stdout.flush()
            os._exit(stopped.exit_code)
        raise
    return 0
