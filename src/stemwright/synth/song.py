"""Compose, render and produce one song, stem by stem: :func:`generate_song`.

Pipeline: plan (style, tempo, key, mode, meter, sections, chords) -> note parts -> rendering (Hydrogen drum kit
through the project's sampler; GM programs of a random Debian soundfont per part through FluidSynth; MIR-1K train
vocals) -> per-part level and pan -> per-stem pedalboard chain -> stem levels -> one master gain for all stems.
Every random draw comes from generators seeded by ``(seed, purpose)``, so the same seed gives the same song.
"""

from __future__ import annotations

import copy
import logging
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pretty_midi

from stemwright import __version__
from stemwright.synth import bus, fluid, parts, production, sampler
from stemwright.synth import vocals as _vocals_mod
from stemwright.synth.compose import SongPlan, plan_song
from stemwright.synth.resources import SOUNDFONTS, Resources, find_resources

log = logging.getLogger(__name__)

SAMPLERATE = 44100
STEMS = ("drums", "bass", "other", "vocals")  # MUSDB18 order after the mixture
INSTRUMENT_STEMS = STEMS[:3]  # a song made with vocals=False (training data for instrument splitters)
SPLIT_STEMS = ("guitar", "piano")  # with split_instruments=True, after bass and before other (6-stem layout)
# GM families written to their own stem with split_instruments=True (the rest of "other" stays there).
SPLIT_FAMILIES = {"clean_guitar": "guitar", "drive_guitar": "guitar", "piano": "piano"}

# GM programs by family, for the "other" stem and for solo lines.
FAMILIES: dict[str, tuple[int, ...]] = {
    "piano": (0, 1, 2, 3, 4, 5),
    "keys": (6, 7, 8, 11, 12),
    "organ": (16, 17, 18, 19, 21),
    "clean_guitar": (24, 25, 26, 27, 28),
    "drive_guitar": (29, 30),
    "strings": (48, 49, 50, 51, 44, 45),
    "brass": (56, 57, 59, 60, 61, 62, 63),
    "reeds": (64, 65, 66, 68, 71, 73),
    "synth_lead": (80, 81, 82, 83, 84, 86, 87),
    "synth_pad": (88, 89, 90, 92, 93, 94, 95),
}
COMP_FAMILIES: dict[str, dict[str, float]] = {
    "rock": {"drive_guitar": 0.45, "clean_guitar": 0.2, "piano": 0.15, "organ": 0.2},
    "pop": {"piano": 0.35, "clean_guitar": 0.3, "keys": 0.15, "synth_pad": 0.1, "organ": 0.1},
    "funk": {"clean_guitar": 0.35, "keys": 0.25, "organ": 0.2, "brass": 0.2},
    "hip-hop": {"piano": 0.35, "keys": 0.25, "synth_pad": 0.2, "strings": 0.2},
    "electronic": {"synth_pad": 0.4, "synth_lead": 0.3, "piano": 0.15, "keys": 0.15},
    "jazz": {"piano": 0.6, "clean_guitar": 0.25, "organ": 0.15},
    "ballad": {"piano": 0.5, "clean_guitar": 0.25, "strings": 0.25},
}
RANGES = {
    "piano": (50, 76),
    "keys": (55, 79),
    "organ": (52, 76),
    "clean_guitar": (50, 74),
    "drive_guitar": (47, 67),
    "strings": (55, 79),
    "brass": (58, 79),
    "reeds": (60, 82),
    "synth_lead": (60, 84),
    "synth_pad": (53, 77),
}
BASS_PROGRAMS = {
    "rock": (33, 34),
    "pop": (33, 34, 38),
    "funk": (33, 36, 37),
    "hip-hop": (38, 39, 33),
    "electronic": (38, 39, 87),
    "jazz": (32, 35),
    "ballad": (32, 33, 35),
}
VOICE_PROGRAMS = (52, 53, 54, 85)  # Choir Aahs, Voice Oohs, Synth Voice, Lead 6 (voice)


@dataclass
class SynthSong:
    """A generated song. ``stems[name]`` and ``mixture`` have shape ``(2, T)`` float32 at ``samplerate``;
    ``mixture`` is exactly ``drums + bass + other + vocals`` (float32, summed in that order); a song made with
    ``vocals=False`` has no ``vocals`` stem and its mixture is ``drums + bass + other``; a song made with a codec
    round trip (:class:`~stemwright.synth.bus.BusOptions`) has the decoded mixture, the stems' sum plus coding noise."""

    stems: dict[str, np.ndarray]
    mixture: np.ndarray
    metadata: dict
    samplerate: int
    midi: pretty_midi.PrettyMIDI  # every part as played (humanised), drums on the GM percussion channel


def _rng(seed: int, purpose: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(purpose.encode())])


def _weighted(rng: np.random.Generator, weights: dict[str, float]) -> str:
    keys = list(weights)
    p = np.array([weights[k] for k in keys], dtype=float)
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


def _pick_soundfont(rng: np.random.Generator, res: Resources) -> str:
    return _weighted(rng, {s.key: s.weight for s in SOUNDFONTS if s.key in res.soundfonts})


class _Renderer:
    """Renders parts into per-stem buffers and records what was done."""

    def __init__(
        self, plan: SongPlan, res: Resources, n_samples: int, samplerate: int, stems: tuple[str, ...] = STEMS
    ):
        self.plan, self.res, self.n, self.sr = plan, res, n_samples, samplerate
        self.midi = pretty_midi.PrettyMIDI(initial_tempo=plan.tempo)
        self.stems = {s: np.zeros((2, n_samples), dtype=np.float32) for s in stems}
        self.meta: dict[str, dict] = {s: {"parts": []} for s in stems}
        timing = {"electronic": 2.0, "hip-hop": 5.0, "jazz": 10.0}.get(plan.style, 7.0)
        self.timing_ms, self.vel_sd = timing, 7.0

    def stem_of(self, stem: str, family: str) -> str:
        """The stem a part of GM ``family`` goes to: its own (guitar, piano) when this song splits them out."""
        own = SPLIT_FAMILIES.get(family)
        return own if own in self.stems else stem

    def add_gm_part(
        self,
        stem: str,
        role: str,
        program: int,
        notes: list[parts.Note],
        details: dict,
        rng: np.random.Generator,
        gain_db: float,
        pan: float,
    ) -> None:
        if not notes:
            return
        font = _pick_soundfont(rng, self.res)
        timed = parts.humanise(notes, self.plan, rng, self.timing_ms, self.vel_sd)
        inst = fluid.part_to_midi(timed, program, name=f"{stem}/{role}")
        self.midi.instruments.append(inst)
        audio = fluid.render_part(inst, self.res.soundfonts[font], self.n, self.sr, self.res.fluidsynth)
        self._add(
            stem,
            audio,
            gain_db,
            pan,
            {
                "role": role,
                "program": program,
                "instrument": pretty_midi.program_to_instrument_name(program),
                "soundfont": self.res.soundfonts[font].name,
                "soundfont_licence": self.res.soundfont_info(font).licence,
                "notes": len(notes),
                **details,
            },
        )

    def _add(self, stem: str, audio: np.ndarray, gain_db: float, pan: float, info: dict) -> None:
        audio = production.normalise(audio, -20.0 + gain_db)
        self.stems[stem] += production.pan_stereo(audio, pan)
        self.meta[stem]["parts"].append({**info, "gain_db": round(gain_db, 2), "pan": round(pan, 3)})


def _drums(r: _Renderer, seed: int) -> None:
    rng = _rng(seed, "drums")
    kits = sampler.usable_kits(r.res.drumkits)
    if not kits:
        raise RuntimeError("no usable Hydrogen drum kit (kick + snare + hi-hat) found; reinstall hydrogen-drumkits")
    electronic = r.plan.style in ("electronic", "hip-hop")
    weights = np.array([2.0 if k.electronic == electronic else 1.0 for k in kits])
    kit = kits[int(rng.choice(len(kits), p=weights / weights.sum()))]
    notes, details = parts.drum_part(r.plan, rng)
    timed = parts.humanise(notes, r.plan, rng, r.timing_ms * 0.7, 6.0)
    r.midi.instruments.append(fluid.part_to_midi(timed, 0, name="drums/kit", is_drum=True))
    played: list[dict] = []
    audio, used = sampler.render_drums(
        kit, [(n.start, n.pitch, n.velocity) for n in timed], r.n, r.sr, rng, pan_width=float(rng.uniform(0.5, 1.0)),
        played=played,
    )
    r._add(
        "drums",
        audio,
        0.0,
        0.0,
        {
            "role": "kit",
            "source": "hydrogen-drumkits",
            "kit": kit.name,
            "kit_folder": kit.folder.name,
            "kit_author": kit.author,
            "licence": kit.licence,
            "hits": len(notes),
            "hit_list": played,  # every hit as played, with its attack time (ground truth for stemwright.drums)
            "mapping": {str(k): v for k, v in sorted(used.items())},
            **details,
        },
    )
    r.meta["drums"]["kick_grid"] = details["pattern"].get("kick")


def _bass(r: _Renderer, seed: int) -> None:
    rng = _rng(seed, "bass")
    notes, details = parts.bass_part(r.plan, rng, r.meta["drums"].get("kick_grid"))
    programs = BASS_PROGRAMS[r.plan.style]
    r.add_gm_part("bass", "bass", int(rng.choice(programs)), notes, details, rng, 0.0, float(rng.uniform(-0.05, 0.05)))


def _other(r: _Renderer, seed: int, has_lead_vocal: bool) -> None:
    rng = _rng(seed, "other")
    names = tuple(s.name for s in r.plan.sections)
    all_sections = tuple(dict.fromkeys(names))
    family = _weighted(rng, COMP_FAMILIES[r.plan.style])
    low, high = RANGES[family]
    guitar = "guitar" in family
    notes, det = parts.comp_part(
        r.plan,
        rng,
        low,
        high,
        int(rng.integers(4, 6) if guitar else rng.integers(3, 5)),
        strum=guitar,
        active=all_sections,
    )
    side = 1.0 if rng.random() < 0.5 else -1.0
    r.add_gm_part(
        r.stem_of("other", family),
        f"comp:{family}",
        int(rng.choice(FAMILIES[family])),
        notes,
        det,
        rng,
        0.0,
        side * float(rng.uniform(0.1, 0.6)),
    )
    if rng.random() < 0.6:
        fam = _weighted(rng, {"strings": 0.35, "synth_pad": 0.35, "organ": 0.2, "brass": 0.1})
        active = tuple(n for n in all_sections if n in ("chorus", "bridge", "outro")) or all_sections
        notes, det = parts.pad_part(r.plan, rng, *RANGES[fam], active=active)
        r.add_gm_part(
            r.stem_of("other", fam),
            f"pad:{fam}",
            int(rng.choice(FAMILIES[fam])),
            notes,
            det,
            rng,
            float(rng.uniform(-6, -2)),
            float(rng.uniform(-0.3, 0.3)),
        )
    if rng.random() < 0.4:
        fam = _weighted(rng, {"keys": 0.3, "synth_lead": 0.3, "clean_guitar": 0.2, "piano": 0.2})
        active = tuple(
            n for n in all_sections if n in (("intro", "verse") if rng.random() < 0.5 else ("chorus", "bridge"))
        )
        notes, det = parts.arp_part(r.plan, rng, 60, 84, active=active or all_sections)
        r.add_gm_part(
            r.stem_of("other", fam),
            f"arp:{fam}",
            int(rng.choice(FAMILIES[fam])),
            notes,
            det,
            rng,
            float(rng.uniform(-7, -3)),
            -side * float(rng.uniform(0.2, 0.7)),
        )
    if rng.random() < (0.55 if has_lead_vocal else 0.9):
        fam = _weighted(rng, {"synth_lead": 0.3, "brass": 0.2, "reeds": 0.25, "drive_guitar": 0.1, "strings": 0.15})
        solo = ("intro", "bridge", "outro") if has_lead_vocal else all_sections
        active = tuple(n for n in all_sections if n in solo) or all_sections
        lo, hi = RANGES[fam]
        notes, det = parts.melody_part(r.plan, rng, max(lo, 60), max(hi, 79), active=active)
        r.add_gm_part(
            r.stem_of("other", fam),
            f"lead:{fam}",
            int(rng.choice(FAMILIES[fam])),
            notes,
            det,
            rng,
            float(rng.uniform(-3, 0)),
            float(rng.uniform(-0.2, 0.2)),
        )


def _vocals(r: _Renderer, seed: int, clips: tuple[_vocals_mod.VocalClip, ...], mir1k_dir: Path | None) -> dict:
    rng = _rng(seed, "vocals")
    vocal_sections = tuple(dict.fromkeys(s.name for s in r.plan.sections if s.vocals))
    info: dict = {"mir1k_dir": str(mir1k_dir) if mir1k_dir else None}
    if clips:
        voice, placements = _vocals_mod.place_vocals(r.plan, clips, r.n, r.sr, rng)
        r._add(
            "vocals",
            np.stack([voice, voice]),
            2.0,
            float(rng.uniform(-0.1, 0.1)),
            {"role": "lead", "source": "mir1k-train", "clips": placements},
        )
        info["source"] = "mir1k-train + gm-backing"
    else:
        info["source"] = "gm-voice-programs-only"
        info["note"] = f"MIR-1K train folder not found ({mir1k_dir}); lead vocal rendered with GM voice programs"
        notes, det = parts.melody_part(r.plan, rng, 57, 76, active=vocal_sections or ("verse",), density=0.9)
        r.add_gm_part(
            "vocals",
            "lead:gm-voice",
            int(rng.choice(VOICE_PROGRAMS)),
            notes,
            det,
            rng,
            2.0,
            float(rng.uniform(-0.1, 0.1)),
        )
    if rng.random() < 0.7:
        active = tuple(n for n in vocal_sections if n == "chorus") or vocal_sections or ("verse",)
        notes, det = parts.pad_part(r.plan, rng, 55, 76, active=active)
        r.add_gm_part(
            "vocals",
            "backing:gm-choir",
            int(rng.choice(VOICE_PROGRAMS[:3])),
            notes,
            det,
            rng,
            float(rng.uniform(-8, -3)),
            float(rng.choice([-1, 1]) * rng.uniform(0.1, 0.4)),
        )
    return info


def _sum(stems: dict[str, np.ndarray], names: tuple[str, ...]) -> np.ndarray:
    """The mixture: the stems added in MUSDB18 order (float32, so a reader can reproduce it exactly)."""
    total = stems[names[0]].copy()
    for name in names[1:]:
        total += stems[name]
    return total


def _produce(r: _Renderer, seed: int, options: bus.BusOptions) -> tuple[dict[str, np.ndarray], np.ndarray, dict]:
    """Stem effect chains, stem levels, the production across stems that ``options`` asks for, one master gain (and
    the mastering and codec when asked); returns stems, mixture and the mixing record."""
    rng = _rng(seed, "production")
    levels = {"drums": (-19, -15), "bass": (-21, -16), "other": (-21, -16), "vocals": (-19, -14)}
    out: dict[str, np.ndarray] = {}
    names = tuple(r.stems)  # STEMS, without vocals for vocals=False, with guitar and piano for split_instruments
    for stem in names:
        # guitar and piano were "other" parts: they get other's kind of chain and level range
        kind = "other" if stem in SPLIT_STEMS else stem
        fx = production.stem_effects(kind, rng, r.plan.style)
        y = production.apply_effects(r.stems[stem], fx, r.sr)
        level = float(rng.uniform(*levels[kind]))
        out[stem] = production.normalise(y, level)
        r.meta[stem]["effects"] = fx
        r.meta[stem]["level_db"] = round(level, 2)
    record: dict = {}
    bus_rng = _rng(seed, "bus")  # its own stream: the draws above are the same with any options
    if options.any:
        out, record = bus.apply_bus(out, options, bus_rng, r.sr, r.plan.style, r.plan.tempo)
    fade = int(0.01 * r.sr)  # 10 ms fade-out at the cut, identical on every stem (linear)
    env = np.linspace(1.0, 0.0, fade, dtype=np.float32)
    # Master: the mixture at a random loudness, lowered further if its peak would pass the random ceiling.
    loudness_db = float(rng.uniform(-20.0, -14.0))
    ceiling_db = float(rng.uniform(-3.0, -0.5))
    mix = _sum(out, names)
    rms, peak = production.loud_rms(mix), float(np.max(np.abs(mix)))
    gain = min(10 ** (loudness_db / 20) / max(rms, 1e-9), 10 ** (ceiling_db / 20) / max(peak, 1e-9))
    master = np.float32(gain)
    for stem in names:
        out[stem] = (out[stem] * master).astype(np.float32)
    if options.master:  # after the random master gain: mastering sets the loudness itself
        out, record["master"] = bus.master(out, bus_rng, r.sr)
    for stem in names:
        out[stem][:, -fade:] *= env
    mixture = _sum(out, names)
    if options.codec:
        mixture, record["codec"] = bus.codec_round_trip(mixture, options.codec, bus_rng, r.sr)
    mixing = {
        "master_gain_db": round(20 * float(np.log10(master)), 3),
        "target_loudness_rms_db": round(loudness_db, 2),
        "peak_ceiling_dbfs": round(ceiling_db, 2),
        "peak_dbfs": round(20 * float(np.log10(max(float(np.max(np.abs(mixture))), 1e-9))), 2),
    }
    if options.any:
        mixing["bus"] = record
    return out, mixture, mixing


def generate_song(
    seed: int,
    seconds: float,
    *,
    samplerate: int = SAMPLERATE,
    style: str | None = None,
    mir1k_dir: str | Path | None = _vocals_mod.DEFAULT_MIR1K_DIR,
    resources: Resources | None = None,
    name: str | None = None,
    vocals: bool = True,
    split_instruments: bool = False,
    bus_options: bus.BusOptions = bus.BusOptions(),
) -> SynthSong:
    """Compose, render and mix one song from ``seed``.

    Returns a :class:`SynthSong` whose ``stems`` (drums, bass, other, vocals) and ``mixture`` have shape
    ``(2, round(seconds * samplerate))`` float32, and whose ``metadata`` describes everything (JSON-ready).
    ``mir1k_dir=None`` or a missing folder: lead vocals come from GM voice programs, and the metadata says so.
    ``vocals=False``: no vocals stem at all (drums, bass, other only; ``mir1k_dir`` is ignored), and the instrumental
    lead line plays in every section (as in an instrumental track) rather than only between the vocal sections.
    ``split_instruments=True``: the parts of the guitar families (GM 24-30) and of the piano family (GM 0-5) are
    written to stems of their own, ``guitar`` and ``piano`` (silent when the song has none), in the order drums, bass,
    guitar, piano, other[, vocals]; the mixture is still the exact sum of the stems.
    ``bus_options``: production across stems (:class:`~stemwright.synth.bus.BusOptions`; none by default, which
    leaves the song exactly as before); with a codec, ``mixture`` is the decoded round trip, not the stems' sum.
    Raises :class:`~stemwright.synth.resources.MissingPackageError` when a Debian package is missing.
    """
    return generate_song_variants(
        seed, seconds, (bus_options,), samplerate=samplerate, style=style, mir1k_dir=mir1k_dir, resources=resources,
        name=name, vocals=vocals, split_instruments=split_instruments,
    )[0]


def generate_song_variants(
    seed: int,
    seconds: float,
    variants: Sequence[bus.BusOptions],
    *,
    samplerate: int = SAMPLERATE,
    style: str | None = None,
    mir1k_dir: str | Path | None = _vocals_mod.DEFAULT_MIR1K_DIR,
    resources: Resources | None = None,
    name: str | None = None,
    vocals: bool = True,
    split_instruments: bool = False,
) -> list[SynthSong]:
    """The song of :func:`generate_song` once per production variant, rendered once (what an ablation of the
    production ingredients needs: the same parts, only the production differs). Each result equals
    ``generate_song(..., bus_options=variant)``."""
    if not seconds > 0:
        raise ValueError(f"seconds must be positive, got {seconds}")
    res = resources or find_resources()
    folder = Path(mir1k_dir) if mir1k_dir is not None and vocals else None
    clips = _vocals_mod.list_clips(folder) if folder is not None else ()
    plan = plan_song(seed, seconds, style)
    n = int(round(seconds * samplerate))
    names = INSTRUMENT_STEMS[:2] + (SPLIT_STEMS if split_instruments else ()) + ("other",) + (("vocals",) if vocals else ())
    r = _Renderer(plan, res, n, samplerate, names)
    _drums(r, seed)
    _bass(r, seed)
    _other(r, seed, has_lead_vocal=vocals)
    if vocals:
        vocal_info = _vocals(r, seed, clips, folder)
    return [_finish(r, seed, options, vocal_info if vocals else None, clips, name, seconds, split_instruments)
            for options in variants]


def _finish(r: _Renderer, seed: int, options: bus.BusOptions, vocal_info: dict | None, clips: tuple, name: str | None,
            seconds: float, split_instruments: bool) -> SynthSong:
    """Produce a rendered song with ``options`` and describe it (the renderer's record is copied, not changed)."""
    stems, mixture, mixing = _produce(r, seed, options)
    meta = copy.deepcopy(r.meta)
    if vocal_info is not None:
        meta["vocals"].update(vocal_info)
    meta["drums"].pop("kick_grid", None)
    plan, samplerate, vocals = r.plan, r.sr, vocal_info is not None
    metadata = {
        "name": name or f"synth-{seed}",
        "seed": int(seed),
        "seconds": seconds,
        "samplerate": samplerate,
        "vocals": vocals,
        "split_instruments": split_instruments,
        "generator": f"stemwright {__version__} synth",
        **plan.to_json(),
        "stems": meta,
        "mixing": mixing,
        "licences": {
            "soundfonts": {s.package: s.licence for s in SOUNDFONTS},
            "drumkits": "per kit, see stems.drums.parts[0].licence (/usr/share/doc/hydrogen-drumkits/copyright)",
            "vocals": "MIR-1K (Hsu & Jang), research use" if clips else None,  # None: GM voices, or no vocals
        },
    }
    return SynthSong(stems=stems, mixture=mixture, metadata=metadata, samplerate=samplerate, midi=r.midi)
