"""Shared fixtures. ``../shared/data`` sits beside the repository root (CI has it)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"shared data folder not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def musdb_excerpt(shared_data: Path) -> Path:
    return shared_data / "musdb18-excerpts"


@pytest.fixture(scope="session")
def mixtures_dir(shared_data: Path) -> Path:
    return shared_data / "mixtures"


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op torch thread for a test module (``pytestmark = pytest.mark.usefixtures("one_thread")``): on a
    small shared CI machine, OpenMP threads spinning against other processes made model tests 30x slower; results
    do not depend on it."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def local_ray():
    """A local Ray with 2 CPUs for the batch tests, started once (it takes seconds); workers get one thread."""
    from tests.reference import require

    ray = require("ray", reason="install the ray extra: pip install -e '.[ray]'")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


def pytest_collection_modifyitems(config, items) -> None:
    """``STEMWRIGHT_SKIP_SLOW=1`` skips tests marked ``slow`` (CI runs them all)."""
    if os.environ.get("STEMWRIGHT_SKIP_SLOW") != "1":
        return
    skip = pytest.mark.skip(reason="STEMWRIGHT_SKIP_SLOW=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture()
def jack_server():
    """A JACK server with the dummy driver (44.1 kHz, 1024-frame periods) under a unique name, exported as
    ``JACK_DEFAULT_SERVER`` for the test and its subprocesses (tests/jack_helpers.py)."""
    from tests.jack_helpers import jack_server as start

    yield from start()
