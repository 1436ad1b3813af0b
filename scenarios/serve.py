"""Serving the logs under a folder over Arrow Flight (DESIGN §16): the log is the broker.

A client reads the log, never the run's queues: each `do_get` reads committed records in short
read transactions and streams them as Arrow record batches, so a slow or stalled client never
slows the run and loses nothing, and one that reconnects with `start_seq` = last seen + 1 gets
exactly the rest. A live log is followed at the pace of its commits until its run ends. A run set
is served as one log, as the log tools read it, from its state when a call starts.

Imported only by `ticktape serve` (pyarrow.flight stays off the import path of run and log).
"""

from __future__ import annotations

import contextlib
import hmac
import itertools
import json
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.flight as flight

from ticktape.scenarios.tickets import BadRequest, Ticket, parse_action, parse_ticket
from ticktape.store import tables
from ticktape.store.eventlog import EventLog, LogError
from ticktape.store.inspect import Selection, stats
from ticktape.store.runset import is_run_set, sessions_digest
from ticktape.store.runset_log import RunSetLog, open_log

T = TypeVar("T")
POLL_S = 0.02  # how often a follower looks for new commits (the writer commits every <= 0.25 s)
_SHARED_STRETCHES = 32  # stretches (of FOLLOW_BLOCKS stored blocks) kept for other followers
_PACE_STEP_S = 0.005  # a paced stream is sent in pieces this far apart in wall time
ACTIONS = {
    "stats": "counts by kind, digest and session digests of a log, as JSON",
    "verify": "recompute a log's hash chain; JSON with ok, events, digest and the first bad seq",
}


class _Guarded:
    """An EventLog's read calls, one thread at a time. Threads of one process share one LMDB
    environment, and a reader that adopts a map the writer grew must not remap it under
    another's read; each call is a short read, so followers barely wait for each other."""

    def __init__(self, log: EventLog | RunSetLog) -> None:
        self.log = log
        self.lock = threading.Lock()

    def committed(self) -> tuple[int, str]:
        with self.lock:
            return self.log.committed()

    def manifest(self) -> dict[str, Any]:
        with self.lock:
            return self.log.manifest()

    def count(self) -> int:
        with self.lock:
            return self.log.count()

    def batches(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        return self._one_at_a_time(self.log.batches(*args, **kwargs))

    def events(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        return self._one_at_a_time(self.log.events(*args, **kwargs))

    def _one_at_a_time(self, items: Iterator[Any]) -> Iterator[Any]:
        while True:
            with self.lock:
                item = next(items, None)
            if item is None:
                return
            yield item


@dataclass
class _Shared:
    """An open log and what its readers share: the chunks of the stretches read last, so that
    followers at the live edge (who all read commit to commit) decode each stretch once."""

    log: _Guarded
    users: int = 0
    recent: OrderedDict[tuple[Selection, int], list[tables.Chunk]] = field(
        default_factory=OrderedDict
    )
    reading: threading.Lock = field(default_factory=threading.Lock)

    def read_range(
        self, selection: Selection, stop: int, schema: pa.Schema
    ) -> Iterator[tables.Chunk]:
        """The chunks of [selection.start_seq, stop), a group of stored blocks at a time."""
        step = tables.FOLLOW_BLOCKS * self.log.log.block_events
        at = selection.start_seq
        while at < stop:
            end = min(stop, ((at - 1) // step + 1) * step + 1)
            yield from self._stretch(replace(selection, start_seq=at), end, schema)
            at = end

    def _stretch(self, selection: Selection, stop: int, schema: pa.Schema) -> list[tables.Chunk]:
        with self.reading:  # a second follower of the same stretch waits, then finds it here
            key = (selection, stop)
            if key not in self.recent:
                log: Any = self.log
                chunks = list(tables.read(log, selection, stop, blocks=tables.FOLLOW_BLOCKS))
                for chunk in chunks:
                    chunk.table(schema)
                self.recent[key] = chunks
                while len(self.recent) > _SHARED_STRETCHES:
                    self.recent.popitem(last=False)
            return self.recent[key]


@dataclass
class _OpenLogs:
    """One open environment per log for the whole server (LMDB allows one per process),
    closed when its last reader is done."""

    _open: dict[Path, _Shared] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @contextlib.contextmanager
    def use(self, path: Path) -> Iterator[_Shared]:
        with self._lock:
            shared = self._open.get(path)
            if shared is None:
                shared = self._open[path] = _Shared(_Guarded(open_log(path)))
            shared.users += 1
        try:
            yield shared
        finally:
            with self._lock:
                shared.users -= 1
                if not shared.users:
                    del self._open[path]
                    shared.log.log.close()


class _BearerToken(flight.ServerMiddlewareFactory):
    """Every call must carry `authorization: Bearer <token>`."""

    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {token}".encode()

    def start_call(self, info: Any, headers: dict[str, list[str]]) -> None:
        given = [v.encode() if isinstance(v, str) else v for v in headers.get("authorization", [])]
        if not any(hmac.compare_digest(v, self._expected) for v in given):
            raise flight.FlightUnauthenticatedError("a bearer token is required for this server")


class _Pacer:
    """Holds each piece of a stream until its simulated time comes round at `speed`."""

    def __init__(self, speed: float, stopping: threading.Event) -> None:
        self.speed = speed
        self.stopping = stopping
        self.anchor: tuple[int, float] | None = None

    def pieces(self, batch: pa.RecordBatch) -> Iterator[pa.RecordBatch]:
        ts = batch.column("ts").view(pa.int64()).to_numpy(zero_copy_only=False)
        if self.anchor is None:
            self.anchor = (int(ts[0]), time.monotonic())
        anchor_ts, anchor_wall = self.anchor
        due = (ts - anchor_ts) / (self.speed * 1e9)
        step = np.maximum.accumulate(np.floor(due / _PACE_STEP_S))
        cuts = [0, *(np.flatnonzero(np.diff(step)) + 1).tolist(), len(ts)]
        for lo, hi in itertools.pairwise(cuts):
            delay = anchor_wall + float(due[lo]) - time.monotonic()
            if delay > 0 and self.stopping.wait(delay):
                return
            yield batch.slice(lo, hi - lo)


class LogServer(flight.FlightServerBase):
    """`ticktape serve DIR`: every log under `root`, finished or live, over Arrow Flight."""

    def __init__(
        self,
        root: str | Path,
        location: str,
        *,
        token: str | None = None,
        tls: tuple[bytes, bytes] | None = None,
        poll: float = POLL_S,
    ) -> None:
        middleware = {"token": _BearerToken(token)} if token else {}
        certificates = [flight.CertKeyPair(*tls)] if tls else []
        super().__init__(location, tls_certificates=certificates, middleware=middleware)
        self.root = Path(root).resolve()
        self.poll = poll
        _warm_up()
        self._logs = _OpenLogs()
        self._stopping = threading.Event()

    def close(self, timeout: float = 5.0) -> bool:
        """Stop: followers and paced streams end at their next look, then the server shuts
        down. False when calls were still running after `timeout` (a client that stopped
        reading holds its stream inside gRPC, where nothing from Python can end it)."""
        self._stopping.set()
        done = threading.Thread(target=self.shutdown, name="flight-shutdown", daemon=True)
        done.start()
        done.join(timeout)
        return not done.is_alive()

    # -- naming logs -----------------------------------------------------------------------

    def _resolve(self, name: str) -> Path:
        """The log `name` under the served folder; `..`, absolute paths and symlinks that
        lead out of it are refused."""
        parts = Path(name).parts
        if not name or Path(name).is_absolute() or ".." in parts or "\\" in name:
            raise BadRequest(f"log {name!r} is not a path inside the served folder")
        path = (self.root / name).resolve()
        if not path.is_relative_to(self.root):
            raise BadRequest(f"log {name!r} leads outside the served folder")
        if not ((path / "data.mdb").is_file() or is_run_set(path)):
            raise BadRequest(f"no log named {name!r} in the served folder")
        for above in path.relative_to(self.root).parents:
            if is_run_set(self.root / above):  # one environment per log in a process: the set's
                raise BadRequest(f"log {name!r} is a shard of the run set {above.as_posix()!r}")
        return path

    def _names(self) -> Iterator[str]:
        """Every log and run set under the folder, by name, in order; symlinked folders and the
        shards of a run set are not entered."""
        for folder, subfolders, files in os.walk(self.root):
            subfolders.sort()
            if "data.mdb" in files or is_run_set(folder):
                subfolders.clear()
                yield Path(folder).relative_to(self.root).as_posix()

    # -- Flight -----------------------------------------------------------------------------

    def list_flights(self, context: Any, criteria: bytes) -> Iterator[flight.FlightInfo]:
        for name in self._names():
            with contextlib.suppress(BadRequest, LogError):
                yield self._info(name)

    def get_flight_info(self, context: Any, descriptor: flight.FlightDescriptor):
        name = _name_of(descriptor)
        return _answer(lambda: self._info(name))

    def get_schema(self, context: Any, descriptor: flight.FlightDescriptor):
        return flight.SchemaResult(tables.union_schema())

    def _info(self, name: str) -> flight.FlightInfo:
        with self._logs.use(self._resolve(name)) as shared:
            log = shared.log
            count = log.count() if tables.has_ended(log) else -1  # type: ignore[arg-type]
        ticket = flight.Ticket(json.dumps({"log": name}).encode())
        return flight.FlightInfo(
            tables.union_schema(),
            flight.FlightDescriptor.for_path(name),
            [flight.FlightEndpoint(ticket, [])],
            count,
            -1,
        )

    def do_get(self, context: Any, ticket: flight.Ticket) -> flight.GeneratorStream:
        def start() -> flight.GeneratorStream:
            request = parse_ticket(ticket.ticket)
            path = self._resolve(request.log)
            with self._logs.use(path) as shared:
                selection = _selection(request, shared.log)
            schema = tables.schema_for(request.kinds)
            stream = self._stream(path, request, selection, schema, context.is_cancelled)
            compression = None if request.compression == "none" else request.compression
            options = pa.ipc.IpcWriteOptions(compression=compression)
            return flight.GeneratorStream(schema, stream, options=options)

        return _answer(start)

    def _stream(
        self,
        path: Path,
        request: Ticket,
        selection: Selection,
        schema: pa.Schema,
        cancelled: Callable[[], bool],
    ) -> Iterator[pa.RecordBatch]:
        pacer = _Pacer(request.speed, self._stopping) if request.speed > 0 else None
        with self._logs.use(path) as shared:
            log = shared.log
            if request.follow and not isinstance(log.log, RunSetLog):
                stopped = lambda: self._stopping.is_set() or cancelled()  # noqa: E731
                chunks = tables.follow(
                    log,  # type: ignore[arg-type]
                    selection,
                    poll=self.poll,
                    stopped=stopped,
                    read_range=lambda at, stop: shared.read_range(at, stop, schema),
                )
            else:
                chunks = tables.read(log, selection)  # type: ignore[arg-type]
            for chunk in chunks:
                batch = chunk.table(schema)
                if batch is None:
                    continue
                if pacer is None:
                    yield batch
                else:
                    yield from pacer.pieces(batch)
                if self._stopping.is_set():
                    return

    def list_actions(self, context: Any) -> list[tuple[str, str]]:
        return list(ACTIONS.items())

    def do_action(self, context: Any, action: flight.Action) -> Iterator[flight.Result]:
        def run() -> list[flight.Result]:
            if action.type not in ACTIONS:
                raise BadRequest(f"unknown action {action.type!r} (actions: {', '.join(ACTIONS)})")
            body = parse_action(action.body.to_pybytes() if action.body else b"")
            with self._logs.use(self._resolve(body.log)) as shared, shared.log.lock:
                log = shared.log.log
                if action.type == "stats":  # as `log stats --json` prints it
                    summary = stats(log)
                    summary["sessions_digest"] = sessions_digest(summary["session_digests"])
                    answer = msgspec.json.encode(summary)
                else:
                    answer = msgspec.json.encode(log.verify())
            return [flight.Result(answer)]

        return iter(_answer(run))


def _warm_up() -> None:
    """Convert and write one made-up trade, so the first client does not wait for what a first
    conversion loads (pandas on a first `pa.array`, Arrow's kernels, the LZ4 codec)."""
    trade = {"seq": np.ones(1, np.int64), "ts": np.zeros(1, np.int64), "symbol": np.array(["A"]),
             "price": np.ones(1), "size": np.ones(1)}  # fmt: skip
    schema = tables.union_schema()
    batch = tables.union(tables.kind_batches({"Trade": trade}), schema)
    options = pa.ipc.IpcWriteOptions(compression="lz4")
    with pa.ipc.new_stream(pa.BufferOutputStream(), schema, options=options) as writer:
        writer.write_batch(batch)


def _name_of(descriptor: flight.FlightDescriptor) -> str:
    if descriptor.descriptor_type != flight.DescriptorType.PATH or len(descriptor.path) != 1:
        raise flight.FlightServerError("a descriptor names one log by its path")
    raw = descriptor.path[0]
    return raw.decode() if isinstance(raw, bytes) else raw


def _selection(request: Ticket, log: _Guarded) -> Selection:
    """The ticket's filters; times are read in the exchange's zone, as `log export` reads them."""
    start_ts = end_ts = None
    if request.start is not None or request.end is not None:
        from ticktape.scenarios.commands.common import UsageError, exchange_tz, local_time

        try:
            tz = exchange_tz(log)  # type: ignore[arg-type]
            start_ts = local_time(request.start, tz, "from")
            end_ts = local_time(request.end, tz, "to")
        except UsageError as e:
            raise BadRequest(f"bad ticket: {e}") from None
    return Selection(request.kinds, request.symbols, start_ts, end_ts, request.start_seq)


def _answer(call: Callable[[], T]) -> T:
    """Run a Flight call; a bad request or an unreadable log is one clear Flight error."""
    try:
        return call()
    except (BadRequest, LogError) as e:  # Flight's own error: one line, no server traceback
        raise flight.FlightServerError(str(e)) from None
