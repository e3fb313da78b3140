"""Batch test fixtures (the local Ray itself is ``local_ray`` in tests/conftest.py, shared with the CLI tests)."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.batch.catalogue import make_catalogue


@pytest.fixture()
def catalogue(tmp_path: Path) -> list[Path]:
    return make_catalogue(tmp_path / "in")
