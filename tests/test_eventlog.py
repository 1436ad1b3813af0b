"""The event log on a real LMDB environment: chain, verify, growth, readers, crash prefix."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import lmdb
import numpy as np
import pytest

from messages.codec import EncodedBatch, decode, encode_columns
from messages.events import Bar, GapDetected, RunStarted, TimeAdvanced
from store.eventlog import Block, EventLog, LogDamaged, LogError, seq_key
from tests.conftest import ROOT

SYMBOLS = ("AAA", "BRK.B", "C")


def bars(n: int, start: int = 0) -> EncodedBatch:
    rng = np.random.default_rng(n + start)
    t = (np.arange(n, dtype=np.int64) + start) * 60_000_000_000
    price = 100 + rng.random(n)
    columns = [t + 60_000_000_000, t, price, price + 1, price - 1, price, rng.random(n) * 1e4]
    return encode_columns(Bar, columns, (np.arange(n) % 3).astype(np.int32), SYMBOLS)


def started() -> RunStarted:
    return RunStarted(
        ts=1, symbols=SYMBOLS, start="2024-01-02", end="2024-01-02", calendar="XNYS",
        extended_hours=False, derived=(5, 15), trailing_days=0, gap_policy="leave",
        backfill=False, label="start", inputs=("ab" * 32,),
    )  # fmt: skip


def test_append_read_and_verify(tmp_path: Path) -> None:
    with EventLog.create(tmp_path / "log", {"run": "a"}, group_size=100) as log:
        assert log.append(started()) == 1
        assert log.append_batch(bars(250)) == 251
        assert log.append(GapDetected(ts=5, symbol="C", ts_start=4)) == 252
        digest = log.digest
    with EventLog.open(tmp_path / "log") as log:
        assert log.count() == 252
        assert log.manifest() == {"run": "a"}
        assert log.committed() == (252, digest)
        events = [e for _, e in log.events()]
        assert events[0] == started()
        assert isinstance(events[1], Bar) and events[1].symbol == "AAA"
        assert events[2].symbol == "BRK.B" and events[-1] == GapDetected(
            ts=5, symbol="C", ts_start=4
        )
        result = log.verify()
        assert result.ok and result.events == 252 and result.digest == digest


def test_columnar_records_decode_like_structs() -> None:
    batch = bars(4)
    decoded = [decode(r) for r in batch.records()]
    assert decoded[1] == Bar(
        ts=decoded[1].ts_start + 60_000_000_000, symbol="BRK.B", ts_start=60_000_000_000,
        open=decoded[1].open, high=decoded[1].open + 1, low=decoded[1].open - 1,
        close=decoded[1].open, volume=decoded[1].volume,
    )  # fmt: skip


def test_digest_depends_on_content_not_batching(tmp_path: Path) -> None:
    digests = []
    for i, group in enumerate((1, 7, 10_000)):
        with EventLog.create(tmp_path / f"log{i}", {"i": i}, group_size=group) as log:
            log.append_batch(bars(40))
            log.append_batch(bars(3, start=40))
            digests.append(log.digest)
    assert len(set(digests)) == 1
    with EventLog.create(tmp_path / "other", {}) as log:
        log.append_batch(bars(43))
        assert log.digest != digests[0]  # different prices
    with EventLog.create(tmp_path / "same-split-differently", {}) as log:
        log.append_batch(bars(40))
        log.append_batch(bars(3, start=40))
        assert log.digest == digests[0]


def tamper(path: Path, seq: int, change: str = "flip") -> None:
    """Change the stored record at `seq` with the lmdb package directly, as an outside writer
    would: "flip" the low byte of its last field (still decodes) or "cut" it (no longer does)."""
    env = lmdb.open(str(path), max_dbs=3)
    try:
        events = env.open_db(b"events")  # before the write txn: opening a db inside it deadlocks
        with env.begin(write=True) as txn:
            cursor = txn.cursor(events)
            cursor.set_range(seq_key(seq + 1))
            if not cursor.key() or int.from_bytes(cursor.key(), "big") > seq:
                cursor.prev()
            key = int.from_bytes(cursor.key(), "big")
            block = Block.parse(key, cursor.value())
            i = seq - key
            start = block.body + (int(block.ends[i - 1]) if i else 0)
            end = block.body + int(block.ends[i])
            value = bytearray(block.value)
            if change == "flip":
                value[end - 1] ^= 0x01
            else:
                value[start:end] = b"\xc1" * (end - start)  # 0xc1: never used in msgpack
            assert txn.put(seq_key(key), bytes(value), db=events)
    finally:
        env.close()


def test_verify_names_the_first_changed_block_and_record(tmp_path: Path) -> None:
    path = tmp_path / "log"
    with EventLog.create(path, {}, group_size=16, block_events=32) as log:
        log.append_batch(bars(100))
    tamper(path, 37, "flip")
    with EventLog.open(path) as log:
        result = log.verify()
    assert not result.ok and result.bad_block == (33, 64) and result.first_bad_seq == 33
    assert result.events == 32 and "33-64" in result.reason
    tamper(path, 40, "cut")
    with EventLog.open(path) as log:
        result = log.verify()
        assert not result.ok and result.bad_block == (33, 64) and result.first_bad_seq == 40
        seen = []
        with pytest.raises(LogDamaged, match="seq 40 does not decode"):
            for seq, _ in log.events():
                seen.append(seq)
        assert seen == list(range(1, 40))


def test_verify_catches_a_deleted_block(tmp_path: Path) -> None:
    path = tmp_path / "log"
    with EventLog.create(path, {}, block_events=4) as log:
        log.append_batch(bars(10))
    env = lmdb.open(str(path), max_dbs=3)
    events = env.open_db(b"events")
    with env.begin(write=True) as txn:
        txn.delete(seq_key(5), db=events)
    env.close()
    with EventLog.open(path) as log:
        result = log.verify()
    assert not result.ok and result.first_bad_seq == 5 and result.bad_block == (5, 8)


def test_map_grows_when_full(tmp_path: Path) -> None:
    with EventLog.create(tmp_path / "log", {}, map_size=256 * 1024, group_size=5000) as log:
        for i in range(10):
            log.append_batch(bars(5000, start=i * 5000))
        assert log.map_growths > 0
    with EventLog.open(tmp_path / "log") as log:
        assert log.count() == 50_000
        assert log.verify().ok


def test_refuses_to_overwrite_and_reports_missing(tmp_path: Path) -> None:
    with EventLog.create(tmp_path / "log", {}) as log:
        log.append(TimeAdvanced(ts=1))
    with pytest.raises(LogError, match="already exists"):
        EventLog.create(tmp_path / "log", {})
    with pytest.raises(LogError, match="no event log"):
        EventLog.open(tmp_path / "nope")
    with pytest.raises(LogError, match="sync policy"):
        EventLog.create(tmp_path / "x", {}, sync="sometimes")


WRITER = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {root!r})
    from tests.test_eventlog import bars
    from store.eventlog import EventLog
    log = EventLog.create({path!r}, {{}}, group_size=1000, sync="none")
    i = 0
    while True:
        log.append_batch(bars(1000, start=i * 1000))
        i += 1
        print(i, flush=True)
    """
)


def test_reader_follows_a_live_writer_and_kill_9_leaves_a_valid_prefix(tmp_path: Path) -> None:
    path = tmp_path / "log"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER.format(root=str(ROOT), path=str(path))],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        for _ in range(5):
            assert writer.stdout.readline()
        with EventLog.open(path) as reader:
            seen = []
            deadline = time.monotonic() + 10
            while len(seen) < 3 and time.monotonic() < deadline:
                seen.append(reader.committed()[0])
                time.sleep(0.05)
            assert seen[-1] >= seen[0] >= 1000
    finally:
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait()
    with EventLog.open(path) as log:
        result = log.verify()
        assert result.ok, result
        assert result.events % 1000 == 0 and result.events >= 5000
        assert log.count() == result.events
