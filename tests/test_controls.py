"""The control surface (DESIGN §2, §10): pause, resume, step, set_speed, stop, signals, and the
promise that every run ends: no thread outlives close(), every failure fail-stops, named."""

from __future__ import annotations

import itertools
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.helpers import cli_process, read
from ticktape.actors import clock as clock_module
from ticktape.actors import prefetch as prefetch_module
from ticktape.actors.prefetch import prefetch_receive
from ticktape.actors.session_data import SessionDataCore
from ticktape.actors.system import ActorFailure, ConfigError, System
from ticktape.messages.commands import LoadSession
from ticktape.messages.config import RunConfig
from ticktape.messages.events import Bar, Paused, Resumed, Stepped, Stopped, TimeAdvanced
from ticktape.scenarios.demo_data import DemoSpec, generate
from ticktape.store.eventlog import EventLog


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("demo") / "data", DemoSpec(extended_hours=False))


def _config(data: Path, log: Path, **more: object) -> RunConfig:
    settings = {
        "data": str(data),
        "symbols": DemoSpec().symbols,
        "start": "2024-11-25",
        "end": "2024-11-26",
        "log": str(log),
        "sync": "none",
    }
    return RunConfig(**{**settings, **more})


def test_step_releases_exactly_the_next_slice_and_stays_paused(demo: Path, tmp_path: Path) -> None:
    system = System(_config(demo, tmp_path / "log", speed=1.0))  # 1x: nothing would be released
    with system:
        system.start()
        system.pause()
        for _ in range(3):
            system.step()
        time.sleep(0.3)
        system.stop()
    events = read(tmp_path / "log")
    stepped = [i for i, e in enumerate(events) if isinstance(e, Stepped)]
    assert len(stepped) == 3
    assert any(isinstance(e, Paused) for e in events[: stepped[0]])
    for first, last in itertools.pairwise(stepped):
        between = events[first + 1 : last]  # one slice: a time advance and what it released
        assert isinstance(between[0], TimeAdvanced)
        assert sum(isinstance(e, TimeAdvanced) for e in between) == 1
        assert all(e.ts == between[0].ts for e in between)
    assert isinstance(events[-1], Stopped)
    assert not any(isinstance(e, Resumed) for e in events)


def test_a_paused_run_uses_no_cpu(demo: Path, tmp_path: Path) -> None:
    with System(_config(demo, tmp_path / "log", speed=60.0)) as system:
        system.start()
        system.pause()
        time.sleep(0.3)
        cpu = time.process_time()
        time.sleep(2.0)
        used = time.process_time() - cpu
        system.resume()
        system.stop()
    assert used < 0.05, f"{used:.3f} s of CPU over a 2 s pause"


def test_set_speed_is_pacing_not_a_fact(demo: Path, tmp_path: Path) -> None:
    plain = System(_config(demo, tmp_path / "plain")).run(timeout=60).digest
    with System(_config(demo, tmp_path / "paced", speed=5000.0)) as system:
        system.start()
        time.sleep(0.3)
        system.set_speed(1e6)
        totals = system.wait(timeout=60)
    assert totals.digest == plain
    assert totals.lateness["releases"] > 0
    with EventLog.open(tmp_path / "paced") as log:
        assert log.manifest()["lateness"]["p99"] >= 0  # pacing figures live in the manifest


@pytest.mark.parametrize("speed", [float("nan"), float("inf"), 1e-300, -1.0])
def test_a_speed_that_cannot_be_paced_is_a_config_error(
    demo: Path, tmp_path: Path, speed: float
) -> None:
    before = threading.active_count()
    with pytest.raises(ConfigError, match="speed"):
        System(_config(demo, tmp_path / "log", speed=speed))
    assert threading.active_count() == before
    assert not (tmp_path / "log").exists()


def test_leaving_events_early_stops_the_run_within_a_second(demo: Path, tmp_path: Path) -> None:
    before = set(threading.enumerate())
    began = time.monotonic()
    with System(_config(demo, tmp_path / "log", output_queue=2)) as system:
        system.start()
        for event in system.events():
            if isinstance(event, Bar):
                break
        left = time.monotonic()
    assert time.monotonic() - left < 1.0 + 0.5  # the graceful stop, then the joins
    assert set(threading.enumerate()) <= before  # no thread outlives close()
    assert isinstance(read(tmp_path / "log")[-1], Stopped)
    assert time.monotonic() - began < 10


def test_a_stop_while_the_next_session_loads_is_graceful(
    demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Prefetch answers after the coordinator has stopped: moot, not `ActorFailed` (issue 15)."""
    loading = threading.Event()

    def slow_load(repository: object, *more: object) -> list:
        message = more[-1]
        assert isinstance(message, LoadSession)
        if message.session.label != "2024-11-25":
            loading.set()
            time.sleep(0.5)
        return prefetch_receive(repository, *more)

    monkeypatch.setattr(prefetch_module, "prefetch_receive", slow_load)
    with System(_config(demo, tmp_path / "log")) as system:
        system.start()
        assert loading.wait(10)
        assert system.stop().state == "stopped"
    kinds = [type(e).__name__ for e in read(tmp_path / "log")]
    assert kinds[-1] == "Stopped" and "ActorFailed" not in kinds


def test_a_base_exception_in_an_actor_fail_stops_and_names_it(
    demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def exit_now(*args: object) -> None:
        raise SystemExit(3)

    monkeypatch.setattr(SessionDataCore, "released", exit_now)
    with pytest.raises(ActorFailure, match="SessionData failed: SystemExit"):
        System(_config(demo, tmp_path / "log")).run(timeout=30)
    assert type(read(tmp_path / "log")[-1]).__name__ == "ActorFailed"


def test_a_failure_on_the_timer_thread_fail_stops_the_system(
    demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: object, ts: int, wall: float) -> float:
        raise OverflowError("timer broke")

    monkeypatch.setattr(clock_module.ClockCore, "wall_delay", broken)
    before = set(threading.enumerate())
    with pytest.raises(ActorFailure, match="Clock failed: OverflowError"):
        System(_config(demo, tmp_path / "log", speed=60.0)).run(timeout=30)
    assert set(threading.enumerate()) <= before


def _ticktape(*args: str) -> subprocess.Popen[str]:
    return cli_process("-v", *args)


def test_sigterm_stops_a_paced_run_gracefully_with_exit_143(demo: Path, tmp_path: Path) -> None:
    log = tmp_path / "log"
    args = ["run", "--data", str(demo), "--symbols", "ACME,BOLT,CRUX", "--start", "2024-11-25"]
    process = _ticktape(*args, "--end", "2024-11-26", "--log", str(log), "--speed", "600")
    deadline = time.monotonic() + 30
    while not (log / "data.mdb").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 143, err
    assert "Traceback" not in err
    events = read(log)
    assert isinstance(events[-1], Stopped)
    with EventLog.open(log) as opened:
        assert opened.verify().ok


def test_ctrl_c_during_the_input_scan_exits_130_without_a_traceback(
    demo: Path, tmp_path: Path
) -> None:
    args = ["run", "--data", str(demo), "--symbols", "ACME", "--start", "2024-11-25"]
    process = _ticktape(*args, "--end", "2024-11-26", "--log", str(tmp_path / "log"))
    line = ""
    while "scanning" not in line:
        line = process.stderr.readline()
        assert line, "the run ended before it scanned its input"
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    assert "Traceback" not in err


def test_the_control_keys_drive_the_run(demo: Path, tmp_path: Path) -> None:
    from ticktape.scenarios.commands.controls import KeyReader

    said: list[str] = []
    with System(_config(demo, tmp_path / "log", speed=60.0)) as system:
        system.start()
        keys = KeyReader(system, said.append)
        for key in "ps+p":
            keys.press(key)
            time.sleep(0.2)
        keys.press("q")
        assert system.wait(timeout=10).state == "stopped"
    assert said == ["paused", "stepped one slice", "speed 120x", "running"]
    kinds = [type(e).__name__ for e in read(tmp_path / "log")]
    controls = [k for k in kinds if k in ("Paused", "Stepped", "Resumed", "Stopped")]
    assert controls == ["Paused", "Stepped", "Resumed", "Stopped"]


def test_a_signal_wrapped_by_the_code_it_interrupted_still_stops_the_command() -> None:
    """A signal that lands in an import's class body comes back as a RuntimeError whose cause is
    the signal's exception; a lost one is seen by the scan as a stop request."""
    from ticktape.scenarios.cli import _interruption
    from ticktape.scenarios.commands.controls import Interrupted
    from ticktape.store.stopping import ScanStopped

    try:
        try:
            raise Interrupted(signal.SIGTERM)
        except Interrupted as signalled:
            raise RuntimeError("Error calling __set_name__ on 'Field' instance") from signalled
    except RuntimeError as wrapped:
        assert _interruption(wrapped).exit_code == 143
    try:
        try:
            raise ScanStopped("the input scan was stopped")
        except ScanStopped:
            raise OSError("while closing") from None
    except OSError as unrelated:
        assert _interruption(unrelated) is None  # `from None`: not caused by the stop
    assert _interruption(ScanStopped("stopped")).exit_code in (130, 143)
    assert _interruption(ValueError("a bug")) is None
