"""STFT/iSTFT: perfect reconstruction, shapes, configuration errors."""
from __future__ import annotations

import pytest
import torch

from stemwright.dsp.stft import StftConfig, frequencies, istft, make_window, stft


@pytest.mark.parametrize(
    "cfg",
    [
        StftConfig(),
        StftConfig(n_fft=2048, hop_length=512),
        StftConfig(n_fft=1024, hop_length=256, normalized=True),
        StftConfig(n_fft=512, hop_length=128, window="hamming"),
        StftConfig(n_fft=512, hop_length=256, window="sqrt_hann"),
        StftConfig(n_fft=4096, hop_length=1024, win_length=2048),
        StftConfig(n_fft=256, hop_length=64, center=True, pad_mode="constant"),
    ],
    ids=lambda c: f"{c.n_fft}/{c.hop_length}/{c.window}/{'norm' if c.normalized else 'raw'}/{c.win_length}",
)
@pytest.mark.parametrize("length", [4097, 10000, 44100])
def test_round_trip_is_perfect(cfg: StftConfig, length: int) -> None:
    x = torch.randn(2, 2, length, generator=torch.Generator().manual_seed(length))
    spec = stft(x, cfg)
    assert spec.shape[:2] == (2, 2) and spec.shape[2] == cfg.n_bins and spec.is_complex()
    y = istft(spec, cfg, length=length)
    assert y.shape == x.shape
    assert torch.allclose(y, x, atol=1e-5), float((y - x).abs().max())


def test_leading_dims_and_float64() -> None:
    cfg = StftConfig(n_fft=512, hop_length=128)
    x = torch.randn(3, 4, 2, 3000, dtype=torch.float64)
    spec = stft(x, cfg)
    assert spec.shape == (3, 4, 2, 257, 3000 // 128 + 1)
    assert spec.dtype == torch.complex128
    y = istft(spec, cfg, length=3000)
    assert torch.allclose(y, x, atol=1e-10)


def test_window_passed_explicitly_matches_default() -> None:
    cfg = StftConfig(n_fft=1024, hop_length=256)
    x = torch.randn(1, 5000)
    assert torch.allclose(stft(x, cfg), stft(x, cfg, window=make_window(cfg)))


def test_sine_lands_in_its_bin() -> None:
    cfg = StftConfig(n_fft=4096, hop_length=1024)
    sr = 44100
    t = torch.arange(sr) / sr
    freqs = frequencies(cfg, sr)
    f0 = float(freqs[100])
    spec = stft(torch.sin(2 * torch.pi * f0 * t), cfg)
    assert int(spec.abs().mean(-1).argmax()) == 100
    assert freqs.shape == (cfg.n_bins,) and float(freqs[-1]) == sr / 2


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n_fft=0), "positive"),
        (dict(hop_length=-1), "positive"),
        (dict(n_fft=512, win_length=1024), "win_length"),
        (dict(window="kaiser"), "unknown window"),
        (dict(pad_mode="mirror"), "pad_mode"),
    ],
)
def test_bad_config_is_rejected(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        StftConfig(**kwargs)


def test_pad_to_whole_hops_pads_with_zeros_only_when_needed() -> None:
    from stemwright.dsp.stft import StftConfig, pad_to_whole_hops

    cfg = StftConfig(n_fft=2048, hop_length=1024)
    x = torch.randn(2, 3000)
    padded = pad_to_whole_hops(x, cfg)
    assert padded.shape == (2, 3072) and torch.equal(padded[:, :3000], x) and not padded[:, 3000:].any()
    whole = torch.randn(1, 2048)
    assert pad_to_whole_hops(whole, cfg) is whole
