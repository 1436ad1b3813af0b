"""Reading logs of the first layout (one record per key, a chain link per record), read-only.

Such a log has no `layout` in `meta`. Its records are served in runs of consecutive events packed
like blocks, so every reader works on it unchanged; `verify` recomputes its per-record chain.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import lmdb
import msgspec
import numpy as np

from ticktape.messages.codec import decode
from ticktape.store.chain import GENESIS, block_link, seq_key

RUN = 1024  # records per packed run
Begin = Callable[[], lmdb.Transaction]


def runs(
    begin: Begin, events: lmdb._Database, start: int, stop: int | None
) -> Iterator[tuple[int, list[bytes]]]:
    """(first seq, records) for consecutive stored records in [start, stop), a run per read
    transaction. A missing seq ends the runs (the caller reports it)."""
    seq = max(start, 1)
    while stop is None or seq < stop:
        records: list[bytes] = []
        with begin() as txn:
            cursor = txn.cursor(events)
            if not cursor.set_range(seq_key(seq)):
                return
            for key, value in cursor:
                s = int.from_bytes(key, "big")
                if s != seq + len(records) or len(records) == RUN or (stop and s >= stop):
                    break
                records.append(bytes(value))
        if not records:
            return
        yield seq, records
        seq += len(records)
        if len(records) < RUN:
            return


def lengths(records: list[bytes]) -> np.ndarray:
    return np.fromiter(map(len, records), dtype=np.int64, count=len(records))


def verify(
    begin: Begin, events: lmdb._Database, chain: lmdb._Database, head: int
) -> tuple[int, bytes, int | None, str]:
    """(events verified, link there, first bad seq or None, reason) over the per-record chain."""

    def stored_links() -> Iterator[bytes]:
        seq = 1
        while True:
            with begin() as txn:
                group = txn.get(seq_key(seq), db=chain)
            if group is None:
                return
            for i in range(0, len(group), 32):
                yield bytes(group[i : i + 32])
            seq += len(group) // 32

    link, verified, links = GENESIS, 0, stored_links()
    for first, records in runs(begin, events, 1, head + 1):
        if first != verified + 1:
            break
        for seq, record in enumerate(records, start=first):
            try:
                decode(record)
            except msgspec.DecodeError:
                return verified, link, seq, f"record at seq {seq} does not decode"
            new_link = block_link(link, seq, record)  # a link per record: its own one-record block
            if new_link != next(links, None):
                return verified, link, seq, f"record at seq {seq} does not match the chain"
            link, verified = new_link, seq
    if verified != head:
        return verified, link, verified + 1, f"events {verified + 1}-{head} are missing"
    return verified, link, None, ""
