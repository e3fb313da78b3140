"""Shared fixtures. ``../shared/data`` sits beside the repository root (CI has it)."""
from __future__ import annotations

from pathlib import Path

import pytest

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


def pytest_collection_modifyitems(config, items) -> None:
    """``STEMWRIGHT_SKIP_SLOW=1`` skips tests marked ``slow`` (CI runs them all)."""
    import os

    if os.environ.get("STEMWRIGHT_SKIP_SLOW") != "1":
        return
    skip = pytest.mark.skip(reason="STEMWRIGHT_SKIP_SLOW=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
