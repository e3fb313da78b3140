"""Rendering a :class:`~stemwright.mixer.document.Mix` to audio.

Signal flow per channel (the order of a DAW strip, and of the web mixer's node graph):
time offset -> polarity -> effect chain -> fader gain -> pan; channels are summed in channel order, then
master gain -> master effects -> speed/transpose (``mix.time_pitch``, Rubber Band through pedalboard; one processor
after the sum keeps the stems in sync, as the web mixer's one SoundTouch node does) -> optional loudness
normalisation (with a true-peak limiter).

Exactness: a channel at 0 dB, centred, without effects, offset or polarity is passed through untouched, and
channels are accumulated left to right starting from the first one, so a neutral mix equals
``stems[0] + stems[1] + ...`` bit for bit in float32.
"""
from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

import pedalboard

from stemwright.mixer.document import Channel, Mix, TimePitch
from stemwright.mixer.analysis import Rhythm, estimate_rhythm
from stemwright.mixer.effects import EFFECTS, Effect, MixError, apply_chain
from stemwright.mixer.layers import layer_start, load_layer_audio
from stemwright.mixer.loudness import LoudnessResult, normalize_loudness
from stemwright.mixer.stems import StemSet, as_stemset

log = logging.getLogger(__name__)


def pan_gains(pan: float, channels: int) -> tuple[float, float]:
    """W3C Web Audio ``StereoPannerNode`` equal-power gains ``(gL, gR)`` for ``pan`` in [-1, 1].

    Stereo input: ``x = pan + 1`` if ``pan <= 0`` else ``pan``; mono input: ``x = (pan + 1) / 2``;
    ``gL = cos(x * pi / 2)``, ``gR = sin(x * pi / 2)`` (Web Audio API, "StereoPannerNode" processing).
    """
    if channels == 1:
        x = (pan + 1.0) / 2.0
    else:
        x = pan + 1.0 if pan <= 0 else pan
    return math.cos(x * math.pi / 2), math.sin(x * math.pi / 2)


def apply_pan(x: np.ndarray, pan: float) -> np.ndarray:
    """Pan a mono or stereo signal to stereo with the Web Audio equal-power law.

    Centre pan on a stereo signal is exactly unity (returned unchanged). Shape: ``(1|2, T)`` -> ``(2, T)``.
    """
    if x.shape[0] == 2 and pan == 0.0:
        return x
    g_l, g_r = pan_gains(pan, x.shape[0])
    if x.shape[0] == 1:
        return np.concatenate([x * np.float32(g_l), x * np.float32(g_r)]).astype(np.float32)
    left, right = x[0], x[1]
    if pan <= 0:
        out = np.stack([left + right * np.float32(g_l), right * np.float32(g_r)])
    else:
        out = np.stack([left * np.float32(g_l), right + left * np.float32(g_r)])
    return out.astype(np.float32)


def _place(x: np.ndarray, offset: int, length: int) -> np.ndarray:
    """Shift by ``offset`` samples (positive delays, negative skips the start) into a buffer of ``length``."""
    if offset == 0 and x.shape[1] == length:
        return x
    out = np.zeros((x.shape[0], length), dtype=np.float32)
    src = x[:, max(0, -offset):]
    start = max(0, offset)
    n = min(src.shape[1], length - start)
    if n > 0:
        out[:, start:start + n] = src[:, :n]
    return out


def _others(stemset: StemSet, stem: str, offset: int, length: int) -> np.ndarray:
    """The sum of every stem but ``stem`` (raw, whatever the mix does to them: a muted stem still tells what bleeds),
    placed like the channel: what stem-aware effects (``debleed``) clean the channel against. ``(C, length)``."""
    others = [x for name, x in stemset.audio.items() if name != stem]
    if not others:
        return np.zeros((1, length), dtype=np.float32)
    width = max(x.shape[0] for x in others)
    total = np.zeros((width, stemset.length), dtype=np.float32)
    for x in others:
        total += x  # a mono stem broadcasts over both channels
    return _place(total, offset, length)


def _channel_signal(ch: Channel, stemset: StemSet, sr: int, length: int, stereo: bool, where: str) -> np.ndarray:
    offset = int(round(ch.offset_s * sr))
    y = _place(stemset[ch.stem], offset, length)
    if ch.invert:
        y = -y
    aware = any(EFFECTS[e.type].stem_aware for e in ch.effects)
    others = _others(stemset, ch.stem, offset, length) if aware else None
    y = apply_chain(y, ch.effects, sr, f"{where}.effects", others, ch.stem)
    if ch.gain_db != 0.0:
        y = y * np.float32(10 ** (ch.gain_db / 20))
    if stereo:
        y = apply_pan(y, ch.pan)
    return y


def clean_stem(stemset: StemSet, stem: str, strength: float) -> np.ndarray:
    """``stem`` through ``debleed(strength)`` as :func:`render` cleans a channel whose chain starts with it (no
    offset, no polarity): the studio plays this buffer for a strip's "clean" knob, so page and export agree.
    Returns ``(C, T)`` float32 (``T``: the longest stem)."""
    if stem not in stemset.audio:
        raise MixError(f"clean: unknown stem {stem!r} (valid: {', '.join(stemset.names)})")
    effect = Effect.create("debleed", "clean", strength=strength)
    y = _place(stemset[stem], 0, stemset.length)
    return apply_chain(y, [effect], stemset.samplerate, "clean", _others(stemset, stem, 0, stemset.length), stem)


def _resolve(mix: Mix, stems: Any, samplerate: int | None) -> StemSet:
    if stems is None:
        if mix.source is None:
            raise MixError("render: no stems given; pass stems= (a folder, a StemSet or a dict plus samplerate) "
                           "or build the mix with Mix.from_folder(...)")
        return mix.source
    return as_stemset(stems, samplerate)


def _complete(mix: Mix, stemset: StemSet) -> list[Channel]:
    valid = stemset.names
    for i, c in enumerate(mix.channels):
        if c.stem not in stemset.audio:
            raise MixError(f"channels[{i}].stem: unknown stem {c.stem!r} (valid: {', '.join(valid)})")
    channels = list(mix.channels)
    for name in valid:
        if name not in mix.stems:
            log.warning("mix has no channel for stem %r; it plays at 0 dB, centred", name)
            channels.append(Channel(name))
    return channels


def layer_grid(stemset: StemSet) -> Rhythm:
    """The grid that layers' ``at: "bar:N"`` positions are read on: the rhythm of the sum of the stems (the studio
    asks for it too, to place a dropped layer where the export will). Raises :class:`MixError` when none is found."""
    mono = np.sum([x.mean(axis=0) for x in stemset.audio.values()], axis=0)[None]
    rhythm = estimate_rhythm(mono, stemset.samplerate, follow_changes=True)
    log.info("layer grid: %.2f BPM%s, first downbeat %.3f s", rhythm.tempo,
             "" if rhythm.grid is None else " (the tempo changes: the tracked beats)", rhythm.downbeat)
    return rhythm


def _add_layers(mix: Mix, stemset: StemSet, out: np.ndarray, any_solo: bool) -> np.ndarray:
    """Mix the layers (docs: mixer/layers.py) into ``out`` ``(C, T)``: each file placed, looped, through its
    effects, fader and pan, cut at the end of the song. Layers play unless muted, or when a stem is soloed."""
    playing = [(i, la) for i, la in enumerate(mix.layers) if not la.mute and la.gain_db != -math.inf and not any_solo]
    if not playing:
        return out
    if mix.base is None:
        raise MixError("layers: this mix has no folder to read layer files from (Mix.load sets the document's "
                       "folder; set mix.base)")
    sr, length = stemset.samplerate, out.shape[1]
    rhythm = layer_grid(stemset) if any(la.at is not None for _, la in playing) else None
    if out.shape[0] == 1 and any(la.pan != 0.0 for _, la in playing):
        out = np.concatenate([out, out])
    for i, la in playing:
        where = f"layers[{i}]"
        x = load_layer_audio(la, mix.base, sr, where, rhythm)
        y = apply_chain(_place(x, layer_start(la, sr, rhythm), length), la.effects, sr, f"{where}.effects")
        if la.gain_db != 0.0:
            y = y * np.float32(10 ** (la.gain_db / 20))
        if out.shape[0] == 2:
            y = apply_pan(y, la.pan)
        elif y.shape[0] == 2:  # a stereo layer in a mono mix: the mix becomes stereo
            out = np.concatenate([out, out])
        out = out + y
    return out.astype(np.float32)


def render(
    mix: Mix, stems: Any = None, *, samplerate: int | None = None, loudness_lufs: float | None = None,
    return_info: bool = False,
) -> np.ndarray | tuple[np.ndarray, dict]:
    """Render ``mix`` to a ``(C, T)`` float32 array at the stems' sample rate.

    ``stems``: a folder path, a :class:`StemSet`, a dict ``{name: (C, T) array}`` (then ``samplerate`` is
    required), or ``None`` to use the stems the mix was made from. ``loudness_lufs`` overrides the document's
    target. ``C`` is 1 when every stem is mono and nothing is panned, else 2. ``T`` covers the longest stem
    including positive offsets. With ``return_info`` also returns a dict (loudness measurements, warnings).
    """
    if not isinstance(mix, Mix):
        raise MixError(f"render: expected a stemwright.Mix, got {type(mix).__name__}")
    mix.validate()
    stemset = _resolve(mix, stems, samplerate)
    sr = stemset.samplerate
    channels = _complete(mix, stemset)
    stereo = any(stemset[c.stem].shape[0] == 2 for c in channels) or any(c.pan != 0.0 for c in channels)
    length = max([stemset.length] + [stemset.length + int(round(c.offset_s * sr)) for c in channels])
    any_solo = any(c.solo for c in channels)
    out: np.ndarray | None = None
    for i, ch in enumerate(channels):
        if ch.mute or (any_solo and not ch.solo) or ch.gain_db == -math.inf:
            continue
        y = _channel_signal(ch, stemset, sr, length, stereo, f"channels[{i}]")
        out = y.copy() if out is None else np.add(out, y, out=out)
    if out is None:
        out = np.zeros((2 if stereo else 1, length), dtype=np.float32)
    out = _add_layers(mix, stemset, out, any_solo)
    out = _master(mix, out, sr)
    out = apply_time_pitch(out, sr, mix.time_pitch)
    info: dict[str, Any] = {"samplerate": sr, "warnings": list(stemset.warnings)}
    target = loudness_lufs if loudness_lufs is not None else mix.loudness_lufs
    if target is not None:
        out, result = normalize_loudness(out, sr, target)
        info["loudness"] = result.to_dict()
    return (out, info) if return_info else out


def apply_time_pitch(x: np.ndarray, samplerate: int, time_pitch: TimePitch) -> np.ndarray:
    """Play ``x`` at ``time_pitch.speed`` without a change of pitch and transposed by ``time_pitch.semitones``.

    Rubber Band (pedalboard.time_stretch, high quality). Shape ``(C, T)`` -> ``(C, round(T / speed))``; the input
    is returned unchanged at normal speed and pitch. The length is made exact (Rubber Band may be off by a few
    samples) so an export is as long as the page's playback: duration / speed.
    """
    if time_pitch.neutral:
        return x
    out = pedalboard.time_stretch(
        np.ascontiguousarray(x, dtype=np.float32), float(samplerate), stretch_factor=float(time_pitch.speed),
        pitch_shift_in_semitones=float(time_pitch.semitones), high_quality=True,
        preserve_formants=False,  # SoundTouch (the page) shifts formants with the pitch; match it
    )
    length = int(round(x.shape[1] / time_pitch.speed))
    return np.ascontiguousarray(_place(np.asarray(out, dtype=np.float32), 0, length))


def _master(mix: Mix, out: np.ndarray, sr: int) -> np.ndarray:
    if mix.master.gain_db == -math.inf:
        return np.zeros_like(out)
    if mix.master.gain_db != 0.0:
        out = out * np.float32(10 ** (mix.master.gain_db / 20))
    return apply_chain(out, mix.master.effects, sr, "master.effects")


__all__ = ["render", "clean_stem", "layer_grid", "pan_gains", "apply_pan", "apply_time_pitch", "LoudnessResult"]
