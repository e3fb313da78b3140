"""The contract every separation model obeys.

A model is a plain :class:`torch.nn.Module` built from a frozen keyword-only dataclass config (validated in
``__post_init__``). ``forward`` maps a mixture batch ``(B, C, T)`` to stems ``(B, S, C, T)``, computes no loss and
writes nothing to ``self``. It declares:

- ``sources``: tuple of stem names, in output order;
- ``samplerate``: the rate it works at (Hz);
- ``audio_channels``: 1 or 2;
- ``segment``: preferred chunk length in seconds for the engine, or ``None`` for "whole track at once".

Optionally ``valid_length(n) -> int`` (input length the model wants for ``n`` samples; the engine pads with real
context) — Demucs models have one.

Staged models (optional, see :func:`has_stages`): a model whose forward is signal processing around a learned core
splits it in three, and ``forward`` is literally their composition::

    inputs, context = model.prepare(mix)           # parameter-free pre-processing (STFT, features), in torch
    core_out = model.core(*inputs)                 # the learned part: real tensors in and out
    stems = model.finish(core_out, context)        # parameter-free post-processing (masks, Wiener, iSTFT)

- ``prepare(mix (B, C, T)) -> (tuple of real tensors, context)``; ``context`` is any Python object ``finish`` needs.
- ``core(*inputs) -> Tensor | tuple[Tensor, ...]``: a pure function of its inputs and the parameters, without
  complex dtypes, data-dependent Python control flow or writes to ``self`` (so it can be traced, compiled, exported
  to ONNX, run in reduced precision or on another runtime).
- ``finish(core_out, context) -> (B, S, C, T)``.
- Optional names for the core's tensors: ``core_input_names`` / ``core_output_names``, and ``core_dynamic_axes``
  (``{name: {axis: label}}``) for exporters.

``prepare`` and ``finish`` use no learned parameters: :class:`stemwright.models.onnx.OnnxModel` runs them on a model
rebuilt from its config without weights.
"""
from __future__ import annotations

import dataclasses
import typing
from typing import Any

STAGES = ("prepare", "core", "finish")


def check_model(model: Any) -> None:
    """Raise a clear error when ``model`` misses a required attribute of the contract."""
    missing = [a for a in ("sources", "samplerate", "audio_channels", "segment") if not hasattr(model, a)]
    if missing:
        raise TypeError(f"{type(model).__name__} is not a separation model: missing {', '.join(missing)}")
    if not model.sources:
        raise TypeError(f"{type(model).__name__} declares no sources")


def has_stages(model: Any) -> bool:
    """True when ``model`` splits its forward into ``prepare`` / ``core`` / ``finish`` (see the module docstring)."""
    return all(callable(getattr(model, name, None)) for name in STAGES)


def _tuplify(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_tuplify(v) for v in value)
    if isinstance(value, dict):
        return {k: _tuplify(v) for k, v in value.items()}
    return value


def config_to_dict(config: Any) -> dict[str, Any]:
    """JSON-ready dict of a config dataclass."""
    return dataclasses.asdict(config)


def config_from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Build a config dataclass from JSON data (lists become tuples), rejecting unknown fields by name."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown config field(s) {', '.join(unknown)}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in data.items():
        if isinstance(value, dict) and dataclasses.is_dataclass(hints.get(key)):
            value = config_from_dict(hints[key], value)
        kwargs[key] = _tuplify(value) if not isinstance(value, dict) or not dataclasses.is_dataclass(value) else value
    return cls(**kwargs)
