"""Masks: binary, ratio and complex masks sum to one over sources."""
from __future__ import annotations

import pytest
import torch

from stemwright.dsp.masks import apply_mask, binary_mask, complex_mask, ratio_mask

G = torch.Generator().manual_seed(0)


def _mags(*shape: int) -> torch.Tensor:
    m = torch.rand(*shape, generator=G)
    m[..., :3, :] = 0.0  # bins where every source is silent
    return m


@pytest.mark.parametrize("power", [0.5, 1.0, 2.0])
def test_ratio_mask_sums_to_one(power: float) -> None:
    mags = _mags(2, 4, 2, 65, 30)  # (B, S, C, F, N) with the source axis at -4
    masks = ratio_mask(mags, power=power, source_dim=1)
    assert masks.shape == mags.shape
    assert torch.allclose(masks.sum(dim=1), torch.ones(2, 2, 65, 30), atol=1e-6)
    assert (masks >= 0).all() and (masks <= 1).all()
    assert torch.allclose(masks[:, :, :, :3], torch.full_like(masks[:, :, :, :3], 0.25))  # silent bins: uniform


def test_ratio_mask_prefers_the_louder_source() -> None:
    mags = torch.tensor([[[3.0]], [[1.0]]])  # (S=2, F=1, N=1)
    m = ratio_mask(mags, power=2.0)
    assert torch.allclose(m[:, 0, 0], torch.tensor([0.9, 0.1]))


def test_binary_mask_is_one_hot_and_sums_to_one() -> None:
    mags = _mags(3, 33, 20)
    masks = binary_mask(mags)
    assert torch.equal(masks.sum(dim=-3), torch.ones(33, 20))
    assert set(masks.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(masks.argmax(dim=-3)[3:], mags.argmax(dim=-3)[3:])


def test_complex_mask_sums_to_one_and_reconstructs() -> None:
    est = torch.randn(2, 4, 33, 20, dtype=torch.complex64, generator=G)  # (B, S, F, N)
    mix = est.sum(dim=1) + 0.1 * torch.randn(2, 33, 20, dtype=torch.complex64, generator=G)
    mix[..., 0, :] = 0  # a silent bin row
    masks = complex_mask(est, mix, source_dim=1)
    assert masks.shape == est.shape and masks.is_complex()
    assert torch.allclose(masks.sum(dim=1), torch.ones(2, 33, 20, dtype=torch.complex64), atol=1e-5)
    stems = apply_mask(masks, mix, source_dim=1)
    assert torch.allclose(stems.sum(dim=1), mix, atol=1e-5)


def test_complex_mask_is_exact_when_estimates_add_up() -> None:
    est = torch.randn(3, 17, 9, dtype=torch.complex64, generator=G)
    mix = est.sum(dim=0)
    stems = apply_mask(complex_mask(est, mix), mix)
    assert torch.allclose(stems, est, atol=1e-4)


def test_apply_mask_shapes() -> None:
    mix = torch.randn(2, 2, 33, 10, dtype=torch.complex64)  # (B, C, F, N)
    masks = ratio_mask(torch.rand(2, 4, 2, 33, 10), source_dim=1)
    out = apply_mask(masks, mix, source_dim=1)
    assert out.shape == (2, 4, 2, 33, 10)
    assert torch.allclose(out.sum(dim=1), mix, atol=1e-5)


def test_ratio_mask_in_place_path_equals_the_autograd_path_and_keeps_the_input():
    # Without autograd ratio_mask works in place on its own new tensor (memory); the numbers must not change.
    torch.manual_seed(0)
    mags = torch.rand(2, 3, 5, 7)
    mags[:, :, 0] = 0.0  # silent bins: the uniform 1/S
    before = mags.clone()
    with torch.no_grad():
        fast = ratio_mask(mags, power=1.5, source_dim=1)
    slow = ratio_mask(mags.clone().requires_grad_(), power=1.5, source_dim=1)
    assert torch.equal(fast, slow.detach()) and torch.equal(mags, before)
    assert torch.allclose(fast[:, :, 0], torch.full_like(fast[:, :, 0], 1 / 3))
