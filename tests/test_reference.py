"""The test suite's own rule: optional packages are imported through ``tests.reference.require`` (fails in CI)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from _pytest.outcomes import Failed, Skipped

from tests.reference import require

TESTS = Path(__file__).resolve().parent


def test_require_skips_locally_and_fails_in_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(Skipped, match="no_such_reference_pkg"):
        require("no_such_reference_pkg")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(Failed, match="CI is set"):
        require("no_such_reference_pkg")
    assert require("json").dumps([]) == "[]"


def test_no_test_uses_importorskip_or_skips_on_a_missing_import():
    """``pytest.importorskip`` would skip in CI too; every optional import goes through ``require``."""
    offenders = []
    for path in sorted(TESTS.rglob("*.py")):
        if path.name in ("reference.py", "test_reference.py"):
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"\bimportorskip\(", line):
                offenders.append(f"{path.relative_to(TESTS.parent)}:{n}")
    assert not offenders, "use tests.reference.require instead of pytest.importorskip: " + ", ".join(offenders)
