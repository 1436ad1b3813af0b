"""The one place ticktape meets Ray: connecting (or starting a local Ray) and leaving it.

Ray is an optional extra (`pip install 'ticktape[ray]'`), imported here only, when a sharded run
or a sweep asks for it; a plain run never pays for it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ticktape.actors.errors import ConfigError


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError("sharded runs and sweeps need Ray: pip install 'ticktape[ray]'") from None
    return ray


@contextmanager
def ray_cluster(address: str | None = None) -> Iterator[Any]:
    """Ray, connected: to the cluster at `address` (`auto` finds a running one), else to the Ray
    this process already joined, else to a local Ray started here and shut down on leaving."""
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    try:
        ray.init(
            address=address,
            include_dashboard=False,
            log_to_driver=False,  # a task's failure comes back as its exception, in one line
            logging_level=logging.ERROR,
        )
    except ConnectionError as e:
        raise ConfigError(f"cannot reach a Ray cluster at {address}: {e}") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def one_line(error: BaseException) -> str:
    """A task's failure as one line: the cause Ray wraps, without its traceback."""
    cause = getattr(error, "cause", None) or error
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[-1] if text else ''}"
