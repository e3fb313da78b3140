"""Multichannel Wiener filter with expectation-maximisation (EM) refinement.

A port of ``openunmix.filtering.wiener`` (norbert) to complex torch tensors in stemwright's layout. The sources are
modelled as local Gaussian processes: source ``j`` at bin ``(f, n)`` has covariance ``v_j(f, n) R_j(f)``, with
``v_j`` its power spectral density and ``R_j`` a ``C x C`` spatial covariance matrix per frequency. Each EM
iteration (Nugraha, Liutkus & Vincent 2016, "Multichannel audio source separation with deep neural networks",
IEEE/ACM TASLP 24(9), sec. III; the simplified M-step of Liutkus et al. 2014):

1. ``v_j = mean_c |y_jc|^2`` (PSD as the channel-averaged power of the current estimate);
2. ``R_j = sum_n y_j y_j^H / (eps + sum_n v_j)`` (weighted empirical spatial covariance);
3. ``C_x = sqrt(eps) I + sum_j v_j R_j`` (mixture covariance; the ``sqrt(eps)`` ridge is norbert's);
4. ``y_j = v_j R_j C_x^{-1} x`` (multichannel Wiener gain applied to the mixture).

Shapes: spectrograms ``(..., S, C', F, N)`` (non-negative magnitudes, ``C'`` = C or 1), mixture
``(..., C, F, N)`` complex; result ``(..., S, C, F, N)`` complex (``S + 1`` sources with ``residual``).

Differences from the reference, on purpose:
- Leading batch axes are supported: each item gets its own scaling, PSDs and spatial covariances (the reference
  is called item by item, so results agree).
- The reference's ``atan2`` helper writes into the mixture it is given, turning exact-zero STFT bins into ``1+0j``
  (which then leaks into the residual source during digital silence). stemwright does not copy that side effect:
  the mixture is never modified and silent bins stay silent.
- More than 2 channels are supported (general matrix inverse); 1 and 2 channels use the reference's closed forms.
"""
from __future__ import annotations

import math

import torch

#: Default ridge / floor, as in openunmix (``eps`` is a white-noise power; its square root regularises C_x).
EPS = 1e-10
#: Estimates are scaled so that the mixture's largest magnitude is at most this (norbert's numerical-range guard).
SCALE_FACTOR = 10.0


def _invert(m: torch.Tensor) -> torch.Tensor:
    """Inverse of ``(..., C, C)`` complex matrices (closed forms for C = 1, 2 as the reference)."""
    c = m.shape[-1]
    if c == 1:
        return 1.0 / m
    if c == 2:
        a, b, cc, d = m[..., 0, 0], m[..., 0, 1], m[..., 1, 0], m[..., 1, 1]
        inv_det = 1.0 / (a * d - b * cc)
        row0 = torch.stack([d * inv_det, -b * inv_det], dim=-1)
        row1 = torch.stack([-cc * inv_det, a * inv_det], dim=-1)
        return torch.stack([row0, row1], dim=-2)
    return torch.linalg.inv(m)


def initial_estimates(
    spectrograms: torch.Tensor,
    mix_stft: torch.Tensor,
    *,
    softmask: bool = False,
    residual: bool = False,
    eps: float = EPS,
) -> torch.Tensor:
    """First complex estimates of the sources, before EM.

    ``softmask=False``: each magnitude estimate with the mixture's phase. ``softmask=True``: the mixture times
    the ratio mask ``|S_j| / (eps + sum_k |S_k|)``. ``residual`` appends ``mixture - sum_j y_j`` as a source.

    Shape: ``(..., S, C', F, N)`` real, ``(..., C, F, N)`` complex -> ``(..., S[+1], C, F, N)`` complex.
    """
    spec = spectrograms.to(mix_stft.real.dtype)
    x = mix_stft.unsqueeze(-4)
    if softmask:
        y = x * (spec / (eps + spec.sum(dim=-4, keepdim=True)))
    else:
        # The mixture's phase as a unit phasor (phase 0 where the mixture is exactly 0, like atan2(0, 0) = 0).
        mag = x.abs()
        phasor = torch.where(mag > 0, x / torch.where(mag > 0, mag, 1.0), torch.ones_like(x))
        y = spec * phasor
    if residual:
        y = torch.cat([y, x - y.sum(dim=-4, keepdim=True)], dim=-4)
    return y


def _e_step(v: torch.Tensor, r: torch.Tensor, x: torch.Tensor, ridge: torch.Tensor) -> torch.Tensor:
    """Wiener estimates ``y_j = v_j R_j C_x^{-1} x`` for a block of frames.

    Evaluated as ``v_j R_j (C_x^{-1} x)`` (the same product without forming per-source gain matrices) with
    broadcast products over the tiny channel axes, which is much faster than batched matmuls of 2x2 matrices.

    Shape: ``v (..., S, F, n)`` complex, ``r (..., S, F, C, C)``, ``x (..., C, F, n)`` -> ``(..., S, C, F, n)``.
    """
    cxx = ridge + (v[..., None, None] * r.unsqueeze(-3)).sum(dim=-5)  # (..., F, n, C, C)
    inv = _invert(cxx)
    xt = x.movedim(-3, -1)  # (..., F, n, C)
    z = (inv * xt.unsqueeze(-2)).sum(dim=-1)  # (..., F, n, C)
    y = (r.unsqueeze(-3) * z.unsqueeze(-2).unsqueeze(-5)).sum(dim=-1)  # (..., S, F, n, C)
    return (v.unsqueeze(-1) * y).movedim(-1, -3)


def expectation_maximization(
    y: torch.Tensor,
    x: torch.Tensor,
    iterations: int = 2,
    *,
    eps: float = EPS,
    batch_frames: int = 200,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Refine source estimates by EM (see the module docstring for the update rules).

    ``batch_frames`` bounds the memory of the E-step (``(F, batch_frames, C, C)`` matrices at a time); it does not
    change the result. Returns ``(y, v, R)``.

    Shape: ``y (..., S, C, F, N)`` complex, ``x (..., C, F, N)`` complex ->
    ``y (..., S, C, F, N)``, ``v (..., S, F, N)`` real, ``R (..., S, F, C, C)`` complex.
    """
    channels, n_frames = x.shape[-3], x.shape[-1]
    eye = torch.eye(channels, dtype=x.dtype, device=x.device)
    ridge = math.sqrt(eps) * eye
    v = torch.zeros(y.shape[:-3] + y.shape[-2:], dtype=x.real.dtype, device=x.device)
    r = torch.zeros(y.shape[:-3] + (y.shape[-2], channels, channels), dtype=x.dtype, device=x.device)
    step = batch_frames if batch_frames and batch_frames > 0 else n_frames
    for _ in range(iterations):
        v = (y.real.square() + y.imag.square()).mean(dim=-3)
        weight = eps + v.sum(dim=-1)
        r = torch.einsum("...scfn,...sdfn->...sfcd", y, y.conj()) / weight[..., None, None]
        out = torch.empty_like(y)
        for start in range(0, n_frames, step):
            t = slice(start, min(n_frames, start + step))
            out[..., t] = _e_step(v[..., t].to(x.dtype), r, x[..., t], ridge)
        y = out
    return y, v, r


def _wiener_window(
    spectrograms: torch.Tensor,
    mix_stft: torch.Tensor,
    iterations: int,
    softmask: bool,
    residual: bool,
    scale_factor: float,
    eps: float,
    batch_frames: int,
) -> torch.Tensor:
    y = initial_estimates(spectrograms, mix_stft, softmask=softmask, residual=residual, eps=eps)
    if iterations == 0:
        return y
    # Scale down so the largest mixture magnitude is <= scale_factor (per item), for numerical range; EM is run
    # on the scaled signals and the estimates scaled back (as the reference does).
    peak = mix_stft.abs().flatten(start_dim=-3).amax(dim=-1)[..., None, None, None]
    max_abs = torch.clamp(peak / scale_factor, min=1.0)
    y, _, _ = expectation_maximization(y / max_abs.unsqueeze(-4), mix_stft / max_abs, iterations, eps=eps,
                                       batch_frames=batch_frames)
    return y * max_abs.unsqueeze(-4)


def wiener(
    spectrograms: torch.Tensor,
    mix_stft: torch.Tensor,
    iterations: int = 1,
    *,
    softmask: bool = False,
    residual: bool = False,
    scale_factor: float = SCALE_FACTOR,
    eps: float = EPS,
    frames_per_window: int | None = None,
    batch_frames: int = 200,
) -> torch.Tensor:
    """Separate a complex mixture STFT from source magnitude estimates with a multichannel Wiener filter.

    ``iterations`` EM steps refine the initial estimates (0: magnitudes with the mixture phase, or the soft mask
    with ``softmask``). ``frames_per_window`` filters consecutive blocks of that many frames independently (the
    ``wiener_win_len`` of Open-Unmix's Separator: time-varying spatial models, bounded memory); ``None`` filters
    the whole signal at once. Use float64 inputs for double precision; float32 stays float32.

    Shape: spectrograms ``(..., S, C', F, N)`` real (C' = C or 1), mixture ``(..., C, F, N)`` complex ->
    ``(..., S, C, F, N)`` complex (``S + 1`` sources with ``residual``, the residual last).
    """
    if not mix_stft.is_complex():
        raise TypeError(f"mix_stft must be a complex tensor, got {mix_stft.dtype}")
    if spectrograms.is_complex():
        raise TypeError("spectrograms must be real magnitude estimates, got a complex tensor")
    if spectrograms.dim() < 4 or mix_stft.dim() < 3:
        raise ValueError(
            f"expected spectrograms (..., S, C, F, N) and mixture (..., C, F, N), got {tuple(spectrograms.shape)} "
            f"and {tuple(mix_stft.shape)}"
        )
    if spectrograms.shape[-2:] != mix_stft.shape[-2:] or spectrograms.shape[-3] not in (1, mix_stft.shape[-3]):
        raise ValueError(
            f"spectrograms {tuple(spectrograms.shape)} do not match the mixture {tuple(mix_stft.shape)} "
            "(need the same bins and frames, and C or 1 channels)"
        )
    if iterations < 0:
        raise ValueError(f"iterations must be >= 0, got {iterations}")
    n_frames = mix_stft.shape[-1]
    window = frames_per_window or n_frames
    if window <= 0:
        raise ValueError(f"frames_per_window must be positive, got {frames_per_window}")
    args = (iterations, softmask, residual, scale_factor, eps, batch_frames)
    if n_frames == 0:
        return _wiener_window(spectrograms, mix_stft, 0, softmask, residual, scale_factor, eps, batch_frames)
    parts = [
        _wiener_window(spectrograms[..., s : s + window], mix_stft[..., s : s + window], *args)
        for s in range(0, n_frames, window)
    ]
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)
