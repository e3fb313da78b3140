"""The one place that turns what a user typed after ``-m`` into a loaded model.

Resolution order: a registered name (:data:`stemwright.models.registry.MODELS`), then an existing file/folder path
(any format :func:`stemwright.pretrained.formats.load_any` knows), then a published-catalogue name
(:func:`stemwright.pretrained.catalogue.load_published`, downloaded to the cache unless ``offline``). A name that is
none of these and joins several with ``+`` (``htdemucs+stemwright_4stem``) is an ensemble of them
(:class:`stemwright.models.ensemble.Ensemble`), combined by ``ensemble_method`` with ``ensemble_weights``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from stemwright.models.ensemble import Ensemble, EnsembleError
from stemwright.models.registry import MODELS
from stemwright.pretrained.catalogue import load_published
from stemwright.pretrained.formats import load_any


def load_model(
    name_or_path: str | Path,
    *,
    device: torch.device | str = "cpu",
    offline: bool = False,
    progress: bool = True,
    **options: Any,
) -> nn.Module:
    """Load a model by registry name, checkpoint path, or published-catalogue name, in eval mode on ``device``.

    ``options`` go to a registered model's builder (e.g. ``references=`` of the oracle models), except
    ``ensemble_method`` / ``ensemble_weights`` (:meth:`Ensemble.from_models`' ``method`` / ``weights``), which only an
    ensemble name takes.
    """
    key = str(name_or_path)
    method = options.pop("ensemble_method", None)
    weights = options.pop("ensemble_weights", None)
    if is_ensemble_name(key):
        names = key.split("+")
        members = [load_model(n, device=device, offline=offline, progress=progress) for n in names]
        return Ensemble.from_models(members, names, method=method or "avg_wave", weights=weights).eval()
    if method is not None or weights is not None:
        raise EnsembleError(f"ensemble method/weights given, but {key!r} is one model (join models with '+')")
    if key in MODELS:
        entry = MODELS[key]
        model = entry.loader(**{**entry.options, **options})
    elif Path(key).expanduser().exists():
        model = load_any(Path(key).expanduser())
    else:
        model = load_published(key, offline=offline, progress=progress)
    return model.to(torch.device(device)).eval()


def is_ensemble_name(name: str | Path) -> bool:
    """True for ``a+b[+...]`` that is neither a registered name nor an existing path (those win)."""
    key = str(name)
    return "+" in key and key not in MODELS and not Path(key).expanduser().exists() and all(key.split("+"))
