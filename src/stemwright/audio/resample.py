"""Sample-rate conversion with soxr (VHQ)."""
from __future__ import annotations

import numpy as np
import soxr


def resample(samples: np.ndarray, sr_in: int, sr_out: int, quality: str = "VHQ") -> np.ndarray:
    """Resample along time. Returns a new array; the input is never modified.

    Shape: ``(C, T)`` -> ``(C, round(T * sr_out / sr_in))``.
    """
    if sr_in <= 0 or sr_out <= 0:
        raise ValueError(f"sample rates must be positive, got {sr_in} -> {sr_out}")
    x = np.asarray(samples, dtype=np.float32)
    if sr_in == sr_out:
        return x.copy()
    out = soxr.resample(np.ascontiguousarray(x.T), sr_in, sr_out, quality=quality)
    return np.ascontiguousarray(out.T, dtype=np.float32)
