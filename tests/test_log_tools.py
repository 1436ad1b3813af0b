"""`ticktape log show|tail|stats|verify|diff|export` on real logs: filters, parquet, damage, pipes.

Logs come from the generated demo data (tests.test_cli fixtures); damage is done to copies with
plain file writes, and live writers run in another process.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import ROOT
from tests.helpers import ET, read
from tests.test_cli import DEMO_SPEC, cli, demo_data, demo_log, regular_bars, stats_json
from tests.test_eventlog import bars, tamper
from ticktape.actors.system import System
from ticktape.messages.config import RunConfig
from ticktape.messages.events import EVENT_TYPES, Bar, SessionClosed, SessionOpened
from ticktape.store.eventlog import EventLog

__all__ = ["demo_data", "demo_log"]  # fixtures, shared with test_cli
PAGE = 4096
TICKTAPE = (sys.executable, "-m", "ticktape.scenarios.cli")


def ticktape(*argv: object, **options: object) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*TICKTAPE, *map(str, argv)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        **options,
    )


# --- filters ---------------------------------------------------------------------------------


def test_show_filters_by_simulated_time_in_the_exchange_zone(
    demo_log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    day = DEMO_SPEC.start
    argv = ["log", "show", demo_log, "--kind", "Bar", "--symbol", "ACME", "--limit", "1000"]
    code, out, err = cli(capsys, *argv, "--from", f"{day}T10:00", "--to", f"{day}T10:30")
    assert (code, err) == (0, "")
    want = regular_bars(DEMO_SPEC)
    stamps = pd.to_datetime(want["timestamp"], utc=True).dt.tz_convert(ET) + pd.Timedelta("1min")
    chosen = (
        (want["symbol"] == "ACME")
        & (stamps >= pd.Timestamp(f"{day}T10:00", tz=ET))
        & (stamps < pd.Timestamp(f"{day}T10:30", tz=ET))
    )
    lines = out.splitlines()
    assert len(lines) == int(chosen.sum()) > 0
    assert all(" Bar " in line and "symbol=ACME" in line for line in lines)
    assert f"ts={day}T10:00:00-05:00" in lines[0] or chosen.sum() < 30  # release times, local


def test_unknown_kind_is_a_usage_error_listing_the_kinds(
    demo_log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for command in ("show", "export"):
        code, out, err = cli(capsys, "log", command, demo_log, "--kind", "Bar,Nope")
        assert code == 2 and out == ""
        assert err.count("\n") == 1 and "Nope" in err
        assert all(kind in err for kind in EVENT_TYPES)
    code, _, err = cli(capsys, "log", "show", demo_log, "--from", "yesterday-ish")
    assert code == 2 and "--from" in err and err.count("\n") == 1


def test_export_parquet_is_a_folder_with_one_file_per_kind_in_its_own_columns(
    demo_log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "not" / "yet" / "there"  # missing folders are created
    code, out, err = cli(capsys, "log", "export", demo_log, "--format", "parquet", "--out", folder)
    assert (code, out, err) == (0, "", "")
    events = read(demo_log)
    kinds = {type(e).__name__ for e in events}
    assert {p.name for p in folder.iterdir()} == {f"{kind}.parquet" for kind in kinds}
    utc = pa.timestamp("ns", tz="UTC")
    bars = pq.read_table(folder / "Bar.parquet")
    assert bars.column_names == ["seq", "ts", "symbol", "ts_start", "open", "high", "low",
                                 "close", "volume"]  # fmt: skip
    assert bars.schema.field("ts").type == bars.schema.field("ts_start").type == utc
    assert bars.schema.field("symbol").type == pa.string()
    want = [(seq, e) for seq, e in enumerate(events, 1) if isinstance(e, Bar)]
    assert bars.column("seq").to_pylist() == [seq for seq, _ in want]
    assert bars.column("symbol").to_pylist() == [e.symbol for _, e in want]
    assert bars.column("close").to_pylist() == [e.close for _, e in want]
    assert bars.column("ts_start").cast(pa.int64()).to_pylist() == [e.ts_start for _, e in want]
    opened = pq.read_table(folder / "SessionOpened.parquet")
    assert opened.schema.field("open").type == utc  # a session's open is a time, not a price
    first = next(e for e in events if isinstance(e, SessionOpened))
    assert opened.column("open").cast(pa.int64())[0].as_py() == first.open
    total = sum(pq.read_metadata(p).num_rows for p in folder.iterdir())
    assert total == len(events)

    only = tmp_path / "acme"
    argv = ["log", "export", demo_log, "--format", "parquet", "--out", only]
    code, _, err = cli(capsys, *argv, "--kind", "Bar,GapDetected", "--symbol", "ACME")
    assert code == 0, err
    acme = pd.read_parquet(only / "Bar.parquet")
    assert len(acme) == sum(1 for _, e in want if e.symbol == "ACME") > 0
    assert set(acme["symbol"]) == {"ACME"}
    assert {p.name for p in only.iterdir()} == {"Bar.parquet", "GapDetected.parquet"}


def test_export_parquet_union_is_one_table_of_every_kind_in_seq_order(
    demo_log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_file = tmp_path / "new" / "all.parquet"
    argv = ["log", "export", demo_log, "--format", "parquet", "--union", "--out", out_file]
    code, out, err = cli(capsys, *argv)
    assert (code, out, err) == (0, "", "")
    table = pq.read_table(out_file)
    assert table.column_names[:4] == ["seq", "kind", "ts", "symbol"]
    frame = table.to_pandas()
    events = read(demo_log)
    assert frame["seq"].tolist() == list(range(1, len(events) + 1))
    assert frame["kind"].tolist() == [type(e).__name__ for e in events]
    assert frame["ts"].dt.tz is not None
    bars = frame[frame["kind"] == "Bar"]
    want = [e for e in events if isinstance(e, Bar)]
    assert bars["close"].tolist() == [e.close for e in want]
    assert bars["symbol"].tolist() == [e.symbol for e in want]
    assert frame.loc[frame["kind"] == "TimeAdvanced", "symbol"].isna().all()
    assert frame.loc[frame["kind"] == "TimeAdvanced", "close"].isna().all()
    opened = frame[frame["kind"] == "SessionOpened"]
    assert opened["open_SessionOpened"].notna().all() and opened["open"].isna().all()

    code, _, err = cli(capsys, "log", "export", demo_log, "--union", "--out", tmp_path / "x")
    assert code == 2 and "--union" in err and err.count("\n") == 1


def test_export_parquet_lays_trailing_history_out_as_bars(
    demo_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "trailing.lmdb"
    config = RunConfig(
        data=str(demo_data), symbols=DEMO_SPEC.symbols, start=DEMO_SPEC.end, end=DEMO_SPEC.end,
        log=str(log), sync="none", trailing_days=1,
    )  # fmt: skip
    System(config).run(timeout=60)
    folder = tmp_path / "out"
    code, _, err = cli(capsys, "log", "export", log, "--format", "parquet", "--out", folder)
    assert code == 0, err
    history = pq.read_table(folder / "TrailingBars.parquet").to_pandas()
    day_before = regular_bars(DEMO_SPEC)
    day_before = day_before[day_before["session"] == DEMO_SPEC.start]
    assert len(history) == len(day_before) > 0
    assert set(history["symbol"]) == set(DEMO_SPEC.symbols)
    assert (history["session"] == DEMO_SPEC.start).all()
    stamps = pd.to_datetime(day_before["timestamp"], utc=True, format="ISO8601")
    got = history.sort_values(["symbol", "ts_start"])
    want = day_before.assign(ts_start=stamps).sort_values(["symbol", "ts_start"])
    assert got["ts_start"].tolist() == want["ts_start"].tolist()
    assert got["close"].tolist() == want["close"].tolist()


# --- stats: a digest per session --------------------------------------------------------------


def test_stats_session_digests_cover_open_to_close(
    demo_log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    summary = stats_json(capsys, demo_log)
    want: dict[str, str] = {}
    with EventLog.open(demo_log) as log:
        h = None
        for (_, record), (_, event) in zip(log.records(), log.events(), strict=True):
            if isinstance(event, SessionOpened):
                h = hashlib.blake2b(digest_size=32)
            if h is not None:
                h.update(record)
            if isinstance(event, SessionClosed):
                want[event.session] = h.hexdigest()
                h = None
    assert summary["session_digests"] == want
    assert set(want) == set(summary["sessions"]) and len(set(want.values())) == len(want)


# --- diff --------------------------------------------------------------------------------------


def test_diff_names_the_first_divergence_with_context(
    demo_log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "copy.lmdb"
    shutil.copytree(demo_log, copy)
    code, out, _ = cli(capsys, "log", "diff", demo_log, copy)
    assert code == 0 and out.startswith("same:")

    events = read(demo_log)
    seq = [i for i, e in enumerate(events, 1) if isinstance(e, Bar)][100]
    tamper(copy, seq, "flip")
    code, out, err = cli(capsys, "log", "diff", demo_log, copy)
    assert code == 1 and err == ""
    assert f"differ at seq {seq}" in out and "fields that differ: volume" in out
    assert f"> left  {seq:>10}" in out and f"> right {seq:>10}" in out
    assert f"{seq - 1:>10}" in out and f"{seq + 2:>10}" in out  # context either side

    prefix = tmp_path / "prefix.lmdb"
    with EventLog.open(demo_log) as source, EventLog.create(prefix, {}) as short:
        for _, batch in source.batches(1, 501):
            short.append_batch(batch)
    code, out, _ = cli(capsys, "log", "diff", demo_log, prefix)
    assert code == 1 and "differ at seq 501" in out and f"{prefix} ends at seq 500" in out


# --- tail --------------------------------------------------------------------------------------


def test_tail_prints_the_last_events(demo_log: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "log", "tail", demo_log, "-n", "3")
    assert (code, err) == (0, "")
    total = len(read(demo_log))
    assert [int(line.split()[0]) for line in out.splitlines()] == [total - 2, total - 1, total]
    assert "RunFinished" in out.splitlines()[-1]


FOLLOWED_WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    sys.path.insert(0, {root!r})
    from ticktape.messages.events import RunFinished
    from tests.test_eventlog import bars
    from ticktape.store.eventlog import EventLog
    log = EventLog.create({path!r}, {{}}, sync="none", block_events=64)
    log.append_batch(bars(100))
    log.flush()
    print("ready", flush=True)
    go = Path({path!r} + ".go")
    deadline = time.monotonic() + 20
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    for i in range(5):
        log.append_batch(bars(30, start=100 + 30 * i))  # mid-block commits
        log.flush()
        time.sleep(0.1)
    log.append(RunFinished(ts=2**40, sessions=1, bars=250))
    log.close()
    """
)


def test_tail_follow_prints_new_events_until_the_run_ends(tmp_path: Path) -> None:
    path = tmp_path / "live.lmdb"
    writer = subprocess.Popen(
        [sys.executable, "-c", FOLLOWED_WRITER.format(root=str(ROOT), path=str(path))],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout.readline().strip() == "ready"
        tail = subprocess.Popen(
            [*TICKTAPE, "log", "tail", path, "-n", "5", "--follow", "--timeout", "30"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        first = [tail.stdout.readline() for _ in range(5)]  # printed before the writer goes on
        Path(f"{path}.go").touch()
        rest = tail.stdout.read()  # until tail ends (it gives up after --timeout 30)
        err = tail.stderr.read()
        tail.wait(timeout=10)
    finally:
        writer.wait(timeout=30)
    assert tail.returncode == 0, err
    seqs = [int(line.split()[0]) for line in [*first, *rest.splitlines()]]
    assert seqs == list(range(96, 252))  # the last 5, then every new one once, in order
    assert "RunFinished" in rest.splitlines()[-1]


# --- pipes and damage --------------------------------------------------------------------------


def test_show_into_head_ends_quietly(demo_log: Path) -> None:
    show = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ticktape.scenarios.cli",
            "log",
            "show",
            demo_log,
            "--limit",
            "100000",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert show.stdout.readline().split()[0] == b"1"
    show.stdout.close()  # like `| head -1`
    err = show.stderr.read()
    assert show.wait(timeout=30) == 0
    assert err == b""


@pytest.fixture(scope="module")
def one_commit_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3,000 bars in small blocks, written in one commit: every B-tree page in the file is live."""
    path = tmp_path_factory.mktemp("one-commit") / "log.lmdb"
    with EventLog.create(path, {}, group_size=10**9, block_events=16, sync="none") as log:
        log.commit_interval = 10**9
        log.append_batch(bars(3000))
    return path


def _damage(log: Path, how: str) -> None:
    data = log / "data.mdb"
    raw = data.read_bytes()
    pages = len(raw) // PAGE
    if how == "truncate":
        os.truncate(data, (pages // 2) * PAGE)
        return
    # zero a B-tree page from the middle: one that starts with its own number, branch or leaf
    tree = [
        p
        for p in range(2, pages)
        if int.from_bytes(raw[p * PAGE : p * PAGE + 8], "little") == p and raw[p * PAGE + 10] & 0x03
    ]
    with open(data, "r+b") as f:
        f.seek(tree[len(tree) // 2] * PAGE)
        f.write(bytes(PAGE))


@pytest.mark.parametrize(
    ("how", "command"),
    [("truncate", "verify"), ("truncate", "show"), ("zero-page", "stats"), ("zero-page", "tail")],
)
def test_a_damaged_file_is_one_line_naming_the_last_trusted_seq(
    one_commit_log: Path, tmp_path: Path, how: str, command: str
) -> None:
    log = tmp_path / "damaged.lmdb"
    shutil.copytree(one_commit_log, log)
    _damage(log, how)
    done = ticktape("log", command, log)  # a process of its own: LMDB would crash the tests
    assert done.returncode == 1, (done.returncode, done.stderr)  # not a crash (134/135)
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "damaged" in done.stderr and "can be trusted" in done.stderr
    trusted = int(done.stderr.split("up to seq ")[1].split()[0])
    assert trusted % 16 == 0 and 0 <= trusted < 3000  # a whole number of intact blocks
    if how == "zero-page":
        assert trusted > 0  # a leaf in the middle: the blocks before it are still found
    with EventLog.open(one_commit_log) as intact:  # and those events really are intact
        assert intact.verify().ok


@pytest.mark.parametrize("command", ["stats", "show", "export", "verify"])
def test_readers_stop_at_an_undecodable_record(
    demo_log: Path, tmp_path: Path, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "cut.lmdb"
    shutil.copytree(demo_log, log)
    tamper(log, 777, "cut")
    extra = ["--limit", "100000"] if command == "show" else []
    code, out, err = cli(capsys, "log", command, log, *extra)
    assert code == 1
    assert err.count("\n") == 1 and "seq 777 does not decode" in err
    if command == "show":
        assert [int(line.split()[0]) for line in out.splitlines()] == list(range(1, 777))
