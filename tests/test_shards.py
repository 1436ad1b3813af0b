"""Date shards on a real local Ray (DESIGN §14): every session of a 3-shard run has the
unsharded run's digest; the run set reads as that run's log in every tool; a killed shard is
retried and resumed; a failure that persists, a changed or a missing shard log are named."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from tests.conftest import ROOT
from tests.helpers import config as real_config
from tests.test_eventlog import tamper
from ticktape.actors.replay import Replay
from ticktape.actors.system import System
from ticktape.messages.config import RunConfig
from ticktape.messages.events import Bar, SessionOpened, TrailingBars
from ticktape.scenarios.cli import main
from ticktape.scenarios.demo_data import DemoSpec, generate
from ticktape.scenarios.shards import ShardFailed, run_sharded
from ticktape.store.eventlog import EventLog
from ticktape.store.inspect import stats
from ticktape.store.runset import read_manifest, verify
from ticktape.store.runset_log import open_log

SPEC = DemoSpec(
    start="2024-11-21", end="2024-12-03", trades_per_minute=1, quotes_per_minute=1, bad_rows=18
)
# 7 sessions with an early close (11-29) and a holiday (11-28): shards of 3, 2 and 2 sessions.
SESSIONS = ("2024-11-22", "2024-11-25", "2024-11-26", "2024-11-27", "2024-11-29", "2024-12-02",
            "2024-12-03")  # fmt: skip


def _config(data: Path, log: Path, **changes: object) -> RunConfig:
    settings: dict[str, object] = {
        "data": str(data), "symbols": SPEC.symbols, "start": SESSIONS[0], "end": SESSIONS[-1],
        "log": str(log), "trailing_days": 1, "gap_policy": "forward-fill", "sync": "none",
        "group_size": 4096,
    }  # fmt: skip
    return RunConfig(**{**settings, **changes})


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, local_ray) -> tuple[Path, Path, Path]:
    """Generated data, its unsharded log, and a 3-shard run set of the same run."""
    root = tmp_path_factory.mktemp("shards")
    data = generate(root / "data", SPEC)
    whole, shards = root / "whole.lmdb", root / "set"
    System(_config(data, whole)).run(timeout=120)
    run_sharded(_config(data, shards), 3)
    return data, whole, shards


def _records(path: Path) -> list[bytes]:
    with open_log(path) as log:
        return [record for _, record in log.records()]


def test_every_session_of_a_3_shard_run_has_the_unsharded_runs_digest(runs) -> None:
    _, whole, shards = runs
    manifest = read_manifest(shards)
    assert [s.sessions for s in manifest.shards] == [SESSIONS[:3], SESSIONS[3:5], SESSIONS[5:]]
    assert manifest.complete and all(s.attempts == 1 for s in manifest.shards)
    with EventLog.open(whole) as log:
        unsharded = stats(log)["session_digests"]
    assert sorted(unsharded) == list(SESSIONS)
    for shard in manifest.shards:  # each shard log on its own, as its worker wrote it
        with EventLog.open(shards / shard.log) as log:
            assert stats(log)["session_digests"] == {d: unsharded[d] for d in shard.sessions}
    # Read as one log, the set is the unsharded log but for the run's first and last event
    # (RunStarted names the first shard's dates, RunFinished counts the last shard's sessions):
    # no warm-up event, no rejection that no session owns, is delivered twice.
    whole_records, set_records = _records(whole), _records(shards)
    assert len(set_records) == len(whole_records)
    assert set_records[1:-1] == whole_records[1:-1]
    assert set_records[0] != whole_records[0]


def test_verify_stats_and_diff_take_the_set(runs, capsys: pytest.CaptureFixture[str]) -> None:
    _, whole, shards = runs
    assert main(["log", "verify", str(shards)]) == 0
    assert capsys.readouterr().out.startswith("ok: run set of ")
    summaries = []
    for path in (whole, shards):
        assert main(["log", "stats", str(path), "--json"]) == 0
        summaries.append(json.loads(capsys.readouterr().out))
    of_log, of_set = summaries
    assert of_set["session_digests"] == of_log["session_digests"]
    assert of_set["sessions_digest"] == of_log["sessions_digest"] == of_set["digest"]
    assert of_set["kinds"]["Bar"] == of_log["kinds"]["Bar"]
    assert of_set["kinds"]["TrailingBars"] == of_log["kinds"]["TrailingBars"] == 1
    assert main(["log", "diff", str(whole), str(shards)]) == 0
    assert capsys.readouterr().out.startswith(f"same: {len(SESSIONS)} sessions")


def test_show_tail_export_and_replay_take_the_set(
    runs, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, whole, shards = runs
    for args in (["show", "--kind", "SessionOpened", "--limit", "100"], ["tail", "-n", "3"]):
        assert main(["log", args[0], str(shards), *args[1:]]) == 0
        shown = capsys.readouterr().out
        assert main(["log", args[0], str(whole), *args[1:]]) == 0
        # Same seqs, same events; the last RunFinished counts the last shard's sessions only.
        assert shown.splitlines()[:-1] == capsys.readouterr().out.splitlines()[:-1]
    for path, out in ((whole, tmp_path / "whole.jsonl"), (shards, tmp_path / "set.jsonl")):
        assert main(["log", "export", str(path), "--kind", "Bar", "--out", str(out)]) == 0
    assert (tmp_path / "set.jsonl").read_bytes() == (tmp_path / "whole.jsonl").read_bytes()
    assert main(["log", "export", str(shards), "--format", "parquet", "--kind", "Bar", "--out",
                 str(tmp_path / "set.parquet")]) == 0  # fmt: skip
    assert (tmp_path / "set.parquet").stat().st_size > 0
    with Replay(shards) as replay:
        delivered = list(replay.events())
        assert replay.query("last_bars", SPEC.symbols[0], 1) is not None
    kinds = [type(e) for e in delivered]
    assert kinds.count(TrailingBars) == 1
    assert [e.session for e in delivered if type(e) is SessionOpened] == list(SESSIONS)
    with Replay(whole) as replay:
        assert kinds.count(Bar) == sum(type(e) is Bar for e in replay.events())
    assert main(["replay", str(shards)]) == 0


def _copy_set(shards: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "set"
    shutil.copytree(shards, copy)
    return copy


def test_a_changed_or_missing_shard_log_fails_verify_naming_it(
    runs, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, _, shards = runs
    flipped = _copy_set(shards, tmp_path / "flipped")
    tamper(flipped / "shard-001.lmdb", 100)
    assert main(["log", "verify", str(flipped)]) == 1
    err = capsys.readouterr().err
    assert "shard 1 (2024-11-27 to 2024-11-29): its log shard-001.lmdb fails verify at seq" in err
    assert "shard 0" not in err and "shard 2" not in err

    replaced = _copy_set(shards, tmp_path / "replaced")  # a whole other log, itself sound
    shutil.rmtree(replaced / "shard-002.lmdb")
    System(_config(data, replaced / "shard-002.lmdb", start="2024-12-02", trailing_days=0)).run(60)
    assert main(["log", "verify", str(replaced)]) == 1
    assert "shard 2 (2024-12-02 to 2024-12-03): its log shard-002.lmdb was changed" in (
        capsys.readouterr().err
    )

    removed = _copy_set(shards, tmp_path / "removed")
    shutil.rmtree(removed / "shard-000.lmdb")
    check = verify(removed)
    assert not check.ok
    assert check.problems == (
        "shard 0 (2024-11-22 to 2024-11-26): its log shard-000.lmdb is missing",
    )


def test_a_killed_shard_is_retried_and_resumes_to_the_same_digests(runs, tmp_path: Path) -> None:
    data, _, shards = runs
    marker = tmp_path / "killed-once"
    # The first worker to open its 2nd session dies by SIGKILL, after commits of 4,096 events.
    env = {"env_vars": {"TICKTAPE_CRASH_AT": f"open:2:{marker}"}}
    manifest = run_sharded(_config(data, tmp_path / "set"), 3, runtime_env=env)
    assert marker.exists(), "no worker was killed"
    assert manifest.complete
    retried = [s for s in manifest.shards if s.attempts > 1]
    assert len(retried) == 1 and retried[0].attempts == 2
    with EventLog.open(tmp_path / "set" / retried[0].log) as log:
        (note,) = log.manifest()["resumes"]
        assert note["from_seq"] > 0  # it resumed from a committed prefix, not from nothing
    original = read_manifest(shards)
    assert manifest.chain == original.chain
    assert [s.digest for s in manifest.shards] == [s.digest for s in original.shards]
    assert verify(tmp_path / "set").ok


def test_a_shard_that_keeps_failing_is_named_and_the_set_is_incomplete(
    runs, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, _, _ = runs
    # Only shard 0 has 3 sessions: every attempt of it dies opening its 3rd.
    env = {"env_vars": {"TICKTAPE_CRASH_AT": "open:3"}}
    log = tmp_path / "set"
    with pytest.raises(ShardFailed, match=r"shard 0 \(2024-11-22 to 2024-11-26\) failed after 2"):
        run_sharded(_config(data, log), 3, runtime_env=env, retries=1)
    manifest = read_manifest(log)
    assert not manifest.complete
    assert [s.state for s in manifest.shards] == ["failed", "done", "done"]
    assert main(["log", "verify", str(log)]) == 1
    assert "shard 0 (2024-11-22 to 2024-11-26) is failed, the set incomplete" in (
        capsys.readouterr().err
    )
    assert main(["resume", str(log)]) == 0  # the fault gone: only shard 0 runs, and resumes
    finished = read_manifest(log)
    assert finished.complete and finished.chain == read_manifest(runs[2]).chain
    assert [s.digest for s in finished.shards] == [s.digest for s in read_manifest(runs[2]).shards]
    assert main(["log", "verify", str(log)]) == 0


def test_run_with_shards_on_the_command_line_gives_the_sets_digest(
    runs, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, _, shards = runs
    config = _config(data, tmp_path / "set")
    args = ["run", "--data", config.data, "--symbols", ",".join(config.symbols), "--start",
            config.start, "--end", config.end, "--log", config.log, "--trailing-days", "1",
            "--gap-policy", "forward-fill", "--sync", "none", "--shards", "2"]  # fmt: skip
    assert main(args) == 0
    two = read_manifest(tmp_path / "set")
    assert capsys.readouterr().out.splitlines()[-1] == f"chain {two.chain}"
    assert [len(s.sessions) for s in two.shards] == [4, 3]
    digests = []
    for path in (shards, tmp_path / "set"):  # 3 shards or 2: one set digest, one set of logs
        assert main(["log", "verify", str(path)]) == 0
        digests.append(capsys.readouterr().out.split()[-1])
    assert digests[0] == digests[1]
    assert main(args) == 2  # the folder exists now: never written over
    assert "already exists" in capsys.readouterr().err


def test_shards_without_ray_is_one_line_and_exit_2(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['ray'] = None;"  # what `import ray` sees when it is not installed
        "from ticktape.scenarios.cli import main;"
        f"sys.exit(main(['run', '--data', 'x', '--symbols', 'A', '--start', '2024-01-02',"
        f" '--end', '2024-01-03', '--log', {str(tmp_path / 'set')!r}, '--shards', '2']))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "ticktape: error: sharded runs and sweeps need Ray: pip install 'ticktape[ray]'"
    ]
    assert not (tmp_path / "set").exists()


def test_the_real_week_in_3_shards_has_the_unsharded_session_digests(
    realdata: Path, local_ray, tmp_path: Path
) -> None:
    week = {"start": "2013-10-07", "end": "2013-10-11", "trailing_days": 1}
    whole = real_config(realdata, tmp_path / "whole.lmdb", **week)
    System(whole).run(timeout=300)
    manifest = run_sharded(msgspec.structs.replace(whole, log=str(tmp_path / "set")), 3)
    assert [len(s.sessions) for s in manifest.shards] == [2, 2, 1]
    with EventLog.open(tmp_path / "whole.lmdb") as log:
        unsharded = stats(log)["session_digests"]
    with open_log(tmp_path / "set") as log:
        assert stats(log)["session_digests"] == unsharded
    assert len(unsharded) == 5
    assert verify(tmp_path / "set").ok
