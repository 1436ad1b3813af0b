"""Run sets: one run written as date shards, a folder of shard logs plus a manifest (DESIGN §14).

The manifest (`runset.json`) lists the shards in date order, each with its sessions, its log, its
state, its event count and chain digest, and chains the shards' digests: a shard's link is
BLAKE2b over the previous link, its dates, its state and its digest. The set's digest is defined
from its session digests (`sessions_digest`), read from the logs like any log's session digests,
so a set and an unsharded log of the same run have one such digest and can be compared session by
session. `verify` checks every shard log against its own chain and against the manifest, and
names the shard (and its dates) that is missing, changed, failed or unfinished.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from ticktape.messages.codec import EncodedBatch, decode, encode
from ticktape.messages.events import SessionClosed, SessionOpened
from ticktape.store.eventlog import EventLog, LogDamaged, LogError

MANIFEST = "runset.json"
FORMAT = "ticktape-runset/1"
_GENESIS = hashlib.blake2b(FORMAT.encode(), digest_size=32).digest()


class Shard(msgspec.Struct, kw_only=True):
    """One contiguous run of sessions, written by one task into one log."""

    index: int
    log: str  # relative to the set's folder
    sessions: tuple[str, ...]
    state: str = "pending"  # "pending" | "done" | "failed"
    events: int = 0
    digest: str = ""  # the shard log's chain digest
    link: str = ""  # this shard's link in the manifest's chain
    attempts: int = 0
    error: str = ""
    host: str = ""  # where it ran last
    seconds: float = 0.0  # its task's wall time in the worker (run, resume and digests)

    @property
    def dates(self) -> str:
        return f"{self.sessions[0]} to {self.sessions[-1]}"

    @property
    def name(self) -> str:
        return f"shard {self.index} ({self.dates})"


class RunSetManifest(msgspec.Struct, kw_only=True):
    format: str = FORMAT
    config: dict[str, Any]  # the whole run's config (its `log` is the set's folder)
    shards: list[Shard]
    complete: bool = False
    chain: str = ""  # the last shard's link: the digest of the set's logs, in date order


def is_run_set(path: str | Path) -> bool:
    return (Path(path) / MANIFEST).is_file()


def read_manifest(folder: str | Path) -> RunSetManifest:
    path = Path(folder) / MANIFEST
    try:
        manifest = msgspec.json.decode(path.read_bytes(), type=RunSetManifest)
    except FileNotFoundError:
        raise LogError(f"no run set at {folder} ({MANIFEST} is missing)") from None
    except (OSError, msgspec.DecodeError, msgspec.ValidationError) as e:
        raise LogDamaged(f"run set {folder}: {MANIFEST} does not read: {e}") from None
    if manifest.format != FORMAT:
        raise LogError(f"run set {folder} has format {manifest.format!r}, not {FORMAT!r}")
    return manifest


def write_manifest(folder: str | Path, manifest: RunSetManifest) -> None:
    """Written whole and renamed into place, so a reader never sees half a manifest."""
    path = Path(folder) / MANIFEST
    partial = path.with_suffix(".json.partial")
    partial.write_bytes(msgspec.json.format(msgspec.json.encode(manifest)))
    os.replace(partial, path)


def seal(manifest: RunSetManifest) -> RunSetManifest:
    """Chain the shards' digests in date order; complete once every shard is done."""
    link = _GENESIS
    for shard in manifest.shards:
        link = shard_link(link, shard)
        shard.link = link.hex()
    manifest.chain = link.hex()
    manifest.complete = all(s.state == "done" for s in manifest.shards)
    return manifest


def shard_link(previous: bytes, shard: Shard) -> bytes:
    h = hashlib.blake2b(previous, digest_size=32)
    h.update(f"{shard.index}|{shard.sessions[0]}|{shard.sessions[-1]}|{shard.state}|".encode())
    h.update(bytes.fromhex(shard.digest))
    return h.digest()


def sessions_digest(session_digests: dict[str, str]) -> str:
    """BLAKE2b over every session's label and digest in date order: the digest of a run set, and
    the same figure for an unsharded log of the same run (`log stats --json`)."""
    h = hashlib.blake2b(b"ticktape-sessions/1", digest_size=32)
    for label in sorted(session_digests):
        h.update(label.encode() + b"\0" + bytes.fromhex(session_digests[label]))
    return h.hexdigest()


# -- session digests without decoding every event --------------------------------------------


def _header(event: SessionOpened | SessionClosed) -> np.ndarray:
    """The bytes every record of this kind starts with: array header and tag."""
    record = encode(event)
    tag = type(event).__struct_config__.tag
    return np.frombuffer(record[: 2 + len(tag)], np.uint8)


_OPENED = _header(SessionOpened(ts=0, session="", open=0, close=0, early_close=False))
_CLOSED = _header(SessionClosed(ts=0, session="", bars=0, left_out=0))


def _starting_with(batch: EncodedBatch, header: np.ndarray) -> np.ndarray:
    """Indices of the records that start with `header`: two bytes for every record (the array
    header and the tag's length set kinds apart), the whole header for the few that match."""
    offsets, buffer = batch.offsets, batch.buffer
    long_enough = batch.lengths >= len(header)
    first = np.flatnonzero(long_enough & (buffer[offsets] == header[0]))
    rows = first[buffer[offsets[first] + 1] == header[1]]
    whole = [i for i in rows.tolist() if bytes(buffer[offsets[i] : offsets[i] + len(header)])
             == header.tobytes()]  # fmt: skip
    return np.array(whole, np.int64)


class SessionHasher:
    """Session digests of records fed in log order: BLAKE2b over each session's records,
    SessionOpened to SessionClosed inclusive (the figure `log stats` gives). The two kinds are
    found by their header bytes, so nothing is decoded but the closes (for their date)."""

    def __init__(self) -> None:
        self.digests: dict[str, str] = {}
        self._session: Any = None  # the hash of the session open at the end of the last batch

    def add(self, batch: EncodedBatch) -> None:
        opens, closes = _starting_with(batch, _OPENED), _starting_with(batch, _CLOSED)
        marks = sorted([(int(i), True) for i in opens] + [(int(i), False) for i in closes])
        at = 0
        for index, opening in marks:
            if opening:
                self._session, at = hashlib.blake2b(digest_size=32), index
            elif self._session is not None:
                self._session.update(batch.take(slice(at, index + 1)).joined())
                label = decode(batch.take(slice(index, index + 1)).joined()).session
                self.digests[label], self._session = self._session.hexdigest(), None
        if self._session is not None:
            self._session.update(batch.take(slice(at, len(batch))).joined())


def session_digests(log: EventLog) -> dict[str, str]:
    """The session digests of a stored log, read a block at a time (no copies)."""
    hasher = SessionHasher()
    for _, batch in log.batches(1, log.committed()[0] + 1):
        hasher.add(batch)
    return hasher.digests


# -- verify ------------------------------------------------------------------------------------


class RunSetCheck(msgspec.Struct, frozen=True):
    ok: bool
    events: int  # events in the shard logs that verified
    digest: str  # the set's digest, from its session digests ("" when it does not verify)
    problems: tuple[str, ...] = ()  # one line each, naming the shard and its dates


def verify(folder: str | Path) -> RunSetCheck:
    """Every shard log against its own chain and against the manifest; the chain of shards; the
    set's digest. Names every shard that is missing, changed, failed or unfinished."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    problems: list[str] = []
    events = 0
    digests: dict[str, str] = {}
    for shard in manifest.shards:
        if shard.state != "done":
            problems.append(f"{shard.name} is {shard.state}, the set incomplete{_error(shard)}")
            continue
        found = _check_shard(folder, shard)
        if isinstance(found, str):
            problems.append(f"{shard.name}: {found}")
            continue
        events += found[0]
        digests.update(found[1])
    recorded = [msgspec.structs.replace(s) for s in manifest.shards]
    resealed = seal(msgspec.structs.replace(manifest, shards=recorded))
    if resealed.chain != manifest.chain:
        problems.append(f"the manifest's chain of shard digests does not hold ({MANIFEST} changed)")
    if manifest.complete != resealed.complete:
        problems.append(f"the manifest says complete={manifest.complete}, its shards do not")
    digest = sessions_digest(digests) if not problems else ""
    return RunSetCheck(not problems, events, digest, tuple(problems))


def _error(shard: Shard) -> str:
    return f" ({shard.attempts} attempt(s): {shard.error})" if shard.error else ""


def _check_shard(folder: Path, shard: Shard) -> tuple[int, dict[str, str]] | str:
    """(events, session digests) of a shard log that holds; else the one line that says why not."""
    path = folder / shard.log
    if not (path / "data.mdb").exists():
        return f"its log {shard.log} is missing"
    try:
        with EventLog.open(path) as log:
            result = log.verify()
            if not result.ok:
                return (
                    f"its log {shard.log} fails verify at seq {result.first_bad_seq}: "
                    f"{result.reason}"
                )
            found = session_digests(log)
    except LogError as e:
        return f"its log {shard.log} does not read: {e}"
    if result.digest != shard.digest or result.events != shard.events:
        return (
            f"its log {shard.log} was changed: {result.events} events, digest {result.digest}; "
            f"the run set recorded {shard.events} events, digest {shard.digest}"
        )
    if sorted(found) != list(shard.sessions):
        return f"its log {shard.log} holds sessions {', '.join(sorted(found))}"
    return result.events, found


def shard_logs(folder: str | Path) -> Iterator[tuple[Shard, Path]]:
    """Each shard and the path of its log, in date order."""
    folder = Path(folder)
    for shard in read_manifest(folder).shards:
        yield shard, folder / shard.log
