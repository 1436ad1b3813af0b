"""`ticktape report`: the page names what the log holds, puts gaps where the log has them, and
draws in a real headless browser.

The generated run has gaps put in on purpose (minutes taken out of the files, one of them given to
a backfill folder), two bad rows and an early close; what the page shows is compared with the
log's own events, read back through the log's reader.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import shutil
import subprocess
import zoneinfo
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pandas as pd
import pytest

from tests.helpers import REAL_SYMBOLS, bar_files_only, config, read, run
from tests.test_eventlog import tamper
from ticktape.messages.config import RunConfig
from ticktape.messages.events import DataRejected, GapDetected, GapFilled
from ticktape.scenarios.cli import main
from ticktape.scenarios.demo_data import DemoSpec, generate
from ticktape.scenarios.shards import plan, run_shard, shard_config
from ticktape.store.eventlog import EventLog
from ticktape.store.runset import RunSetManifest, seal, write_manifest
from ticktape.store.runset_log import open_log

pytest.importorskip("plotly", reason="the report needs Plotly (pip install -e '.[test]')")
ET = zoneinfo.ZoneInfo("America/New_York")
SPEC = DemoSpec(
    symbols=("ACME", "BOLT"),
    start="2024-11-27",
    end="2024-11-29",  # Thanksgiving between; the 29th closes early at 13:00
    gap_rate=0.0,
    extended_hours=False,
    bad_rows=2,
)
# Minutes taken out of the files (exchange time): (symbol, first minute, minutes, to backfill?)
TAKEN = (
    ("ACME", "2024-11-27 10:00", 1, False),
    ("ACME", "2024-11-29 10:30", 3, False),
    ("BOLT", "2024-11-29 11:00", 1, True),
)
CHARTS = ("coverage-chart", "gap-timeline", "price-chart", "rejections-chart", "throughput-chart")


class Page:
    """A written report: its text, and the figures it embeds."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.html = path.read_text(encoding="utf-8")
        self.figures = self._script("figures")
        self.prices = self._script("price-data")

    def _script(self, name: str) -> Any:
        found = re.search(f'<script type="application/json" id="{name}">(.*?)</script>', self.html)
        assert found, name
        return json.loads(found.group(1))

    def gap_markers(self) -> set[tuple[str, str, str, str]]:
        """(symbol, first minute in exchange time, length, outcome) of each marker drawn."""
        drawn = set()
        for trace in self.figures["gap-timeline"]["data"]:
            for symbol, ms, text in zip(trace["y"], _array(trace["x"]), trace["text"], strict=True):
                minute = dt.datetime(1970, 1, 1) + dt.timedelta(milliseconds=float(ms))
                drawn.add((symbol, f"{minute:%Y-%m-%d %H:%M}", text, trace["name"]))
        return drawn


def _array(values: Any) -> np.ndarray:
    """A figure's array, plain or as Plotly's typed array ({dtype, bdata})."""
    if isinstance(values, dict):
        return np.frombuffer(base64.b64decode(values["bdata"]), np.dtype(values["dtype"]))
    return np.asarray(values)


def _log_gap_runs(events: list, symbols: tuple[str, ...]) -> set[tuple[str, str, str, str]]:
    """The log's GapDetected, as runs of consecutive minutes with what became of them."""
    filled = {(e.symbol, e.ts_start): e.synthetic for e in events if isinstance(e, GapFilled)}
    runs: list[list[Any]] = []
    gaps = sorted((e.symbol, e.ts_start) for e in events if isinstance(e, GapDetected))
    for symbol, ts in gaps:
        outcome = {None: "left", False: "filled from the backfill", True: "forward-filled"}[
            filled.get((symbol, ts))
        ]
        last = runs[-1] if runs else None
        if last and last[0] == symbol and last[3] == outcome and ts - last[2] == 60 * 10**9:
            last[2], last[4] = ts, last[4] + 1
        else:
            runs.append([symbol, ts, ts, outcome, 1])
    return {
        (s, f"{dt.datetime.fromtimestamp(t / 1e9, ET):%Y-%m-%d %H:%M}", f"{n} min", o)
        for s, t, _, o, n in runs
        if s in symbols
    }


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """A paced run of generated data with known gaps, a backfill and bad rows; its report."""
    root = tmp_path_factory.mktemp("report")
    data, backfill = generate(root / "data", SPEC), root / "backfill"
    backfill.mkdir()
    handed = []
    for symbol in SPEC.symbols:
        frame = pd.read_csv(data / f"{symbol}.csv", keep_default_na=False)
        local = pd.to_datetime(frame["timestamp"], utc=True, errors="coerce").dt.tz_convert(ET)
        drop = np.zeros(len(frame), bool)
        for who, first, minutes, to_backfill in TAKEN:
            start = pd.Timestamp(first, tz=ET)
            rows = (local >= start) & (local < start + pd.Timedelta(minutes=minutes))
            rows &= (frame["symbol"] == who).to_numpy()
            drop |= rows.to_numpy()
            if to_backfill:
                handed.append(frame[rows.to_numpy()])
        frame[~drop].to_csv(data / f"{symbol}.csv", index=False)
        handed.append(frame[~drop].head(1))  # the backfill must know every symbol
    handed_rows = pd.concat(handed).sort_values(["symbol", "timestamp"])
    handed_rows.to_csv(backfill / "bars.csv", index=False)
    log = root / "run.lmdb"
    cfg = config(
        data,
        log,
        symbols=SPEC.symbols,
        start=SPEC.start,
        end=SPEC.end,
        backfill=str(backfill),
        speed=200_000.0,  # paced (so it has lateness), a session in about 0.1 s
    )
    digest = run(cfg)
    out = root / "report.html"
    assert main(["report", str(log), "--out", str(out)]) == 0
    return log, out, digest


def test_the_page_names_every_symbol_and_session_and_carries_the_digest(
    generated: tuple[Path, Path, str],
) -> None:
    log, out, digest = generated
    page = Page(out)
    for symbol in SPEC.symbols:
        assert f"<option>{symbol}</option>" in page.html
        assert symbol in page.prices["symbols"]
    for session in ("2024-11-27", "2024-11-29"):
        assert f"<td>{session}</td>" in page.html
    assert "2024-11-28" not in page.html  # Thanksgiving: no session
    assert page.html.count(digest) >= 2  # the header and the facts
    assert "verify: intact" in page.html
    coverage = {t.get("name"): t for t in page.figures["coverage-chart"]["data"]}
    assert coverage["early close"]["x"] == ["2024-11-29"]
    with EventLog.open(log) as opened:
        events, manifest = opened.committed()[0], opened.manifest()
    progress = page.figures["throughput-chart"]["data"][0]  # events committed over wall time
    assert _array(progress["y"])[-1] == events and np.all(np.diff(_array(progress["x"])) >= 0)
    lateness = page.figures["lateness"]["data"][0]
    assert list(lateness["x"]) == ["p50", "p90", "p99", "p99.9", "max"]
    assert _array(lateness["y"])[2] == pytest.approx(manifest["lateness"]["p99"] * 1e3)


def test_gaps_are_drawn_where_the_log_has_them_with_what_became_of_them(
    generated: tuple[Path, Path, str],
) -> None:
    log, out, _ = generated
    drawn = Page(out).gap_markers()
    assert drawn == _log_gap_runs(read(log), SPEC.symbols)
    # and where they were put in, independently of the log
    taken = {
        (s, first, f"{n} min", "filled from the backfill" if b else "left")
        for s, first, n, b in TAKEN
    }
    assert drawn == taken


def test_rejections_are_grouped_by_reason_and_file_with_their_rows(
    generated: tuple[Path, Path, str],
) -> None:
    log, out, _ = generated
    page = Page(out)
    rejected = [e for e in read(log) if isinstance(e, DataRejected)]
    assert len(rejected) == SPEC.bad_rows
    for event in rejected:
        row = re.search(rf"<code>{re.escape(event.reason)}</code></td><td>([^<]*)</td>", page.html)
        assert row and row.group(1) == event.file
        assert f"line {event.row}" in page.html


def test_the_page_is_self_contained_with_plotly_once(generated: tuple[Path, Path, str]) -> None:
    from plotly.offline import get_plotlyjs

    html = Page(generated[1]).html
    assert html.count(get_plotlyjs()[:300]) == 1
    html = html.replace(get_plotlyjs(), "")  # its links (logo, map tiles) are never followed here
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.I)
    assert not re.search(r"<link\b|@import|url\(\s*['\"]?https?:", html, re.I)


def test_a_changed_log_is_reported_broken_and_exits_1(
    generated: tuple[Path, Path, str], tmp_path: Path
) -> None:
    copy = tmp_path / "changed.lmdb"
    shutil.copytree(generated[0], copy)
    tamper(copy, 100, "flip")
    out = tmp_path / "changed.html"
    assert main(["report", str(copy), "--out", str(out)]) == 1
    with EventLog.open(copy) as log:
        verdict = log.verify()
    assert not verdict.ok
    html = out.read_text(encoding="utf-8")
    assert f"verify: broken at seq {verdict.first_bad_seq}" in html and verdict.reason in html


def _run_set(config: RunConfig, count: int) -> Path:
    """A run set written shard by shard in this process (what `run_sharded` has Ray do)."""
    folder = Path(config.log)
    folder.mkdir()
    manifest = RunSetManifest(config=msgspec.to_builtins(config), shards=plan(config, count))
    for shard in manifest.shards:
        done = run_shard(shard_config(config, shard))
        shard.state, shard.events, shard.digest = "done", done["events"], done["digest"]
    write_manifest(folder, seal(manifest))
    return folder


def test_a_run_set_reports_as_the_run_it_shards(
    generated: tuple[Path, Path, str], tmp_path: Path
) -> None:
    log, _, _ = generated
    with EventLog.open(log) as opened:
        settings = opened.manifest()["config"]
    run_set = _run_set(RunConfig(**{**settings, "log": str(tmp_path / "set"), "speed": 0.0}), 2)
    out = tmp_path / "set.html"
    assert main(["report", str(run_set), "--out", str(out)]) == 0
    page = Page(out)
    with open_log(run_set) as opened:
        digest = opened.committed()[1]
    assert digest in page.html and "verify: intact" in page.html
    assert "Run set: 2 shards" in page.html
    for session in ("2024-11-27", "2024-11-29"):
        assert f"<td>{session}</td>" in page.html
    assert page.gap_markers() == _log_gap_runs(read(log), SPEC.symbols)  # as the unsharded run


def test_a_missing_log_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(tmp_path / "none"), "--out", str(tmp_path / "r.html")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_the_real_week_places_aig_and_ibm_gaps_where_the_log_has_them(
    realdata: Path, tmp_path: Path
) -> None:
    data = bar_files_only(realdata, tmp_path / "data")
    log = tmp_path / "week.lmdb"
    digest = run(config(data, log, start="2013-10-04", end="2013-10-11"))
    out = tmp_path / "week.html"
    assert main(["report", str(log), "--out", str(out)]) == 0
    page = Page(out)
    for symbol in REAL_SYMBOLS:
        assert f"<option>{symbol}</option>" in page.html
    for day in ("04", "07", "08", "09", "10", "11"):
        assert f"<td>2013-10-{day}</td>" in page.html
    assert digest in page.html
    expected = _log_gap_runs(read(log), ("AIG", "IBM"))
    assert {s for s, *_ in expected} == {"AIG", "IBM"}  # both have gaps in this week
    assert {m for m in page.gap_markers() if m[0] in ("AIG", "IBM")} == expected


# -- in a real browser --------------------------------------------------------------------------


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("no chromium here (.ci/run installs Debian's `chromium` when it can)")
    return found


def test_every_chart_draws_in_headless_chromium_without_a_script_error(
    generated: tuple[Path, Path, str], tmp_path: Path
) -> None:
    url = generated[1].as_uri() + "#symbol=BOLT&derived=5"  # the picker's second symbol, bars
    done = subprocess.run(
        [
            _chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--host-resolver-rules=MAP * ~NOTFOUND",  # a page that reached out would log an error
            f"--user-data-dir={tmp_path / 'profile'}",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=20000",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    dom = done.stdout
    console = [line for line in done.stderr.splitlines() if "CONSOLE" in line]
    assert not [line for line in console if re.search(r"error|uncaught", line, re.I)], console
    charts = (*CHARTS, "lateness")
    for chart in charts:
        drawn = re.search(rf'<div id="{chart}" class="chart[^"]*".*?class="main-svg"', dom, re.S)
        assert drawn, f"{chart} did not draw"
    assert f'data-drawn="{len(charts)}"' in dom  # the script ran to its end
    assert "derived bars from 2024-11-27 on" in dom  # BOLT's 5m bars, asked for in the link
