"""`ticktape serve`: a real server process on loopback, real Flight clients, real logs.

Logs come from the generated demo data. The server runs as a subprocess (port 0, 127.0.0.1) with a
bearer token; a live run writes into the served folder from another process while clients follow.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from tests.conftest import ROOT
from tests.test_cli import DEMO_SPEC, demo_data, demo_log
from ticktape.messages.config import RunConfig
from ticktape.messages.events import EVENT_TYPES
from ticktape.store.eventlog import EventLog

flight = pytest.importorskip("pyarrow.flight")

__all__ = ["demo_data", "demo_log"]  # fixtures, shared with test_cli
TICKTAPE = (sys.executable, "-m", "ticktape.scenarios.cli")
TOKEN = "s3cret-token"
RENAMED = {  # a field whose type differs from the same name's in most kinds
    ("SessionOpened", "open"): "open_SessionOpened",
    ("SessionOpened", "close"): "close_SessionOpened",
    ("QualityUpdated", "synthetic"): "synthetic_QualityUpdated",
}


class Server:
    """A `ticktape serve` subprocess and a client for it."""

    def __init__(self, folder: Path, *options: str, scheme: str = "grpc+tcp", **kw: object):
        env = {**os.environ, **kw.pop("env", {})}  # type: ignore[dict-item]
        self.process = subprocess.Popen(
            [*TICKTAPE, "serve", str(folder), "--port", "0", *options],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )  # fmt: skip
        ready, _, _ = select.select([self.process.stdout], [], [], 60)
        line = self.process.stdout.readline() if ready else ""
        if "serving" not in line:
            self.process.kill()
            raise AssertionError(f"no server: {line!r} {self.process.stderr.read()[-2000:]}")
        self.banner = line
        self.port = int(line.rsplit(":", 1)[1])
        self.location = f"{scheme}://127.0.0.1:{self.port}"

    def client(self, token: str | None = TOKEN, **options: object) -> Client:
        return Client(flight.connect(self.location, **options), token)

    def stop(self, signum: int = signal.SIGTERM) -> tuple[int, str]:
        self.process.send_signal(signum)
        try:
            _, err = self.process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise
        return self.process.returncode, err


class Client:
    """A Flight client that sends the bearer token on every call."""

    def __init__(self, client: flight.FlightClient, token: str | None) -> None:
        self.flight = client
        headers = [(b"authorization", f"Bearer {token}".encode())] if token else []
        self.options = flight.FlightCallOptions(headers=headers, timeout=60)

    def get(self, **ticket: object) -> flight.FlightStreamReader:
        return self.flight.do_get(flight.Ticket(json.dumps(ticket).encode()), self.options)

    def table(self, **ticket: object) -> pa.Table:
        return self.get(**ticket).read_all()

    def raw(self, ticket: bytes) -> pa.Table:
        return self.flight.do_get(flight.Ticket(ticket), self.options).read_all()

    def listed(self) -> dict[str, flight.FlightInfo]:
        return {
            i.descriptor.path[0].decode(): i for i in self.flight.list_flights(b"", self.options)
        }

    def action(self, name: str, log: str) -> dict:
        body = json.dumps({"log": log}).encode()
        results = list(self.flight.do_action(flight.Action(name, body), self.options))
        return json.loads(results[0].body.to_pybytes())


@pytest.fixture(scope="module")
def served(demo_log: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("served")
    shutil.copytree(demo_log, folder / "runs" / "demo.lmdb")
    outside = tmp_path_factory.mktemp("outside")
    shutil.copytree(demo_log, outside / "secret.lmdb")
    (folder / "escape").symlink_to(outside / "secret.lmdb", target_is_directory=True)
    return folder


@pytest.fixture(scope="module")
def server(served: Path) -> Iterator[Server]:
    running = Server(served, env={"TICKTAPE_TOKEN": TOKEN})
    yield running
    if running.process.poll() is None:
        assert running.stop()[0] == 143


def exported(log: Path, *options: str) -> list[dict]:
    """`ticktape log export` as JSONL: the reference the served tables must equal."""
    done = subprocess.run(
        [*TICKTAPE, "log", "export", str(log), *options],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return [json.loads(line) for line in done.stdout.splitlines()]


def rows_of(table: pa.Table) -> list[dict]:
    """Rows with times as ints of ns UTC, as the JSONL export writes them."""
    columns = {
        name: (column.cast(pa.int64()) if pa.types.is_timestamp(column.type) else column)
        for name, column in zip(table.column_names, table.columns, strict=True)
    }
    return pa.table(columns).to_pylist()


def assert_same_events(rows: list[dict], records: list[dict]) -> None:
    assert len(rows) == len(records) > 0
    for row, record in zip(rows, records, strict=True):
        for name, value in record.items():
            if name not in row and name == "kind":  # one kind's own table has no kind column
                continue
            column = RENAMED.get((record["kind"], name), name)
            got = row[column]
            assert got == (list(value) if isinstance(value, tuple) else value), (record, column)


# --- a finished log ------------------------------------------------------------------------------


def test_a_finished_log_is_served_equal_to_its_jsonl_export(server: Server, served: Path) -> None:
    assert server.banner.strip().endswith(f"grpc+tcp://127.0.0.1:{server.port}")  # loopback
    client = server.client()
    listed = client.listed()
    assert list(listed) == ["runs/demo.lmdb"]  # the symlink out of the folder is not offered
    log = served / "runs" / "demo.lmdb"
    with EventLog.open(log) as opened:
        count = opened.count()
    assert listed["runs/demo.lmdb"].total_records == count
    table = client.table(log="runs/demo.lmdb")
    assert table.schema.names[:4] == ["seq", "kind", "ts", "symbol"]
    assert table.schema.field("ts").type == pa.timestamp("ns", tz="UTC")
    assert table.num_rows == count
    assert_same_events(rows_of(table), exported(log))


def test_kinds_symbols_and_times_filter_like_export(server: Server, served: Path) -> None:
    client = server.client()
    log = served / "runs" / "demo.lmdb"
    bars = client.table(log="runs/demo.lmdb", kinds=["Bar"])
    assert bars.schema.names == ["seq", "ts", "symbol", "ts_start", "open", "high", "low", "close",
                                 "volume"]  # one kind: its own columns  # fmt: skip
    records = exported(log, "--kind", "Bar")
    assert_same_events(rows_of(bars), records)

    day = DEMO_SPEC.start
    chosen = dict(kinds=["Bar", "GapDetected"], symbols=["ACME"])
    times = {"from": f"{day}T10:00", "to": f"{DEMO_SPEC.end}T00:00"}  # the rest of a day
    table = client.table(log="runs/demo.lmdb", **chosen, **times)
    want = exported(log, "--kind", "Bar,GapDetected", "--symbol", "ACME",
                    "--from", times["from"], "--to", times["to"])  # fmt: skip
    assert {r["kind"] for r in want} == {"Bar", "GapDetected"}
    assert "price" not in table.schema.names  # only the asked kinds' fields
    assert_same_events(rows_of(table), want)


def test_start_seq_gets_exactly_the_rest(server: Server) -> None:
    client = server.client()
    whole = client.table(log="runs/demo.lmdb").column("seq").to_pylist()
    cut = len(whole) // 3
    rest = client.table(log="runs/demo.lmdb", start_seq=cut + 1).column("seq").to_pylist()
    assert whole[:cut] + rest == whole == list(range(1, len(whole) + 1))


def test_speed_paces_by_simulated_time(server: Server) -> None:
    client = server.client()
    ticket = dict(log="runs/demo.lmdb", kinds=["TimeAdvanced"], to=f"{DEMO_SPEC.start}T12:00")
    first = client.table(**ticket).column("ts").cast(pa.int64()).to_pylist()
    simulated = (first[-1] - first[0]) / 1e9  # 09:31 to 11:59: about 8,900 s
    started = time.monotonic()
    paced = client.table(**ticket, speed=simulated / 1.0)  # one wall second
    took = time.monotonic() - started
    assert paced.num_rows == len(first)
    assert 0.8 < took < 5


def test_stats_and_verify_actions_answer_json(server: Server, served: Path) -> None:
    client = server.client()
    log = served / "runs" / "demo.lmdb"
    done = subprocess.run([*TICKTAPE, "log", "stats", str(log), "--json"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert client.action("stats", "runs/demo.lmdb") == json.loads(done.stdout)
    verified = client.action("verify", "runs/demo.lmdb")
    assert verified["ok"] is True and verified["digest"] == json.loads(done.stdout)["digest"]


# --- safety --------------------------------------------------------------------------------------


BAD_TICKETS = {
    b"{not json": "not a JSON object",
    b"[1, 2]": "Expected `object`",
    b'{"kinds": ["Bar"]}': "missing required field `log`",
    b'{"log": "runs/demo.lmdb", "limit": 5}': "unknown field `limit`",
    b'{"log": "runs/demo.lmdb", "kinds": ["Bar", "Nope"]}': "unknown kind 'Nope'",
    b'{"log": "runs/demo.lmdb", "kinds": "Bar"}': "Expected `array`",
    b'{"log": "runs/demo.lmdb", "start_seq": 0}': "start_seq",
    b'{"log": "runs/demo.lmdb", "speed": -1}': "speed",
    b'{"log": "runs/demo.lmdb", "from": "yesterday-ish"}': "yesterday-ish",
    b'{"log": "../outside/secret.lmdb"}': "not a path inside",
    b'{"log": "runs/../../x"}': "not a path inside",
    b'{"log": "/etc"}': "not a path inside",
    b'{"log": "escape"}': "leads outside",
    b'{"log": "runs"}': "no log named 'runs'",
    b'{"log": "runs/nothing.lmdb"}': "no log named",
}


def test_every_bad_ticket_is_one_clear_error_and_the_server_lives_on(server: Server) -> None:
    client = server.client()
    for ticket, words in BAD_TICKETS.items():
        with pytest.raises(flight.FlightServerError) as refused:
            client.raw(ticket)
        message = str(refused.value).split(". Detail:")[0]
        assert words in message, (ticket, message)
        assert "Traceback" not in str(refused.value)
        assert "runs/demo.lmdb" in client.listed()  # still answering
    with pytest.raises(flight.FlightServerError, match="unknown action 'drop'"):
        list(client.flight.do_action(flight.Action("drop", b"{}"), client.options))
    with pytest.raises(flight.FlightServerError, match="leads outside"):
        client.action("verify", "escape")
    assert client.table(log="runs/demo.lmdb", kinds=["RunFinished"]).num_rows == 1


def test_the_token_is_required_on_every_call(server: Server) -> None:
    for token in (None, "wrong"):
        client = server.client(token)
        with pytest.raises(flight.FlightUnauthenticatedError):
            client.listed()
        with pytest.raises(flight.FlightUnauthenticatedError):
            client.table(log="runs/demo.lmdb")
        with pytest.raises(flight.FlightUnauthenticatedError):
            client.action("stats", "runs/demo.lmdb")
    assert server.client(TOKEN).table(log="runs/demo.lmdb", kinds=["RunStarted"]).num_rows == 1


def test_tls_with_a_certificate_and_ctrl_c_stops_with_130(served: Path, tmp_path: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed (needed to make a test certificate)")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
         "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    tls = Server(served, "--tls-cert", str(cert), "--tls-key", str(key), scheme="grpc+tls")
    try:
        client = tls.client(None, tls_root_certs=cert.read_bytes())
        assert client.table(log="runs/demo.lmdb", kinds=["RunStarted"]).num_rows == 1
        plain = Client(flight.connect(f"grpc+tcp://127.0.0.1:{tls.port}"), None)
        with pytest.raises(flight.FlightError):
            plain.flight.list_flights(b"", flight.FlightCallOptions(timeout=5)).__next__()
    finally:
        code, err = tls.stop(signal.SIGINT)
    assert code == 130 and "Traceback" not in err


# --- a live run: the log is the broker ------------------------------------------------------------


def test_live_followers_get_every_event_and_reconnect_exactly(
    demo_data: Path, served: Path, server: Server
) -> None:
    """One follower attached mid-run gets every event contiguously to the end; another drops
    its stream after its first batch and comes back with start_seq = last seen + 1."""
    log = served / "live" / "run.lmdb"
    run = subprocess.Popen(
        [*TICKTAPE, "run", "--data", str(demo_data), "--symbols", ",".join(DEMO_SPEC.symbols),
         "--start", DEMO_SPEC.start, "--end", DEMO_SPEC.start, "--log", str(log),
         "--sync", "none", "--speed", "7200"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    client = server.client()
    try:
        deadline = time.monotonic() + 60
        while "live/run.lmdb" not in client.listed():
            assert time.monotonic() < deadline and run.poll() is None, "the run never logged"
            time.sleep(0.05)
        while True:  # attach once the run has committed something, not from its first event
            with EventLog.open(log) as opened:
                head = opened.committed()[0]
            if head > 0:
                break
            time.sleep(0.05)
        assert client.listed()["live/run.lmdb"].total_records == -1  # not finished yet
        follower = client.get(log="live/run.lmdb", follow=True)
        dropping = client.get(log="live/run.lmdb", follow=True, kinds=["Bar", "TimeAdvanced"])
        first = dropping.read_chunk().data
        dropping.cancel()
        last_seen = first.column("seq")[-1].as_py()
        back = client.get(log="live/run.lmdb", follow=True, kinds=["Bar", "TimeAdvanced"],
                          start_seq=last_seen + 1).read_all()  # fmt: skip
        followed = follower.read_all()
        assert run.wait(timeout=120) == 0, run.stderr.read()
    finally:
        if run.poll() is None:
            run.kill()
    with EventLog.open(log) as opened:
        count = opened.count()
    assert head < count  # attached while the run was writing
    seqs = followed.column("seq").to_pylist()
    assert seqs == list(range(1, count + 1))
    assert followed.column("kind")[-1].as_py() == "RunFinished"
    assert_same_events(rows_of(followed), exported(log))
    resumed = first.column("seq").to_pylist() + back.column("seq").to_pylist()
    kinds = followed.column("kind").to_pylist()
    assert resumed == [s for s, k in zip(seqs, kinds, strict=True) if k in ("Bar", "TimeAdvanced")]
    assert client.listed()["live/run.lmdb"].total_records == count


def test_a_run_set_is_served_as_one_log(
    demo_data: Path, served: Path, server: Server, local_ray: object
) -> None:
    from ticktape.scenarios.shards import run_sharded

    folder = served / "sets" / "two-days"
    config = RunConfig(
        data=str(demo_data), symbols=DEMO_SPEC.symbols, start=DEMO_SPEC.start, end=DEMO_SPEC.end,
        log=str(folder), sync="none",
    )  # fmt: skip
    run_sharded(config, 2)
    client = server.client()
    listed = client.listed()
    assert "sets/two-days" in listed and not [n for n in listed if n.startswith("sets/two-days/")]
    table = client.table(log="sets/two-days")
    records = exported(folder)  # the log tools read a set as one log
    assert listed["sets/two-days"].total_records == len(records)
    assert_same_events(rows_of(table), records)
    assert table.column("seq").to_pylist() == list(range(1, len(records) + 1))
    shard = next(p.name for p in folder.iterdir() if p.suffix == ".lmdb")
    with pytest.raises(flight.FlightServerError, match="is a shard of the run set"):
        client.table(log=f"sets/two-days/{shard}")
    assert client.action("verify", "sets/two-days")["ok"] is True


def test_serve_refuses_a_missing_folder_and_half_tls_in_one_line(tmp_path: Path) -> None:
    for argv in (["serve", str(tmp_path / "nope")],
                 ["serve", str(tmp_path), "--tls-cert", str(tmp_path / "c.pem")]):  # fmt: skip
        done = subprocess.run([*TICKTAPE, *argv], cwd=ROOT, capture_output=True, text=True,
                              timeout=60)  # fmt: skip
        assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr


def test_every_kind_has_a_schema_of_its_own() -> None:
    from ticktape.store.tables import kind_schema, union_schema

    utc = pa.timestamp("ns", tz="UTC")
    for kind in EVENT_TYPES:
        schema = kind_schema(kind)
        assert schema.names[:2] == ["seq", "ts"] and schema.field("ts").type == utc
        times = [f.name for f in schema if f.type == utc]
        ints = [f.name for f in schema if f.type == pa.int64() and f.name != "seq"]
        assert not [n for n in ints if "start" in n or "end" in n or n.startswith("ts")], kind
        assert kind != "SessionBreak" or times == ["ts", "break_start", "break_end"]
    assert set(union_schema().names) >= {"price", "bid", "open_SessionOpened", "reason"}
