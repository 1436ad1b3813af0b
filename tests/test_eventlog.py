"""The event log on a real LMDB environment: chain, verify, growth, readers, crash prefix."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import lmdb
import msgspec
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import ROOT
from ticktape.messages.codec import (
    EncodedBatch,
    decode,
    decode_columns,
    decode_many,
    encode,
    encode_columns,
)
from ticktape.messages.events import (
    EVENT_TYPES,
    Bar,
    GapDetected,
    Quote,
    RunStarted,
    TimeAdvanced,
    Trade,
)
from ticktape.store import log_file
from ticktape.store.eventlog import Block, EventLog, LogDamaged, LogError, seq_key
from ticktape.store.tables import kind_batches
from ticktape.store.writer_lock import WriterLock

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


def test_refuses_to_overwrite_and_reports_missing(tmp_path: Path) -> None:
    with EventLog.create(tmp_path / "log", {}) as log:
        log.append(TimeAdvanced(ts=1))
    with pytest.raises(LogError, match="already exists"):
        EventLog.create(tmp_path / "log", {})
    with pytest.raises(LogError, match="no event log"):
        EventLog.open(tmp_path / "nope")
    with pytest.raises(LogError, match="sync policy"):
        EventLog.create(tmp_path / "x", {}, sync="sometimes")


# --- one byte form per event ----------------------------------------------------------------

INT64 = st.integers(-(2**63), 2**63 - 1)
FLOAT = st.floats(allow_nan=True, allow_infinity=True)
SYMBOL = st.text(min_size=0, max_size=40)
FIXED = {
    Bar: (2, 5),  # kind: (int columns after the symbol, float columns)
    Trade: (0, 2),
    Quote: (0, 4),
    TimeAdvanced: (0, 0),
}


@st.composite
def fixed_columns(draw: st.DrawFn) -> tuple[type, list[np.ndarray], np.ndarray | None, list]:
    kind = draw(st.sampled_from(list(FIXED)))
    ints, floats = FIXED[kind]
    n = draw(st.integers(1, 12))
    big = st.integers(2**32, 2**63 - 1)
    ts = np.array(draw(st.lists(draw(st.sampled_from([INT64, big])), min_size=n, max_size=n)))
    if kind is TimeAdvanced:
        return kind, [ts], None, []
    symbols = draw(st.lists(SYMBOL, min_size=1, max_size=4))
    ids = np.array(draw(st.lists(st.integers(0, len(symbols) - 1), min_size=n, max_size=n)))
    extra_ints = [
        np.array(draw(st.lists(INT64, min_size=n, max_size=n)), dtype=np.int64)
        for _ in range(ints - 1)
    ]
    values = [
        np.array(draw(st.lists(FLOAT, min_size=n, max_size=n)), dtype=np.float64)
        for _ in range(floats)
    ]
    return kind, [ts, *extra_ints, *values], ids, symbols


@settings(max_examples=300, deadline=None)
@given(fixed_columns())
def test_encode_columns_writes_msgspecs_own_bytes(case: tuple) -> None:
    kind, columns, ids, symbols = case
    batch = encode_columns(kind, columns, ids, symbols)
    assert len(batch) == len(columns[0])
    for i, record in enumerate(batch.records()):
        values = [c[i].item() for c in columns]
        if ids is not None:
            values.insert(1, symbols[ids[i]])
        event = kind(**dict(zip(kind.__struct_fields__, values, strict=True)))
        assert bytes(record) == msgspec.msgpack.encode(event)  # the canonical form
        assert encode(decode(record)) == bytes(record)  # decoded re-encodes to the same bytes


@settings(max_examples=100, deadline=None)
@given(fixed_columns(), st.randoms(use_true_random=False))
def test_joined_records_in_any_order_are_their_bytes_back_to_back(case: tuple, rng) -> None:
    kind, columns, ids, symbols = case
    batch = encode_columns(kind, columns, ids, symbols)
    order = list(range(len(batch))) * 2  # a record may come twice
    rng.shuffle(order)
    taken = batch.take(np.array(order[: rng.randint(1, len(order))]))
    assert bytes(taken.joined()) == b"".join(bytes(r) for r in taken.records())


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 199), st.integers(1, 60)), min_size=1, max_size=6))
def test_joined_records_in_long_runs_are_their_bytes_back_to_back(runs: list) -> None:
    """Runs of neighbours (a plan's records between boundaries) are copied run by run."""
    n = 200
    volume = np.arange(n, dtype=np.int64) * 997  # several record sizes
    columns = [np.arange(n, dtype=np.int64) + 2**40, *[np.linspace(1, 2, n)] * 4, volume]
    batch = encode_columns(Bar, [columns[0], *columns], np.arange(n) % 3, ["A", "BB", "CCC"])
    order = np.concatenate([np.arange(first, min(first + size, n)) for first, size in runs])
    taken = batch.take(order)
    assert bytes(taken.joined()) == b"".join(bytes(r) for r in taken.records())
    assert bytes(taken.packed().joined()) == bytes(taken.joined())


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 9), st.integers(0, 4)), min_size=1, max_size=8))
def test_interleaved_parts_come_in_turn_in_one_buffer(sizes: list) -> None:
    """A step's records cut at its boundaries, each boundary's findings right after its cut."""
    n_first, n_second = sum(a for a, _ in sizes) + 3, sum(b for _, b in sizes)
    first = encode_columns(TimeAdvanced, [np.arange(n_first, dtype=np.int64) * 1000])
    second = encode_columns(TimeAdvanced, [-1 - np.arange(n_second, dtype=np.int64) * 70000])
    first_ends = np.append(np.cumsum([a for a, _ in sizes]), n_first)
    second_ends = np.cumsum([b for _, b in sizes])
    batch, parts = EncodedBatch.interleave(first, first_ends, second, second_ends)
    expected, part_ends, f, s = [], [], 0, 0
    for f_end, s_end in zip(first_ends, second_ends, strict=False):
        for part in (first.records()[f:f_end], second.records()[s:s_end]):
            expected += part
            part_ends += [len(expected)] if part else []
        f, s = f_end, s_end
    expected += first.records()[f:]
    part_ends += [len(expected)] if f < n_first else []
    assert [bytes(r) for r in batch.records()] == [bytes(r) for r in expected]
    assert bytes(batch.joined()) == b"".join(bytes(r) for r in expected)
    assert parts.tolist() == part_ends


def test_bulk_decoding_matches_one_by_one(tmp_path: Path) -> None:
    rare = EncodedBatch.of([started(), GapDetected(ts=2**40, symbol="C", ts_start=5)])
    quotes = encode_columns(
        Quote, [np.arange(5, dtype=np.int64) + 2**40, *np.ones((4, 5))], np.arange(5) % 3, SYMBOLS
    )
    small = encode_columns(TimeAdvanced, [np.array([1, 2**33])])  # ts < 2**32: via msgspec
    fields = ["RunStarted", 1, ["A"], "s", "e", "XNYS", False, [5], 0, "leave", False, "start"]
    older = msgspec.msgpack.encode(fields)  # a RunStarted of an older schema: fewer fields
    older = EncodedBatch(np.frombuffer(older, np.uint8), np.array([0]), np.array([len(older)]))
    batch = EncodedBatch.concat([rare, bars(30), quotes, older, small])
    one_by_one = [decode(r) for r in batch.records()]
    assert decode_many(batch) == one_by_one
    columns = decode_columns(batch, first_seq=10)
    for kind, fields in columns.items():
        chosen = [(seq, e) for seq, e in enumerate(one_by_one, 10) if type(e).__name__ == kind]
        assert list(fields["seq"]) == [seq for seq, _ in chosen]
        for name in EVENT_TYPES[kind].__struct_fields__:
            got, want = list(fields[name]), [getattr(e, name) for _, e in chosen]
            assert [str(v) for v in got] == [str(v) for v in want], (kind, name)
    arrow = kind_batches(columns)
    assert arrow["Bar"].num_rows == 30 and arrow["Bar"].column("symbol").to_pylist()[:2] == [
        "AAA",
        "BRK.B",
    ]
    assert arrow["TimeAdvanced"].column("ts").cast(pa.int64()).to_pylist() == [1, 2**33]


# --- blocks: content decides, never batching or timing ----------------------------------------


def test_blocks_do_not_depend_on_batching_group_size_or_commit_timing(tmp_path: Path) -> None:
    records = EncodedBatch.concat([bars(100), EncodedBatch.of([started()]), bars(57, start=100)])
    everything = records.records()
    contents = set()
    splits = [(len(everything),), (1,) * 20 + (len(everything) - 20,), (7, 33, 64, 1, 53)]
    for i, (split, group, interval) in enumerate(
        [(splits[0], 65536, 10.0), (splits[1], 1, 0.0), (splits[2], 16, 0.0), (splits[2], 5, 10.0)]
    ):
        path = tmp_path / f"log{i}"
        with EventLog.create(path, {}, group_size=group, block_events=32) as log:
            log.commit_interval = interval
            lo = 0
            for size in split:
                log.append_batch(records.take(np.arange(lo, lo + size)))
                lo += size
            digest = log.digest
        env = lmdb.open(str(path), max_dbs=3, readonly=True)
        with env.begin() as txn:
            stored = tuple(txn.cursor(env.open_db(b"events", txn=txn)))
        env.close()
        contents.add((digest, stored))
        with EventLog.open(path) as log:
            assert log.verify().ok and log.verify().digest == digest
            assert [bytes(r) for _, r in log.records()] == [bytes(r) for r in everything]
    assert len(contents) == 1  # the same digest and the same stored blocks, byte for byte


def test_reopened_writer_continues_the_chain(tmp_path: Path) -> None:
    whole = tmp_path / "whole"
    with EventLog.create(whole, {}, block_events=16) as log:
        log.append_batch(bars(50))
        log.append_batch(bars(20, start=50))
        want = log.digest
    split = tmp_path / "split"
    with EventLog.create(split, {}, block_events=16) as log:
        log.append_batch(bars(50))
    with EventLog.open(split, writable=True) as log:
        assert log.next_seq == 51
        assert log.append_batch(bars(20, start=50)) == 70
    with EventLog.open(split) as log:
        assert log.committed() == (70, want) and log.verify().ok


# --- resume ----------------------------------------------------------------------------------


def test_resume_compares_the_stored_prefix_then_writes_on(tmp_path: Path) -> None:
    whole = tmp_path / "whole"
    with EventLog.create(whole, {}, block_events=16) as log:
        log.append(started())
        log.append_batch(bars(80))
        log.append_batch(bars(25, start=80))
        want = log.digest
    crashed = tmp_path / "crashed"
    with EventLog.create(crashed, {"resumes": []}, block_events=16) as log:
        log.append(started())
        log.append_batch(bars(80).take(np.arange(40)))  # "crash" after 41 events
    with EventLog.open_for_resume(crashed, sync="none", group_size=7) as log:
        assert log.next_seq == 1
        log.append(started())
        log.append_batch(bars(80))  # crosses the stored end (41) inside one batch
        log.append_batch(bars(25, start=80))
        assert not log.resuming  # caught up with the stored log
        log.note_resume({"from_seq": 42})
    with EventLog.open(crashed) as log:
        assert log.committed() == (106, want) and log.verify().ok
        assert log.manifest()["resumes"] == [{"from_seq": 42}]
    with EventLog.open(whole) as a, EventLog.open(crashed) as b:
        assert list(a.records()) == list(b.records())


def test_resume_names_the_first_divergent_seq(tmp_path: Path) -> None:
    path = tmp_path / "log"
    with EventLog.create(path, {}, block_events=16) as log:
        log.append_batch(bars(30))
    other = bars(30)
    other_prices = decode_many(other)
    changed = [*other_prices[:20], msgspec.structs.replace(other_prices[20], volume=-1.0)]
    with EventLog.open_for_resume(path, sync="none") as log:
        with pytest.raises(LogError, match="resume diverged at seq 21"):
            log.append_batch(EncodedBatch.of(changed))
        assert log.resuming  # closing it writes nothing
    with EventLog.open(path) as log:
        assert log.committed()[0] == 30 and log.verify().ok


# --- readers beside a live writer ------------------------------------------------------------


MID_BLOCK_WRITER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {root!r})
    from tests.test_eventlog import bars
    from ticktape.store.eventlog import EventLog
    log = EventLog.create({path!r}, {{}}, group_size=100, sync="none", block_events=64)
    i = 0
    while True:
        log.append_batch(bars(37, start=i))  # commits land mid-block
        i += 37
        if i % 370 == 0:
            print(i, flush=True)
    """
)


def live_writer(path: Path, script: str = MID_BLOCK_WRITER) -> subprocess.Popen:
    """A writer process appending to `path` until killed; returns once it has committed."""
    writer = subprocess.Popen(
        [sys.executable, "-c", script.format(root=str(ROOT), path=str(path))],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert writer.stdout.readline()
    return writer


def test_verify_beside_a_live_writer_never_calls_it_tampered(tmp_path: Path) -> None:
    path = tmp_path / "log"
    writer = live_writer(path)
    results = []
    try:
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and len(results) < 40:
            with EventLog.open(path) as reader:  # the file check, too, runs beside the writer
                results.append(reader.verify())
    finally:
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait(timeout=10)
    assert all(r.ok for r in results), [r for r in results if not r.ok][:1]
    assert len({r.events for r in results}) > 1  # it really ran while the log grew


GROWING_WRITER = MID_BLOCK_WRITER.replace("block_events=64)", "block_events=64, map_size=1 << 16)")


def test_readers_open_beside_a_writer_that_keeps_growing_the_map(tmp_path: Path) -> None:
    """The map starts at 64 KB and doubles as the writer fills it, so readers open while it
    grows (LMDB's MapResizedError inside the open itself): every open succeeds."""
    path = tmp_path / "log"
    writer = live_writer(path, GROWING_WRITER)
    counts = []
    try:
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and len(counts) < 200:
            with EventLog.open(path) as reader:
                counts.append(reader.count())
    finally:
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait(timeout=10)
    assert len(set(counts)) > 2  # readers opened while it grew
    assert (path / "data.mdb").stat().st_size > 8 << 16  # past the map three doublings made


def _half_created(path: Path) -> lmdb.Environment:
    """What a writer has made before its first commit: the LMDB file, no databases."""
    return lmdb.open(str(path), max_dbs=3)


SLOW_CREATOR = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {root!r})
    from pathlib import Path
    from tests.test_eventlog import _half_created
    from ticktape.store import log_file
    from ticktape.store.writer_lock import WriterLock
    path = Path({path!r})
    path.mkdir()
    lock = WriterLock.take(path, "log")
    env = _half_created(path)
    print("half", flush=True)
    time.sleep(0.5)
    log_file.initialize(env, 64)
    """
)


def test_a_log_being_created_reads_as_empty_not_as_an_error(tmp_path: Path) -> None:
    path = tmp_path / "log"
    creator = live_writer(path, SLOW_CREATOR)  # returns between lmdb.open and its first commit
    started = time.monotonic()
    try:
        with EventLog.open(path) as reader:
            assert reader.count() == 0 and reader.committed()[0] == 0
    finally:
        assert creator.wait(timeout=30) == 0
    assert time.monotonic() - started >= 0.2  # it waited for the creation, not a blind read


def test_a_creation_cut_short_leaves_no_log_and_the_next_one_clears_its_remains(
    tmp_path: Path,
) -> None:
    path = tmp_path / "runs" / "log"
    made = log_file.LogFile.create(path, sync="none", map_size=1 << 20, block_events=64)
    staging = made.path  # its process dies here, before the log is put in place
    assert staging != path and not path.exists()
    with pytest.raises(LogError, match="no event log"):
        EventLog.open(path)
    made.close()  # as the kernel would on its death: the lock is dropped
    with EventLog.create(path, {"run": 2}) as log:
        log.append(TimeAdvanced(ts=1))
    assert not staging.exists()
    with EventLog.open(path) as reader:
        assert reader.manifest() == {"run": 2} and reader.count() == 1
    assert sorted(p.name for p in path.parent.iterdir()) == ["log"]


def test_a_log_never_created_and_without_a_writer_stays_an_error(tmp_path: Path) -> None:
    path = tmp_path / "log"
    _half_created(path).close()  # its writer died before the first commit
    started = time.monotonic()
    with pytest.raises(LogError, match="MDB_NOTFOUND"):
        EventLog.open(path)
    assert time.monotonic() - started < 1  # no wait: nobody is creating it


def test_a_creation_that_never_commits_is_named_after_a_bounded_wait(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(log_file, "CREATION_WAIT", 0.2)
    path = tmp_path / "log"
    path.mkdir()
    lock = WriterLock.take(path, "log")
    env = _half_created(path)
    try:
        with pytest.raises(LogError, match=r"still being created after 0\.2 s"):
            EventLog.open(path)
    finally:
        env.close()
        lock.release()


def test_a_log_of_the_first_layout_stays_readable(tmp_path: Path) -> None:
    """One record per key and a link per record, written the way the first layout did."""
    path = tmp_path / "old"
    records = [
        bytes(r) for r in EncodedBatch.concat([EncodedBatch.of([started()]), bars(2500)]).records()
    ]
    link, links = hashlib.blake2b(b"ticktape-log/1", digest_size=32).digest(), []
    for seq, record in enumerate(records, start=1):
        h = hashlib.blake2b(link, digest_size=32)
        h.update(seq_key(seq) + record)
        link = h.digest()
        links.append(link)
    env = lmdb.open(str(path), max_dbs=3)
    events, chain, meta = (env.open_db(name) for name in (b"events", b"chain", b"meta"))
    with env.begin(write=True) as txn:
        for seq, record in enumerate(records, start=1):
            assert txn.put(seq_key(seq), record, db=events, append=True)
        assert txn.put(seq_key(1), b"".join(links[:1000]), db=chain)
        assert txn.put(seq_key(1001), b"".join(links[1000:]), db=chain)
        txn.put(b"head", msgspec.msgpack.encode((len(records), link)), db=meta)
        txn.put(b"manifest", b'{"old": true}', db=meta)
    env.close()
    with EventLog.open(path) as log:
        assert log.committed() == (2501, link.hex()) and log.count() == 2501
        assert [bytes(r) for _, r in log.records()] == records
        assert [s for s, _ in log.events(2400, 2403)] == [2400, 2401, 2402]
        result = log.verify()
        assert result.ok and result.events == 2501 and result.digest == link.hex()
    with pytest.raises(LogError, match="read only"):
        EventLog.open(path, writable=True)
    tampered = bytearray(records[1700])
    tampered[-1] ^= 1
    env = lmdb.open(str(path), max_dbs=3)
    with env.begin(write=True) as txn:
        txn.put(seq_key(1701), bytes(tampered), db=env.open_db(b"events", txn=txn))
    env.close()
    with EventLog.open(path) as log:
        result = log.verify()
        assert not result.ok and result.first_bad_seq == 1701 and result.events == 1700
