"""Drum hits of a drum stem: onsets, the attack of each to a fraction of a sample, a class and a level.

Onsets come from the one-shot cutter's detector (``samples.oneshots.detect_onsets``: spectral flux, backtracked,
frame-accurate); each is then refined to its *attack*: the instant the hit's envelope first rises past
:data:`ATTACK_FRACTION` of the way from the level before it to its peak, interpolated between samples, walking back
from the first point at :data:`FIRST_PEAK` of the peak (a kick's click, not its low end swelling later). The same
definition applied to a lone sample (``synth.sampler.attack_offset``, the generator's ground truth) gives the
sample's own attack, so a replacement lands attack on attack. The class is read from what the hit *adds* to the
spectrum (:func:`rise_spectrum`: its first 50 ms less the 50 ms before it), so a hi-hat over a ringing kick is a hat.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import maximum_filter1d
from scipy.signal import butter, sosfiltfilt

from stemwright.samples.oneshots import ATTACK_S, CLASSES, ONSET_HOP, classify_shares, detect_onsets, spectrum_shares
from stemwright.synth.sampler import ATTACK_FRACTION

HOLD_S = 0.002  # envelope = peak hold over 2 ms, longer than a half period of a 40 Hz kick's gaps under 10 %
SEARCH_S = 0.1  # a hit's peak is looked for up to 100 ms after its onset (kick samples peak up to 85 ms in)
MIN_PEAK_DBFS = -45.0  # quieter onsets are bleed or noise
# Onsets this far under the loudest hit of the stem are left out: in separated drums they are mostly other
# instruments' attacks left in the stem (on 4 generated songs, classic's drums: precision 0.80 at -36 dB, 0.85 at
# -20 dB; true drum stems lose 0.3 % recall). Quiet ghost notes go too: lower it (min_level_db) to keep them.
MIN_RELATIVE_DB = -20.0
MIN_GAP_S = 0.02  # two attacks closer than this are one hit (a flam plays as one)
# Each class's own band: a kick under a hi-hat starts where its low end rises, which can be 20 ms after the hat's
# attack (kit samples have up to 20 ms of lead). Zero-phase filters, so the band envelope is not delayed.
BANDS_HZ = {"kick": (None, 150.0), "snare": (150.0, 5000.0), "hat": (5000.0, None)}
LATE_S = 0.002  # the class's band attack replaces the broadband one when it comes this much later


@dataclass(frozen=True, kw_only=True)
class Hit:
    """One drum hit: ``time_s`` its attack (sub-sample), ``kind`` one of :data:`CLASSES`, ``peak`` its linear peak
    in the first 50 ms, ``velocity`` 1-127 (MIDI, from the peak against the stem's loudest hit)."""

    time_s: float
    kind: str
    peak: float
    velocity: int

    def to_dict(self) -> dict:
        return {"time_s": round(self.time_s, 6), "kind": self.kind, "peak": round(self.peak, 6),
                "velocity": self.velocity}


def envelope(mono: np.ndarray, samplerate: int) -> np.ndarray:
    """Causal peak hold of ``|x|`` over :data:`HOLD_S`: its first crossing of a level is the raw signal's."""
    width = max(1, int(HOLD_S * samplerate))
    return maximum_filter1d(np.abs(mono), size=width, origin=(width - 1) // 2, mode="constant")


def attack_time(env: np.ndarray, lo: int, hi: int, peak: float | None = None) -> tuple[float, int]:
    """The attack (fractional sample index) of the hit whose peak is the maximum of ``env[lo:hi]``, and that peak's
    index: walking back from the peak to the last sample under ``base + ATTACK_FRACTION * (peak - base)``
    (``peak``: the hit's peak level when ``env[lo:hi]`` ends before it)."""
    seg = env[lo:hi]
    p = int(np.argmax(seg))
    base = float(seg[:p + 1].min())
    level = base + ATTACK_FRACTION * ((float(seg[p]) if peak is None else peak) - base)
    below = np.nonzero(seg[:p + 1] < level)[0]
    if below.size == 0:
        return float(lo), lo + p
    i = int(below[-1])  # seg[i] < level <= seg[i + 1]
    if i + 1 >= seg.size:
        return float(lo + i), lo + p
    frac = (level - seg[i]) / max(float(seg[i + 1] - seg[i]), 1e-12)
    return lo + i + float(np.clip(frac, 0.0, 1.0)), lo + p


def band_attack(env: np.ndarray, start: int, hi: int) -> float:
    """The first crossing, from ``start`` on, of :data:`ATTACK_FRACTION` of the way from ``env[start]`` to the
    peak of ``env[start:hi]`` (forward: a kick whose low end swells, dips and swells again starts at the first)."""
    seg = env[start:hi]
    if seg.size < 2:
        return float(start)
    level = seg[0] + ATTACK_FRACTION * (float(seg.max()) - seg[0])
    i = int(np.argmax(seg >= level))
    if i == 0:
        return float(start)
    frac = (level - seg[i - 1]) / max(float(seg[i] - seg[i - 1]), 1e-12)
    return start + i - 1 + float(np.clip(frac, 0.0, 1.0))


def band_envelopes(mono: np.ndarray, samplerate: int) -> dict[str, np.ndarray]:
    """:func:`envelope` of ``mono`` ``(T,)`` in each class's band of :data:`BANDS_HZ` (zero-phase Butterworth)."""
    out = {}
    for kind, (lo, hi) in BANDS_HZ.items():
        nyq = samplerate / 2
        if lo is not None and lo >= nyq:
            continue
        if lo is None:
            sos = butter(4, hi / nyq, "lowpass", output="sos")
        elif hi is None or hi >= nyq:
            sos = butter(4, lo / nyq, "highpass", output="sos")
        else:
            sos = butter(4, (lo / nyq, hi / nyq), "bandpass", output="sos")
        out[kind] = envelope(sosfiltfilt(sos, mono), samplerate)
    return out


RISE_N_FFT = 4096
# A hit's rise spectrum (what it adds over the decay before it) is a hat's when over 10 % of it is above 5 kHz or its
# centroid is over 1.5 kHz: lower than the one-shot classifier's 20 % / 2.5 kHz, which see whole isolated hits; chosen
# on the dev songs (stemwright synth --seed 11: class accuracy on classic's drums 0.81 at 20 % / 2.5 kHz, 0.87 here).
RISE_HAT_HIGH = 0.1
RISE_HAT_CENTROID_HZ = 1500.0
# The attack is walked back from the first point reaching this share of the hit's peak, not from the peak: a kick
# whose low end swells 50-85 ms after its click (Audiophob) starts at the click, as the generator's attack does.
FIRST_PEAK = 0.7


def rise_spectrum(mono: np.ndarray, t: int, end: int, samplerate: int) -> tuple[np.ndarray, np.ndarray]:
    """What a hit at ``t`` adds to the spectrum: the power spectrum of ``mono[t:t+w]`` less that of the ``w``
    samples before it (``w`` = :data:`ATTACK_S`, cut at ``end``), clipped at 0, so the decay of the hits before
    (a kick ringing under a hi-hat) does not count. Returns ``(spectrum (F,), bin frequencies (F,))``."""
    w = max(16, min(int(ATTACK_S * samplerate), end - t))
    win = np.hanning(w)
    after = mono[t:t + w]
    before = mono[max(0, t - w):t]
    before = np.concatenate([np.zeros(w - before.size, mono.dtype), before])
    n = max(RISE_N_FFT, 1 << int(np.ceil(np.log2(w))))
    p_after = np.abs(np.fft.rfft(np.pad(after, (0, w - after.size)) * win, n)) ** 2
    p_before = np.abs(np.fft.rfft(before * win, n)) ** 2
    return np.maximum(p_after - p_before, 0.0), np.fft.rfftfreq(n, 1.0 / samplerate)


def _read_rise(mono: np.ndarray, t: int, end: int, samplerate: int) -> tuple[str, float, float]:
    """``(class, rise power below 150 Hz, rise power above 5 kHz)`` of the hit at ``t`` of ``mono`` ``(T,)`` (the
    next hit at ``end``), from its :func:`rise_spectrum`."""
    spec, freqs = rise_spectrum(mono, t, end, samplerate)
    kind = classify_shares(*spectrum_shares(spec, freqs), hat_high=RISE_HAT_HIGH, hat_centroid=RISE_HAT_CENTROID_HZ)
    return kind, float(spec[freqs < BANDS_HZ["kick"][1]].sum()), float(spec[freqs > BANDS_HZ["hat"][0]].sum())


# Classes against the song's own hits. In separated drums a hi-hat over bass left in the stem can hold over half of
# its rise under 150 Hz and read as a kick; but it adds far less low end than the song's kicks do, and as much top
# end as its hats. So a "kick" whose low rise is under 10^KICK_LOW_REL (-4 dB) of the median kick's reads as a hat
# when its top-end rise (above 5 kHz) reaches 10^HAT_HIGH_REL (-7 dB) of the median hat's, else as "other"; an
# "other" that reaches it is a hat too. Chosen on the dev songs (stemwright synth -n 10 --seconds 20 --seed 11
# --no-mir1k): class accuracy on classic's drums 0.865 -> 0.902, on the true stems 0.948 -> 0.948; a kick played
# with a hat stays a kick (5 of 193 turned hat). Songs with under MIN_REFERENCE kicks or hats keep the
# rules' classes.
KICK_LOW_REL = -0.4
HAT_HIGH_REL = -0.7
MIN_REFERENCE = 3


def song_relative_classes(kinds: list[str], low: np.ndarray, high: np.ndarray) -> list[str]:
    """The classes of a song's hits (``kinds``, their rise powers ``low`` and ``high`` ``(N,)`` from
    :func:`_read_rise`) read again against the song's median kick and hat (see :data:`KICK_LOW_REL`)."""
    k = np.asarray(kinds)
    if (k == "kick").sum() < MIN_REFERENCE or (k == "hat").sum() < MIN_REFERENCE:
        return list(kinds)
    ref_low, ref_high = float(np.median(low[k == "kick"])), float(np.median(high[k == "hat"]))
    if ref_low <= 0 or ref_high <= 0:
        return list(kinds)
    hat_like = high >= ref_high * 10 ** HAT_HIGH_REL
    out = list(kinds)
    for i, kind in enumerate(kinds):
        if kind == "kick" and low[i] < ref_low * 10 ** KICK_LOW_REL:
            out[i] = "hat" if hat_like[i] else "other"
        elif kind == "other" and hat_like[i]:
            out[i] = "hat"
    return out


def find_hits(drums: np.ndarray, samplerate: int, *, min_level_db: float = MIN_RELATIVE_DB) -> list[Hit]:
    """The hits of a drum stem ``(C, T)`` (or ``(T,)``), in time order; hits more than ``-min_level_db`` dB under
    the loudest are left out."""
    x = np.asarray(drums, dtype=np.float32)
    mono = x if x.ndim == 1 else x.mean(axis=0)
    if mono.size == 0 or not np.any(mono):
        return []
    env = envelope(mono, samplerate)
    bands = band_envelopes(mono, samplerate)
    onsets = detect_onsets(mono, samplerate)
    # First the rules' classes, then the song's own kicks and hats read them again: both passes need every hit.
    raw: list[tuple[float, int, float, str, float, float]] = []  # broadband attack, search end, peak, class, low, high
    for k, onset in enumerate(onsets):
        nxt = int(onsets[k + 1]) if k + 1 < len(onsets) else mono.size
        lo = max(0, int(onset) - ONSET_HOP)
        hi = min(mono.size, max(lo + 2, min(nxt, int(onset) + int(SEARCH_S * samplerate))))
        p = lo + int(np.argmax(env[lo:hi]))
        first = lo + int(np.argmax(env[lo:p + 1] >= FIRST_PEAK * env[p]))
        t = attack_time(env, lo, first + 1, peak=float(env[p]))[0]
        kind, low, high = _read_rise(mono, int(t), min(mono.size, max(nxt, int(t) + 2)), samplerate)
        raw.append((t, hi, float(env[p]), kind, low, high))
    if not raw:
        return []
    loudest = max(r[2] for r in raw)
    floor = max(MIN_PEAK_DBFS, 20 * np.log10(loudest) + min_level_db)
    raw = [r for r in raw if 20 * np.log10(max(r[2], 1e-12)) >= floor]
    kinds = song_relative_classes([r[3] for r in raw], np.array([r[4] for r in raw]), np.array([r[5] for r in raw]))
    hits: list[Hit] = []
    last = -np.inf
    for (t, hi, peak, _, _, _), kind in zip(raw, kinds):
        if kind in bands:
            t_band = band_attack(bands[kind], int(t), hi)
            if t_band - t > LATE_S * samplerate:
                t = t_band
        if t - last < MIN_GAP_S * samplerate:
            continue
        last = t
        velocity = int(np.clip(round(127 * np.sqrt(peak / loudest)), 1, 127))
        hits.append(Hit(time_s=t / samplerate, kind=kind, peak=peak, velocity=velocity))
    return hits


__all__ = ["CLASSES", "Hit", "attack_time", "envelope", "find_hits"]
