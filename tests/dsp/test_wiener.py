"""Multichannel Wiener filter: equality with openunmix 1.3.0's ``filtering.wiener``, shapes, dtypes, edge cases."""
from __future__ import annotations

import pytest
import torch

from stemwright.dsp.wiener import expectation_maximization, initial_estimates, wiener
from tests.models.umx_reference import import_openunmix

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def ref_wiener():
    """openunmix's ``filtering.wiener`` (test-only reference package)."""
    return import_openunmix("openunmix.filtering").wiener


def _inputs(sources: int, channels: int, dtype: torch.dtype, bins: int = 33, frames: int = 24, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    real = torch.randn(channels, bins, frames, generator=gen, dtype=dtype)
    imag = torch.randn(channels, bins, frames, generator=gen, dtype=dtype)
    spec = 3 * torch.rand(sources, channels, bins, frames, generator=gen, dtype=dtype)
    return spec, torch.complex(real, imag)


def _reference(ref_wiener, spec, mix, iterations, softmask, residual):
    """Run the reference in its layout: spectrograms (N, F, C, S), mixture (N, F, C, 2) -> ours (S, C, F, N)."""
    out = ref_wiener(
        spec.permute(3, 2, 1, 0).contiguous(),
        torch.view_as_real(mix.permute(2, 1, 0)).clone(),
        iterations,
        softmask=softmask,
        residual=residual,
    )
    return torch.view_as_complex(out.permute(4, 2, 1, 0, 3).contiguous())


@pytest.mark.parity
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("sources", [1, 2, 4])
@pytest.mark.parametrize("softmask,residual", [(False, False), (True, False), (False, True), (True, True)])
@pytest.mark.parametrize("iterations", [0, 2])
def test_equals_openunmix(ref_wiener, dtype, channels, sources, softmask, residual, iterations):
    spec, mix = _inputs(sources, channels, dtype)
    ours = wiener(spec, mix, iterations, softmask=softmask, residual=residual)
    ref = _reference(ref_wiener, spec, mix, iterations, softmask, residual)
    assert ours.shape == ref.shape
    # float64: the reference's own atan2 uses a float32 pi, which limits its phase to ~3e-7 rad; values are O(1).
    tol = 5e-6 if dtype == torch.float64 else 1e-4
    assert (ours - ref).abs().max().item() <= tol


@pytest.mark.parity
def test_windows_and_batch_equal_reference_loop(ref_wiener):
    """``frames_per_window`` and leading batch axes = the reference called per item and per block (Separator)."""
    batch = [_inputs(3, 2, torch.float32, frames=50, seed=s) for s in range(2)]
    spec = torch.stack([b[0] for b in batch])
    mix = torch.stack([b[1] for b in batch])
    ours = wiener(spec, mix, 2, frames_per_window=20, batch_frames=7)
    for i in range(2):
        for start in range(0, 50, 20):
            blk = slice(start, start + 20)
            ref = _reference(ref_wiener, spec[i][..., blk], mix[i][..., blk], 2, False, False)
            assert (ours[i][..., blk] - ref).abs().max().item() <= 1e-4


@pytest.mark.parametrize("dtype,cdtype", [(torch.float32, torch.complex64), (torch.float64, torch.complex128)])
@pytest.mark.parametrize("channels", [1, 2, 3])
@pytest.mark.parametrize("residual", [False, True])
def test_shapes_and_dtypes(dtype, cdtype, channels, residual):
    spec, mix = _inputs(4, channels, dtype, frames=10)
    spec, mix = spec[None], mix[None]  # a batch axis
    out = wiener(spec, mix, 1, residual=residual)
    assert out.dtype == cdtype
    assert out.shape == (1, 4 + int(residual), channels, 33, 10)
    assert torch.isfinite(out.real).all() and torch.isfinite(out.imag).all()


def test_mono_spectrograms_broadcast_over_channels():
    spec, mix = _inputs(2, 2, torch.float64)
    mono = spec.mean(dim=1, keepdim=True)
    out = wiener(mono, mix, 0)
    assert out.shape == (2, 2, 33, 24)
    expected = mono * mix / mix.abs()
    assert torch.allclose(out, expected.to(out.dtype), atol=1e-12)


def test_softmask_and_residual_sum_to_mixture():
    spec, mix = _inputs(3, 2, torch.float64)
    soft = wiener(spec, mix, 0, softmask=True, eps=0.0)
    assert torch.allclose(soft.sum(dim=0), mix, atol=1e-12)
    res = wiener(spec, mix, 0, residual=True)
    assert torch.allclose(res.sum(dim=0), mix, atol=1e-12)


def test_em_estimates_nearly_sum_to_mixture():
    """The Wiener gains sum to (C_x - sqrt(eps) I) C_x^-1 ~ I, so EM estimates add up to the mixture."""
    spec, mix = _inputs(4, 2, torch.float64)
    out = wiener(spec, mix, 2)
    assert (out.sum(dim=0) - mix).abs().max().item() < 1e-3


def test_em_returns_psd_and_spatial_covariances():
    spec, mix = _inputs(2, 2, torch.float64)
    y0 = initial_estimates(spec, mix)
    y, v, r = expectation_maximization(y0, mix, 1)
    assert v.shape == (2, 33, 24) and r.shape == (2, 33, 2, 2)
    assert torch.allclose(r, r.conj().transpose(-1, -2))  # Hermitian


def test_inputs_untouched_and_silence_stays_silent():
    spec, mix = _inputs(2, 2, torch.float32)
    mix[..., :5] = 0  # digital silence
    spec[..., :5] = 0
    before_mix, before_spec = mix.clone(), spec.clone()
    out = wiener(spec, mix, 1, residual=True)
    assert torch.equal(mix, before_mix) and torch.equal(spec, before_spec)
    assert out[..., :5].abs().max().item() == 0.0


def test_bad_inputs_are_named():
    spec, mix = _inputs(2, 2, torch.float32)
    with pytest.raises(TypeError, match="complex"):
        wiener(spec, mix.real, 1)
    with pytest.raises(ValueError, match="do not match"):
        wiener(spec[..., :5], mix, 1)
    with pytest.raises(ValueError, match="iterations"):
        wiener(spec, mix, -1)
