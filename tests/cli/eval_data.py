"""Tiny generated datasets for the ``eval`` tests: MUSDB layout, 8 kHz mono, tones with noise."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

SR = 8000
STEMS = ("drums", "bass", "other", "vocals")


def song(rng: np.random.Generator, n: int, channels: int = 1) -> dict[str, np.ndarray]:
    t = np.arange(n) / SR
    out = {}
    for k, s in enumerate(STEMS):
        env = 0.5 + 0.5 * np.sin(2 * np.pi * (0.7 + k) * t)
        tone = np.sin(2 * np.pi * 150 * (k + 1) * t + rng.uniform(0, 6))
        out[s] = np.stack([0.2 * env * tone + 0.01 * rng.standard_normal(n) for _ in range(channels)])
    return out


def musdb(root: Path, names=("song a", "song b"), n: int = int(2.5 * SR)) -> Path:
    rng = np.random.default_rng(0)
    for name in names:
        d = root / "test" / name
        d.mkdir(parents=True)
        stems = song(rng, n)
        for s, x in stems.items():
            sf.write(d / f"{s}.wav", x.T, SR, subtype="FLOAT")
        sf.write(d / "mixture.wav", sum(stems.values()).T, SR, subtype="FLOAT")
    return root
