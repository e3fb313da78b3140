"""The bundled demo song: a deterministic numpy rendering of a 24-second stereo pop loop.

Four parts, each rendered on its own so the true stems are known: drums (kick, snare, hi-hat), bass (filtered
saw), chords (detuned saw pad, spread wide) and a synthetic sung-vowel "vocal" (glottal pulse train with vibrato
through vowel formant resonators, centre-panned). ``python -m stemwright.synth.demo`` rewrites
``src/stemwright/data/demo.ogg``. The song is made by this code and is MIT-licensed like the rest of stemwright.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy import signal

log = logging.getLogger(__name__)

SAMPLERATE = 44100
BPM = 120.0
BARS = 12
# I-vi-IV-V in C major, one chord per bar (MIDI notes of root-position triads).
PROGRESSION = [(48, 52, 55), (45, 48, 52), (41, 45, 48), (43, 47, 50)]
# Vocal melody: (MIDI note, beats, vowel) per bar pair; repeated over the song.
MELODY = [
    (67, 1.5, "a"), (69, 0.5, "e"), (67, 1.0, "o"), (64, 1.0, "a"),
    (64, 1.5, "i"), (65, 0.5, "e"), (64, 1.0, "a"), (60, 1.0, "o"),
    (65, 1.5, "a"), (67, 0.5, "e"), (69, 1.0, "i"), (67, 1.0, "a"),
    (67, 1.5, "o"), (65, 0.5, "u"), (62, 1.0, "e"), (None, 1.0, ""),
]
# Formant frequencies and bandwidths (Hz) of sung vowels (Peterson & Barney 1952, averaged male/female values).
FORMANTS = {
    "a": ((800, 80), (1150, 90), (2900, 120)),
    "e": ((400, 70), (1700, 80), (2600, 100)),
    "i": ((300, 50), (2200, 100), (3000, 120)),
    "o": ((450, 70), (800, 80), (2830, 100)),
    "u": ((325, 50), (700, 60), (2530, 170)),
}


def midi_hz(note: float) -> float:
    return 440.0 * 2 ** ((note - 69) / 12)


def _beat(sr: int) -> int:
    return int(round(60.0 / BPM * sr))


def _add(dst: np.ndarray, src: np.ndarray, start: int) -> None:
    end = min(dst.shape[-1], start + src.shape[-1])
    if end > start:
        dst[..., start:end] += src[..., : end - start]


def render_drums(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Kick on 1 and 3, snare on 2 and 4, closed hi-hat on eighths. Shape: ``(2, n)``."""
    out = np.zeros((2, n))
    beat = _beat(sr)
    t = np.arange(int(0.35 * sr)) / sr
    # Kick: pitch drop 120 -> 45 Hz with a fast amplitude decay and a click.
    f = 45 + 75 * np.exp(-t / 0.03)
    kick = np.sin(2 * np.pi * np.cumsum(f) / sr) * np.exp(-t / 0.12)
    kick[: int(0.002 * sr)] += rng.standard_normal(int(0.002 * sr)) * 0.3
    ts = np.arange(int(0.25 * sr)) / sr
    b, a = signal.butter(2, [1000 / (sr / 2), 8000 / (sr / 2)], "band")
    snare_noise = signal.lfilter(b, a, rng.standard_normal(ts.size))
    snare = (0.5 * snare_noise * np.exp(-ts / 0.06) + 0.4 * np.sin(2 * np.pi * 190 * ts) * np.exp(-ts / 0.04))
    th = np.arange(int(0.06 * sr)) / sr
    bh, ah = signal.butter(2, 7000 / (sr / 2), "high")
    hat = signal.lfilter(bh, ah, rng.standard_normal(th.size)) * np.exp(-th / 0.015)
    for i in range(n // beat + 1):
        start = i * beat
        if i % 2 == 0:
            _add(out, np.stack([kick, kick]) * 0.9, start)
        else:
            _add(out, np.stack([snare * 0.9, snare * 1.0]) * 0.8, start)
        for half in (0, beat // 2):
            _add(out, np.stack([hat * 0.35, hat * 0.25]), start + half)  # hat slightly left
    return out


def render_bass(n: int, sr: int) -> np.ndarray:
    """Low-passed saw on the chord roots in eighth notes. Shape: ``(2, n)``."""
    mono = np.zeros(n)
    beat = _beat(sr)
    note_len = beat // 2
    t = np.arange(note_len) / sr
    env = np.minimum(1, t / 0.005) * np.exp(-t / 0.25)
    b, a = signal.butter(2, 600 / (sr / 2))
    for k in range(n // note_len + 1):
        bar = (k * note_len) // (4 * beat)
        root = PROGRESSION[bar % len(PROGRESSION)][0] - 12
        note = root + (12 if k % 4 == 3 else 0)  # octave jump on the last eighth of each half bar
        phase = (t * midi_hz(note)) % 1.0
        _add(mono, signal.lfilter(b, a, 2 * phase - 1) * env, k * note_len)
    return np.stack([mono, mono]) * 0.6


def render_chords(n: int, sr: int) -> np.ndarray:
    """Detuned saw pad, one chord per bar, left and right detuned differently (wide). Shape: ``(2, n)``."""
    out = np.zeros((2, n))
    bar = 4 * _beat(sr)
    t = np.arange(bar) / sr
    env = np.minimum(1, t / 0.05) * np.minimum(1, (bar / sr - t) / 0.05) * (0.7 + 0.3 * np.exp(-t / 0.5))
    b, a = signal.butter(2, 2500 / (sr / 2))
    for k in range(n // bar + 1):
        chord = PROGRESSION[k % len(PROGRESSION)]
        for ch, detune in enumerate((-0.08, 0.08)):
            wave = sum(2 * ((t * midi_hz(m + 12 + detune)) % 1.0) - 1 for m in chord)
            _add(out[ch], signal.lfilter(b, a, wave) * env / len(chord), k * bar)
    return out * 0.35


def _formant_filter(x: np.ndarray, vowel: str, sr: int) -> np.ndarray:
    y = np.zeros_like(x)
    for freq, bw in FORMANTS[vowel]:
        r = np.exp(-np.pi * bw / sr)
        theta = 2 * np.pi * freq / sr
        # Two-pole resonator with unit gain at its centre (Klatt 1980 cascade/parallel synthesiser style).
        a = [1, -2 * r * np.cos(theta), r * r]
        y += signal.lfilter([1 - r], a, x)
    return y


def render_vocal(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Sung vowels: glottal pulses with vibrato and jitter through formant resonators, centre-panned.

    Shape: ``(2, n)``.
    """
    out = np.zeros(n)
    beat = _beat(sr)
    pos = 2 * 4 * beat  # the voice enters after two bars
    k = 0
    while pos < n:
        note, beats, vowel = MELODY[k % len(MELODY)]
        length = int(beats * beat)
        if note is not None:
            t = np.arange(length) / sr
            vibrato = 1 + 0.012 * np.sin(2 * np.pi * 5.5 * t) * np.minimum(1, t / 0.3)
            f0 = midi_hz(note) * vibrato * (1 + 0.002 * rng.standard_normal(length).cumsum() / np.sqrt(length))
            phase = np.cumsum(f0) / sr
            # Rosenberg-like glottal pulse: a skewed raised cosine per period, differentiated (radiation).
            frac = phase % 1.0
            pulse = np.where(frac < 0.6, 0.5 - 0.5 * np.cos(np.pi * frac / 0.6), np.cos(np.pi * (frac - 0.6) / 0.8))
            source = np.diff(pulse, prepend=pulse[0]) + 0.01 * rng.standard_normal(length)
            env = np.minimum(1, t / 0.04) * np.minimum(1, (length / sr - t) / 0.06)
            _add(out, _formant_filter(source, vowel, sr) * env, pos)
        pos += length
        k += 1
    out /= np.max(np.abs(out)) + 1e-12
    return np.stack([out, out]) * 0.5


def render_demo(samplerate: int = SAMPLERATE, seed: int = 2) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Render the demo song and its true stems.

    Returns ``(mixture, stems)`` with mixture ``(2, T)`` float32 and ``stems[name]`` ``(2, T)`` for vocals, drums,
    bass, other, where ``mixture == sum(stems)`` and the mixture peaks at -1 dBFS.
    """
    rng = np.random.default_rng(seed)
    n = int(BARS * 4 * 60.0 / BPM * samplerate)
    stems = {
        "vocals": render_vocal(n, samplerate, rng),
        "drums": render_drums(n, samplerate, rng),
        "bass": render_bass(n, samplerate),
        "other": render_chords(n, samplerate),
    }
    fade = np.minimum(1, (n - np.arange(n)) / (0.5 * samplerate))  # half-second fade-out
    mix = sum(stems.values()) * fade
    gain = 10 ** (-1 / 20) / np.max(np.abs(mix))
    stems = {k: (v * fade * gain).astype(np.float32) for k, v in stems.items()}
    return sum(stems.values()).astype(np.float32), stems


def write_demo(path: str | Path, samplerate: int = SAMPLERATE) -> Path:
    """Render the demo and write it as Ogg Vorbis (or any format soundfile infers from the suffix)."""
    mix, _ = render_demo(samplerate)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), mix.T, samplerate)
    log.info("wrote %s (%.1f s)", path, mix.shape[1] / samplerate)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description="Render stemwright's demo song.")
    parser.add_argument("path", nargs="?", default=str(Path(__file__).resolve().parents[1] / "data" / "demo.ogg"))
    args = parser.parse_args()
    print(write_demo(args.path))


if __name__ == "__main__":
    main()
