"""`ticktape data info`: a folder's or catalog's symbols, kinds, coverage and rows, via the CLI."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from ticktape.scenarios.cli import main
from ticktape.scenarios.demo_data import DemoSpec, expected_bars, generate

SPEC = DemoSpec(symbols=("ACME", "BOLT"), start="2024-11-25", end="2024-11-27")


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("info") / "raw", SPEC)


def _info(capsys, *args: str) -> list[dict]:
    assert main(["data", "info", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_info_lists_what_the_data_holds_raw_and_ingested_alike(raw, tmp_path, capsys):
    bars = expected_bars(SPEC)
    times = pd.to_datetime(bars["timestamp"], utc=True)
    want = {
        symbol: (len(rows), int(times[rows.index].min().value), int(times[rows.index].max().value))
        for symbol, rows in bars.groupby("symbol")
    }
    got = _info(capsys, str(raw))
    assert {r["symbol"]: (r["rows"], r["first"], r["last"]) for r in got} == want
    assert {r["kind"] for r in got} == {"bars"}
    assert {(r["first_session"], r["last_session"], r["sessions"]) for r in got} == {
        ("2024-11-25", "2024-11-27", 3)
    }
    catalog = tmp_path / "catalog"
    assert main(["ingest", str(raw), "--catalog", str(catalog)]) == 0
    capsys.readouterr()
    assert _info(capsys, str(catalog)) == got
    assert list(raw.iterdir()) and not any(p.name == "catalog.json" for p in raw.iterdir())


def test_info_prints_a_table_and_refuses_a_missing_folder(raw, tmp_path, capsys):
    assert main(["data", "info", str(raw)]) == 0
    out = capsys.readouterr().out
    assert "ACME" in out and "BOLT" in out and "America/New_York" in out
    assert main(["data", "info", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and len(err.strip().splitlines()) == 1
