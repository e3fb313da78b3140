"""stemdeck: music stem separation, remixing, evaluation and a live stem mixer.

Public API (imported lazily so that ``import stemdeck`` stays fast):

- :class:`stemdeck.Separator` — separate arrays or files into stems.
- :class:`stemdeck.Mix`, :func:`stemdeck.render` — the mixer engine.
- :func:`stemdeck.inspect` — separation diagnostics.
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "Separator": "stemdeck.api:Separator",
    "Mix": "stemdeck.mixer.document:Mix",
    "render": "stemdeck.mixer.render:render",
    "inspect": "stemdeck.mixer.inspect:inspect",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'stemdeck' has no attribute {name!r}")
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)
