"""Importing optional test-only packages (parity references from scripts/requirements-parity.txt, the [dev] extra).

:func:`require` is the only way tests import them: a missing package skips the test on a developer's machine, but
FAILS it when the ``CI`` environment variable is set (CI sets ``CI=true``), so a parity test cannot silently stop
running in CI.
"""
from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest

INSTALL_HINT = "pip install --no-deps -r scripts/requirements-parity.txt (or the [dev] extra)"


def in_ci() -> bool:
    """True when the ``CI`` variable is set to anything but an empty string, 0 or false."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require(module: str, *, reason: str = INSTALL_HINT) -> ModuleType:
    """``import module``; when that fails, skip the test, or fail it in CI."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        message = f"test-only package {module!r} is not importable ({e}); {reason}"
        if in_ci():
            pytest.fail(f"{message} [CI is set: a missing reference is a failure, not a skip]", pytrace=False)
        pytest.skip(message)
