"""Bar-aligned loops from separated stems, on the beat grid of :func:`stemwright.analysis.analyze`.

A loop of ``n`` bars is exactly ``n`` bars long (``round(n * bar_seconds * rate)`` samples, so it stays in tempo when
repeated); it starts on a downbeat moved to the nearest zero crossing within :data:`SNAP_S` (so the cut itself makes
no step), and both ends get :data:`FADE_S` fades (so the seam between the end and the start is at most a small
step). Loops where the stem is near-silent are skipped.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SNAP_S = 0.002  # zero-crossing search radius around a downbeat: far below the 10 ms boundary target
FADE_S = 0.003  # fade length at each end; 3 ms removes the click of a cut without audibly dipping the seam
SILENT_DBFS = -50.0  # a loop whose RMS is below this is skipped
SILENT_RELATIVE_DB = -30.0  # ... or below the stem's loudest bar by this much


@dataclass(frozen=True, kw_only=True)
class Loop:
    """One cut: ``audio`` ``(C, T)`` float32, ``start`` (sample in the stem), ``bar`` (1-based bar number of its
    first bar), ``bars`` (length in bars)."""

    audio: np.ndarray
    start: int
    bar: int
    bars: int


def rms_dbfs(x: np.ndarray) -> float:
    """RMS level in dBFS of ``(C, T)`` (or ``(T,)``) audio; ``-inf`` for silence."""
    r = float(np.sqrt(np.mean(np.square(np.asarray(x, dtype=np.float64))))) if np.size(x) else 0.0
    return 20 * np.log10(r) if r > 0 else float("-inf")


def nearest_zero_crossing(mono: np.ndarray, index: int, radius: int) -> int:
    """The sample in ``[index - radius, index + radius]`` nearest to ``index`` where ``mono`` changes sign (or is
    0); ``index`` itself when there is none."""
    lo, hi = max(1, index - radius), min(len(mono) - 1, index + radius)
    if hi <= lo:
        return index
    seg = mono[lo - 1:hi + 1]
    crossings = np.nonzero((np.sign(seg[:-1]) != np.sign(seg[1:])) | (seg[1:] == 0))[0] + lo
    if len(crossings) == 0:
        return index
    return int(crossings[np.argmin(np.abs(crossings - index))])


def fade_ends(x: np.ndarray, n: int) -> np.ndarray:
    """A copy of ``(C, T)`` audio with raised-cosine fades of ``n`` samples at both ends."""
    out = np.array(x, dtype=np.float32, copy=True)
    n = min(n, out.shape[1] // 2)
    if n > 0:
        ramp = (0.5 - 0.5 * np.cos(np.pi * (np.arange(n) + 0.5) / n)).astype(np.float32)
        out[:, :n] *= ramp
        out[:, -n:] *= ramp[::-1]
    return out


def cut_loops(stem: np.ndarray, samplerate: int, downbeats: tuple[float, ...] | np.ndarray, bar_seconds: float,
              bars: int, first_bar: int = 1) -> list[Loop]:
    """Non-overlapping ``bars``-bar loops of ``stem`` ``(C, T)`` starting on every ``bars``-th downbeat.

    ``first_bar`` is the bar number of ``downbeats[0]``. Near-silent loops are left out.
    """
    x = np.asarray(stem, dtype=np.float32)
    mono = x.mean(axis=0)
    length = int(round(bars * bar_seconds * samplerate))
    radius, fade = int(round(SNAP_S * samplerate)), int(round(FADE_S * samplerate))
    candidates = []
    for i in range(0, len(downbeats), bars):
        start = nearest_zero_crossing(mono, int(round(downbeats[i] * samplerate)), radius)
        if start < 0 or start + length > x.shape[1]:
            continue
        candidates.append((first_bar + i, start))
    if not candidates:
        return []
    levels = [rms_dbfs(x[:, s:s + length]) for _, s in candidates]
    loudest = max(levels)
    return [Loop(audio=fade_ends(x[:, s:s + length], fade), start=s, bar=b, bars=bars)
            for (b, s), level in zip(candidates, levels)
            if level > SILENT_DBFS and level > loudest + SILENT_RELATIVE_DB]
