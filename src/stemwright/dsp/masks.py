"""Time-frequency masks: binary, ratio (soft) and complex, each summing to one over sources.

All functions take source estimates stacked on a source axis and return masks of the same layout.
Shape convention: ``(..., S, F, N)`` with S the source axis at ``dim=source_dim`` (default -3).
"""
from __future__ import annotations

import torch

EPS = 1e-10


def ratio_mask(magnitudes: torch.Tensor, power: float = 2.0, source_dim: int = -3, eps: float = EPS) -> torch.Tensor:
    """Soft mask ``|S_j|^p / sum_k |S_k|^p``; where every source is zero the mask is uniform ``1/S``.

    Shape: ``(..., S, F, N)`` real -> same.
    """
    n = magnitudes.shape[source_dim]
    if torch.is_grad_enabled() and magnitudes.requires_grad:  # autograd needs the intermediates unmodified
        p = magnitudes.abs().pow(power)
        total = p.sum(dim=source_dim, keepdim=True)
        return (p / total.clamp_min(eps)).masked_fill(~(total > eps), 1.0 / n)
    # In place on the one new tensor (the same values): the classic separator builds spectrogram-sized masks per
    # chunk, and each temporary was part of the peak memory of a separation.
    p = magnitudes.abs().pow_(power)
    total = p.sum(dim=source_dim, keepdim=True)
    silent = ~(total > eps)
    return p.div_(total.clamp_min_(eps)).masked_fill_(silent, 1.0 / n)


def binary_mask(magnitudes: torch.Tensor, source_dim: int = -3) -> torch.Tensor:
    """Hard mask: 1 for the loudest source in each bin, 0 elsewhere (ties go to the first source).

    Shape: ``(..., S, F, N)`` real -> same.
    """
    idx = magnitudes.abs().argmax(dim=source_dim, keepdim=True)
    return torch.zeros_like(magnitudes, dtype=torch.float32 if not magnitudes.is_floating_point() else magnitudes.dtype).scatter_(
        source_dim, idx, 1.0
    )


def complex_mask(estimates: torch.Tensor, mixture: torch.Tensor, source_dim: int = -3, eps: float = EPS) -> torch.Tensor:
    """Complex mask ``M_j`` with ``sum_j M_j = 1``: ``M_j = S_j / sum_k S_k``, re-centred so the masks sum to one
    exactly even where the estimates do not add up to the mixture.

    The residual ``X - sum_k S_k`` is shared among sources in proportion to their magnitude, then divided by X.

    Shape: estimates ``(..., S, F, N)`` complex, mixture ``(..., F, N)`` complex -> ``(..., S, F, N)`` complex.
    """
    mix = mixture.unsqueeze(source_dim)
    residual = mix - estimates.sum(dim=source_dim, keepdim=True)
    share = ratio_mask(estimates.abs(), power=1.0, source_dim=source_dim, eps=eps)
    corrected = estimates + share * residual
    safe = torch.where(mix.abs() > eps, mix, torch.full_like(mix, eps))
    masks = corrected / safe
    n = estimates.shape[source_dim]
    return torch.where(mix.abs() > eps, masks, torch.full_like(masks, 1.0 / n))


def apply_mask(mask: torch.Tensor, mixture: torch.Tensor, source_dim: int = -3) -> torch.Tensor:
    """Multiply a complex mixture spectrogram by per-source masks.

    Shape: mask ``(..., S, F, N)``, mixture ``(..., F, N)`` complex -> ``(..., S, F, N)`` complex.
    """
    return mask * mixture.unsqueeze(source_dim)
