"""The models shipped inside the package load offline, match their registry entries and carry a model card."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from stemwright.models.registry import MODELS
from stemwright.models.shipped import DEFAULT4, DEFAULT4_SPLITTER, SIX, SIX_SPLITTER, VOCALS, shipped_path
from stemwright.pretrained.loading import load_model

# model name -> (shipped checkpoint file, a phrase its card must contain about the weights' licence)
SHIPPED = {VOCALS: (VOCALS, "research use only"), DEFAULT4: (DEFAULT4_SPLITTER, "no MIR-1K"),
           SIX: (SIX_SPLITTER, "no MIR-1K")}


def test_every_stemwright_model_of_the_registry_is_checked_here():
    assert {n for n in MODELS if n.startswith("stemwright_")} == set(SHIPPED)


@pytest.mark.parametrize("name", list(SHIPPED))
def test_shipped_model_loads_offline_and_matches_registry(name, monkeypatch):
    # Offline: any attempt to download fails the test.
    monkeypatch.setattr("urllib.request.urlopen", lambda *a, **k: pytest.fail("a shipped model tried the network"))
    entry = MODELS[name]
    model = load_model(name, offline=True)
    assert tuple(model.sources) == entry.sources
    assert model.samplerate == entry.samplerate
    assert sum(p.numel() for p in model.parameters()) == entry.parameters
    file, licence_phrase = SHIPPED[name]
    base = shipped_path(file)
    assert base.with_name(file + ".safetensors").stat().st_size < 16 * 2**20  # "a few MB"
    card = base.parent.joinpath(name + ".md").read_text()
    assert licence_phrase in card and "Training steps" in card
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((1, 2, 44100)).astype(np.float32) * 0.1)
    with torch.inference_mode():
        y = model(x)
    assert y.shape == (1, len(entry.sources), 2, 44100) and torch.isfinite(y).all()
    # One source is the complement (mixture minus the others): the stems sum to the input.
    assert torch.allclose(y.sum(1), x, atol=1e-4)


def test_default4_is_spleeter_vocals_then_the_shipped_splitter(tmp_path):
    """The default's vocals are spleeter_2stems' as they are; its splitter round-trips through a checkpoint."""
    from stemwright.models.cascade import Cascade
    from stemwright.models.checkpoint import load_checkpoint, save_checkpoint

    model = load_model(DEFAULT4, offline=True)
    assert isinstance(model, Cascade) and model.sources == ("vocals", "drums", "bass", "other")
    assert model.config.vocals["architecture"] == "spleeter"
    assert model.splitter.sources == ("drums", "bass", "other")
    spleeter = load_model("spleeter_2stems", offline=True)
    for k, v in spleeter.state_dict().items():
        assert torch.equal(model.vocals.state_dict()[k], v), k
    save_checkpoint(model.splitter, tmp_path / "splitter", licence="test")
    again = load_checkpoint(tmp_path / "splitter")
    for k, v in model.splitter.state_dict().items():
        assert torch.equal(again.state_dict()[k], v), k
    x = torch.from_numpy(np.random.default_rng(1).standard_normal((1, 2, 3 * 44100)).astype(np.float32) * 0.1)
    with torch.inference_mode():
        y = model(x)
        v = spleeter(x)[:, 0]
        split = again.eval()(x - v)
    assert torch.allclose(y[:, 0], v, atol=1e-5)
    assert torch.allclose(y[:, 1:3], split[:, :2], atol=1e-4)


def test_6stem_is_spleeter_vocals_then_a_five_stem_splitter_whose_other_takes_the_rest():
    model = load_model(SIX, offline=True)
    assert model.sources == ("vocals", "drums", "bass", "guitar", "piano", "other")
    assert model.config.vocals["architecture"] == "spleeter" and model.config.residual_source == "other"
    assert model.splitter.sources == ("drums", "bass", "guitar", "piano", "other")
    default = load_model(DEFAULT4, offline=True)
    for k, v in default.vocals.state_dict().items():  # the same vocals as the default
        assert torch.equal(model.vocals.state_dict()[k], v), k
    x = torch.from_numpy(np.random.default_rng(2).standard_normal((1, 2, 2 * 44100)).astype(np.float32) * 0.1)
    with torch.inference_mode():
        y, y4 = model(x), default(x)
    assert torch.allclose(y[:, 0], y4[:, 0], atol=1e-5)
    assert torch.allclose(y.sum(1), x, atol=1e-4)


@pytest.mark.parametrize("length", [88061, 137201, 137100])
def test_shipped_mask_models_stay_bounded_at_any_length(length: int) -> None:
    """At lengths just short of a whole number of hops the last samples lay under one frame's falling edge, where
    the iSTFT divides by a window near zero: the shipped vocals model gave peaks of 684 (88 061 samples) and 18
    (137 201) from a 0.5 input, the 4-stem splitter peaks of 11 (137 201: a 3.1 s chunk). Bounded now."""
    t = torch.arange(length) / 44100.0
    gen = torch.Generator().manual_seed(length)
    tone = sum(torch.sin(2 * torch.pi * f * t) / k for k, f in enumerate((110.0, 220.0, 330.0, 440.0), 1))
    mix = (0.15 * tone + 0.05 * torch.randn(2, length, generator=gen))[None]  # (1, 2, T)
    peak = float(mix.abs().max())
    vocals = load_model(VOCALS, device="cpu", offline=True).eval()
    splitter = load_model(DEFAULT4, device="cpu", offline=True).splitter.eval()
    with torch.inference_mode():
        for model in (vocals, splitter):
            stems = model(mix)
            assert stems.shape[-1] == length
            assert float(stems.abs().max()) < 2 * peak, (type(model).__name__, float(stems.abs().max()), peak)
