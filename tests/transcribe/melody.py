"""A short stems folder whose notes are known: a bass line and a melody of harmonic tones, and drum clicks."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

RATE = 22050
BEAT = 0.5  # 120 BPM
BASS = (45, 45, 40, 40, 43, 43, 38, 38, 45, 45, 40, 40)  # MIDI pitches, one per beat (A2, E2, G2, D2)
MELODY = (69, 72, 76, 74, 72, 69, 67, 69, 71, 72, 74, 76)  # A4 C5 E5 ...


def tone(pitch: int, seconds: float, rate: int = RATE) -> np.ndarray:
    """A plucked tone ``(T,)``: a weak octave partial, a short attack and a decay, so each note has an onset."""
    t = np.arange(int(seconds * rate)) / rate
    f = 440.0 * 2 ** ((pitch - 69) / 12)
    env = np.minimum(t / 0.005, 1.0) * np.exp(-2.0 * t) * (t < seconds - 0.04)
    return (env * (np.sin(2 * np.pi * f * t) + 0.25 * np.sin(4 * np.pi * f * t))).astype(np.float32)


def line(pitches: tuple[int, ...], rate: int = RATE) -> np.ndarray:
    return 0.3 * np.concatenate([tone(p, BEAT, rate) for p in pitches])


def clicks(n: int, rate: int = RATE) -> np.ndarray:
    y = np.zeros(int(n * BEAT * rate), dtype=np.float32)
    rng = np.random.default_rng(0)
    for i in range(n):
        at = int(i * BEAT * rate)
        y[at:at + 400] += (rng.standard_normal(400) * np.exp(-np.arange(400) / 60)).astype(np.float32) * 0.5
    return y


def write_stems(folder: Path) -> Path:
    """``bass.wav``, ``other.wav`` (the melody), ``drums.wav`` (a click per beat), 6 s at :data:`RATE`."""
    folder.mkdir(parents=True, exist_ok=True)
    sf.write(folder / "bass.wav", line(BASS), RATE, subtype="FLOAT")
    sf.write(folder / "other.wav", line(MELODY), RATE, subtype="FLOAT")
    sf.write(folder / "drums.wav", clicks(len(BASS)), RATE, subtype="FLOAT")
    return folder
