"""The catalog: a run over it is the run over the raw folder it was made from, read cheaply.

Everything runs for real: generated files, `ingest`, real Parquet partitions, real actors and an
LMDB log. The reference is always the raw folder read by `MarketDataRepository`.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import msgspec
import numpy as np
import pytest

from tests.conftest import REALDATA, ROOT
from tests.helpers import REAL_SYMBOLS, config, of_kind, read, run
from ticktape.actors.system import ConfigError
from ticktape.messages.columns import SessionInput
from ticktape.scenarios.cli import main
from ticktape.scenarios.demo_data import DemoSpec, generate
from ticktape.store.calendar import TradingCalendar
from ticktape.store.catalog import MANIFEST
from ticktape.store.catalog_ingest import ingest
from ticktape.store.catalog_reader import CatalogRepository
from ticktape.store.eventlog import EventLog
from ticktape.store.repository import DataConfigError, MarketDataRepository
from ticktape.store.sources import open_repository

# Thanksgiving week 2024: a holiday and an early close; ticks and bad rows of every kind.
SPEC = DemoSpec(bad_rows=12, trades_per_minute=2, quotes_per_minute=2)
SESSIONS = TradingCalendar().sessions(SPEC.start, SPEC.end)


def same_input(raw: SessionInput, catalog: SessionInput) -> None:
    """Equal rows, in equal order, with equal rejections."""
    assert raw.symbols == catalog.symbols
    for kind in ("bars", "trades", "quotes"):
        a, b = getattr(raw, kind), getattr(catalog, kind)
        for f in fields(a):
            assert np.array_equal(getattr(a, f.name), getattr(b, f.name), equal_nan=True), (
                kind,
                f.name,
            )
    assert raw.rejected == catalog.rejected


def digest(data: Path, log: Path, **settings: object) -> str:
    cfg = {"symbols": ("ACME", "BOLT"), "start": "2024-11-26", "end": "2024-11-29"}
    return run(config(data, log, **(cfg | settings)))


def files_hashes(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize("layout", ["by_symbol", "by_day", "single"])
def test_a_catalog_gives_every_session_exactly_what_the_raw_folder_gives(
    tmp_path: Path, layout: str, fmt: str
) -> None:
    raw = generate(tmp_path / "raw", msgspec.structs.replace(SPEC, layout=layout, fmt=fmt))
    ingest([raw], tmp_path / "catalog")

    for symbols in (None, ["BOLT", "ACME"], ["CRUX"]):
        from_raw = MarketDataRepository(raw, symbols)
        from_catalog = CatalogRepository(tmp_path / "catalog", symbols)
        assert from_catalog.symbols == from_raw.symbols
        assert from_catalog.file_rejections == from_raw.file_rejections
        assert from_catalog.input_digests() == from_raw.input_digests()
        # out of order and twice: rejections come with the first load of a window only
        for session in [*SESSIONS[2:], *SESSIONS]:
            same_input(from_raw.load_session(session), from_catalog.load_session(session))
    assert sum(len(from_raw.load_session(s).rejected) for s in SESSIONS) == 0  # all given out


@pytest.mark.parametrize(("layout", "fmt"), [("by_symbol", "csv"), ("by_day", "parquet")])
def test_a_run_over_the_catalog_has_the_raw_folders_digest(
    tmp_path: Path, layout: str, fmt: str
) -> None:
    raw = generate(tmp_path / "raw", msgspec.structs.replace(SPEC, layout=layout, fmt=fmt))
    ingest([raw], tmp_path / "catalog")
    want = digest(raw, tmp_path / "raw.lmdb", trailing_days=1)
    assert digest(tmp_path / "catalog", tmp_path / "cat.lmdb", trailing_days=1) == want
    assert digest(raw, tmp_path / "raw2.lmdb") != want  # the digest does see the settings


def test_unrelated_files_and_symbols_change_nothing(tmp_path: Path) -> None:
    raw = generate(tmp_path / "raw", SPEC)
    crowded = generate(tmp_path / "crowded", SPEC)
    generate(crowded, DemoSpec(symbols=("ZED", "ABLE"), bad_rows=3))  # ABLE.csv sorts first
    (crowded / "README.txt").write_text("not data\n")
    ingest([crowded], tmp_path / "catalog")

    want = digest(raw, tmp_path / "raw.lmdb")
    assert digest(crowded, tmp_path / "crowded.lmdb") == want
    assert digest(tmp_path / "catalog", tmp_path / "catalog.lmdb") == want


def test_a_run_reads_only_its_own_sessions_partitions(tmp_path: Path) -> None:
    ingest([generate(tmp_path / "raw", SPEC)], tmp_path / "catalog")
    catalog = CatalogRepository(tmp_path / "catalog", ["BOLT"])
    assert catalog.opened == []  # construction reads the manifest only

    wanted = SESSIONS[1:3]
    for session in wanted:
        catalog.load_session(session)
    labels = {name.split("session=")[1].split("/")[0] for name in catalog.opened}
    assert labels == {s.label for s in wanted}
    # BOLT has bars only (ticks are ACME's), yet each partition is opened once per kind
    assert len(catalog.opened) == len(set(catalog.opened))


def test_gaps_are_filled_from_a_catalog_as_from_a_raw_folder(tmp_path: Path) -> None:
    full = generate(tmp_path / "full", DemoSpec(extended_hours=False))
    lossy = tmp_path / "lossy"
    lossy.mkdir()
    lines = (full / "ACME.csv").read_text().splitlines(keepends=True)
    (lossy / "ACME.csv").write_text("".join(lines[:1] + lines[1::2][:-1] + lines[-1:]))
    ingest([full], tmp_path / "full_catalog")
    ingest([lossy], tmp_path / "lossy_catalog")

    settings = {"symbols": ("ACME",), "backfill": str(full)}
    want = digest(lossy, tmp_path / "raw.lmdb", **settings)
    assert len(of_kind(read(tmp_path / "raw.lmdb"), "GapFilled")) > 100
    settings["backfill"] = str(tmp_path / "full_catalog")
    assert digest(tmp_path / "lossy_catalog", tmp_path / "catalog.lmdb", **settings) == want


def test_a_runs_manifest_names_the_partitions_of_its_sessions_with_their_hashes(
    tmp_path: Path,
) -> None:
    ingest([generate(tmp_path / "raw", SPEC)], tmp_path / "catalog")
    digest(tmp_path / "catalog", tmp_path / "run.lmdb", start="2024-12-03", end="2024-12-03")
    with EventLog.open(tmp_path / "run.lmdb") as log:
        inputs = log.manifest()["inputs"]
    day = "session=2024-12-03/part.parquet"  # where the bad rows are
    want = {name for name in inputs if "undated" not in name}
    assert want == {f"{kind}/{day}" for kind in ("bars", "trades", "quotes", "rejected")}
    for name, sha in inputs.items():
        assert hashlib.sha256((tmp_path / "catalog" / name).read_bytes()).hexdigest() == sha


def test_ingesting_the_same_files_again_changes_nothing(tmp_path: Path) -> None:
    raw = generate(tmp_path / "raw", SPEC)
    first = ingest([raw], tmp_path / "catalog")
    before = files_hashes(tmp_path / "catalog")
    again = ingest([raw, raw], tmp_path / "catalog")
    assert files_hashes(tmp_path / "catalog") == before
    assert (first.new_files, again.new_files) == (len(list(raw.iterdir())), 0)

    elsewhere = ingest([raw], tmp_path / "other")  # another catalog of the same files
    assert files_hashes(tmp_path / "other") == before
    assert elsewhere.rows == first.rows


def test_a_catalog_grows_by_ingest_as_if_all_files_were_one_folder(tmp_path: Path) -> None:
    """Days added later, and a file that repeats bars under an earlier name: the raw folder keeps
    the bar of the first file by name and rejects the later one, and so must the catalog."""
    union = generate(tmp_path / "union", DemoSpec(layout="by_day", bad_rows=12))
    early, late = tmp_path / "early", tmp_path / "late"
    for i, path in enumerate(sorted(union.iterdir())):
        target = early if i < 3 else late
        target.mkdir(exist_ok=True)
        shutil.copy(path, target / path.name)
    shutil.copy(union / "2024-11-27.csv", late / "2024-11-26b.csv")  # sorts after 11-26
    shutil.copy(union / "2024-11-27.csv", union / "2024-11-26b.csv")
    shutil.copy(union / "2024-11-27.csv", late / "2024-11-27a.csv")  # the 27th from early
    shutil.copy(union / "2024-11-27.csv", union / "2024-11-27a.csv")  # loses to this one

    ingest([early], tmp_path / "catalog")
    ingest([late], tmp_path / "catalog")
    from_raw = MarketDataRepository(union, None)
    from_catalog = CatalogRepository(tmp_path / "catalog", None)
    for session in SESSIONS:
        same_input(from_raw.load_session(session), from_catalog.load_session(session))
    assert digest(tmp_path / "catalog", tmp_path / "c.lmdb") == digest(union, tmp_path / "u.lmdb")


def test_a_changed_file_is_refused_and_the_catalog_kept(tmp_path: Path) -> None:
    raw = generate(tmp_path / "raw", SPEC)
    ingest([raw], tmp_path / "catalog")
    before = files_hashes(tmp_path / "catalog")
    with (raw / "BOLT.csv").open("a") as fh:
        fh.write("BOLT,2024-12-03T15:59:00-05:00,1,1,1,1,1\n")
    with pytest.raises(DataConfigError, match=r"BOLT\.csv .* differs"):
        ingest([raw], tmp_path / "catalog")
    assert files_hashes(tmp_path / "catalog") == before


def test_a_partition_that_cannot_be_written_fails_the_ingest_after_the_sessions_before_it(
    tmp_path: Path,
) -> None:
    """Partitions are written on a thread of their own while the next session loads: a write
    that fails is raised by `ingest` all the same, and progress counts only the sessions done."""
    raw = generate(tmp_path / "raw", SPEC)
    catalog = tmp_path / "catalog"
    (catalog / "bars").mkdir(parents=True)
    (catalog / "bars" / f"session={SESSIONS[2].label}").write_text("not a folder")
    done: list[int] = []
    with pytest.raises(OSError):
        ingest([raw], catalog, progress=lambda i, n: done.append(i))
    assert done == [1, 2]
    assert (catalog / f"bars/session={SESSIONS[1].label}/part.parquet").is_file()
    assert not (catalog / MANIFEST).exists()


def test_rows_with_no_time_follow_their_file_as_in_the_raw_folder(tmp_path: Path) -> None:
    """Undated rows go out with the first session that reads their file; a file with no dated row
    with the first session; a file of other symbols only is not read; a broken file is row 0."""
    raw = tmp_path / "raw"
    generate(raw, DemoSpec(start="2024-11-25", end="2024-11-27", extended_hours=False))
    header = "symbol,timestamp,open,high,low,close,volume\n"
    (raw / "late.csv").write_text(
        header
        + "BOLT,2024-11-27T10:00:00-05:00,10,11,9,10,5\n"
        + "BOLT,not a time,10,11,9,10,5\n"
        + "BOLT,2024-11-27T10:01:00-05:00,10,11,9,10\n"  # malformed: one field short
        + ",2024-11-27T10:02:00-05:00,10,11,9,10,5\n"  # blank symbol, dated
    )
    (raw / "nodate.csv").write_text(header + "ACME,2024-11-26 10:00,10,11,9,10,5\n")
    (raw / "other.csv").write_text(header + "ZED,yesterday,10,11,9,10,5\nZED,,1,1,1,1,1,1\n")
    (raw / "nocolumns.csv").write_text("symbol,timestamp,price\nACME,1,2\n")
    ingest([raw], tmp_path / "catalog")
    sessions = TradingCalendar().sessions("2024-11-25", "2024-11-27")

    for symbols in (["ACME", "BOLT"], ["CRUX"], None):
        from_raw = MarketDataRepository(raw, symbols)
        from_catalog = CatalogRepository(tmp_path / "catalog", symbols)
        assert from_catalog.file_rejections == from_raw.file_rejections
        for session in sessions[1:] + sessions:
            same_input(from_raw.load_session(session), from_catalog.load_session(session))


def test_a_catalog_and_its_run_must_agree_on_calendar_and_label(tmp_path: Path) -> None:
    raw = generate(tmp_path / "raw", SPEC)
    ingest([raw], tmp_path / "catalog")
    with pytest.raises(ConfigError, match="label start, not end"):
        digest(tmp_path / "catalog", tmp_path / "a.lmdb", label="end")
    with pytest.raises(ConfigError, match="does not match the sessions of catalog"):
        digest(tmp_path / "catalog", tmp_path / "b.lmdb", calendar="CMES")
    with pytest.raises(DataConfigError, match=r"holds .*catalog; it is not ingested"):
        ingest([tmp_path], tmp_path / "catalog")
    with pytest.raises(DataConfigError, match="calendar XNYS and label start, not CMES"):
        ingest([raw], tmp_path / "catalog", calendar="CMES")
    with pytest.raises(DataConfigError, match="no data for symbol XYZ"):
        open_repository(tmp_path / "catalog", ["ACME", "XYZ"])
    assert isinstance(open_repository(raw, ["ACME"]), MarketDataRepository)


def test_the_command_line_ingests_and_runs_a_catalog(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = generate(tmp_path / "raw", SPEC)
    catalog = tmp_path / "catalog"
    assert main(["ingest", str(raw), "--catalog", str(catalog)]) == 0
    assert "sessions written" in capsys.readouterr().out
    assert (catalog / MANIFEST).is_file()
    assert (catalog / "bars" / "session=2024-11-26" / "part.parquet").is_file()

    args = ["--symbols", "ACME,BOLT", "--start", "2024-11-26", "--end", "2024-11-29"]
    assert main(["run", "--data", str(catalog), "--log", str(tmp_path / "l"), *args]) == 0
    from_catalog = capsys.readouterr().out.split("digest ")[1].strip()
    assert from_catalog == digest(raw, tmp_path / "raw.lmdb")
    assert main(["ingest", str(tmp_path / "nothing"), "--catalog", str(catalog)]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_real_data_with_ticks_runs_the_same_from_its_catalog(tmp_path: Path) -> None:
    if not (REALDATA / "SPY.csv").exists():
        pytest.skip("../shared/realdata is not present")
    ingest([REALDATA], tmp_path / "catalog")
    sessions = TradingCalendar().sessions("2013-10-07", "2013-10-11")
    from_raw = MarketDataRepository(REALDATA, REAL_SYMBOLS)
    from_catalog = CatalogRepository(tmp_path / "catalog", REAL_SYMBOLS)
    for session in sessions:
        same_input(from_raw.load_session(session), from_catalog.load_session(session))
    ticks = {"symbols": ("AIG", "IBM")}  # IBM's trades and quotes; SPY's trades make it slow
    want = run(config(REALDATA, tmp_path / "raw.lmdb", **ticks))
    assert run(config(tmp_path / "catalog", tmp_path / "catalog.lmdb", **ticks)) == want


def _peak_rss_mb(argv: list[str]) -> float:
    """Peak RSS of a fresh process running `ticktape argv`: its own high-water mark (VmHWM),
    since a child's `ru_maxrss` starts from the parent's at the fork."""
    code = (
        "import re, sys; from ticktape.scenarios.cli import main; done = main(sys.argv[1:]);"
        "status = open('/proc/self/status').read();"
        "print(int(re.search(r'VmHWM:\\s+(\\d+)', status).group(1)) if done == 0 else -1)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, *argv], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    kib = int(done.stdout.split()[-1])
    assert kib > 0, done.stderr[-2000:]
    return kib / 1024


def test_a_catalog_runs_peak_memory_is_flat_in_the_number_of_sessions(tmp_path: Path) -> None:
    """Memory depends on the run's sessions one at a time, not on how many there are."""
    spec = DemoSpec(
        symbols=tuple(f"S{i:02d}" for i in range(40)),
        start="2024-01-02",
        end="2024-02-29",
        extended_hours=False,
    )
    ingest([generate(tmp_path / "raw", spec)], tmp_path / "catalog")
    peaks = {}
    for end in ("2024-01-08", "2024-02-29"):  # 5 and 40 sessions
        argv = ["run", "--data", str(tmp_path / "catalog"), "--symbols", ",".join(spec.symbols)]
        argv += ["--start", "2024-01-02", "--end", end, "--log", str(tmp_path / end)]
        peaks[end] = _peak_rss_mb(argv)
    assert peaks["2024-02-29"] <= peaks["2024-01-08"] + 10, peaks  # the 35 more: 30+ MB
