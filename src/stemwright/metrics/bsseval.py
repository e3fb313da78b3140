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
matrix and all cross-correlations in one pass of block-accumulated cross-spectra (memory bounded, one inverse FFT per
pair), solves all right-hand sides with one single-threaded Cholesky factorisation, and filters every window of every
source in batched FFTs, taking all energies in the frequency domain. On real music ``G`` is nearly singular (condition
number ~3e15: its weakest directions are the references' quantisation noise), so ISR/SIR/SAR carry float64 rounding
noise of a few hundredths of a dB in any implementation, museval included; see docs/evaluation.md.

``sources_version=True`` gives the ``bss_eval_sources`` variant (BSS Eval v2/v3, used for MIR-1K's NSDR):
SDR = ||P_j||² / ||ŝ - P_j||², SIR as above, SAR = ||P_all||² / ||ŝ - P_all||², ISR = NaN.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import scipy.fft
import scipy.linalg
from threadpoolctl import threadpool_limits

log = logging.getLogger(__name__)

FILTERS_LEN = 512  # museval default: 512-tap distortion filters (SiSEC 2018, Sec. 3)
_BLOCK_FFT = 1 << 13  # FFT size of the blocks used to accumulate cross-spectra (cache-friendly)
_BLOCK_GROUP = 16  # blocks transformed per batch (accumulated once per group; 16 keeps each FFT output under 32 MB, which glibc recycles instead of mapping fresh pages)
_FRAME_BATCH = 8  # windows convolved per batch: bounds memory, and keeps each spectrum under 32 MB (glibc recycles those instead of mapping fresh pages: 3x fewer page faults than 16)
_FREQ_CHUNK = 256  # frequency bins per chunk in the window scoring (keeps the temporaries in cache)


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
    """float32 input stays float32 (the kernel casts each block and window to float64 as it goes, which is exact:
    the same values as converting the whole track first, without half a GB of float64 copies per side on a
    3-minute 4-stem track); anything else becomes float64."""
    a = np.asarray(x)
    if a.dtype not in (np.float32, np.float64):
        a = a.astype(np.float64)
    if a.ndim == 1:
        a = a[None, None]
    elif a.ndim == 2:
        a = a[:, None]
    if a.ndim != 3:
        raise ValueError(f"{name} must have shape (sources, channels, time), got {np.shape(x)}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains non-finite values")
    return a


def _cross_correlations(refs: np.ndarray, ests: np.ndarray, lags: int) -> tuple[np.ndarray, np.ndarray]:
    """Linear cross-correlations for non-negative lags, ``r_rr[p, q, k] = sum_n ref_p[n + k] ref_q[n]`` and
    ``r_er[e, q, k] = sum_n est_e[n + k] ref_q[n]``, in one pass over the signals.

    Overlap-save blocks: each block of the references (zero-padded to the FFT size ``m``) against the blocks of
    references and estimates extended by ``lags - 1`` samples; ``X_b conj(Y_b)`` is accumulated over blocks and one
    inverse FFT per pair gives the correlations (the same values as museval's full-length FFTs). Each block of each
    signal is transformed once (the references' own spectra serve both correlations).

    Shape: ``refs, ests (K, N)`` (K = sources x channels) -> ``(K, K, lags)`` each.
    """
    k, n = refs.shape
    m = max(_BLOCK_FFT, scipy.fft.next_fast_len(2 * lags, real=True))
    block = m - lags + 1
    starts = list(range(0, n, block))
    acc = np.zeros((2 * k, k, m // 2 + 1), dtype=np.complex128)  # (P = refs + ests, Q = refs, F)
    # The block buffers are allocated once and reused: fresh buffers per group were most of the eval command's
    # system time (page faults on hundreds of MB per 3-minute track).
    group_len = min(_BLOCK_GROUP, len(starts))
    xs_buf = np.empty((group_len, 2 * k, block + lags - 1))
    ys_buf = np.empty((group_len, k, block))
    for first in range(0, len(starts), _BLOCK_GROUP):
        group = starts[first : first + _BLOCK_GROUP]
        xs, ys = xs_buf[: len(group)], ys_buf[: len(group)]
        xs.fill(0.0)
        ys.fill(0.0)
        for g, start in enumerate(group):
            stop = min(start + block + lags - 1, n)
            xs[g, :k, : stop - start] = refs[:, start:stop]
            xs[g, k:, : stop - start] = ests[:, start:stop]
            stop = min(start + block, n)
            ys[g, :, : stop - start] = refs[:, start:stop]
        # FFTs along the contiguous last axis: 3-5x less CPU than along axis 0 (measured, pocketfft)
        xf = scipy.fft.rfft(xs, n=m, axis=-1, workers=-1)  # (G, P, F)
        yf = scipy.fft.rfft(ys, n=m, axis=-1, workers=-1)  # (G, Q, F)
        np.conjugate(yf, out=yf)
        acc += np.einsum("gpf,gqf->pqf", xf, yf, optimize=True)  # summed over the group's blocks
    r = scipy.fft.irfft(acc, n=m, axis=-1, workers=-1)[..., :lags]  # (P, Q, lags)
    return np.ascontiguousarray(r[:k]), np.ascontiguousarray(r[k:])


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
    """``(G + eps I)^-1 D`` as museval (``eps`` = float64 machine epsilon on the diagonal); ``g`` is overwritten.

    ``G`` is a Gram matrix (symmetric positive semi-definite), so a Cholesky factorisation (half the work of
    museval's LU) is tried first; LU with partial pivoting (museval's ``np.linalg.solve``) if it is not numerically
    positive definite, least squares (museval's fallback) if singular.

    Shape: ``g (n, n)``, ``d (n, r)`` -> ``(n, r)``.
    """
    n = g.shape[-1]
    g.reshape(n * n)[:: n + 1] += np.finfo(float).eps  # + eps * I without an n x n temporary
    # One BLAS thread: the result then does not depend on the core count (the rounding of a blocked factorisation
    # does, and this system is ill-conditioned on real music), and OpenBLAS threads spinning on a busy machine cost
    # 3-6x the CPU time of the single-threaded factorisation (measured: 3.6 s vs 0.6 s CPU for n = 4096).
    with threadpool_limits(limits=1, user_api="blas"):
        try:
            factor = scipy.linalg.cho_factor(g, lower=False, overwrite_a=False, check_finite=False)
            return scipy.linalg.cho_solve(factor, d, check_finite=False)
        except np.linalg.LinAlgError:
            pass
        try:
            return scipy.linalg.solve(g, d, check_finite=False)
        except np.linalg.LinAlgError:
            log.warning("BSS Eval: singular reference Gram matrix, falling back to least squares")
            return np.linalg.lstsq(g, d, rcond=None)[0]


def distortion_filters(refs: np.ndarray, ests: np.ndarray, filters_len: int = FILTERS_LEN) -> tuple[np.ndarray, np.ndarray]:
    """Time-invariant distortion filters over the whole signals.

    Returns ``c_all`` of shape ``(S_est, S_ref, C_in, L, C_out)`` (estimate ``e`` projected onto all references:
    museval's ``C[e]``) and ``c_own`` of shape ``(S, C_in, L, C_out)`` (estimate ``j`` onto reference ``j`` only:
    museval's ``Cj[j, j, 0]``).

    Shape: ``refs, ests (S, C, T)``.
    """
    s, c, n = refs.shape
    r_rr, r_er = _cross_correlations(refs.reshape(s * c, n), ests.reshape(s * c, n), filters_len)
    g = _toeplitz_gram(r_rr)  # (K L, K L)
    # D[(p, a), (e, c_out)] = <ref p delayed by a, estimate channel (e, c_out)>
    d = r_er.transpose(1, 2, 0).reshape(s * c * filters_len, s * c)
    kl = c * filters_len
    # the own-source systems are diagonal blocks of G: copied before G is regularised in place
    c_own = [_solve(g[j * kl : (j + 1) * kl, j * kl : (j + 1) * kl].copy(), d[j * kl : (j + 1) * kl, j * c : (j + 1) * c])
             for j in range(s)]
    c_all = _solve(g, d).reshape(s, c, filters_len, s, c).transpose(3, 0, 1, 2, 4)
    return c_all, np.stack(c_own).reshape(s, c, filters_len, c)


def _db(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``10 log10(num / den)``; ``+inf`` where ``den == 0`` (museval's ``_safe_db``)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = 10.0 * np.log10(num / den)
    return np.where(den == 0, np.inf, out)


def _silent(frames: np.ndarray) -> np.ndarray:
    """museval's ``_any_source_silent`` per window: some source whose channel sum is zero at every sample.

    Shape: ``(S, C, W, Lw)`` -> ``(W,)`` bool.
    """
    return np.any(np.all(frames.sum(axis=1) == 0, axis=-1), axis=0)


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

    The projections are linear convolutions that fit inside the FFT length, so every energy (of the zero-padded
    window, its projections and their differences) is taken in the frequency domain (Parseval) without inverse
    FFTs. Windows are strided views (no copies); per batch of windows the spectra are processed in frequency chunks
    small enough to stay in cache, filtering each chunk with one batched ``(B, K) @ (K, 2K)`` product per bin
    (own-source and all-source filters side by side). ``sqrt`` of the one-sided Parseval weights is folded into the
    window spectra, so every energy is a plain sum of squares.
    """
    s, c, _ = refs.shape
    k = s * c
    lf = c_all.shape[-2]
    lw = bounds[0][1] - bounds[0][0]  # museval's framing gives windows of equal length
    hop = bounds[1][0] - bounds[0][0] if len(bounds) > 1 else lw
    nfft = scipy.fft.next_fast_len(lw + lf - 1, real=True)
    nf = nfft // 2 + 1
    # (F, K_in, 2K_out): [own-source filters (block diagonal) | all-source filters]
    h = np.zeros((nf, s, c, 2, s, c), dtype=np.complex128)
    h_own = scipy.fft.rfft(c_own, n=nfft, axis=-2, workers=-1)  # (S, Ci, F, Co)
    for j in range(s):
        h[:, j, :, 0, j, :] = h_own[j].transpose(1, 0, 2)
    h[:, :, :, 1] = scipy.fft.rfft(c_all, n=nfft, axis=-2, workers=-1).transpose(3, 1, 2, 0, 4)  # (F, S, Ci, E, Co)
    h = h.reshape(nf, k, 2 * k)
    sqrt_w = np.full(nf, np.sqrt(2.0 / nfft))  # one-sided Parseval weights
    sqrt_w[0] = np.sqrt(1.0 / nfft)
    if nfft % 2 == 0:
        sqrt_w[-1] = np.sqrt(1.0 / nfft)
    r_win = np.lib.stride_tricks.sliding_window_view(refs, lw, axis=-1)  # (S, C, T - lw + 1, lw) views
    e_win = np.lib.stride_tricks.sliding_window_view(ests, lw, axis=-1)
    n_energies = 8
    energies = np.zeros((n_energies, len(bounds), s))
    silent = np.zeros(len(bounds), dtype=bool)
    for first in range(0, len(bounds), _FRAME_BATCH):
        nb = min(_FRAME_BATCH, len(bounds) - first)
        sl = slice(bounds[first][0], bounds[first][0] + (nb - 1) * hop + 1, hop)
        rf, ef = r_win[:, :, sl], e_win[:, :, sl]  # (S, C, B, Lw)
        silent[first : first + nb] = _silent(rf) | _silent(ef)
        # float64 FFTs whatever the input precision (scipy would transform float32 in float32)
        spec_r = scipy.fft.rfft(rf.astype(np.float64), n=nfft, axis=-1, workers=-1).reshape(k, nb, nf)
        spec_e = scipy.fft.rfft(ef.astype(np.float64), n=nfft, axis=-1, workers=-1).reshape(k, nb, nf)
        energies[:, first : first + nb] = _chunk_energies(spec_r, spec_e, h, sqrt_w, s, sources_version)
    e_true, e_own, e_all, e_interf, e_spat, e_artif, e_dist, e_dist_src = energies
    if sources_version:
        sdr, isr = _db(e_own, e_dist_src), np.full_like(e_own, np.nan)
    else:
        sdr, isr = _db(e_true, e_dist), _db(e_true, e_spat)
    result = np.stack([sdr, isr, _db(e_own, e_interf), _db(e_all, e_artif)])  # (4, W, S)
    result[:, silent] = np.nan
    return result[0].T, result[1].T, result[2].T, result[3].T


def _chunk_energies(
    spec_r: np.ndarray, spec_e: np.ndarray, h: np.ndarray, sqrt_w: np.ndarray, s: int, sources_version: bool
) -> np.ndarray:
    """Energies of the BSS Eval decomposition for a batch of windows, frequency chunk by frequency chunk.

    Returns ``(8, B, S)``: ``||s||², ||P_j||², ||P_all||², ||P_all - P_j||²`` (interference),
    ``||P_j - s||²`` (spatial), ``||ŝ - P_all||²`` (artifacts), ``||ŝ - s||²`` (distortion), ``||ŝ - P_j||²``
    (``bss_eval_sources`` distortion; only the one of the two distortions that the variant needs is computed).

    Shape: ``spec_r, spec_e (K, B, F)`` spectra of the zero-padded windows, ``h (F, K, 2K)``, ``sqrt_w (F,)``.
    """
    k, nb, nf = spec_r.shape
    out = np.zeros((8, nb, s))

    def energy(x: np.ndarray) -> np.ndarray:  # (Fc, B, n K) complex -> (B, n S)
        v = x.view(np.float64).reshape(x.shape[0], nb, x.shape[-1] // (k // s), -1)
        return np.einsum("fbsk,fbsk->bs", v, v)

    zr_buf = np.empty((_FREQ_CHUNK, nb, k), dtype=np.complex128)  # reused: contiguous (Fc, B, K) chunks
    ze_buf = np.empty_like(zr_buf)
    for f0 in range(0, nf, _FREQ_CHUNK):
        f1 = min(f0 + _FREQ_CHUNK, nf)
        w = sqrt_w[f0:f1, None, None]
        zr = np.multiply(spec_r[:, :, f0:f1].transpose(2, 1, 0), w, out=zr_buf[: f1 - f0])
        ze = np.multiply(spec_e[:, :, f0:f1].transpose(2, 1, 0), w, out=ze_buf[: f1 - f0])
        p = np.matmul(zr, h[f0:f1])  # (Fc, B, 2K)
        p_own, p_all = p[..., :k], p[..., k:]
        out[0] += energy(zr)
        e_p = energy(p)  # (B, 2S): one contiguous reduction (2.6x faster than two over the strided halves)
        out[1] += e_p[:, :s]
        out[2] += e_p[:, s:]
        out[3] += energy(p_all - p_own)
        out[4] += energy(p_own - zr)
        out[5] += energy(ze - p_all)
        if sources_version:
            out[7] += energy(ze - p_own)
        else:
            out[6] += energy(ze - zr)
    return out
