"""The one place that turns what a user typed after ``-m`` into a loaded model.

Resolution order: a registered name (:data:`stemwright.models.registry.MODELS`), then an existing file/folder path
(any format :func:`stemwright.pretrained.formats.load_any` knows), then a published-catalogue name
(:func:`stemwright.pretrained.catalogue.load_published`, downloaded to the cache unless ``offline``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

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

    ``options`` go to a registered model's builder (e.g. ``references=`` of the oracle models).
    """
    key = str(name_or_path)
    if key in MODELS:
        entry = MODELS[key]
        model = entry.loader(**{**entry.options, **options})
    elif Path(key).expanduser().exists():
        model = load_any(Path(key).expanduser())
    else:
        model = load_published(key, offline=offline, progress=progress)
    return model.to(torch.device(device)).eval()
