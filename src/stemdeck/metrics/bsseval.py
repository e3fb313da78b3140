"""BSS Eval v4 (SiSEC 2018), numerically the same as ``museval`` 0.4.1, vectorised.

The algorithm is museval's ``metrics.bss_eval(..., framewise_filters=False, bsseval_sources_version=False)``
(Liutkus, Stöter & Ito, "The 2018 Signal Separation Evaluation Campaign", LVA/ICA 2018, Sec. 3; the decomposition
is Vincent, Gribonval & Févotte 2006, Sec. III-B with multichannel time-invariant filters of ``filters_len`` taps):

1. Distortion filters are least-squares projections of each estimate onto the delayed references, solved once
   over the whole track (``G C = D``, ``G`` the Gram matrix of all references delayed by 0..L-1 samples, plus
   ``eps * I`` as museval does). ``C_j`` (projection onto the own reference only) and ``C`` (onto all references).
2. Per window (default 1 s, no overlap) the window's references are convolved with those filters (window zero-padded
   by ``L - 1`` at the end, exactly as museval) giving ``P_j`` and ``P_all``; with ``s`` the true image and ``ŝ``
   the estimate, both zero-padded:

   - SDR = ||s||² / ||ŝ - s||²,  ISR = ||s||² / ||P_j - s||²,
   - SIR = ||P_j||² / ||P_all - P_j||²,  SAR = ||P_all||² / ||ŝ - P_all||²  (all in dB).

Where museval loops over windows, sources and channel pairs with full-length FFTs, this module computes the Gram
matrix and cross-correlations from block-accumulated cross-spectra (memory bounded, one inverse FFT per pair), solves
all right-hand sides with one factorisation, and convolves every window of every source in batched FFTs.

``sources_version=True`` gives the ``bss_eval_sources`` variant (BSS Eval v2/v3, used for MIR-1K's NSDR):
SDR = ||P_j||² / ||ŝ - P_j||², SIR as above, SAR = ||P_all||² / ||ŝ - P_all||², ISR = NaN.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import scipy.fft

log = logging.getLogger(__name__)

FILTERS_LEN = 512  # museval default: 512-tap distortion filters (SiSEC 2018, Sec. 3)
_BLOCK_FFT = 1 << 13  # FFT size of the blocks used to accumulate cross-spectra (cache-friendly)
_BLOCK_GROUP = 64  # blocks transformed per batch (the accumulator is updated once per group)
_FRAME_BATCH = 16  # windows convolved per batch (bounds memory on long tracks)


@dataclass(frozen=True)
class BssEvalScores:
    """Per-window scores. Each array has shape ``(S, W)`` (sources, windows); NaN where a window is silent.

    ``time``: start of each window in samples. Shape ``(W,)``.
    """

    sdr: np.ndarray
    isr: np.ndarray
    sir: np.ndarray
    sar: np.ndarray
    window: int
    hop: int
    time: np.ndarray

    def as_dict(self) -> dict[str, np.ndarray]:
        return {"SDR": self.sdr, "ISR": self.isr, "SIR": self.sir, "SAR": self.sar}


def framing(length: int, window: int, hop: int) -> list[tuple[int, int]]:
    """Window boundaries exactly as museval's ``Framing``: ``floor((N - win + hop) / hop)`` full windows, or one
    window over the whole signal when ``win >= N``."""
    if window < length:
        nwin = int(np.floor((length - window + hop) / hop))
        return [(t * hop, min(t * hop + window, length)) for t in range(nwin)]
    return [(0, length)]


def _as_sources(x: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 1:
        a = a[None, None]
    elif a.ndim == 2:
        a = a[:, None]
    if a.ndim != 3:
        raise ValueError(f"{name} must have shape (sources, channels, time), got {np.shape(x)}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains non-finite values")
    return a


def _block_cross_spectra(x: np.ndarray, y: np.ndarray, lags: int) -> np.ndarray:
    """Linear cross-correlations for non-negative lags: ``r[p, q, k] = sum_n x[p, n + k] * y[q, n]``.

    Accumulates ``X_b conj(Y_b)`` over blocks (overlap-save style: each block of ``y`` against the block of ``x``
    extended by ``lags - 1`` samples), then one inverse FFT per pair. Same values as museval's full-length FFTs.

    Shape: ``x (P, N)``, ``y (Q, N)`` -> ``(P, Q, lags)``.
    """
    n = x.shape[-1]
    m = max(_BLOCK_FFT, scipy.fft.next_fast_len(2 * lags, real=True))
    block = m - lags + 1
    starts = list(range(0, n, block))
    acc = np.zeros((x.shape[0], y.shape[0], m // 2 + 1), dtype=np.complex128)
    for first in range(0, len(starts), _BLOCK_GROUP):
        group = starts[first : first + _BLOCK_GROUP]
        xs = np.zeros((len(group), x.shape[0], block + lags - 1))
        ys = np.zeros((len(group), y.shape[0], block))
        for g, start in enumerate(group):
            seg = x[:, start : start + block + lags - 1]
            xs[g, :, : seg.shape[-1]] = seg
            seg = y[:, start : start + block]
            ys[g, :, : seg.shape[-1]] = seg
        xf = scipy.fft.rfft(xs, n=m, axis=-1, workers=-1)
        yf = scipy.fft.rfft(ys, n=m, axis=-1, workers=-1)
        acc += np.einsum("gpf,gqf->pqf", xf, yf.conj(), optimize=True)
    return scipy.fft.irfft(acc, n=m, axis=-1, workers=-1)[..., :lags]


def _toeplitz_gram(r: np.ndarray) -> np.ndarray:
    """Gram matrix of delayed signals from their correlations, laid out as museval's ``_reshape_G``.

    ``G[(p, a), (q, b)] = <x_p delayed by a, x_q delayed by b> = r[p, q, b - a]`` (``r[q, p, a - b]`` for b < a).
    Shape: ``r (K, K, L)`` -> ``(K * L, K * L)``.
    """
    k, _, lags = r.shape
    # full[p, q, L - 1 + d] = correlation at lag d in [-(L-1), L-1]; row a of block (p, q) is full[L-1-a : 2L-1-a]
    full = np.concatenate([r.transpose(1, 0, 2)[:, :, :0:-1], r], axis=-1)
    windows = np.lib.stride_tricks.sliding_window_view(full, lags, axis=-1)[:, :, ::-1, :]  # (K, K, L, L): p q a b
    return np.ascontiguousarray(windows.transpose(0, 2, 1, 3)).reshape(k * lags, k * lags)


def _solve(g: np.ndarray, d: np.ndarray) -> np.ndarray:
    """``(G + eps I)^-1 D`` as museval; ``g`` is overwritten by ``G + eps I`` (``eps`` = float64 machine epsilon on the diagonal).

    ``G`` is a Gram matrix (symmetric positive semi-definite), so a Cholesky factorisation (half the work of LU) is
    tried first; LU with partial pivoting (museval's ``np.linalg.solve``) if it is not numerically positive definite,
    least squares if singular.
    """
    import torch

    eps = np.finfo(float).eps
    a = g  # modified in place: callers pass matrices they own
    n = a.shape[-1]
    a.reshape(*a.shape[:-2], n * n)[..., :: n + 1] += eps  # + eps * I without an n x n temporary
    at, dt = torch.from_numpy(a), torch.from_numpy(np.ascontiguousarray(d))
    chol, info = torch.linalg.cholesky_ex(at)
    if not bool((info != 0).any()):
        return torch.cholesky_solve(dt, chol).numpy()
    try:
        return np.linalg.solve(a, d)
    except np.linalg.LinAlgError:
        log.warning("BSS Eval: singular reference Gram matrix, falling back to least squares")
        if a.ndim == 2:
            return np.linalg.lstsq(g, d, rcond=None)[0]
        return np.stack([np.linalg.lstsq(gi, di, rcond=None)[0] for gi, di in zip(g, d)])


def distortion_filters(refs: np.ndarray, ests: np.ndarray, filters_len: int = FILTERS_LEN) -> tuple[np.ndarray, np.ndarray]:
    """Time-invariant distortion filters over the whole signals.

    Returns ``c_all`` of shape ``(S_est, S_ref, C_in, L, C_out)`` (estimate ``e`` projected onto all references:
    museval's ``C[e]``) and ``c_own`` of shape ``(S, C_in, L, C_out)`` (estimate ``j`` onto reference ``j`` only:
    museval's ``Cj[j, j, 0]``).

    Shape: ``refs, ests (S, C, T)``.
    """
    s, c, n = refs.shape
    flat_r = refs.reshape(s * c, n)
    flat_e = ests.reshape(s * c, n)
    r_rr = _block_cross_spectra(flat_r, flat_r, filters_len)  # (K, K, L)
    r_er = _block_cross_spectra(flat_e, flat_r, filters_len)  # (K_est, K_ref, L): sum_n e[n+a] r[n]
    g = _toeplitz_gram(r_rr)  # (K L, K L)
    # D[(p, a), (e, c_out)] = <ref p delayed by a, estimate channel (e, c_out)>
    d = r_er.transpose(1, 2, 0).reshape(s * c * filters_len, s * c)
    kl = c * filters_len
    g_own = np.stack([g[j * kl : (j + 1) * kl, j * kl : (j + 1) * kl] for j in range(s)])
    d_own = np.stack([d[j * kl : (j + 1) * kl, j * c : (j + 1) * c] for j in range(s)])
    c_all = _solve(g, d).reshape(s, c, filters_len, s, c).transpose(3, 0, 1, 2, 4)
    c_own = _solve(g_own, d_own).reshape(s, c, filters_len, c)
    return c_all, c_own


def _db(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``10 log10(num / den)``; ``+inf`` where ``den == 0`` (museval's ``_safe_db``)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = 10.0 * np.log10(num / den)
    return np.where(den == 0, np.inf, out)


def _silent(frames: np.ndarray) -> np.ndarray:
    """museval's ``_any_source_silent`` per window: some source whose channel sum is zero at every sample.

    Shape: ``(W, S, C, Lw)`` -> ``(W,)`` bool.
    """
    return np.any(np.all(frames.sum(axis=2) == 0, axis=-1), axis=1)


def bss_eval_v4(
    references: np.ndarray,
    estimates: np.ndarray,
    *,
    window: int = 44100,
    hop: int = 44100,
    filters_len: int = FILTERS_LEN,
    padding: bool = True,
    sources_version: bool = False,
) -> BssEvalScores:
    """BSS Eval v4 images (museval ``evaluate(..., mode="v4")``) per window.

    ``padding``: estimates shorter than the references are zero-padded at the end, longer ones truncated (museval's
    ``pad_or_truncate``). ``window``/``hop`` in samples; ``window >= T`` (e.g. ``np.inf``) scores the whole signal.
    Windows where a reference or an estimate is silent give NaN (as museval). Unlike museval, a source that is silent
    over the whole track does not raise: all its windows are NaN.

    Shape: ``references, estimates (S, C, T)`` (also ``(S, T)`` mono) -> scores ``(S, W)``.
    """
    refs = _as_sources(references, "references")
    ests = _as_sources(estimates, "estimates")
    if padding and ests.shape[-1] != refs.shape[-1]:
        n = refs.shape[-1]
        ests = ests[..., :n] if ests.shape[-1] > n else np.pad(ests, [(0, 0), (0, 0), (0, n - ests.shape[-1])])
    if refs.shape != ests.shape:
        raise ValueError(f"references {refs.shape} and estimates {ests.shape} must have the same shape")
    s, c, n = refs.shape
    if n == 0 or s == 0:
        raise ValueError("references are empty")
    if window <= 0 or hop <= 0:
        raise ValueError(f"window and hop must be positive, got {window}, {hop}")
    win = n if not np.isfinite(window) else int(window)
    hop_i = n if not np.isfinite(hop) else int(hop)
    bounds = framing(n, win, hop_i)
    c_all, c_own = distortion_filters(refs, ests, filters_len)
    scores = _window_scores(refs, ests, bounds, c_all, c_own, sources_version)
    return BssEvalScores(*scores, window=win, hop=hop_i, time=np.array([b[0] for b in bounds]))


def _window_scores(
    refs: np.ndarray,
    ests: np.ndarray,
    bounds: list[tuple[int, int]],
    c_all: np.ndarray,
    c_own: np.ndarray,
    sources_version: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Batched FFT convolution of every window with the filters, then the four energy ratios. -> 4 x ``(S, W)``.

    The projections are linear convolutions that fit inside the FFT length, so their energies (and those of their
    differences with the zero-padded window) are taken in the frequency domain (Parseval) without inverse FFTs.
    Spectra are laid out ``(F, B, S*C)`` so that filtering is one batched matrix product per window batch.
    """
    s, c, _ = refs.shape
    lf = c_all.shape[-2]
    lw = bounds[0][1] - bounds[0][0]
    nfft = scipy.fft.next_fast_len(lw + lf - 1, real=True)
    nf = nfft // 2 + 1
    # filters as (F, S*Ci, E*Co) matrices; the own-source filters block-diagonal
    h_all = scipy.fft.rfft(c_all, n=nfft, axis=-2, workers=-1)  # (E, S, Ci, F, Co)
    h_all = np.ascontiguousarray(h_all.transpose(3, 1, 2, 0, 4)).reshape(nf, s * c, s * c)
    h_own_s = scipy.fft.rfft(c_own, n=nfft, axis=-2, workers=-1).transpose(2, 0, 1, 3)  # (F, S, Ci, Co)
    h_own = np.zeros((nf, s, c, s, c), dtype=np.complex128)
    for j in range(s):
        h_own[:, j, :, j, :] = h_own_s[:, j]
    h_own = h_own.reshape(nf, s * c, s * c)
    weight = np.full(nf, 2.0 / nfft)  # one-sided Parseval weights
    weight[0] = 1.0 / nfft
    if nfft % 2 == 0:
        weight[-1] = 1.0 / nfft

    def energy(x: np.ndarray) -> np.ndarray:  # (F, B, S*C) complex -> (B, S), no squared temporary
        v = x.view(np.float64).reshape(nf, x.shape[1], s, 2 * c)
        return np.einsum("fbsk,fbsk,f->bs", v, v, weight)

    def spectra(frames: np.ndarray) -> np.ndarray:  # (B, S, C, Lw) -> (F, B, S*C)
        spec = scipy.fft.rfft(frames.reshape(frames.shape[0], s * c, -1), n=nfft, axis=-1, workers=-1)
        return np.ascontiguousarray(spec.transpose(2, 0, 1))

    result = np.full((4, s, len(bounds)), np.nan)
    for first in range(0, len(bounds), _FRAME_BATCH):
        idx = range(first, min(first + _FRAME_BATCH, len(bounds)))
        rf = np.stack([refs[..., bounds[t][0] : bounds[t][1]] for t in idx])  # (B, S, C, Lw)
        ef = np.stack([ests[..., bounds[t][0] : bounds[t][1]] for t in idx])
        ok = ~(_silent(rf) | _silent(ef))
        if not ok.any():
            continue
        rf, ef = rf[ok], ef[ok]
        spec_r, spec_e = spectra(rf), spectra(ef)
        p_all = np.matmul(spec_r, h_all)  # (F, B, E*Co)
        p_own = np.matmul(spec_r, h_own)  # (F, B, S*Co)
        e_own = energy(p_own)
        if sources_version:
            sdr = _db(e_own, energy(spec_e - p_own))
            isr = np.full_like(sdr, np.nan)
        else:
            e_true = np.einsum("bsct,bsct->bs", rf, rf)  # time domain: SDR needs no projection at all
            diff = ef - rf
            sdr = _db(e_true, np.einsum("bsct,bsct->bs", diff, diff))
            isr = _db(e_true, energy(p_own - spec_r))
        sir = _db(e_own, energy(p_all - p_own))
        sar = _db(energy(p_all), energy(spec_e - p_all))
        cols = np.asarray(idx)[ok]
        for k, v in enumerate((sdr, isr, sir, sar)):
            result[k][:, cols] = v.T
    return result[0], result[1], result[2], result[3]
