"""stemwright: music stem separation, remixing, evaluation and a live stem mixer.

Public API (imported lazily so that ``import stemwright`` stays fast):

- :class:`stemwright.Separator` — separate arrays or files into stems (:class:`stemwright.ModelSettings`: which
  model and how it runs, as one value).
- :class:`stemwright.Manifest` — the typed ``stemwright.json`` written beside every separated track.
- :class:`stemwright.Mix`, :func:`stemwright.render` — the mixer engine (:class:`stemwright.Layer`: a layer of a mix).
- :mod:`stemwright.drums` — drum replacement: ``stemwright.drums.replace(stems, out, kick=..., blend=...)``.
- :func:`stemwright.inspect` — separation diagnostics.
- :class:`stemwright.StemwrightError` — base of every error raised for users, with typed subclasses
  (:mod:`stemwright.errors`: ``AudioError``, ``ModelNotFound``, ``OutputExists``, ``SeparationError``, ...).
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "Separator": "stemwright.api:Separator",
    "ModelSettings": "stemwright.api:ModelSettings",
    "Manifest": "stemwright.manifest:Manifest",
    "Mix": "stemwright.mixer.document:Mix",
    "render": "stemwright.mixer.render:render",
    "inspect": "stemwright.mixer.inspect:inspect",
    "Layer": "stemwright.mixer.layers:Layer",
    "drums": "stemwright.drums",  # a module
    **{name: f"stemwright.errors:{name}" for name in (
        "StemwrightError", "UsageError", "UnknownName", "ModelNotFound", "UnknownDevice", "DeviceUnavailable",
        "SeparationError", "AudioError", "OutputError", "OutputExists", "OtherRunExists", "OutputIsInput",
        "MixError", "DownloadError")},
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'stemwright' has no attribute {name!r}")
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr) if attr else importlib.import_module(module)
