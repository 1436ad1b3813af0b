"""A journal test kit, after the Akka Persistence journal TCK: one abstract spec of what any
event journal must do, run against the LMDB event log.

A journal under test supplies `create` and `open`; the spec appends plain Bars and time advances,
and checks replay ranges, sequence numbers, size, live readers and damage.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import ROOT
from ticktape.messages.codec import EncodedBatch, encode_columns
from ticktape.messages.events import Bar, Event, TimeAdvanced
from ticktape.store.eventlog import EventLog, LogDamaged

PAGE = 4096
MINUTE = 60_000_000_000
T0 = 1_700_000_000_000_000_000


def market(n: int, start: int = 0) -> EncodedBatch:
    """n bars of one symbol, one a minute from T0 + start minutes; prices follow the index."""
    i = np.arange(start, start + n, dtype=np.int64)
    t = T0 + i * MINUTE
    price = 100.0 + i
    columns = [t + MINUTE, t, price, price + 1, price - 1, price, i * 10.0]
    return encode_columns(Bar, columns, np.zeros(n, np.int32), ("ACME",))


class JournalSpec:
    """What every journal must do. Subclasses give `create` and `open`."""

    def create(self, path: Path, **options: Any) -> EventLog:
        raise NotImplementedError

    def open(self, path: Path, *, writable: bool = False) -> EventLog:
        raise NotImplementedError

    @staticmethod
    def replay(
        log: EventLog, first: int, last: int, limit: int | None = None
    ) -> list[tuple[int, Event]]:
        """Akka's replayMessages(fromSequenceNr, toSequenceNr inclusive, max)."""
        return list(islice(log.events(first, last + 1), limit))

    @pytest.fixture
    def journal(self, tmp_path: Path) -> Path:
        """A journal of 100 bars, seq 1..100, written in several appends and commits."""
        path = tmp_path / "journal"
        with self.create(path, group_size=16) as log:
            for start in range(0, 100, 30):
                log.append_batch(market(min(30, 100 - start), start))
        return path

    # -- replay ------------------------------------------------------------------------------

    def test_replay_all(self, journal: Path) -> None:
        with self.open(journal) as log:
            events = self.replay(log, 1, 10**9)
        assert [s for s, _ in events] == list(range(1, 101))
        assert [e.close for _, e in events] == [100.0 + i for i in range(100)]

    @pytest.mark.parametrize(
        ("first", "last", "limit", "want"),
        [
            (5, 15, None, range(5, 16)),  # a range, both ends inclusive
            (5, 15, 3, range(5, 8)),  # a limit
            (7, 7, None, range(7, 8)),  # from == to: one event
            (7, 7, 0, range(0)),  # limit 0: none
            (9, 3, None, range(0)),  # from > to: none
            (95, 500, None, range(95, 101)),  # past the end: up to the last
            (0, 2, None, range(1, 3)),  # from 0 starts at 1
            (101, 200, None, range(0)),  # from past the end: none
        ],
    )
    def test_replay_a_range(
        self, journal: Path, first: int, last: int, limit: int | None, want: range
    ) -> None:
        with self.open(journal) as log:
            assert [s for s, _ in self.replay(log, first, last, limit)] == list(want)

    def test_batches_hold_the_same_events_as_replay(self, journal: Path) -> None:
        with self.open(journal) as log:
            seqs = [f + i for f, b in log.batches(17, 83) for i in range(len(b))]
            assert seqs == list(range(17, 83))

    # -- sequence numbers --------------------------------------------------------------------

    def test_sequence_numbers_are_gap_free_and_never_reset_across_reopen(
        self, journal: Path
    ) -> None:
        with self.open(journal, writable=True) as log:
            assert log.next_seq == 101
            assert log.append(TimeAdvanced(ts=T0 + 200 * MINUTE)) == 101
            assert log.append_batch(market(5, 100)) == 106
        with self.open(journal, writable=True) as log:
            assert log.append_batch(market(3, 105)) == 109
        with self.open(journal) as log:
            assert [s for s, _ in self.replay(log, 1, 10**9)] == list(range(1, 110))
            assert log.count() == 109 and log.committed()[0] == 109
            assert log.verify().ok

    def test_an_empty_journal(self, tmp_path: Path) -> None:
        with self.create(tmp_path / "empty") as log:
            empty_digest = log.digest
        with self.open(tmp_path / "empty") as log:
            assert log.count() == 0 and self.replay(log, 1, 10) == []
            assert list(log.batches()) == [] and log.committed() == (0, empty_digest)
            result = log.verify()
            assert result.ok and result.events == 0 and result.digest == empty_digest

    def test_a_journal_larger_than_its_initial_map(self, tmp_path: Path) -> None:
        path = tmp_path / "big"
        with self.create(path, map_size=256 * 1024, group_size=5000) as log:
            for i in range(10):
                log.append_batch(market(5000, i * 5000))
            assert log.map_growths > 0
        with self.open(path) as log:
            assert log.count() == 50_000 and log.verify().ok
            assert self.replay(log, 49_999, 10**9)[-1][1].close == 100.0 + 49_999

    # -- a reader beside a live writer -------------------------------------------------------

    WRITER = textwrap.dedent(
        """
        import sys
        sys.path.insert(0, {root!r})
        from tests.test_journal import market
        from ticktape.store.eventlog import EventLog
        log = EventLog.create({path!r}, {{}}, group_size=1000, sync="none")
        i = 0
        while True:
            log.append_batch(market(1000, i * 1000))
            i += 1
            print(i, flush=True)
        """
    )

    def test_a_reader_beside_a_live_writer_and_kill_9(self, tmp_path: Path) -> None:
        path = tmp_path / "live"
        writer = subprocess.Popen(
            [sys.executable, "-c", self.WRITER.format(root=str(ROOT), path=str(path))],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            for _ in range(5):
                assert writer.stdout.readline()
            with self.open(path) as reader:
                seen = []
                deadline = time.monotonic() + 10
                while len(seen) < 3 and time.monotonic() < deadline:
                    head = reader.committed()[0]
                    got = [s for s, _ in self.replay(reader, head - 50, head)]
                    assert got == list(range(head - 50, head + 1))  # committed means readable
                    seen.append(head)
                    time.sleep(0.05)
                assert seen[-1] >= seen[0] >= 1000
        finally:
            os.kill(writer.pid, signal.SIGKILL)
            writer.wait(timeout=10)
        with self.open(path) as log:
            result = log.verify()
            assert result.ok, result
            assert result.events % 1000 == 0 and result.events >= 5000  # whole commits only
            assert log.count() == result.events

    # -- damage ------------------------------------------------------------------------------

    def test_a_truncated_data_file_is_detected_and_named(self, tmp_path: Path) -> None:
        path = tmp_path / "cut"
        with self.create(path, block_events=16, sync="none") as log:
            log.append_batch(market(3000))
        data = path / "data.mdb"
        os.truncate(data, data.stat().st_size // PAGE // 2 * PAGE)
        with pytest.raises(LogDamaged, match=r"damaged: .* up to seq \d+ can be trusted"):
            self.open(path)

    def test_a_zero_filled_page_is_detected_and_named(self, tmp_path: Path) -> None:
        path = tmp_path / "zeroed"
        with self.create(path, block_events=16, sync="none", group_size=10**9) as log:
            log.commit_interval = 10**9
            log.append_batch(market(3000))  # one commit: every tree page is live
        data = path / "data.mdb"
        raw = data.read_bytes()
        leaves = [
            p
            for p in range(2, len(raw) // PAGE)
            if int.from_bytes(raw[p * PAGE : p * PAGE + 8], "little") == p
            and raw[p * PAGE + 10] == 0x02  # a leaf page
        ]
        with open(data, "r+b") as f:
            f.seek(leaves[len(leaves) // 3] * PAGE)
            f.write(bytes(PAGE))
        with pytest.raises(LogDamaged, match=r"zero-filled; events up to seq \d+ can be") as e:
            self.open(path)
        trusted = int(str(e.value).split("up to seq ")[1].split()[0])
        assert 0 < trusted < 3000

    def test_a_tampered_record_is_named(self, journal: Path) -> None:
        from tests.test_eventlog import tamper

        tamper(journal, 42, "cut")
        with self.open(journal) as log:
            result = log.verify()
            assert not result.ok and result.first_bad_seq == 42 and result.events < 42
            assert result.bad_block is not None and result.bad_block[0] <= 42 <= result.bad_block[1]
            with pytest.raises(LogDamaged, match="seq 42"):
                self.replay(log, 1, 100)


class TestEventLogJournal(JournalSpec):
    def create(self, path: Path, **options: Any) -> EventLog:
        return EventLog.create(path, {"journal": "tck"}, **options)

    def open(self, path: Path, *, writable: bool = False) -> EventLog:
        return EventLog.open(path, writable=writable)
