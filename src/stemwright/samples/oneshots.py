"""Drum one-shots from a drum stem: onsets, one cut per hit, trimmed and normalised, a class from the spectrum
(kick / snare / hat / other), near-duplicates removed.

Classes by where the hit's energy lies in its first 50 ms (the attack, before the next hit's bleed): a kick has
most of it below 150 Hz, a hi-hat or cymbal over a fifth of it above 5 kHz (or a centroid above 2.5 kHz), a snare
a body with its centroid from 400 Hz to 2.5 kHz and little below 150 Hz; anything else is "other" (toms,
percussion). Thresholds set between the 10th/90th percentiles of isolated hits of 6 `stemwright synth --seed 16`
songs (Hydrogen kits): snare centroid 0.4-1.7 kHz and high share <= 0.14, hats/cymbals high share >= 0.29 and
centroid >= 3.3 kHz, toms centroid 0.19-0.45 kHz.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stemwright.samples.loops import rms_dbfs

CLASSES = ("kick", "snare", "hat", "other")
MAX_HIT_S = 1.0
ATTACK_S = 0.05
TAIL_DB = -45.0  # trim the tail where the envelope falls this far below the hit's peak
PEAK_DBFS = -1.0  # normalisation target
DUPLICATE_SIMILARITY = 0.95  # cosine similarity of attack log-spectra above which two hits count as the same sound (on a synth ballad: 53 hits -> 16; 0.99 kept 37, mostly one hi-hat at different velocities)
MIN_PEAK_DBFS = -45.0  # quieter hits (bleed, ghost notes under the noise) are skipped


@dataclass(frozen=True, kw_only=True)
class OneShot:
    audio: np.ndarray  # (C, T) float32, peak at PEAK_DBFS
    start: int  # onset sample in the stem
    kind: str  # one of CLASSES
    features: np.ndarray  # log band energies of the attack, used for de-duplication


def band_shares(attack: np.ndarray, samplerate: int) -> tuple[float, float, float]:
    """``(share below 150 Hz, share above 5 kHz, spectral centroid in Hz)`` of mono ``attack`` ``(T,)``."""
    n = max(2048, 1 << int(np.ceil(np.log2(max(len(attack), 1)))))
    spec = np.abs(np.fft.rfft(attack * np.hanning(len(attack)), n)) ** 2
    return spectrum_shares(spec, np.fft.rfftfreq(n, 1.0 / samplerate))


def spectrum_shares(spec: np.ndarray, freqs: np.ndarray) -> tuple[float, float, float]:
    """:func:`band_shares` of a power spectrum ``spec`` ``(F,)`` at bin frequencies ``freqs`` ``(F,)``."""
    total = spec.sum()
    if total <= 0:
        return 0.0, 0.0, 0.0
    return (float(spec[freqs < 150].sum() / total), float(spec[freqs > 5000].sum() / total),
            float((freqs * spec).sum() / total))


def classify(attack: np.ndarray, samplerate: int) -> str:
    """kick / snare / hat / other of a mono hit's first :data:`ATTACK_S` seconds."""
    return classify_shares(*band_shares(attack, samplerate))


def classify_shares(low: float, high: float, centroid: float, *, hat_high: float = 0.2,
                    hat_centroid: float = 2500.0) -> str:
    """The class of a hit from :func:`band_shares`' ``(low share, high share, centroid)``: a hat over
    ``hat_high`` of the energy above 5 kHz or a centroid over ``hat_centroid`` Hz."""
    if low > 0.5:
        return "kick"
    if high > hat_high or centroid > hat_centroid:
        return "hat"
    if centroid >= 400 and low < 0.2:
        return "snare"
    return "other"


def _features(attack: np.ndarray, samplerate: int) -> np.ndarray:
    n = 2048
    spec = np.abs(np.fft.rfft(attack[:n] * np.hanning(min(n, len(attack))), n)) ** 2
    edges = np.geomspace(40, samplerate / 2, 25)
    freqs = np.fft.rfftfreq(n, 1.0 / samplerate)
    bands = np.array([spec[(freqs >= a) & (freqs < b)].sum() for a, b in zip(edges[:-1], edges[1:])])
    return np.log10(bands + 1e-10)


def _trim(x: np.ndarray, samplerate: int) -> tuple[np.ndarray, int]:
    """The hit from 1 ms before its attack to 5 ms after its tail falls below :data:`TAIL_DB` (faded out there),
    and where it starts in ``x``."""
    env = np.abs(x).max(axis=0)
    peak = env.max()
    if peak <= 0:
        return x[:, :0], 0
    above = np.nonzero(env > peak * 10 ** (TAIL_DB / 20))[0]
    start = max(0, int(above[0]) - int(0.001 * samplerate))  # 1 ms before the attack
    end = min(x.shape[1], int(above[-1]) + 1 + int(0.005 * samplerate))
    out = np.array(x[:, start:end], dtype=np.float32, copy=True)
    fade = min(int(0.005 * samplerate), out.shape[1])
    if fade:
        out[:, -fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
    return out, start


ONSET_HOP = 256


def detect_onsets(mono: np.ndarray, samplerate: int) -> np.ndarray:
    """Onset sample positions (librosa's spectral-flux peak picking, backtracked to the energy minimum before each
    peak so a cut starts before the attack)."""
    import librosa  # lazy: librosa's submodules take seconds to import

    hop = ONSET_HOP
    frames = librosa.onset.onset_detect(y=mono, sr=samplerate, hop_length=hop, backtrack=True, units="frames")
    return np.asarray(frames, dtype=np.int64) * hop


def extract_one_shots(drums: np.ndarray, samplerate: int, *, dedupe: bool = True) -> list[OneShot]:
    """One-shots of a drum stem ``(C, T)``: each hit from its onset to the next (at most :data:`MAX_HIT_S`),
    trimmed, normalised to :data:`PEAK_DBFS`, classified; near-duplicates dropped when ``dedupe``."""
    x = np.asarray(drums, dtype=np.float32)
    mono = x.mean(axis=0)
    onsets = detect_onsets(mono, samplerate)
    # Onsets are frame-accurate (ONSET_HOP samples): each cut starts half a frame early and ends a frame before
    # the next onset, so it holds its whole attack and none of the next; _trim then finds the attack itself.
    starts = np.maximum(0, onsets - ONSET_HOP // 2)
    ends = np.concatenate([onsets[1:] - ONSET_HOP, [x.shape[1]]])
    out: list[OneShot] = []
    for start, end in zip(starts, ends):
        end = min(int(end), int(start) + int(MAX_HIT_S * samplerate))
        if end <= start:
            continue
        hit, lead = _trim(x[:, start:end], samplerate)
        if hit.shape[1] < int(0.01 * samplerate):
            continue
        peak = float(np.abs(hit).max())
        if 20 * np.log10(peak) < MIN_PEAK_DBFS:
            continue
        attack = hit.mean(axis=0)[:int(ATTACK_S * samplerate)]
        shot = OneShot(audio=hit * np.float32(10 ** (PEAK_DBFS / 20) / peak), start=int(start) + lead,
                       kind=classify(attack, samplerate), features=_features(attack, samplerate))
        out.append(shot)
    return dedupe_one_shots(out) if dedupe else out


def dedupe_one_shots(shots: list[OneShot]) -> list[OneShot]:
    """Keep the first of every group of hits whose attack spectra are near-identical (cosine similarity of the
    mean-removed log band energies above :data:`DUPLICATE_SIMILARITY`) and of the same class."""
    kept: list[OneShot] = []
    normed: list[np.ndarray] = []
    for s in shots:
        f = s.features - s.features.mean()
        f = f / (np.linalg.norm(f) or 1.0)
        if any(k.kind == s.kind and float(f @ g) > DUPLICATE_SIMILARITY for k, g in zip(kept, normed)):
            continue
        kept.append(s)
        normed.append(f)
    return kept


__all__ = ["CLASSES", "OneShot", "classify", "extract_one_shots", "dedupe_one_shots", "detect_onsets", "rms_dbfs"]
