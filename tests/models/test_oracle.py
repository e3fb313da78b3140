"""Oracle separators: built from the true stems, registered, and they behave as the definitions say."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from stemwright.engine.run import separate_tensor
from stemwright.metrics import mdx_sdr
from stemwright.models.architectures import ARCHITECTURES
from stemwright.models.checkpoint import CheckpointError, save_checkpoint
from stemwright.models.registry import MODELS
from stemwright.pretrained.loading import load_model
from tests.models.contract import changed_attributes, snapshot

SR = 22050


def _stems(n: int = SR * 2) -> dict[str, np.ndarray]:
    t = np.arange(n) / SR
    rng = np.random.default_rng(0)
    return {
        "low": np.stack([0.3 * np.sin(2 * np.pi * 110 * t), 0.2 * np.sin(2 * np.pi * 110 * t)]).astype(np.float32),
        "high": np.stack([0.1 * np.sin(2 * np.pi * 3000 * t), 0.15 * np.sin(2 * np.pi * 3000 * t + 1)]).astype(np.float32),
        "noise": (0.02 * rng.standard_normal((2, n))).astype(np.float32),
    }


@pytest.mark.parametrize("name", ["oracle_ibm", "oracle_irm", "oracle_mwf"])
def test_registered_and_separates(name):
    assert MODELS[name].needs_references
    stems = _stems()
    model = load_model(name, references=stems, samplerate=SR)
    assert model.sources == ("low", "high", "noise") and model.segment is None and model.samplerate == SR
    mix = torch.from_numpy(sum(stems.values()))
    out = separate_tensor(model, mix)  # whole track in one call (segment=None)
    assert out.shape == (3, 2, SR * 2)
    for i, k in enumerate(stems):
        assert mdx_sdr(stems[k], out[i].numpy()) > (5 if k == "noise" else 20), k
    if name != "oracle_mwf":  # masks sum to one: stems add back up to the mixture
        np.testing.assert_allclose(out.sum(0).numpy(), mix.numpy(), atol=1e-4)


def test_mwf_uses_spatial_information():
    """Two noises with identical spectra panned hard left/right: no mask can split them, the oracle MWF can."""
    rng = np.random.default_rng(1)
    n = SR
    a, b = rng.standard_normal((2, n)).astype(np.float32) * 0.1
    stems = {"left": np.stack([a, 0.01 * a]), "right": np.stack([0.01 * b, b])}
    mix = torch.from_numpy(stems["left"] + stems["right"])
    mwf = separate_tensor(load_model("oracle_mwf", references=stems, samplerate=SR), mix)
    irm = separate_tensor(load_model("oracle_irm", references=stems, samplerate=SR), mix)
    s_mwf = mdx_sdr(stems["left"], mwf[0].numpy())
    s_irm = mdx_sdr(stems["left"], irm[0].numpy())
    assert s_mwf > 25 and s_mwf > s_irm + 5


def test_errors_are_clear():
    with pytest.raises(ValueError, match="need the true stems"):
        load_model("oracle_irm")
    stems = _stems()
    model = load_model("oracle_ibm", references=stems, samplerate=SR)
    with pytest.raises(ValueError, match="whole track"):
        model(torch.zeros(1, 2, 1000))
    with pytest.raises(ValueError, match="differ in shape"):
        load_model("oracle_irm", references={"a": np.zeros((2, 10)), "b": np.zeros((2, 11))})
    with pytest.raises(ValueError, match="kind"):
        from stemwright.models.oracle import OracleConfig

        OracleConfig(kind="xyz")


@pytest.mark.parametrize("name", ["oracle_ibm", "oracle_irm", "oracle_mwf"])
def test_oracle_contract(name, tmp_path):
    """The model contract where it applies to an oracle: attributes, (B, C, T) -> (B, S, C, T) on its own mixture,
    input untouched, no writes to self; not a registered architecture, so it has no checkpoint."""
    stems = _stems(SR // 2)
    model = load_model(name, references=stems, samplerate=SR)
    assert model.sources == tuple(stems) and model.samplerate == SR and model.audio_channels == 2
    assert model.segment is None and type(model) not in ARCHITECTURES.values() and MODELS[name].architecture == "oracle"
    mix = torch.from_numpy(sum(stems.values()))[None].repeat(2, 1, 1)
    before_mix, before = mix.clone(), snapshot(model)
    with torch.no_grad():
        out = model(mix)
    assert out.shape == (2, 3, 2, SR // 2) and torch.isfinite(out).all()
    assert torch.equal(mix, before_mix)
    assert not changed_attributes(before, snapshot(model))
    with pytest.raises(CheckpointError, match="not a registered architecture"):
        save_checkpoint(model, tmp_path / "oracle")

