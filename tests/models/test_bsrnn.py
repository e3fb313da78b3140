"""BSRNN: config validation, shapes, residual high band, checkpoint round trip, ONNX split vs ONNX Runtime."""
from __future__ import annotations

import pytest
import torch

from stemwright.models.bsrnn import BSRNN, BSRNNConfig, band_widths_from_edges, bsrnn_bands
from tests.models.tiny import TINY_BSRNN


def tiny(**kw) -> BSRNNConfig:
    return BSRNNConfig(**{**TINY_BSRNN, **kw})


def test_band_layouts_cover_every_bin():
    for sr, n_fft in ((44100, 2048), (44100, 4096), (16000, 1024)):
        assert sum(bsrnn_bands(sr, n_fft)) == n_fft // 2 + 1
        assert sum(bsrnn_bands(sr, n_fft, coarse=False)) == n_fft // 2 + 1
    # Up to 8 kHz only: 8000 / (44100 / 2048) = 371.5 -> 372 bins.
    assert sum(bsrnn_bands(44100, 2048, 8000)) == 372
    assert band_widths_from_edges(8000, 256, (1000.0,)) == (32, 97)


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="band_widths sum to 128 bins but n_fft=256 gives 129"):
        tiny(band_widths=(64, 64))
    with pytest.raises(ValueError, match="more than the 129 bins"):
        tiny(band_widths=(100, 100), residual_source="other")
    with pytest.raises(ValueError, match="residual_source 'piano' is not one of sources"):
        tiny(band_widths=(64,), residual_source="piano")
    with pytest.raises(ValueError, match="audio_channels"):
        tiny(audio_channels=3)
    with pytest.raises(ValueError, match="feature_dim must be positive"):
        tiny(feature_dim=0)
    with pytest.raises(TypeError):
        BSRNNConfig((1, 2))  # keyword-only


def test_shapes_multi_source_and_stereo():
    torch.manual_seed(0)
    model = BSRNN(tiny()).eval()
    x = torch.randn(2, 2, 8000)
    with torch.inference_mode():
        y = model(x)
    assert y.shape == (2, 4, 2, 8000)
    assert model.sources == ("vocals", "drums", "bass", "other") and model.samplerate == 8000 and model.audio_channels == 2
    mono = BSRNN(tiny(audio_channels=1, sources=("vocals", "accompaniment"))).eval()
    with torch.inference_mode():
        assert mono(torch.randn(1, 1, 1000)).shape == (1, 2, 1, 1000)
    with pytest.raises(ValueError, match="expects"):
        model(torch.randn(1, 1, 1000))


def test_residual_source_gets_the_unmodelled_high_band():
    torch.manual_seed(0)
    model = BSRNN(tiny(sources=("vocals", "accompaniment"), band_widths=(16, 16), residual_source="accompaniment")).eval()
    # Zero the mask heads: the modelled bins (< 32 * 31.25 Hz = 1 kHz) give silence for both sources.
    with torch.no_grad():
        for heads in model.heads:
            for h in heads:
                h.fc2.weight.zero_()
                h.fc2.bias.zero_()
    t = torch.arange(8000) / 8000
    high = torch.sin(2 * torch.pi * 3000 * t).expand(1, 2, -1).contiguous()
    with torch.inference_mode():
        y = model(high)
    inner = slice(500, -500)
    assert torch.allclose(y[0, 1, :, inner], high[0, :, inner], atol=2e-3)  # accompaniment = the high band
    assert y[0, 0].abs().max() < 1e-5  # vocals: nothing


def test_complement_source_makes_stems_sum_to_the_mixture():
    torch.manual_seed(3)
    cfg = tiny(sources=("vocals", "accompaniment"), band_widths=(16, 16, 32, 65), complement_source="accompaniment")
    model = BSRNN(cfg).eval()
    assert len(model.heads) == 1  # no mask head for the complement
    x = torch.randn(2, 2, 5000)
    with torch.inference_mode():
        y = model(x)
    assert y.shape == (2, 2, 2, 5000)
    assert torch.allclose(y.sum(1), x, atol=1e-5)
    # Initial masks are an even split of the mixture (1/S): the untrained model returns about half the mix each.
    assert abs(float((y[:, 0] * x).sum() / (x * x).sum()) - 0.5) < 0.1
    with pytest.raises(ValueError, match="complement_source 'piano'"):
        tiny(complement_source="piano")
    with pytest.raises(ValueError, match="residual_source must equal complement_source"):
        tiny(complement_source="other", residual_source="bass")


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    model = BSRNN(tiny())
    model(torch.randn(1, 2, 2000)).pow(2).mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing

