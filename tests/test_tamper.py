"""Tamper evidence without holes (issue 15, point 2): every database and key of a run's log is
changed or deleted in turn, as an outside writer would with the lmdb package. `log verify` names
each change in one line with exit 1; a log whose head and chain disagree is refused by every tool
the same way; no tool prints a traceback on any of them."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import lmdb
import msgspec
import pytest

from tests.helpers import run_argv
from tests.test_eventlog import tamper
from ticktape.scenarios.cli import main
from ticktape.scenarios.demo_data import DemoSpec, generate
from ticktape.store import lmdb_check
from ticktape.store.eventlog import EventLog, seq_key

SPEC = DemoSpec(
    symbols=("ACME", "BOLT"), start="2024-11-26", end="2024-11-27", extended_hours=False
)


@pytest.fixture(scope="module")
def run_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tamper")
    data = generate(root / "data", SPEC)
    log = root / "run.lmdb"
    assert main(run_argv(data, log, SPEC)) == 0
    with EventLog.open(log) as opened:
        assert opened.verify().ok and opened.committed()[0] > 2 * opened.block_events
    return log


def _edit(path: Path, change: Callable[[lmdb.Transaction, dict[str, object]], None]) -> None:
    env = lmdb.open(str(path), max_dbs=3)
    try:
        dbs = {name: env.open_db(name.encode()) for name in ("events", "chain", "meta")}
        with env.begin(write=True) as txn:
            change(txn, dbs)
    finally:
        env.close()


def _keys(path: Path, db: str) -> list[bytes]:
    env = lmdb.open(str(path), max_dbs=3, readonly=True)
    try:
        with env.begin() as txn:
            return [bytes(k) for k, _ in txn.cursor(env.open_db(db.encode(), txn=txn))]
    finally:
        env.close()


def put(db: str, key: bytes, value: bytes) -> Callable[[Path], None]:
    return lambda path: _edit(path, lambda txn, dbs: txn.put(key, value, db=dbs[db]))


def delete(db: str, key: bytes | None = None, nth: int = -1) -> Callable[[Path], None]:
    def change(path: Path) -> None:
        target = key if key is not None else _keys(path, db)[nth]
        _edit(path, lambda txn, dbs: txn.delete(target, db=dbs[db]))

    return change


def edit_manifest(**changes: object) -> Callable[[Path], None]:
    def change(path: Path) -> None:
        with EventLog.open(path) as log:
            manifest = log.manifest()
        for dotted, value in changes.items():
            section, _, name = dotted.partition("__")
            manifest[section][name] = value
        put("meta", b"manifest", msgspec.json.encode(manifest))(path)

    return change


def both(*changes: Callable[[Path], None]) -> Callable[[Path], None]:
    def change(path: Path) -> None:
        for c in changes:
            c(path)

    return change


def head_at(seq_change: int, link: bytes | None = None) -> Callable[[Path], None]:
    def change(path: Path) -> None:
        with EventLog.open(path) as log:
            seq, digest = log.committed()
        value = msgspec.msgpack.encode((seq + seq_change, link or bytes.fromhex(digest)))
        put("meta", b"head", value)(path)

    return change


def scribble_chain_page(path: Path) -> None:
    """Overwrite the node table of the `chain` tree's root page in the data file itself."""
    fd = os.open(path / "data.mdb", os.O_RDWR)
    try:
        meta = max(lmdb_check._read_metas(fd), key=lambda m: m.txnid)
        walker = lmdb_check._Walker(fd, os.fstat(fd).st_size, meta.page_size)
        roots = {
            name: lmdb_check._DB.unpack_from(v)[7] for name, v in walker.leaves(meta.main_root)
        }
        os.pwrite(fd, b"\xff" * 48, roots[b"chain"] * meta.page_size + 16)
    finally:
        os.close(fd)


# case -> (the change, words `log verify` names it with, refused by every tool)
CASES: dict[str, tuple[Callable[[Path], None], str, bool]] = {
    "head deleted": (delete("meta", b"head"), "head is missing", True),
    "head deleted, a record flipped": (
        both(delete("meta", b"head"), lambda p: tamper(p, 1500, "flip")),
        "head is missing; events up to seq 1024 can be trusted",
        True,
    ),
    "head garbage": (put("meta", b"head", b"\xc1garbage"), "head does not decode", True),
    "head ahead of the events": (head_at(+5), "head says seq", True),
    "head behind the events": (head_at(-5), "head says seq", True),
    "head's link changed": (head_at(0, link=b"\0" * 32), "head's link", True),
    "layout deleted": (delete("meta", b"layout"), "layout is missing", True),
    "layout garbage": (put("meta", b"layout", b"{not json"), "layout does not decode", True),
    "layout block size changed": (
        put("meta", b"layout", b'{"format":"ticktape-blocks/1","block_events":512}'),
        "the layout says 512 events per block",
        True,
    ),
    "manifest deleted": (delete("meta", b"manifest"), "manifest is missing", False),
    "manifest garbage": (put("meta", b"manifest", b"\xff{"), "manifest does not decode", False),
    "manifest facts changed": (
        edit_manifest(facts__symbols=["ACME", "ZED"]),
        "manifest's facts differs from the chained RunStarted (symbols)",
        False,
    ),
    "manifest config changed": (
        edit_manifest(config__trailing_days=3),
        "manifest's config differs from the chained RunStarted (trailing_days)",
        False,
    ),
    "a record flipped": (lambda p: tamper(p, 700, "flip"), "block 1-1024 does not match", False),
    "a record cut": (lambda p: tamper(p, 1100, "cut"), "seq 1100 does not decode", False),
    "last block deleted": (delete("events"), "head says seq", True),
    "last block and its link deleted": (
        both(delete("events"), delete("chain")),
        "head says seq",
        True,
    ),
    "a middle block deleted": (delete("events", nth=1), "events 1025-2048 are missing", False),
    "a link changed": (
        put("chain", seq_key(1025), b"\1" * 32),
        "block 1025-2048 does not match",
        False,
    ),
    "a middle link deleted": (delete("chain", nth=1), "block 1025-2048 does not match", False),
    "the last link changed": (
        lambda p: put("chain", _keys(p, "chain")[-1], b"\2" * 32)(p),
        "head's link",
        True,
    ),
}
CASES["a chain page scribbled"] = (scribble_chain_page, "a page does not parse", True)
TOOLS = (["log", "stats"], ["log", "show", "--limit", "5"], ["log", "tail"], ["log", "export"],
         ["replay"], ["resume"])  # fmt: skip


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_change_is_named_in_one_line(
    case: str, run_log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    change, words, refused_everywhere = CASES[case]
    log = tmp_path / "log"
    shutil.copytree(run_log, log)
    change(log)
    capsys.readouterr()
    assert main(["log", "verify", str(log)]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and words in err, err
    assert "can be trusted" in err or "verify)" in err  # the last seq it can trust
    for tool in TOOLS:
        code = main([*tool, str(log)])  # an uncaught exception here is a traceback
        out = capsys.readouterr()
        if refused_everywhere:
            assert code == 1 and len(out.err.strip().splitlines()) == 1, (tool, out.err)
            assert "can be trusted" in out.err, (tool, out.err)
        else:
            assert code in (0, 1, 2) and "Traceback" not in out.err, (tool, out.err)
