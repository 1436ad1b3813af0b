"""One rule for rejected rows: a raw folder and the catalog ingested from it place every rejection
in the same session, whatever the fault, the file and the run's window (DESIGN §6, §13).

Hypothesis writes random faults into random lines of by-symbol files (bytes that are not UTF-8,
an unclosed quote, a year out of range, a short row, ...), ingests the folder, and compares what
the two sources hand a run session by session: the rows, their order and the rejections, which
is everything the digest is a function of. One run per source then checks the digest itself.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import config, run
from tests.test_catalog import same_input
from ticktape.messages import rejections as why
from ticktape.scenarios.demo_data import DemoSpec, generate
from ticktape.store.calendar import TradingCalendar
from ticktape.store.catalog_ingest import ingest
from ticktape.store.catalog_reader import CatalogRepository
from ticktape.store.repository import MarketDataRepository

SPEC = DemoSpec(
    symbols=("ACME", "BOLT"), start="2024-11-26", end="2024-12-02", extended_hours=False
)
SESSIONS = TradingCalendar().sessions(SPEC.start, SPEC.end)
SYMBOL_SETS = (("ACME",), ("BOLT",), ("ACME", "BOLT"))


def _replace_field(at: int, value: bytes) -> object:
    def fault(fields: list[bytes]) -> list[bytes]:
        if at < len(fields):  # another fault may have cut the line short
            fields[at] = value
        return fields

    return fault


# fault name -> how it changes a line's fields (symbol, timestamp, open, high, low, close, volume)
FAULTS = {
    "invalid_utf8_symbol": _replace_field(0, b"AC\xffME"),
    "invalid_utf8_price": _replace_field(5, b"8\xe97.1"),
    "unclosed_quote": lambda f: [f[0], f[1], b'"' + f[2], *f[3:]],
    "year_out_of_range": lambda f: [f[0], b"3" + f[1][1:], *f[2:]],
    "year_before_1677": lambda f: [f[0], b"1" + f[1][1:], *f[2:]],
    "short_row": lambda f: f[:-1],
    "long_row": lambda f: [*f, b"7"],
    "unparseable_timestamp": _replace_field(1, b"yesterday"),
    "naive_timestamp": lambda f: [f[0], f[1][:19], *f[2:]],
    "nan_close": _replace_field(5, b"NaN"),
    "blank_symbol": _replace_field(0, b""),
    "unparseable_volume": _replace_field(6, b"lots"),
}


class Clean(dict[str, list[bytes]]):
    """The lines of each clean by-symbol file (short repr: Hypothesis prints the arguments)."""

    def __repr__(self) -> str:
        return f"Clean({sorted(self)})"


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Clean:
    folder = generate(tmp_path_factory.mktemp("clean"), SPEC)
    return Clean(
        {p.name: p.read_bytes().splitlines(keepends=True) for p in sorted(folder.iterdir())}
    )


def write_with_faults(
    folder: Path, clean: dict[str, list[bytes]], faults: list[tuple[str, float, str]]
) -> None:
    """`faults`: (file, where in its data lines as a fraction, fault name)."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    lines = {name: list(content) for name, content in clean.items()}
    for name, where, fault in faults:
        data = lines[name]
        i = 1 + min(int(where * (len(data) - 1)), len(data) - 2)
        fields = data[i].rstrip(b"\n").split(b",")
        data[i] = b",".join(FAULTS[fault](fields)) + b"\n"
    for name, content in lines.items():
        (folder / name).write_bytes(b"".join(content))


def assert_same_sessions(raw: Path, catalog: Path, symbols: tuple[str, ...], window: slice) -> int:
    """Both sources hand the run's sessions the same input; returns the rejections seen."""
    sessions = SESSIONS[window]
    from_raw = MarketDataRepository(raw, symbols)
    from_catalog = CatalogRepository(catalog, symbols, sessions=sessions)
    assert from_catalog.symbols == from_raw.symbols
    assert from_catalog.file_rejections == from_raw.file_rejections
    seen = 0
    for session in sessions:
        a, b = from_raw.load_session(session), from_catalog.load_session(session)
        same_input(a, b)
        seen += len(a.rejected)
    return seen


fault_lists = st.lists(
    st.tuples(
        st.sampled_from(["ACME.csv", "BOLT.csv"]),
        st.floats(0, 1),
        st.sampled_from(sorted(FAULTS)),
    ),
    min_size=1,
    max_size=6,
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    faults=fault_lists,
    first=st.integers(0, len(SESSIONS) - 1),
    length=st.integers(1, len(SESSIONS)),
    symbols=st.sampled_from(SYMBOL_SETS),
)
def test_raw_folder_and_catalog_place_every_rejection_alike(
    tmp_path: Path,
    clean: dict[str, list[bytes]],
    faults: list[tuple[str, float, str]],
    first: int,
    length: int,
    symbols: tuple[str, ...],
) -> None:
    raw, catalog = tmp_path / "raw", tmp_path / "catalog"
    write_with_faults(raw, clean, faults)
    shutil.rmtree(catalog, ignore_errors=True)
    ingest([raw], catalog)
    assert_same_sessions(raw, catalog, symbols, slice(first, first + length))


def test_every_fault_becomes_a_known_reason(tmp_path: Path, clean: dict[str, list[bytes]]) -> None:
    faults = [("ACME.csv", i / len(FAULTS), name) for i, name in enumerate(sorted(FAULTS))]
    write_with_faults(tmp_path / "raw", clean, faults)
    repository = MarketDataRepository(tmp_path / "raw", ["ACME"])
    reasons = [r.reason for s in SESSIONS for r in repository.load_session(s).rejected]
    assert len(reasons) == len(FAULTS)
    assert all(why.code(r) for r in reasons)  # each reason has its stable code


def test_a_run_that_starts_after_the_files_first_session_has_one_digest(
    tmp_path: Path, clean: dict[str, list[bytes]]
) -> None:
    """The issue's case: undatable rows early in a by-symbol file, a run starting later."""
    faults = [
        (name, where, fault)
        for name in ("ACME.csv", "BOLT.csv")
        for where, fault in zip((0.01, 0.02, 0.03, 0.04, 0.9), sorted(FAULTS)[:5], strict=True)
    ]
    write_with_faults(tmp_path / "raw", clean, faults)
    ingest([tmp_path / "raw"], tmp_path / "catalog")
    window = {"symbols": ("BOLT",), "start": SESSIONS[1].label, "end": SESSIONS[2].label}
    want = run(config(tmp_path / "raw", tmp_path / "raw.lmdb", **window))
    assert run(config(tmp_path / "catalog", tmp_path / "cat.lmdb", **window)) == want
    assert assert_same_sessions(tmp_path / "raw", tmp_path / "catalog", ("BOLT",), slice(1, 3))
