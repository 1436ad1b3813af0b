"""Shared fixtures: the real data set beside the repo, and temp folders for logs and inputs."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REALDATA = ROOT.parent / "shared" / "realdata" / "us_equities_2013-10"


@pytest.fixture
def realdata() -> Path:
    """The real week of SPY/AIG/BAC/IBM; tests that need it skip cleanly when it is absent."""
    if not (REALDATA / "SPY.csv").exists():
        pytest.skip("../shared/realdata is not present")
    return REALDATA


@pytest.fixture(scope="session")
def local_ray():
    """One real local Ray of 2 CPUs for every test that needs it, shut down at the end."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install -e '.[ray]')")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
