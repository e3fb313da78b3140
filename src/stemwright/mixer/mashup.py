"""Mashups: the vocals of song A over the backing (every other stem) of song B.

1. Tempo, beats and first downbeat of A (its full mix: the vocal follows that grid) and of B's backing.
2. Key of A's full mix and of B's backing (Krumhansl-Schmuckler).
3. Vocal time-stretched by B/A (folded by octaves into [0.71, 1.41], i.e. half/double time when far apart) and
   pitch-shifted to B's key or its relative key (nearest shift, -6..+5 semitones), in one Rubber Band pass
   (``pedalboard.time_stretch``).
4. The vocal's first downbeat is placed on a downbeat of B (the first one at or after it, so nothing is cut).
5. Mixed with the mixer engine (gains, optional loudness target).
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pedalboard

from stemwright.audio.resample import resample
from stemwright.mixer.analysis import Key, Rhythm, estimate_key, estimate_rhythm, fold_tempo_ratio, semitones_to_match
from stemwright.mixer.document import Channel, Mix
from stemwright.mixer.effects import MixError
from stemwright.mixer.render import _place, render
from stemwright.mixer.stems import StemSet, as_stemset

log = logging.getLogger(__name__)


@dataclass
class MashupPlan:
    """What was estimated and what was changed (all printed by ``stemwright mashup``)."""

    vocals_tempo: float
    backing_tempo: float
    vocals_key: Key | None
    backing_key: Key | None
    stretch: float  # playback speed factor applied to the vocal (>1 = faster)
    semitones: int
    offset_s: float  # where the (stretched) vocal starts in the backing's timeline
    vocals_downbeat: float  # first downbeat of A, in A's original time
    backing_downbeat: float
    overrides: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "vocals_tempo_bpm": round(self.vocals_tempo, 2), "backing_tempo_bpm": round(self.backing_tempo, 2),
            "vocals_key": str(self.vocals_key) if self.vocals_key else None,
            "backing_key": str(self.backing_key) if self.backing_key else None,
            "stretch": round(self.stretch, 5), "semitones": self.semitones, "offset_s": round(self.offset_s, 4),
            "vocals_first_downbeat_s": round(self.vocals_downbeat, 3),
            "backing_first_downbeat_s": round(self.backing_downbeat, 3), "overrides": self.overrides,
        }

    def describe(self) -> str:
        lines = [
            f"vocals : tempo {self.vocals_tempo:.1f} BPM, key {self.vocals_key or 'n/a'}, first downbeat {self.vocals_downbeat:.2f} s",
            f"backing: tempo {self.backing_tempo:.1f} BPM, key {self.backing_key or 'n/a'}, first downbeat {self.backing_downbeat:.2f} s",
            f"change : vocal time-stretched x{self.stretch:.4f} (speed), pitch-shifted {self.semitones:+d} semitones, "
            f"starts at {self.offset_s:+.3f} s",
        ]
        if self.overrides:
            lines.append("overrides: " + ", ".join(self.overrides))
        return "\n".join(lines)


@dataclass
class MashupResult:
    audio: np.ndarray  # (C, T) mixed
    samplerate: int
    vocals: np.ndarray  # (C, T) the processed vocal on the backing's timeline
    plan: MashupPlan
    info: dict[str, Any]


def _split(stems: StemSet, vocal_stem: str, which: str) -> None:
    if vocal_stem not in stems.audio:
        raise MixError(f"{which}: no {vocal_stem!r} stem in {stems.path or 'the stems'} (stems: {', '.join(stems.names)}); "
                       f"use --vocal-stem to pick one")


def _sum(parts: list[np.ndarray]) -> np.ndarray:
    """Sum of stems (mono stems broadcast against stereo ones). Shape: list of ``(C, T)`` -> ``(C_max, T)``."""
    out = np.zeros((max(x.shape[0] for x in parts), parts[0].shape[1]), np.float32)
    for x in parts:
        out += x
    return out


def plan_mashup(
    vocals: StemSet, backing: StemSet, vocal_stem: str = "vocals", *,
    vocals_tempo: float | None = None, backing_tempo: float | None = None,
    vocals_key: Key | None = None, backing_key: Key | None = None,
    semitones: int | None = None, offset_s: float | None = None, stretch: bool = True,
) -> MashupPlan:
    """Estimate tempo/key/downbeats and decide stretch, shift and offset. Overrides skip the estimates they replace."""
    _split(vocals, vocal_stem, "--vocals")
    full_a = _sum(list(vocals.audio.values()))
    b_parts = [x for n, x in backing.audio.items() if n != vocal_stem]
    if not b_parts:
        raise MixError(f"--backing: {backing.path or 'stems'} has only a {vocal_stem!r} stem; nothing to use as backing")
    full_b = _sum(b_parts)
    overrides = []
    ra, rb = estimate_rhythm(full_a, vocals.samplerate), estimate_rhythm(full_b, backing.samplerate)
    ta, tb = ra.tempo, rb.tempo
    if vocals_tempo is not None:
        ta, overrides = _positive(vocals_tempo, "--vocals-tempo"), overrides + [f"vocals tempo {vocals_tempo:g} BPM"]
    if backing_tempo is not None:
        tb, overrides = _positive(backing_tempo, "--backing-tempo"), overrides + [f"backing tempo {backing_tempo:g} BPM"]
    factor = fold_tempo_ratio(tb / ta) if stretch else 1.0
    ka = kb = None
    if semitones is None:
        ka = vocals_key or estimate_key(full_a, vocals.samplerate)
        kb = backing_key or estimate_key(full_b, backing.samplerate)
        shift = semitones_to_match(ka, kb)
    else:
        if not -12 <= semitones <= 12:
            raise MixError(f"--semitones: must be in [-12, 12], got {semitones}")
        shift, overrides = semitones, overrides + [f"pitch shift {semitones:+d} semitones"]
        ka, kb = vocals_key, backing_key
    if vocals_key is not None:
        overrides.append(f"vocals key {vocals_key}")
    if backing_key is not None:
        overrides.append(f"backing key {backing_key}")
    if offset_s is None:
        offset = _downbeat_offset(ra, rb, tb, factor)
    else:
        offset, overrides = float(offset_s), overrides + [f"offset {offset_s:+g} s"]
    return MashupPlan(ta, tb, ka, kb, factor, shift, offset, ra.downbeat, rb.downbeat, overrides)


def _positive(v: float, flag: str) -> float:
    if not (math.isfinite(v) and 20 <= v <= 400):
        raise MixError(f"{flag}: tempo must be in [20, 400] BPM, got {v:g}")
    return float(v)


def _downbeat_offset(ra: Rhythm, rb: Rhythm, tempo_b: float, factor: float) -> float:
    """Start of the vocal so that its first downbeat lands on the first downbeat of B at or after it.

    "At or after" allows a quarter of a beat of estimation jitter: the two downbeats are estimated on different
    signals (A's full mix, B's backing), so a song mashed with itself used to land a whole bar late when its
    estimate came out a few milliseconds after B's. The vocal may then start up to a quarter beat early
    (cutting at most that much of its lead-in).
    """
    vocal_down = ra.downbeat / factor  # after stretching
    beat = 60.0 / tempo_b
    bar = rb.beats_per_bar * beat
    target = rb.downbeat
    while target < vocal_down - 0.25 * beat:
        target += bar
    return target - vocal_down


def transform_vocal(vocal: np.ndarray, samplerate: int, plan: MashupPlan) -> np.ndarray:
    """Time-stretch and pitch-shift with Rubber Band (pedalboard). Shape: ``(C, T)`` -> ``(C, ~T / stretch)``."""
    if plan.stretch == 1.0 and plan.semitones == 0:
        return np.asarray(vocal, dtype=np.float32).copy()
    out = pedalboard.time_stretch(
        np.ascontiguousarray(vocal, dtype=np.float32), float(samplerate), stretch_factor=float(plan.stretch),
        pitch_shift_in_semitones=float(plan.semitones), high_quality=True,
    )
    return np.ascontiguousarray(out, dtype=np.float32)


def mashup(
    vocals: Any, backing: Any, vocal_stem: str = "vocals", *, vocals_gain_db: float = 0.0,
    backing_gain_db: float = 0.0, loudness_lufs: float | None = None, **overrides: Any,
) -> MashupResult:
    """Put ``vocals``' vocal stem over ``backing``'s other stems (folders or :class:`StemSet`).

    ``overrides``: ``vocals_tempo``, ``backing_tempo``, ``vocals_key``, ``backing_key`` (:class:`Key`),
    ``semitones``, ``offset_s``, ``stretch`` (bool). Output: the backing's rate and length.
    """
    a, b = as_stemset(vocals), as_stemset(backing)
    plan = plan_mashup(a, b, vocal_stem, **overrides)
    vocal = a.audio[vocal_stem]
    if a.samplerate != b.samplerate:
        log.warning("vocals are at %d Hz, backing at %d Hz; resampling the vocal", a.samplerate, b.samplerate)
        vocal = resample(vocal, a.samplerate, b.samplerate)
    moved = transform_vocal(vocal, b.samplerate, plan)
    start = int(round(plan.offset_s * b.samplerate))
    if start >= b.length or start + moved.shape[1] <= 0:
        raise MixError(f"offset {plan.offset_s:+.3f} s puts the vocal ({moved.shape[1] / b.samplerate:.2f} s) entirely "
                       f"outside the backing (0 to {b.length / b.samplerate:.2f} s); nothing of it would be heard")
    vocal_track = _place(moved, start, b.length)  # on the backing's timeline
    backing_parts = {n: x for n, x in b.audio.items() if n != vocal_stem}
    name = "vocals" if "vocals" not in backing_parts else "mashup_vocals"
    mix = Mix([Channel(name, gain_db=vocals_gain_db)] + [Channel(n, gain_db=backing_gain_db) for n in backing_parts],
              loudness_lufs=loudness_lufs)
    audio, info = render(mix, {name: vocal_track, **backing_parts}, samplerate=b.samplerate, return_info=True)
    return MashupResult(audio, b.samplerate, vocal_track, plan, info)
