"""Grooves the analysis once got wrong, as stems ``{name: (2, T)}`` at 22.05 kHz (tests/analysis/test_song.py):
a jazz-like walking groove (bar lines), a slow ballad groove (tempo octave) and a syncopated funk groove (tempo at
4:3 of the beat)."""
from __future__ import annotations

import numpy as np

SR = 22050
CHORDS = ((57, 60, 64), (53, 57, 60), (55, 59, 62), (52, 55, 59))  # Am F G Em, one a bar (MIDI notes)
WALK = (45, 47, 48, 50, 41, 43, 45, 48, 43, 47, 50, 52, 40, 43, 47, 45)  # a bass note on every beat


def _hz(midi: float) -> float:
    return 440.0 * 2 ** ((midi - 69) / 12)


def _tone(freq: float, n: int, decay: float, partials: int = 3) -> np.ndarray:
    t = np.arange(n) / SR
    harmonics = sum(np.sin(2 * np.pi * freq * k * t) / k for k in range(1, partials + 1))
    return harmonics * np.exp(-t / decay) * np.minimum(1, t / 0.003)


def _noise(n: int, decay: float, rng: np.random.Generator, low_cut: float = 0.0) -> np.ndarray:
    x = rng.standard_normal(n)
    if low_cut:
        spectrum = np.fft.rfft(x)
        spectrum[np.fft.rfftfreq(n, 1 / SR) < low_cut] = 0
        x = np.fft.irfft(spectrum, n)
    return x * np.exp(-np.arange(n) / SR / decay)


def _empty(n: int) -> dict[str, np.ndarray]:
    """Silent mono drums, bass and other, ``(n,)`` each."""
    return {k: np.zeros(n) for k in ("drums", "bass", "other")}


def _add(out: dict[str, np.ndarray], stem: str, sig: np.ndarray, t: float, gain: float) -> None:
    """Mix ``sig`` into ``out[stem]`` at ``t`` seconds (cut at the end)."""
    n = len(out[stem])
    i = int(round(t * SR))
    if 0 <= i < n:
        m = min(len(sig), n - i)
        out[stem][i:i + m] += gain * sig[:m]


def _stereo(out: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The mono stems as float32 ``(2, T)``."""
    return {k: np.stack([v, v]).astype(np.float32) for k, v in out.items()}


def _kit(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A kick, a snare and a closed hat, mono."""
    kick = _tone(55.0, int(0.3 * SR), 0.08, 1)
    snare = _noise(int(0.2 * SR), 0.05, rng) * 0.6 + 0.4 * _tone(190.0, int(0.2 * SR), 0.05, 1)
    hat = _noise(int(0.05 * SR), 0.01, rng, low_cut=3000.0)
    return kick, snare, hat


def groove(bpm: float, seconds: float, lead_in: float, *, walking: bool) -> dict[str, np.ndarray]:
    """``walking``: ghost kick on every beat, pedal hat (the snare band) on 2 and 4, a walking bass note on every beat
    (jazz). Else a ballad: kick on 1 and on the "and" of 3, snare on 2 and 4, hats on every eighth note, a bass note
    on 1 and 3. Both: a chord a bar in "other", the first bar starting at ``lead_in`` seconds."""
    rng = np.random.default_rng(5)
    n, beat = int(seconds * SR), 60.0 / bpm
    out = _empty(n)
    kick, snare, hat = _kit(rng)
    k = 0
    while lead_in + k * beat < seconds:
        t0 = lead_in + k * beat
        bar, pos = divmod(k, 4)
        if pos in (1, 3):
            _add(out, "drums", snare, t0, 0.5)
        if walking:
            _add(out, "drums", kick, t0, 0.3)
            _add(out, "drums", hat, t0, 0.2)
            _add(out, "bass", _tone(_hz(WALK[k % len(WALK)]), int(beat * SR), 0.4), t0, 0.5)
        else:
            if pos == 0:
                _add(out, "drums", kick, t0, 0.9)
            if pos == 2:
                _add(out, "drums", kick, t0 + beat / 2, 0.6)
            _add(out, "drums", hat, t0, 0.15)
            _add(out, "drums", hat, t0 + beat / 2, 0.15)
            if pos in (0, 2):
                _add(out, "bass", _tone(_hz(CHORDS[bar % 4][0] - 12), int(2 * beat * SR), 1.0), t0, 0.4)
        if pos == 0:
            for note in CHORDS[bar % 4]:
                _add(out, "other", _tone(_hz(note), int(4 * beat * SR), 2.0), t0, 0.15)
        k += 1
    return _stereo(out)


FUNK_KICK = "x..x..x...x..x.."  # 16th steps of a bar: the kick's dotted-eighth run (0, 3, 6) is 3/4 of a beat apart
FUNK_SNARE = "....x..o.o..x..o"  # backbeat, ghost notes (o) between


def funk_groove(bpm: float, seconds: float, swing: float, lead_in: float = 0.3) -> dict[str, np.ndarray]:
    """A funk groove: the kick of :data:`FUNK_KICK`, the snare of :data:`FUNK_SNARE`, hats on every 16th (above
    the kick and snare band), the off 16ths ``swing`` of the way to the triplet position, a bass note on each kick
    and a chord a bar, as stems ``{name: (2, T)}``."""
    rng = np.random.default_rng(9)
    n, beat = int(seconds * SR), 60.0 / bpm
    out = _empty(n)
    kick, snare, hat = _kit(rng)
    bar_len, bar = 4 * beat, 0
    while lead_in + bar * bar_len < seconds:
        start = lead_in + bar * bar_len
        for step in range(16):
            t = start + step * beat / 4 + (swing * beat / 12 if step % 2 else 0.0)
            _add(out, "drums", hat, t, 0.12)
            if FUNK_KICK[step] == "x":
                _add(out, "drums", kick, t, 0.8)
                _add(out, "bass", _tone(_hz(CHORDS[bar % 4][0] - 24), int(beat * SR / 2), 0.3), t, 0.5)
            if FUNK_SNARE[step] != ".":
                _add(out, "drums", snare, t, 0.5 if FUNK_SNARE[step] == "x" else 0.15)
        for note in CHORDS[bar % 4]:
            _add(out, "other", _tone(_hz(note), int(bar_len * SR), 2.0), start, 0.15)
        bar += 1
    return _stereo(out)


def dance_groove(bpm: float, seconds: float, lead_in: float = 0.3) -> dict[str, np.ndarray]:
    """Dance music whose bars accent like double time: a kick on every beat, a clap (the snare band) on 2 and 4, hats
    on every off-eighth, a long bass note and a chord every two bars (the low band
    and the harmony change every 8 beats), as stems ``{name: (2, T)}``."""
    rng = np.random.default_rng(11)
    n, beat = int(seconds * SR), 60.0 / bpm
    out = _empty(n)

    kick = _tone(55.0, int(0.3 * SR), 0.08, 1)
    clap = _noise(int(0.2 * SR), 0.04, rng, low_cut=400.0)
    hat = _noise(int(0.05 * SR), 0.02, rng, low_cut=3000.0)
    k = 0
    while lead_in + k * beat < seconds:
        t0, (bar, pos) = lead_in + k * beat, divmod(k, 4)
        _add(out, "drums", kick, t0, 0.8)
        _add(out, "drums", hat, t0 + beat / 2, 0.3)
        if pos in (1, 3):
            _add(out, "drums", clap, t0, 0.4)
        if pos == 0 and bar % 2 == 0:
            _add(out, "bass", _tone(_hz(CHORDS[bar // 2 % 4][0] - 24), int(4 * beat * SR), 0.8), t0, 0.9)
        if pos == 0 and bar % 2 == 0:
            for note in CHORDS[bar // 2 % 4]:
                _add(out, "other", _tone(_hz(note), int(8 * beat * SR), 3.0), t0, 0.15)
        k += 1
    return _stereo(out)
