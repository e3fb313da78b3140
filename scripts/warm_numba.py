"""Compile librosa's numba functions once, in one process, before anything runs them in parallel.

librosa compiles its numba functions with ``cache=True`` (its ``guvectorize`` peak picker and local extrema at import,
its ``jit`` functions at first call) and writes them to ``__pycache__`` inside the venv. In a fresh venv, processes that
start together (the test suite's xdist workers, the studio server they start) compiled and wrote the same cache
entries at the same time, and one of them then crashed loading a mismatched entry: "segfault at 0" in
``librosa.util.peak_pick``, twice in one rehearsal, in a worker and in the studio server. Run by ``scripts/setup.sh``
after the install: afterwards every process only reads the cache.
"""
from __future__ import annotations

import numpy as np


def main() -> None:
    import librosa

    from stemwright.analysis import analyze  # the beat tracker, chroma (pitch tuning), onset strength
    from stemwright.samples.oneshots import detect_onsets  # onset detection: peak picking, backtracking

    sr, seconds = 44100, 6.0
    t = np.arange(int(sr * seconds)) / sr
    rng = np.random.default_rng(0)
    beat = 0.5
    clicks = np.zeros_like(t)
    for k in range(int(seconds / beat)):
        i = int(k * beat * sr)
        n = min(4000, t.size - i)
        clicks[i:i + n] += rng.standard_normal(n) * np.exp(-np.arange(n) / 400.0)
    bass = 0.3 * np.sin(2 * np.pi * 55.0 * t)
    other = 0.2 * (np.sin(2 * np.pi * 220.0 * t) + np.sin(2 * np.pi * 277.2 * t))
    stems = {name: np.stack([x, x]).astype(np.float32) for name, x in
             (("drums", 0.5 * clicks), ("bass", bass), ("other", other), ("vocals", 0.1 * other))}
    detect_onsets(stems["drums"].mean(axis=0), sr)
    analyze(stems, sr)
    for dtype in (np.float32, np.float64):  # the local extrema's float signatures (piptrack, beat trimming)
        librosa.util.localmax(rng.standard_normal(64).astype(dtype))
        librosa.util.localmin(rng.standard_normal(64).astype(dtype))


if __name__ == "__main__":
    main()
