"""Music analysis for mashups: tempo, beats, first downbeat (librosa) and key (Krumhansl-Schmuckler).

Tempo: librosa's dynamic-programming beat tracker (Ellis 2007) gives beat times; the tempo is then refined by a
least-squares line through the beat times (robust to the tracker's tempo grid, which at a 256-sample hop is only
~2-3 BPM fine at 120 BPM).
Key: mean chroma correlated with the 24 rotations of the Krumhansl-Kessler major/minor key profiles
(Krumhansl 1990, "Cognitive Foundations of Musical Pitch", table 2.1), the Krumhansl-Schmuckler algorithm.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import numpy as np

from stemwright.audio.resample import resample
from stemwright.mixer.effects import MixError

log = logging.getLogger(__name__)

ANALYSIS_RATE = 22050
HOP = 256
PITCH_CLASSES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_FLATS = {"DB": 1, "EB": 3, "GB": 6, "AB": 8, "BB": 10, "CB": 11, "FB": 4, "E#": 5, "B#": 0}
# Krumhansl-Kessler probe-tone ratings, C major / C minor.
KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


@dataclass(frozen=True)
class Key:
    tonic: int  # pitch class, 0 = C
    mode: str  # "major" | "minor"
    confidence: float = 1.0  # Pearson correlation with the best profile

    def __str__(self) -> str:
        return f"{PITCH_CLASSES[self.tonic]} {self.mode}"

    @property
    def relative(self) -> Key:
        """The relative major/minor (same notes): A minor <-> C major."""
        if self.mode == "major":
            return Key((self.tonic - 3) % 12, "minor", self.confidence)
        return Key((self.tonic + 3) % 12, "major", self.confidence)


def parse_key(text: str) -> Key:
    """``"A minor"``, ``"Am"``, ``"F# major"``, ``"Bb"`` (major), ``"c#m"`` -> :class:`Key`."""
    m = re.fullmatch(r"\s*([A-Ga-g])([#b]?)\s*(major|maj|minor|min|m|M)?\s*", text or "")
    if not m:
        raise MixError(f"key: cannot parse {text!r} (expected e.g. 'A minor', 'Am', 'F# major', 'Bb')")
    name = (m.group(1) + m.group(2)).upper()
    tonic = _FLATS.get(name, PITCH_CLASSES.index(name) if name in PITCH_CLASSES else None)
    if tonic is None:
        raise MixError(f"key: unknown note {m.group(1) + m.group(2)!r}")
    mode = "minor" if (m.group(3) or "").lower() in ("minor", "min", "m") and m.group(3) != "M" else "major"
    return Key(tonic, mode)


def to_mono(audio: np.ndarray, samplerate: int) -> np.ndarray:
    """Mono float32 at :data:`ANALYSIS_RATE`. Shape: ``(C, T)`` -> ``(T')``."""
    x = np.asarray(audio, dtype=np.float32)
    mono = x.mean(axis=0, keepdims=True) if x.ndim == 2 else x[None]
    return resample(mono, samplerate, ANALYSIS_RATE)[0]


VARYING_TEMPO = 0.04  # a song whose beat intervals vary by more than this (max/min - 1, 4-beat medians) changes tempo
VARYING_SUPPORT = 1.15  # ... and the time-varying tracker's beats must carry this much more onset strength


@dataclass(frozen=True)
class Rhythm:
    """A beat grid. ``grid`` is None for a constant tempo: beat k (from 0 at the first downbeat) is at
    ``downbeat + k * 60 / tempo``. For a song whose tempo changes it holds the beat times ``(N,)`` in seconds, beat 0
    at ``downbeat``; :meth:`beat_time` interpolates between them and goes on at the end intervals outside."""

    tempo: float  # BPM (for a changing tempo: the least-squares line through the beats)
    beats: np.ndarray  # beat times in seconds
    downbeat: float  # time of the first downbeat in seconds
    beats_per_bar: int = 4
    grid: np.ndarray | None = None

    def beat_time(self, k: float) -> float:
        """Seconds of beat ``k`` (0 = the first downbeat; fractions between beats)."""
        if self.grid is None:
            return self.downbeat + k * 60.0 / self.tempo
        g = self.grid
        if k <= 0:
            return float(g[0] + k * (g[1] - g[0]))
        if k >= len(g) - 1:
            return float(g[-1] + (k - (len(g) - 1)) * (g[-1] - g[-2]))
        i = int(np.floor(k))
        return float(g[i] + (k - i) * (g[i + 1] - g[i]))


def _fit_tempo(beats: np.ndarray, fallback: float) -> float:
    """Tempo from a least-squares line through beat times, after dropping intervals far from the median."""
    if len(beats) < 4:
        return fallback
    ibi = np.diff(beats)
    med = np.median(ibi)
    idx = np.concatenate([[0], np.cumsum(np.round(ibi / med))])  # beat numbers, tolerant of a skipped beat
    keep = np.abs(ibi / med - np.round(ibi / med)) < 0.25
    keep = np.concatenate([[True], keep])
    if keep.sum() < 4:
        return 60.0 / med
    slope = np.polyfit(idx[keep], beats[keep], 1)[0]
    return float(60.0 / slope)


def _downbeat(y: np.ndarray, beat_frames: np.ndarray, beats_per_bar: int) -> int:
    """Index of the first downbeat: the beat phase whose beats carry the most low-frequency (kick/bass) onset energy."""
    import librosa  # lazy: librosa's submodules take ~3 s to import

    if len(beat_frames) < beats_per_bar * 2:
        return 0
    spec = np.abs(librosa.stft(y, n_fft=1024, hop_length=HOP))
    freqs = librosa.fft_frequencies(sr=ANALYSIS_RATE, n_fft=1024)
    low = spec[freqs < 200].sum(axis=0)
    flux = np.maximum(0.0, np.diff(low, prepend=low[:1]))
    frames = np.clip(beat_frames, 0, len(flux) - 1)
    # strength of each beat = max flux within +-2 frames (the tracker's beat can be a frame early or late)
    strength = np.array([flux[max(0, f - 2): f + 3].max() for f in frames])
    scores = [strength[p::beats_per_bar].mean() for p in range(beats_per_bar)]
    return int(np.argmax(scores))


def _support(onset: np.ndarray, frames: np.ndarray) -> float:
    """Mean onset strength at beat frames (the max within +-2 frames: the tracker may be a frame off)."""
    frames = np.clip(frames, 0, len(onset) - 1)
    return float(np.mean([onset[max(0, f - 2): f + 3].max() for f in frames])) if len(frames) else 0.0


def _varying_beats(onset: np.ndarray, tempo: float, frames: np.ndarray) -> np.ndarray | None:
    """Beat frames of a song whose tempo changes, or None for a constant tempo. The beat tracker follows one
    tempo; when the local tempo curve leaves it, the beats are tracked again along that curve, and kept only when
    they really vary (:data:`VARYING_TEMPO`) and sit on clearly stronger onsets (:data:`VARYING_SUPPORT`): the
    local curve also jumps to 3:2 and 4:3 of a steady song's tempo, and such beats fall between its onsets."""
    import librosa  # lazy: librosa's submodules take ~3 s to import

    curve = librosa.feature.tempo(onset_envelope=onset, sr=ANALYSIS_RATE, hop_length=HOP, aggregate=None)
    folded = curve * 2.0 ** -np.round(np.log2(curve / tempo))  # octave errors are not tempo changes
    if np.max(np.abs(folded / tempo - 1)) <= VARYING_TEMPO:
        return None
    _, varying = librosa.beat.beat_track(onset_envelope=onset, sr=ANALYSIS_RATE, hop_length=HOP, bpm=folded)
    if len(varying) < 8:
        return None
    ibi = np.diff(varying).astype(float)
    local = np.array([np.median(ibi[i: i + 4]) for i in range(len(ibi) - 3)])
    if local.max() / local.min() - 1 <= VARYING_TEMPO:
        return None
    if _support(onset, varying) < VARYING_SUPPORT * _support(onset, frames):
        return None
    return varying


def estimate_rhythm(audio: np.ndarray, samplerate: int, beats_per_bar: int = 4, follow_changes: bool = False) -> Rhythm:
    """Tempo (BPM), beat times and first downbeat of ``(C, T)`` audio. With ``follow_changes``, a song whose tempo
    changes gets its beats as the grid (``Rhythm.grid``); otherwise the grid is the straight line of one tempo."""
    import librosa  # lazy: librosa's submodules take ~3 s to import

    y = to_mono(audio, samplerate)
    if not np.any(y):
        raise MixError("tempo: the audio is silent")
    onset = librosa.onset.onset_strength(y=y, sr=ANALYSIS_RATE, hop_length=HOP)
    tempo, frames = librosa.beat.beat_track(onset_envelope=onset, sr=ANALYSIS_RATE, hop_length=HOP)
    tempo = float(np.atleast_1d(tempo)[0])
    varying = _varying_beats(onset, tempo, frames) if follow_changes and len(frames) >= 8 else None
    if varying is not None:
        frames = varying
    times = librosa.frames_to_time(frames, sr=ANALYSIS_RATE, hop_length=HOP)
    if len(times) < 2:
        raise MixError("tempo: no beats found (is there rhythmic material in these stems?)")
    refined = _fit_tempo(times, tempo)
    if varying is not None:
        return _varying_rhythm(times, refined, _downbeat(y, frames, beats_per_bar), beats_per_bar)
    first = float(times[_downbeat(y, frames, beats_per_bar)])
    bar = beats_per_bar * 60.0 / refined
    while first - bar >= 0.0:  # the tracker often locks on a few beats late: step back whole bars
        first -= bar
    return Rhythm(refined, times, first, beats_per_bar)


def _varying_rhythm(times: np.ndarray, tempo: float, downbeat_index: int, beats_per_bar: int) -> Rhythm:
    """The grid of a changing tempo: the tracked beats from the earliest downbeat, and whole bars before it at the
    first beat interval while they fit in the song."""
    grid = times[downbeat_index % beats_per_bar:]
    step = grid[1] - grid[0]
    while grid[0] - beats_per_bar * step >= 0.0:
        grid = np.concatenate([grid[0] - step * np.arange(beats_per_bar, 0, -1), grid])
    return Rhythm(tempo, times, float(grid[0]), beats_per_bar, grid=grid)


def estimate_key(audio: np.ndarray, samplerate: int) -> Key:
    """Krumhansl-Schmuckler key of ``(C, T)`` audio (constant-Q chroma averaged over time)."""
    import librosa  # lazy: librosa's submodules take ~3 s to import

    y = to_mono(audio, samplerate)
    if not np.any(y):
        raise MixError("key: the audio is silent")
    chroma = librosa.feature.chroma_cqt(y=y, sr=ANALYSIS_RATE, hop_length=2048).mean(axis=1)
    best = (-2.0, 0, "major")
    for mode, profile in (("major", KK_MAJOR), ("minor", KK_MINOR)):
        for tonic in range(12):
            r = float(np.corrcoef(chroma, np.roll(profile, tonic))[0, 1])
            if r > best[0]:
                best = (r, tonic, mode)
    return Key(best[1], best[2], best[0])


def semitones_to_match(source: Key, target: Key) -> int:
    """Smallest pitch shift (in [-6, +5] semitones) that puts ``source`` in ``target``'s key.

    Same mode: tonic to tonic. Different modes: to the relative key of the target (A minor over C major goes to
    A minor, which shares C major's notes), the nearest compatible key.
    """
    goal = target if source.mode == target.mode else target.relative
    d = (goal.tonic - source.tonic) % 12
    return d - 12 if d > 5 else d


def fold_tempo_ratio(ratio: float) -> float:
    """Fold a tempo ratio into [1/sqrt 2, sqrt 2] by octaves (half/double time), so stretching stays musical."""
    if ratio <= 0:
        raise MixError(f"tempo ratio must be positive, got {ratio}")
    while ratio > 2 ** 0.5:
        ratio /= 2
    while ratio < 2 ** -0.5:
        ratio *= 2
    return ratio
