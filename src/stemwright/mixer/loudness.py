"""Loudness (ITU-R BS.1770-4 integrated LUFS via pyloudnorm), true peak, and normalisation with a true-peak limiter.

True peak follows BS.1770-4 Annex 2: 4x oversampling (polyphase FIR) and the maximum absolute value.
The limiter is a look-ahead gain computer on that same oversampled envelope, so after it the measured true peak is
at or below the ceiling (a final exact trim guarantees it).
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import minimum_filter1d, uniform_filter1d
from scipy.signal import resample_poly

from stemwright.mixer.effects import MixError

log = logging.getLogger(__name__)

OVERSAMPLE = 4  # BS.1770-4 Annex 2: 4x for 48 kHz material
DEFAULT_CEILING_DBTP = -1.0
_BLOCK = 1 << 18  # samples per block of the oversampled envelope
_CONTEXT = 256  # > half the length of resample_poly's default FIR (10 * OVERSAMPLE taps at the input rate)  # EBU R128 / streaming platforms' recommended maximum true peak


def _db(x: float) -> float:
    return 20.0 * math.log10(x) if x > 0 else -math.inf


def integrated_lufs(audio: np.ndarray, samplerate: int) -> float:
    """Integrated loudness in LUFS (-inf for silence). Shape: ``(C, T)``; needs at least 0.4 s (one gating block)."""
    import pyloudnorm  # lazy: a 1.7 s import only loudness needs

    x = np.asarray(audio, dtype=np.float64)
    if x.ndim == 1:
        x = x[None]
    if x.shape[1] < int(0.4 * samplerate) + 1:
        raise MixError(f"loudness: audio is {x.shape[1] / samplerate:.2f} s long; integrated loudness needs >= 0.4 s")
    if not np.any(x):
        return -math.inf
    value = pyloudnorm.Meter(samplerate).integrated_loudness(x.T)
    return float(value)


def _oversampled_envelope(x: np.ndarray) -> np.ndarray:
    """Per original sample ``n``: max |x| over all channels of the 4x-oversampled signal in ``[n, n+1)``.

    Shape: ``(C, T)`` -> ``(T,)``.
    """
    n = x.shape[1]
    env = np.empty(n, dtype=np.float64)
    for start in range(0, n, _BLOCK):  # blocks with real context keep memory flat on long songs
        stop = min(n, start + _BLOCK)
        lo, hi = max(0, start - _CONTEXT), min(n, stop + _CONTEXT)
        up = resample_poly(x[:, lo:hi].astype(np.float64), OVERSAMPLE, 1, axis=-1)
        up = up[:, (start - lo) * OVERSAMPLE:(stop - lo) * OVERSAMPLE]
        env[start:stop] = np.abs(up).reshape(x.shape[0], stop - start, OVERSAMPLE).max(axis=(0, 2))
    return np.maximum(env, np.abs(x).max(axis=0))


def true_peak_db(audio: np.ndarray) -> float:
    """True peak in dBTP (4x oversampled). Shape: ``(C, T)``."""
    x = np.asarray(audio)
    if x.ndim == 1:
        x = x[None]
    if x.size == 0:
        return -math.inf
    return _db(float(_oversampled_envelope(x).max()))


def true_peak_gain(
    audio: np.ndarray, samplerate: int, ceiling_dbtp: float = DEFAULT_CEILING_DBTP,
    lookahead_ms: float = 2.0, hold_ms: float = 50.0,
) -> np.ndarray:
    """The gain curve of :func:`true_peak_limit` (1 where no reduction is needed). Shape: ``(C, T)`` -> ``(T,)``
    float64. Applying it to each part of a sum (stems) and summing equals applying it to the sum."""
    x = np.asarray(audio, dtype=np.float32)
    ceiling = 10 ** (ceiling_dbtp / 20)
    need = np.minimum(1.0, ceiling / np.maximum(_oversampled_envelope(x), 1e-12))
    if need.min() >= 1.0:
        return np.ones(x.shape[-1])
    la = max(1, int(round(lookahead_ms * 1e-3 * samplerate)))
    hold = max(la, int(round(hold_ms * 1e-3 * samplerate)))
    # window [n - hold, n + la]: size hold + la + 1, origin shifts the centre towards the past
    size = hold + la + 1
    origin = (size // 2) - la
    origin = max(-(size // 2), min(origin, (size - 1) // 2))
    gmin = minimum_filter1d(need, size=size, origin=origin, mode="nearest")
    width = la if la % 2 == 1 else la - 1 or 1
    return np.minimum(uniform_filter1d(gmin, size=width, mode="nearest"), need)


def true_peak_limit(
    audio: np.ndarray, samplerate: int, ceiling_dbtp: float = DEFAULT_CEILING_DBTP,
    lookahead_ms: float = 2.0, hold_ms: float = 50.0,
) -> tuple[np.ndarray, float]:
    """Look-ahead true-peak limiter. Returns ``(limited (C, T) float32, max gain reduction in dB)``.

    Gain at sample n = moving average (width ``lookahead``) of the minimum required gain over
    ``[n - hold, n + lookahead]``; the averaging window lies inside every minimum window it averages, so the
    gain never exceeds what the envelope requires, and ramps in over the look-ahead instead of clicking.
    """
    x = np.asarray(audio, dtype=np.float32)
    ceiling = 10 ** (ceiling_dbtp / 20)
    gain = true_peak_gain(x, samplerate, ceiling_dbtp, lookahead_ms, hold_ms)
    if gain.min() >= 1.0:
        return x.copy(), 0.0
    y = (x.astype(np.float64) * gain[None]).astype(np.float32)
    peak = float(_oversampled_envelope(y).max())
    if peak > ceiling:  # interpolation of a modulated signal can overshoot by a hair: trim exactly
        y = (y * (ceiling / peak * 0.9999)).astype(np.float32)
    return y, -_db(float(gain.min()))


@dataclass(frozen=True)
class LoudnessResult:
    input_lufs: float
    output_lufs: float
    gain_db: float
    true_peak_dbtp: float
    limiter_reduction_db: float

    def to_dict(self) -> dict[str, float]:
        return {k: (None if not math.isfinite(v) else round(v, 3)) for k, v in self.__dict__.items()}


def normalize_loudness(
    audio: np.ndarray, samplerate: int, target_lufs: float, ceiling_dbtp: float = DEFAULT_CEILING_DBTP,
    tolerance: float = 0.05, max_iter: int = 8,
) -> tuple[np.ndarray, LoudnessResult]:
    """Scale to ``target_lufs`` and limit so the true peak stays <= ``ceiling_dbtp``.

    Limiting removes a little loudness, so the gain is refined until the measured loudness is within ``tolerance``
    LU of the target. Shape: ``(C, T)`` -> ``(C, T)`` float32.
    """
    if not -70.0 <= target_lufs <= 0.0:
        raise MixError(f"loudness: target must be in [-70, 0] LUFS, got {target_lufs:g}")
    x = np.asarray(audio, dtype=np.float32)
    lufs_in = integrated_lufs(x, samplerate)
    if not math.isfinite(lufs_in):
        raise MixError("loudness: the mix is silent, it cannot be normalised")
    gain_db = target_lufs - lufs_in
    for _ in range(max_iter):
        scaled = (x.astype(np.float64) * 10 ** (gain_db / 20)).astype(np.float32)
        y, reduction = true_peak_limit(scaled, samplerate, ceiling_dbtp)
        lufs_out = integrated_lufs(y, samplerate)
        if abs(lufs_out - target_lufs) <= tolerance or reduction == 0.0:
            break
        gain_db += target_lufs - lufs_out
    if abs(lufs_out - target_lufs) > 0.5:
        log.warning("loudness: reached %.2f LUFS instead of %.2f (the limiter cannot push this material louder "
                    "without more than %.1f dB of gain reduction)", lufs_out, target_lufs, reduction)
    result = LoudnessResult(lufs_in, lufs_out, gain_db, true_peak_db(y), reduction)
    return y, result
