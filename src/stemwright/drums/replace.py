"""Replace or reinforce the drums of a song with your own samples (``stemwright drums``, issue 27).

Hits are found in the drums stem (:mod:`stemwright.drums.hits`), and each kick, snare and hi-hat triggers the kit's
sample for its class: the sample's attack on the hit's attack (both to a fraction of a sample, the sample shifted
by that fraction in the frequency domain), at the hit's peak level (velocity from level). Hits of a class without a
sample ("other": toms, percussion) keep the original sound. ``blend`` mixes the result with the original stem
(1 = replace, 0.5 = reinforce, 0 = the original). The outputs are the new stem, the hit list (JSON) and a MIDI drum
track to edit in a DAW, and a manifest.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from stemwright import __version__
from stemwright.atomic import atomic_write_text
from stemwright.audio.io import AudioError, read_audio, write_audio
from stemwright.drums.hits import MIN_RELATIVE_DB, SEARCH_S, Hit, attack_time, envelope, find_hits
from stemwright.samples.oneshots import ATTACK_S
from stemwright.drums.kit import GM_NOTES, Kit, KitError, load_drum_kit
from stemwright.drums.midi import write_drum_midi
from stemwright.mixer.stems import load_stems

log = logging.getLogger(__name__)

OTHER_NOTE = 47  # GM low-mid tom: "other" hits in the MIDI track
HUMANIZE_MS = 2.0  # timing spread (standard deviation) of --humanize, clipped at twice that
HUMANIZE_DB = 1.0  # level spread of --humanize
KEEP_LEAD_S = 0.001  # an original hit is kept from 1 ms before its attack
FADE_S = 0.002
OUTPUT_FILES = ("drums.wav", "drums.hits.json", "drums.mid", "drums.json")


@dataclass(frozen=True, kw_only=True)
class DrumReplacement:
    """``audio`` the new drums stem ``(C, T)`` float32 at ``samplerate``; ``hits`` as found in the original."""

    audio: np.ndarray
    samplerate: int
    hits: tuple[Hit, ...]
    sources: dict[str, str]
    blend: float
    humanize: bool
    paths: dict[str, Path] = field(default_factory=dict)
    licences: dict[str, str] = field(default_factory=dict)  # per class, for samples from a Hydrogen kit

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for h in self.hits:
            out[h.kind] = out.get(h.kind, 0) + 1
        return out


def _shifted(sample: np.ndarray, delay: float) -> np.ndarray:
    """``sample`` ``(C, T)`` delayed by ``delay`` in [0, 1) samples (frequency-domain phase shift), one sample
    longer."""
    if delay == 0.0:
        return np.pad(sample, ((0, 0), (0, 1)))
    n = sample.shape[1] + 1
    size = 1 << int(np.ceil(np.log2(n + 64)))
    spec = np.fft.rfft(sample, size, axis=1) * np.exp(-2j * np.pi * np.fft.rfftfreq(size) * delay)
    return np.fft.irfft(spec, size, axis=1)[:, :n].astype(np.float32)


def _sample_attack(sample: np.ndarray, samplerate: int) -> tuple[float, float]:
    """(attack in fractional samples, peak level) of a lone sample, by the same definition as a hit's."""
    mono = sample.mean(axis=0)
    env = envelope(mono, samplerate)
    t, p = attack_time(env, 0, min(mono.size, max(2, int(SEARCH_S * samplerate) + int(np.argmax(env >= 0.1 * env.max())))))
    return t, float(env[p])


def _add_at(out: np.ndarray, x: np.ndarray, start: int) -> None:
    lo, hi = max(0, start), min(out.shape[1], start + x.shape[1])
    if hi > lo:
        out[:, lo:hi] += x[:, lo - start:hi - start]


def render_replacement(drums: np.ndarray, samplerate: int, kit: Kit, *, hits: list[Hit] | None = None,
                       blend: float = 1.0, humanize: bool = False, seed: int = 0,
                       min_level_db: float = MIN_RELATIVE_DB) -> DrumReplacement:
    """The new drums stem for ``drums`` ``(C, T)`` (untouched). ``hits``: found here (down to ``min_level_db``
    under the loudest) when not given."""
    if not 0.0 <= blend <= 1.0:
        raise ValueError(f"blend: must be in [0, 1], got {blend:g}")
    if kit.samplerate != samplerate:
        raise ValueError(f"kit: samples at {kit.samplerate} Hz, the drums at {samplerate} Hz")
    x = np.asarray(drums, dtype=np.float32)
    hits = list(find_hits(x, samplerate, min_level_db=min_level_db) if hits is None else hits)
    width = max([x.shape[0]] + [s.shape[0] for s in kit.samples.values()])
    new = np.zeros((width, x.shape[1]), dtype=np.float32)
    attacks = {k: _sample_attack(s, samplerate) for k, s in kit.samples.items()}
    rng = np.random.default_rng(seed)
    for i, hit in enumerate(hits):
        t = hit.time_s * samplerate
        if hit.kind not in kit.samples:
            _keep_original(new, x, t, hits[i + 1].time_s * samplerate if i + 1 < len(hits) else x.shape[1], samplerate)
            continue
        gain = hit.peak / max(attacks[hit.kind][1], 1e-9)
        if humanize:
            t += float(np.clip(rng.normal(0, HUMANIZE_MS), -2 * HUMANIZE_MS, 2 * HUMANIZE_MS)) * samplerate / 1000
            gain *= 10 ** (rng.normal(0, HUMANIZE_DB) / 20)
        start = t - attacks[hit.kind][0]
        if not humanize:
            start += xcorr_lag(x.mean(axis=0), kit.samples[hit.kind].mean(axis=0), start, samplerate)
        whole = int(np.floor(start))
        sample = _shifted(kit.samples[hit.kind], start - whole) * np.float32(gain)
        if sample.shape[0] == 1:  # a mono sample takes the hit's place in the stereo image
            sample = sample * _balance(x, hit.time_s, samplerate)[:, None]
        _add_at(new, np.broadcast_to(sample, (width, sample.shape[1])), whole)
    original = np.broadcast_to(x, new.shape)
    audio = new if blend == 1.0 else (np.float32(blend) * new + np.float32(1 - blend) * original).astype(np.float32)
    return DrumReplacement(audio=audio, samplerate=samplerate, hits=tuple(hits), sources=dict(kit.sources),
                           blend=blend, humanize=humanize, licences=dict(kit.licences))


XCORR_S = 0.005  # the first 5 ms of the sound are compared
XCORR_MAX_LAG_S = 0.001  # ... within 1 ms of the attack-on-attack placement
XCORR_MIN = 0.8  # normalised correlation above which the sample and the hit are the same kind of sound


def xcorr_lag(mono: np.ndarray, sample: np.ndarray, start: float, samplerate: int) -> float:
    """The lag (fractional samples, within :data:`XCORR_MAX_LAG_S`) that best lines the waveform of ``sample``
    ``(T,)`` placed at ``start`` up with the stem ``mono`` ``(T,)``, by normalised cross-correlation with a
    parabolic peak; 0 when the best correlation is under :data:`XCORR_MIN` (a different sound: attack on attack
    is as good as it gets). When a sample reinforces a hit that sounds like it, this keeps them in phase (no comb
    filtering) to a fraction of a sample."""
    n, lag = int(XCORR_S * samplerate), int(XCORR_MAX_LAG_S * samplerate)
    s0 = int(np.floor(start))
    lo = s0 - lag
    if lo < 0 or s0 + n + lag > mono.size or sample.size < n:
        return 0.0
    ref = sample[:n].astype(np.float64)
    seg = mono[lo:s0 + n + lag].astype(np.float64)
    corr = np.correlate(seg, ref, "valid")  # corr[k]: sample placed at lo + k
    energy = np.sqrt(np.convolve(seg ** 2, np.ones(n), "valid") * float(ref @ ref))
    score = corr / np.maximum(energy, 1e-12)
    k = int(np.argmax(score))
    if score[k] < XCORR_MIN:
        return 0.0
    frac = 0.0
    if 0 < k < score.size - 1:
        a, b, c = score[k - 1], score[k], score[k + 1]
        frac = 0.5 * (a - c) / (a - 2 * b + c) if (a - 2 * b + c) < 0 else 0.0
    return lo + k + frac - start


def _balance(x: np.ndarray, time_s: float, samplerate: int) -> np.ndarray:
    """Per channel, the hit's peak over the peak of the channels' mean in its first 50 ms: ``(C,)``."""
    start = int(time_s * samplerate)
    seg = x[:, start:start + int(ATTACK_S * samplerate)]
    mono = float(np.abs(seg.mean(axis=0)).max()) if seg.size else 0.0
    if mono <= 0:
        return np.ones(x.shape[0], dtype=np.float32)
    return (np.abs(seg).max(axis=1) / mono).astype(np.float32)


def _keep_original(new: np.ndarray, x: np.ndarray, t: float, until: float, samplerate: int) -> None:
    """Copy the original hit from just before its attack to just before the next hit, faded in and out."""
    lo = max(0, int(t - KEEP_LEAD_S * samplerate))
    hi = min(x.shape[1], int(until - KEEP_LEAD_S * samplerate))
    if hi <= lo:
        return
    seg = x[:, lo:hi].copy()
    fade_in = min(int(t) - lo, seg.shape[1] // 2)  # over the lead only: the attack itself is kept whole
    fade_out = min(int(FADE_S * samplerate), seg.shape[1] // 2)
    if fade_in > 0:
        seg[:, :fade_in] *= np.linspace(0.0, 1.0, fade_in, dtype=np.float32)
    if fade_out > 0:
        seg[:, -fade_out:] *= np.linspace(1.0, 0.0, fade_out, dtype=np.float32)
    new[:, lo:hi] += np.broadcast_to(seg, (new.shape[0], seg.shape[1]))


def _drums_input(source: Any, samplerate: int | None) -> tuple[np.ndarray, int, str]:
    """``(audio, rate, description)`` from a stems folder (its ``drums`` stem), an audio file or an array."""
    if isinstance(source, np.ndarray):
        if samplerate is None:
            raise ValueError("samplerate: required with an array of drums")
        x = source[None] if source.ndim == 1 else source
        return np.asarray(x, dtype=np.float32), int(samplerate), "array"
    path = Path(source)
    if path.is_dir():
        stems = load_stems(path)
        if "drums" not in stems.audio:
            raise KitError(f"{path}: no drums stem (stems: {', '.join(stems.names)})")
        return stems["drums"], stems.samplerate, str(path)
    try:
        audio = read_audio(path)
    except AudioError as e:
        raise KitError(str(e)) from None
    return audio.samples, audio.samplerate, str(path)


def replace(
    stems: Any, out: str | Path | None = None, *, samplerate: int | None = None, kick: str | Path | None = None,
    snare: str | Path | None = None, hat: str | Path | None = None, kit: str | Path | None = None,
    blend: float = 1.0, humanize: bool = False, seed: int = 0, min_level_db: float = MIN_RELATIVE_DB,
    overwrite: bool = False,
) -> DrumReplacement:
    """Replace (``blend=1``) or reinforce the drums of ``stems``: a folder of stems (its ``drums`` stem), a drums
    audio file, or a ``(C, T)`` array with ``samplerate``. Samples: ``kick``/``snare``/``hat`` files over ``kit``
    (a folder of ``kick*``/``snare*``/``hat*`` files, a Hydrogen kit folder or installed kit name); with none, the
    first installed Hydrogen kit. ``min_level_db``: quieter hits (under the loudest) are left alone, -40 keeps
    ghost notes. With ``out`` (a folder) writes :data:`OUTPUT_FILES` there, each atomically;
    existing ones are kept unless ``overwrite``. Errors: :class:`KitError` / ``ValueError`` naming the input."""
    x, sr, origin = _drums_input(stems, samplerate)
    files = {k: v for k, v in (("kick", kick), ("snare", snare), ("hat", hat)) if v is not None}
    drum_kit = load_drum_kit(sr, kit=kit, files=files)
    result = render_replacement(x, sr, drum_kit, blend=blend, humanize=humanize, seed=seed, min_level_db=min_level_db)
    if out is None:
        return result
    return _write(result, Path(out), origin, overwrite, seed)


def _write(result: DrumReplacement, folder: Path, origin: str, overwrite: bool, seed: int) -> DrumReplacement:
    targets = {name: folder / name for name in OUTPUT_FILES}
    existing = [str(p) for p in targets.values() if p.exists()]
    if existing and not overwrite:
        raise KitError(f"{existing[0]}: already exists (use overwrite to replace it)")
    folder.mkdir(parents=True, exist_ok=True)
    hits = [h.to_dict() for h in result.hits]
    notes = [(h.time_s, GM_NOTES.get(h.kind, OTHER_NOTE), h.velocity) for h in result.hits]
    write_audio(targets["drums.wav"], result.audio, result.samplerate, fmt="wav", bit_depth=32,
                overwrite=True)  # float: a replaced hit may peak over full scale; the mixer sets levels
    atomic_write_text(targets["drums.hits.json"], json.dumps({"samplerate": result.samplerate, "hits": hits}, indent=1) + "\n")
    write_drum_midi(targets["drums.mid"], notes)
    manifest = {
        "stemwright_version": __version__, "tool": "drums", "input": origin, "samplerate": result.samplerate,
        "samples": result.sources, "sample_licences": result.licences, "blend": result.blend,
        "humanize": result.humanize, "seed": seed,
        "hits": result.counts(), "files": {"stem": "drums.wav", "hits": "drums.hits.json", "midi": "drums.mid"},
        "gm_notes": {**GM_NOTES, "other": OTHER_NOTE},
    }
    atomic_write_text(targets["drums.json"], json.dumps(manifest, indent=1) + "\n")
    return DrumReplacement(audio=result.audio, samplerate=result.samplerate, hits=result.hits, sources=result.sources,
                           blend=result.blend, humanize=result.humanize, paths=targets,
                           licences=result.licences)


__all__ = ["DrumReplacement", "render_replacement", "replace", "OUTPUT_FILES"]
