"""Verifying a log: recompute the chain from genesis up to the committed head and name the first
block, and record when it can, that breaks it."""

from __future__ import annotations

import msgspec

from ticktape.messages.codec import decode_many
from ticktape.store import legacy_log
from ticktape.store.chain import GENESIS, Block, block_link, seq_key
from ticktape.store.log_file import LogFile
from ticktape.store.log_reader import first_undecodable


class VerifyResult(msgspec.Struct, frozen=True):
    ok: bool
    events: int  # events that verified, from seq 1
    digest: str  # the link at the last event that verified
    first_bad_seq: int | None = None
    reason: str = ""
    bad_block: tuple[int, int] | None = None  # (first seq, last seq) of the first bad block


def verify(file: LogFile) -> VerifyResult:
    """The head is read first, so the check covers a consistent snapshot even beside a live
    writer (the head's block is verified as far as the head, whatever was appended since)."""
    head_seq, head_link = file.head()
    if file.legacy:
        verified, link, bad_seq, reason = legacy_log.verify(
            file.begin_read, file.events, file.chain, head_seq
        )
        if bad_seq is None and link != head_link:
            bad_seq, reason = head_seq, "head does not match the chain"
        return VerifyResult(bad_seq is None, verified, link.hex(), bad_seq, reason)
    link, verified, key = GENESIS, 0, 1
    if head_seq == 0:
        return VerifyResult(True, 0, GENESIS.hex())
    head_block = file.block_start(head_seq)

    def bad(first_bad: int, reason: str, last: int) -> VerifyResult:
        return VerifyResult(False, verified, link.hex(), first_bad, reason, (key, last))

    while key <= head_block:
        last = min(key + file.block_events - 1, head_seq)
        with file.begin_read() as txn:
            value = txn.get(seq_key(key), db=file.events)
            stored_link = txn.get(seq_key(key), db=file.chain)
        if value is None:
            return bad(key, f"events {key}-{last} are missing", last)
        try:
            block = Block.parse(key, value)
        except ValueError as e:
            return bad(key, f"block {key}-{last} is damaged: {e}", last)
        count = last - key + 1
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
