"""Generated multitrack songs of known tempo and key, for mashup tests (numpy only, deterministic)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10)
# I-V-vi-IV in major; i-iv-V-i in minor with a major V (harmonic minor), which tells minor from its relative major
PROGRESSIONS = {"major": (0, 4, 5, 3), "minor": (0, 3, 4, 0)}


def _chord_pc(scale: tuple[int, ...], mode: str, degree: int, step: int) -> int:
    """Pitch (semitones above the tonic) of chord tone ``step`` (0, 2, 4) of the triad on ``degree``."""
    idx = degree + step
    pc = scale[idx % 7] + 12 * (idx // 7)
    if mode == "minor" and degree == 4 and step == 2:  # leading tone: raised 7th
        pc += 1
    return pc


def _tone(freq: float, n: int, sr: int, decay: float, partials: int = 4) -> np.ndarray:
    t = np.arange(n) / sr
    wave = sum(np.sin(2 * np.pi * freq * k * t) / k for k in range(1, partials + 1))
    return (wave * np.exp(-t / decay)).astype(np.float32)


def _midi_hz(m: float) -> float:
    return 440.0 * 2 ** ((m - 69) / 12)


def make_song(folder: Path, tempo: float, tonic: int, mode: str, seconds: float = 14.0, sr: int = 22050,
              seed: int = 0, lead_in: float = 0.0, beats_per_bar: int = 4) -> dict[str, np.ndarray]:
    """Write vocals/drums/bass/other wavs (stereo) of a 4/4 (or ``beats_per_bar``/4) song; returns the stems.
    ``tonic``: pitch class."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    scale = MAJOR if mode == "major" else MINOR
    beat = 60.0 / tempo
    stems = {k: np.zeros(n, np.float32) for k in ("vocals", "drums", "bass", "other")}

    def add(name: str, sig: np.ndarray, start: float, gain: float) -> None:
        i = int(round(start * sr))
        if i >= n:
            return
        m = min(len(sig), n - i)
        stems[name][i:i + m] += gain * sig[:m]

    kick = _tone(55.0, int(0.25 * sr), sr, 0.06, 1) * np.exp(-np.arange(int(0.25 * sr)) / (0.02 * sr))
    snare_n = int(0.15 * sr)
    snare = (rng.standard_normal(snare_n) * np.exp(-np.arange(snare_n) / (0.03 * sr))).astype(np.float32)
    snare += 0.5 * _tone(190.0, snare_n, sr, 0.05, 1)
    hat = (rng.standard_normal(int(0.03 * sr)) * np.exp(-np.arange(int(0.03 * sr)) / (0.005 * sr))).astype(np.float32)
    k = 0
    while lead_in + k * beat < seconds:
        t0 = lead_in + k * beat
        bar, pos = divmod(k, beats_per_bar)
        if pos == 0 or (beats_per_bar == 4 and pos == 2):  # kick on 1 and 3 (louder on the downbeat), snare on 2 and 4, hats on the off-beats
            add("drums", kick, t0, 0.9 if pos == 0 else 0.6)
        else:
            add("drums", snare, t0, 0.35)
        add("drums", hat, t0 + beat / 2, 0.05)
        degree = PROGRESSIONS[mode][bar % 4]
        root = 48 + tonic + scale[degree]
        if pos == 0:
            add("bass", _tone(_midi_hz(root - 12), int(beats_per_bar * beat * sr), sr, 1.0, 2), t0, 0.2)
            for d in (0, 2, 4):
                pc = _chord_pc(scale, mode, degree, d)
                add("other", _tone(_midi_hz(60 + tonic + pc), int(beats_per_bar * beat * sr), sr, 1.5, 2), t0, 0.2)
        melody = _chord_pc(scale, mode, degree, (0, 2, 4, 2)[pos % 4]) % 12
        add("vocals", _tone(_midi_hz(72 + tonic + melody), int(beat * sr), sr, 0.15, 3), t0, 0.3)
        k += 1
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, x in stems.items():
        stereo = np.stack([x, x]).astype(np.float32)
        sf.write(str(folder / f"{name}.wav"), stereo.T, sr, subtype="FLOAT")
        out[name] = stereo
    return out
