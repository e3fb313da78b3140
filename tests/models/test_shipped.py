"""The models shipped inside the package load offline, match their registry entries and carry a model card."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from stemwright.models.registry import MODELS
from stemwright.pretrained.loading import load_model
from stemwright.models.shipped import DEFAULT4, VOCALS, shipped_path

SHIPPED = [VOCALS, DEFAULT4]


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_loads_and_matches_registry(name):
    entry = MODELS[name]
    model = load_model(name)
    assert tuple(model.sources) == entry.sources
    assert model.samplerate == entry.samplerate
    assert sum(p.numel() for p in model.parameters()) == entry.parameters
    base = shipped_path(name)
    assert base.with_name(name + ".safetensors").stat().st_size < 16 * 2**20  # "a few MB"
    card = base.with_name(name + ".md").read_text()
    assert "research use only" in card and "Training steps" in card
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((1, 2, 44100)).astype(np.float32) * 0.1)
    with torch.inference_mode():
        y = model(x)
    assert y.shape == (1, len(entry.sources), 2, 44100) and torch.isfinite(y).all()
    # One source is the complement (mixture minus the others): the stems sum to the input.
    assert torch.allclose(y.sum(1), x, atol=1e-4)
