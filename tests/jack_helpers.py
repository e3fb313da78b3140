"""The dummy JACK server for the live tests (stemwright.live_check), skipped without JACK, failed in CI."""
from __future__ import annotations

from typing import Iterator

import pytest

from tests.reference import in_ci, require


def jack_server() -> Iterator[str]:
    """A ``jackd -d dummy -r 44100 -p 1024`` server under a unique name, exported as ``JACK_DEFAULT_SERVER``."""
    require("jack")
    from stemwright.live_check import dummy_server

    try:
        server = dummy_server()
        name = server.__enter__()
    except FileNotFoundError as e:
        if in_ci():
            pytest.fail(str(e), pytrace=False)
        pytest.skip(str(e))
    try:
        yield name
    finally:
        server.__exit__(None, None, None)
