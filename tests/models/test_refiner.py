"""classic_refiner: config validation, shapes, untrained == classic, corrections move the output, stems sum to the
mixture, checkpoint round trip, warm start from a BSRNN."""
from __future__ import annotations

import pytest
import torch

from stemwright.models.bsrnn import BSRNN, BSRNNConfig
from stemwright.models.checkpoint import save_checkpoint
from stemwright.models.classic import ClassicConfig, ClassicSeparator
from stemwright.models.refiner import ClassicRefiner, ClassicRefinerConfig
from tests.models.tiny import TINY_REFINER

SR = 16000


def tiny(**kw) -> ClassicRefinerConfig:
    return ClassicRefinerConfig(**{**TINY_REFINER, "samplerate": SR, **kw})


def _song(seconds: float = 2.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    t = torch.arange(int(seconds * SR)) / SR
    tone = 0.3 * torch.sin(2 * torch.pi * 110 * t) + 0.2 * torch.sin(2 * torch.pi * 440 * t * (1 + 0.01 * torch.sin(6 * t)))
    clicks = (torch.rand(t.shape, generator=g) > 0.999).float()
    left = tone + clicks + 0.01 * torch.randn(t.shape, generator=g)
    return torch.stack([left, 0.9 * left]).unsqueeze(0)


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="sources must be stems of"):
        tiny(sources=("vocals", "drums", "strings", "other"))
    with pytest.raises(ValueError, match="complement_source must be 'other'"):
        tiny(sources=("drums", "guitar", "other"), complement_source="drums")
    with pytest.raises(ValueError, match="other"):
        tiny(sources=("drums", "bass"))
    with pytest.raises(ValueError, match="complement_source must be set"):
        tiny(complement_source=None)
    with pytest.raises(ValueError, match="prior_mask_limit"):
        tiny(prior_mask_limit=0)


def test_untrained_refiner_is_classic_and_stems_sum_to_the_mixture():
    torch.manual_seed(0)
    model = ClassicRefiner(tiny()).eval()
    mix = _song()
    classic = ClassicSeparator(ClassicConfig(samplerate=SR)).eval()
    with torch.inference_mode():
        y = model(mix)
        ref = classic(mix)
    assert y.shape == (1, 4, 2, mix.shape[-1])
    assert torch.allclose(y, ref, atol=1e-5), (y - ref).abs().max()
    assert torch.allclose(y.sum(1), mix, atol=1e-5)


def test_three_stem_refiner_is_classic_without_vocals():
    """The instrument splitter of the cascade default: drums/bass/other, untrained == classic on those stems."""
    model = ClassicRefiner(tiny(sources=("drums", "bass", "other"))).eval()
    mix = _song()
    classic = ClassicSeparator(ClassicConfig(samplerate=SR, sources=("drums", "bass", "other"))).eval()
    with torch.inference_mode():
        y, ref = model(mix), classic(mix)
    assert y.shape == (1, 3, 2, mix.shape[-1])
    assert torch.allclose(y, ref, atol=1e-5), (y - ref).abs().max()
    assert torch.allclose(y.sum(1), mix, atol=1e-5)


def test_trained_corrections_change_the_stems_but_keep_the_sum():
    torch.manual_seed(0)
    model = ClassicRefiner(tiny()).eval()
    with torch.no_grad():
        for p in model.delta_heads.parameters():
            p.add_(0.1 * torch.randn_like(p))
    mix = _song()
    with torch.inference_mode():
        y = model(mix)
        ref = ClassicSeparator(ClassicConfig(samplerate=SR))(mix)
    assert (y - ref).abs().max() > 1e-3
    assert torch.allclose(y.sum(1), mix, atol=1e-5)


def test_gradients_reach_the_corrections_only_through_the_network():
    model = ClassicRefiner(tiny())
    y = model(_song(1.0))
    y[:, 0].square().mean().backward()
    assert model.delta_heads[0][0].fc2.weight.grad.abs().sum() > 0
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in model.parameters())


def test_warm_start_from_bsrnn_keeps_the_refiner_equal_to_classic(tmp_path):
    from stemwright.train.loop import init_weights

    cfg = tiny()
    bsrnn = BSRNN(BSRNNConfig(**{k: getattr(cfg, k) for k in (
        "sources", "samplerate", "n_fft", "hop_length", "band_widths", "feature_dim", "hidden_dim", "num_layers",
        "mlp_dim", "complement_source")}))
    save_checkpoint(bsrnn, tmp_path / "b")
    model = ClassicRefiner(cfg).eval()
    loaded, skipped = init_weights(model, tmp_path / "b")
    assert any(k.startswith("time_rnns") for k in loaded)
    assert all(k.startswith(("delta_heads", "prior_proj")) for k in skipped)
    mix = _song(1.0)
    with torch.inference_mode():
        assert torch.allclose(model(mix), ClassicSeparator(ClassicConfig(samplerate=SR))(mix), atol=1e-5)



SIX = ("drums", "bass", "guitar", "piano", "other")


def test_guitar_and_piano_start_from_equal_shares_of_classics_other():
    """The 6-stem splitter: untrained, drums/bass are classic's and guitar, piano and other split classic's other
    evenly; the prior features are classic's three stems only (the 3-stem splitter's shapes)."""
    model = ClassicRefiner(tiny(sources=SIX)).eval()
    assert model.prior_sources == ("drums", "bass", "other")
    mix = _song()
    classic = ClassicSeparator(ClassicConfig(samplerate=SR, sources=("drums", "bass", "other"))).eval()
    with torch.inference_mode():
        y, ref = model(mix), classic(mix)
    assert y.shape == (1, 5, 2, mix.shape[-1])
    assert torch.allclose(y[:, :2], ref[:, :2], atol=1e-5)
    for k in (2, 3, 4):
        assert torch.allclose(y[:, k], ref[:, 2] / 3, atol=1e-5), k
    assert torch.allclose(y.sum(1), mix, atol=1e-5)


def test_six_stem_splitter_warm_starts_from_the_three_stem_one(tmp_path):
    """Every tensor of a drums/bass/other refiner fits the 6-stem one; only the guitar/piano heads stay new, and
    drums/bass then come out exactly as the 3-stem model's."""
    from stemwright.train.loop import init_weights

    torch.manual_seed(0)
    three = ClassicRefiner(tiny(sources=("drums", "bass", "other"))).eval()
    with torch.no_grad():
        for p in three.parameters():
            p.add_(0.05 * torch.randn_like(p))
    save_checkpoint(three, tmp_path / "three")
    six = ClassicRefiner(tiny(sources=SIX)).eval()
    loaded, skipped = init_weights(six, tmp_path / "three")
    assert set(loaded) == set(three.state_dict())
    assert skipped and all(k.startswith(("delta_heads.2.", "delta_heads.3.")) for k in skipped)
    mix = _song(1.0)
    with torch.inference_mode():
        y, ref = six(mix), three(mix)
    assert torch.allclose(y[:, :2], ref[:, :2], atol=1e-5)
    assert torch.allclose(y.sum(1), mix, atol=1e-5)
