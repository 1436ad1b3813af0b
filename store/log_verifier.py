"""Verifying a log: recompute the chain from genesis and name the first block, and record when it
can, that breaks it; then check what the chain does not cover against it.

The head (last seq and link) must be the chain's end: its link the last block's, its seq where the
stored events end. The manifest must decode, and the run settings it keeps (`facts`, `config`)
must be those chained in the run's RunStarted. `check_head` is the cheap part (one read
transaction, no hashing), run by every tool when it opens a log.
"""

from __future__ import annotations

import struct

import lmdb
import msgspec

from ticktape.messages.codec import decode, decode_many
from ticktape.messages.config import RunConfig
from ticktape.messages.events import RunStarted
from ticktape.store import legacy_log
from ticktape.store.chain import GENESIS, Block, block_link, seq_key
from ticktape.store.log_file import HeadDamaged, LogFile, decode_head
from ticktape.store.log_reader import first_undecodable


class VerifyResult(msgspec.Struct, frozen=True):
    ok: bool
    events: int  # events that verified, from seq 1
    digest: str  # the link at the last event that verified
    first_bad_seq: int | None = None
    reason: str = ""
    bad_block: tuple[int, int] | None = None  # (first seq, last seq) of the first bad block


class _Ends(msgspec.Struct, frozen=True):
    """Where the head and the stored blocks and links end, read in one transaction."""

    head: tuple[int, bytes] | None  # None: missing
    head_problem: str | None
    last_key: int | None  # key of the last stored block
    last_count: int
    last_chain_key: int | None
    last_link: bytes | None


def _ends(file: LogFile) -> _Ends:
    with file.begin_read() as txn:
        raw = txn.get(b"head", db=file.meta)
        try:
            head, problem = (decode_head(raw) if raw is not None else None), None
        except HeadDamaged as e:
            head, problem = None, str(e)
        events = txn.cursor(file.events)
        last_key = last_count = None
        if events.last():
            last_key = int.from_bytes(events.key(), "big")
            value = events.value()
            last_count = struct.unpack_from("<I", value)[0] if len(value) >= 4 else 0
        chain = txn.cursor(file.chain)
        last_chain_key = last_link = None
        if chain.last():
            last_chain_key = int.from_bytes(chain.key(), "big")
            last_link = bytes(chain.value())
    return _Ends(head, problem, last_key, last_count or 0, last_chain_key, last_link)


def check_head(file: LogFile) -> str | None:
    """None when the head and layout agree with where the stored blocks and links end, else
    what disagrees. Cheap: no record is read or hashed."""
    if file.legacy:
        return None
    try:
        ends = _ends(file)
    except lmdb.Error as e:
        return f"its tree cannot be read ({e})"
    if ends.head_problem:
        return ends.head_problem
    if ends.head is None:
        return None if ends.last_key is None else "the head is missing"
    seq, link = ends.head
    stored = 0 if ends.last_key is None else ends.last_key + ends.last_count - 1
    if ends.last_key is not None and (
        (ends.last_key - 1) % file.block_events or ends.last_count > file.block_events
    ):
        return f"the layout says {file.block_events} events per block; the last block does not"
    if seq != stored:
        return f"the head says seq {seq}, the stored events end at seq {stored}"
    if seq and (ends.last_chain_key != ends.last_key or ends.last_link != link):
        return "the head's link is not the chain's last link"
    return None


def verify(file: LogFile) -> VerifyResult:
    """The chain up to the head, then the head and the manifest against it. The head and the
    blocks' ends are read in one transaction, so the check covers a consistent snapshot even
    beside a live writer (the head's block is verified as far as the head)."""
    try:
        return _verify(file)
    except lmdb.Error as e:
        return VerifyResult(False, 0, GENESIS.hex(), 1, f"the log cannot be read ({e})")


def _verify(file: LogFile) -> VerifyResult:
    if file.legacy:
        head_seq, head_link = file.head()
        verified, link, bad_seq, reason = legacy_log.verify(
            file.begin_read, file.events, file.chain, head_seq
        )
        if bad_seq is None and link != head_link:
            bad_seq, reason = head_seq, "head does not match the chain"
        return VerifyResult(bad_seq is None, verified, link.hex(), bad_seq, reason)
    ends = _ends(file)
    problem = check_head(file)
    if problem is None:
        result = _walk(file, *(ends.head or (0, GENESIS)))
    else:  # no head to trust: what the stored links alone prove
        stored = 0 if ends.last_key is None else ends.last_key + ends.last_count - 1
        result = _walk(file, stored, ends.last_link or GENESIS)
        problem = problem or "the head does not match the chain"
    if result.ok and problem:
        return VerifyResult(False, result.events, result.digest, None, problem)
    if result.ok:
        problem = _manifest_problem(file, result.events)
        if problem:
            return VerifyResult(False, result.events, result.digest, None, problem)
    return result


def _walk(file: LogFile, head_seq: int, head_link: bytes) -> VerifyResult:
    """Recompute the chain over blocks 1..head_seq; the last link must be `head_link`."""
    link, verified, key = GENESIS, 0, 1
    if head_seq == 0:
        return VerifyResult(True, 0, GENESIS.hex())
    head_block = file.block_start(head_seq)

    def bad(first_bad: int, reason: str, last: int) -> VerifyResult:
        return VerifyResult(False, verified, link.hex(), first_bad, reason, (key, last))

    while key <= head_block:
        last = min(key + file.block_events - 1, head_seq)
        try:
            with file.begin_read() as txn:
                value = txn.get(seq_key(key), db=file.events)
                stored_link = txn.get(seq_key(key), db=file.chain)
        except lmdb.Error as e:
            return bad(key, f"block {key}-{last} cannot be read ({e})", last)
        if value is None:
            return bad(key, f"events {key}-{last} are missing", last)
        try:
            block = Block.parse(key, value)
        except ValueError as e:
            return bad(key, f"block {key}-{last} is damaged: {e}", last)
        count = last - key + 1
        if len(block) > file.block_events:
            reason = f"block {key} holds {len(block)} events; the layout says {file.block_events}"
            return bad(key, reason, last)
        if len(block) < count:
            return bad(block.last + 1, f"events {block.last + 1}-{last} are missing", last)
        batch = block.batch(key, last + 1)
        try:
            decode_many(batch)
        except msgspec.DecodeError:
            seq, _ = first_undecodable(key, batch)
            return bad(seq, f"block {key}-{last}: record at seq {seq} does not decode", last)
        if key == head_block:  # maybe extended since the head was read: verify the prefix
            new_link, expected = block_link(link, key, block.prefix(count)), head_link
        else:
            new_link, expected = block_link(link, key, value), stored_link
        if new_link != expected or (key != head_block and len(block) != count):
            return bad(key, f"block {key}-{last} does not match the chain", last)
        link, verified = new_link, last
        key += file.block_events
    return VerifyResult(True, verified, link.hex())


def _manifest_problem(file: LogFile, events: int) -> str | None:
    """The manifest decodes, and its run settings are the chained RunStarted's."""
    with file.begin_read() as txn:
        raw = txn.get(b"manifest", db=file.meta)
        first = txn.get(seq_key(1), db=file.events)
    if raw is None:
        return "the manifest is missing" if events else None
    try:
        manifest = msgspec.json.decode(raw, type=dict)
    except msgspec.DecodeError:
        return "the manifest does not decode"
    started = decode(Block.parse(1, first).batch(1, 2).records()[0]) if events else None
    if not isinstance(started, RunStarted):
        return None  # not a run's log: its manifest is its writer's business
    kept: dict[str, dict] = {}
    try:
        if "config" in manifest:
            config = msgspec.convert(manifest["config"], RunConfig)
            kept["config"] = _as_json(config.facts())
    except (msgspec.ValidationError, TypeError, ValueError):
        return "the manifest's config does not decode"
    if "facts" in manifest:
        if not isinstance(manifest["facts"], dict):
            return "the manifest's facts do not decode"
        kept["facts"] = manifest["facts"]
    names = set().union(*kept.values()) if kept else set()
    chained = _as_json({k: getattr(started, k, None) for k in names})
    for name, facts in kept.items():
        differ = sorted(k for k in names if facts.get(k) != chained[k])
        if differ:
            shown = ", ".join(differ)
            return f"the manifest's {name} differs from the chained RunStarted ({shown})"
    return None


def _as_json(value: object) -> dict:
    """As the manifest's JSON holds it (tuples as lists)."""
    return msgspec.json.decode(msgspec.json.encode(value))
