"""Global (whole-track) SDR variants: the Music Demixing Challenge SDR, SI-SDR and MIR-1K's NSDR/GNSDR."""
from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from stemwright.metrics.bsseval import bss_eval_v4

MDX_EPS = 1e-7  # MDX 2021 / SDX 2023 evaluation: 10 log10((Σs² + ε) / (Σ(s - ŝ)² + ε)), ε = 1e-7


def _pair(reference: np.ndarray, estimate: np.ndarray, name: str = "") -> tuple[np.ndarray, np.ndarray]:
    r = np.asarray(reference, dtype=np.float64)
    e = np.asarray(estimate, dtype=np.float64)
    if r.shape != e.shape:
        raise ValueError(f"{name or 'reference'}: reference shape {r.shape} != estimate shape {e.shape}")
    return r, e


def mdx_sdr(reference: np.ndarray, estimate: np.ndarray, eps: float = MDX_EPS) -> float:
    """MDX "SDR" (a.k.a. uSDR, global SDR) of one stem over the whole track and all channels.

    ``10 log10((Σ s² + eps) / (Σ (s - ŝ)² + eps))`` (Mitsufuji et al., "Music Demixing Challenge 2021", Sec. 3.1).
    Shape: ``reference, estimate (C, T)`` (any identical shapes).
    """
    r, e = _pair(reference, estimate)
    return float(10.0 * np.log10((np.sum(r * r) + eps) / (np.sum((r - e) ** 2) + eps)))


def mdx_song_score(references: Mapping[str, np.ndarray], estimates: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Per-stem MDX SDR and the song score (mean over stems) under the key ``"song"``. Stems: ``(C, T)`` each."""
    missing = sorted(set(references) - set(estimates))
    if missing:
        raise ValueError(f"estimates lack stem(s) {', '.join(missing)}")
    scores = {name: mdx_sdr(ref, estimates[name]) for name, ref in references.items()}
    scores["song"] = float(np.mean(list(scores.values())))
    return scores


def mdx_set_score(song_scores: Iterable[float]) -> float:
    """Set score = mean of the song scores (MDX 2021)."""
    values = list(song_scores)
    return float(np.mean(values)) if values else float("nan")


def si_sdr(reference: np.ndarray, estimate: np.ndarray, zero_mean: bool = True) -> float:
    """Scale-invariant SDR (Le Roux et al., "SDR – half-baked or well done?", ICASSP 2019, Eq. 4).

    ``α = <ŝ, s> / ||s||²``, SI-SDR = ``10 log10(||α s||² / ||α s - ŝ||²)`` over all channels together; both signals are
    made zero-mean first (Sec. 2 of the paper) unless ``zero_mean=False``. No ε, so it is exactly scale invariant:
    NaN for a silent reference, +inf for a perfect estimate. Shape: ``(C, T)`` or ``(T,)``.
    """
    r, e = _pair(reference, estimate)
    if zero_mean:
        r = r - r.mean(axis=-1, keepdims=True)
        e = e - e.mean(axis=-1, keepdims=True)
    energy = np.sum(r * r)
    if energy == 0:
        return float("nan")
    target = (np.sum(e * r) / energy) * r
    num, den = np.sum(target**2), np.sum((target - e) ** 2)
    if den == 0:
        return float("inf")
    with np.errstate(divide="ignore"):
        return float(10.0 * np.log10(num / den))


def bss_sources_sdr(references: np.ndarray, estimates: np.ndarray) -> dict[str, np.ndarray]:
    """Whole-signal BSS Eval ``bss_eval_sources`` (v3 definition, 512-tap filters, no permutation): the SDR/SIR/SAR
    used for MIR-1K (e.g. Huang et al., "Singing-voice separation from monaural recordings using deep recurrent
    neural networks", ISMIR 2014, Sec. 4). Shape: ``(S, T)`` or ``(S, C, T)`` -> each ``(S,)``.
    """
    res = bss_eval_v4(references, estimates, window=np.inf, hop=np.inf, sources_version=True)
    return {"SDR": res.sdr[:, 0], "SIR": res.sir[:, 0], "SAR": res.sar[:, 0]}


def nsdr(references: np.ndarray, estimates: np.ndarray, mixture: np.ndarray) -> dict[str, np.ndarray]:
    """Normalised SDR: SDR of the estimates minus SDR of the unprocessed mixture used as the estimate of every source.

    Returns per-source ``SDR``, ``SIR``, ``SAR``, ``SDR_mix`` and ``NSDR``.
    Shape: ``references, estimates (S, T)`` (or ``(S, C, T)``), ``mixture (T,)`` (or ``(C, T)``) -> each ``(S,)``.
    """
    refs = np.asarray(references, dtype=np.float64)
    mix = np.broadcast_to(np.asarray(mixture, dtype=np.float64), refs.shape)
    est = bss_sources_sdr(refs, estimates)
    base = bss_sources_sdr(refs, mix)
    return {**est, "SDR_mix": base["SDR"], "NSDR": est["SDR"] - base["SDR"]}


def length_weighted_mean(values: Iterable[float], lengths: Iterable[int]) -> float:
    """GNSDR/GSIR/GSAR aggregation: ``Σ_k w_k v_k / Σ_k w_k`` with ``w_k`` the clip length (Hsu & Jang 2010)."""
    v = np.asarray(list(values), dtype=np.float64)
    w = np.asarray(list(lengths), dtype=np.float64)
    if v.shape != w.shape:
        raise ValueError(f"{v.size} values but {w.size} lengths")
    ok = np.isfinite(v)
    return float(np.sum(v[ok] * w[ok]) / np.sum(w[ok])) if ok.any() else float("nan")
