"""CLI test fixtures: ``tiny_model`` registers :mod:`tests.cli.tiny_model` as ``-m test_tiny`` for the test."""
from __future__ import annotations

import pytest

TINY = "test_tiny"


@pytest.fixture()
def tiny_model(monkeypatch: pytest.MonkeyPatch) -> str:
    from stemwright.models.registry import MODELS, ModelEntry
    from tests.cli.tiny_model import SOURCES, build

    entry = ModelEntry(name=TINY, architecture="test", sources=SOURCES, samplerate=44100,
                       description="fixed shares of the mixture (tests only)", licence="MIT (no weights)",
                       loader=build)
    monkeypatch.setitem(MODELS, TINY, entry)
    return TINY
