"""A small drum sampler playing the recorded kits of the Hydrogen project (Debian ``hydrogen-drumkits``).

``drumkit.xml`` is parsed (both the old one-file-per-instrument layout and the ``<layer>`` velocity-layer layout),
kit instruments are mapped to General MIDI drum notes by their names, and hits are mixed sample-accurately with
velocity layers, round-robin among overlapping layers, a stereo position per drum and open-hi-hat choking.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.ndimage import maximum_filter1d

from stemwright.audio.resample import resample

log = logging.getLogger(__name__)

# Name patterns -> GM note; checked in order, the first match wins.
NAME_RULES: tuple[tuple[str, int], ...] = (
    (r"ride.*(bell|cup)|bell.*ride|paistebell", 53),
    (r"china", 52),
    (r"splash", 55),
    (r"crash", 49),
    (r"ride", 51),
    (r"(hh|hi.?hat|hat).*(pedal|pd|foot)|pedal.*(hh|hat)", 44),
    (r"(hh|hi.?hat|hat).*(open|op\b|semi|swish)|open.*(hh|hat)|\bohh\b", 46),
    (r"(hh|hi.?hat|hat)|\bchh\b", 42),
    (r"side.?stick|stick|rim.?click|cross", 37),
    (r"clap", 39),
    (r"rimshot", 40),
    (r"snare|\bsd\b|\bsn\b", 38),
    (r"kick|bass.?drum|\bbd\b|bassdrum", 36),
    (r"floor.?tom|tom.*(low|floor|lo\b)|low.?tom", 43),
    (r"tom.*(mid|2)|mid.?tom", 47),
    (r"tom.*(hi|high|1)|high.?tom|\btom\b", 50),
    (r"tambourine|tamb", 54),
    (r"cowbell", 56),
    (r"shaker|maraca", 70),
)
# When a kit lacks a GM note, play the nearest substitute.
FALLBACK = {
    53: (51, 49),
    52: (49,),
    55: (49,),
    49: (51, 46),
    51: (53, 42, 49),
    44: (42,),
    46: (42,),
    42: (44, 51),
    37: (38,),
    39: (38,),
    40: (38,),
    43: (45, 41, 47),
    47: (45, 48, 50, 43),
    50: (48, 47, 43),
    54: (70,),
    70: (54,),
    56: (),
}
PAN = {
    36: 0.0,
    38: 0.05,
    37: 0.05,
    40: 0.05,
    39: 0.0,
    42: 0.35,
    44: 0.35,
    46: 0.35,
    49: -0.45,
    52: -0.6,
    55: -0.3,
    51: 0.5,
    53: 0.5,
    50: 0.25,
    47: -0.05,
    43: -0.35,
    54: 0.6,
    56: -0.5,
    70: 0.55,
}
# Peak level of each GM drum at full velocity after balancing: kits differ wildly in how loud their samples are
# (a crash can be 20 dB over the snare), so each instrument is scaled by its loudest layer to a common drum-mix
# balance (kick and snare on top, cymbals and hats below) instead of trusting each kit's own volumes.
BALANCE = {
    36: 1.0,
    38: 0.9,
    40: 0.9,
    37: 0.5,
    39: 0.7,
    42: 0.35,
    44: 0.3,
    46: 0.4,
    49: 0.5,
    52: 0.45,
    55: 0.4,
    51: 0.35,
    53: 0.35,
    43: 0.8,
    47: 0.75,
    50: 0.7,
    54: 0.35,
    56: 0.35,
    70: 0.3,
}
ELECTRONIC_KITS = ("HardElectro1", "ElectricEmpireKit", "VariBreaks", "Audiophob")
REQUIRED = (36, 38)
# Samples that are not single hits (rolls, effects) or would sound odd as the only voice of a GM note.
EXCLUDE = re.compile(r"roll|\bfx\b|zap|whistle|choke|flink|swish|click\b")
# Licences as recorded by Debian in /usr/share/doc/hydrogen-drumkits/copyright (drumkit.xml fields are incomplete).
DEBIAN_LICENCES = {
    "Audiophob": "CC0",
    "BJA_Pacific": "CC-BY-SA-3.0-us",
    "ColomboAcousticDrumkit": "GPL-2+ with composition exception",
    "ElectricEmpireKit": "GPL-2+",
    "HardElectro1": "GPL-2+",
    "VariBreaks": "GPL-2+",
    "Millo-Drums_v.1": "GPL-2",
    "Millo_MultiLayered2": "GPL-2",
    "Millo_MultiLayered3": "GPL-2",
    "The Black Pearl 1.0": "GPL-2",
    "Gimme A Hand 1.0": "GPL-2",
    "ForzeeStereo": "GPL-2",
    "rumpf_kit_z01_h2": "CC-BY-3.0",
    "circAfrique v4": "CC-BY-SA-3.0",
}


@dataclass(frozen=True)
class Layer:
    path: Path
    vmin: float
    vmax: float
    gain: float


@dataclass(frozen=True)
class KitInstrument:
    name: str
    gm_note: int
    volume: float
    pan_l: float
    pan_r: float
    layers: tuple[Layer, ...]


@dataclass(frozen=True)
class DrumKit:
    name: str
    folder: Path
    licence: str
    author: str
    notes: dict[int, tuple[KitInstrument, ...]]

    @property
    def electronic(self) -> bool:
        return self.folder.name in ELECTRONIC_KITS


def _text(el: ET.Element, tag: str, default: str = "") -> str:
    found = el.find(tag)
    return (found.text or default).strip() if found is not None and found.text is not None else default


def _strip_ns(root: ET.Element) -> None:
    for el in root.iter():
        if "}" in el.tag:
            el.tag = el.tag.split("}", 1)[1]


def gm_note_for(name: str) -> int | None:
    """The GM drum note a kit instrument name stands for, or None."""
    low = name.lower()
    for pattern, note in NAME_RULES:
        if re.search(pattern, low):
            return note
    return None


@functools.lru_cache(maxsize=32)
def load_kit(folder: Path) -> DrumKit:
    """Parse ``folder/drumkit.xml``. Raises ValueError naming the file when it cannot be parsed."""
    xml = folder / "drumkit.xml"
    try:
        root = ET.parse(xml).getroot()
    except (ET.ParseError, OSError) as e:
        raise ValueError(f"{xml}: cannot parse drum kit ({e})") from None
    _strip_ns(root)
    notes: dict[int, list[KitInstrument]] = {}
    for inst in root.iter("instrument"):
        name = _text(inst, "name")
        note = gm_note_for(name)
        if note is None or EXCLUDE.search(name.lower()):
            continue
        layers = [
            Layer(
                folder / _text(la, "filename"),
                float(_text(la, "min", "0")),
                float(_text(la, "max", "1")),
                float(_text(la, "gain", "1")),
            )
            for la in inst.iter("layer")
            if _text(la, "filename")
        ]
        if not layers and _text(inst, "filename"):
            layers = [Layer(folder / _text(inst, "filename"), 0.0, 1.0, 1.0)]
        layers = [la for la in layers if la.path.is_file()]
        if not layers:
            continue
        ki = KitInstrument(
            name,
            note,
            float(_text(inst, "volume", "1")),
            float(_text(inst, "pan_L", "1")),
            float(_text(inst, "pan_R", "1")),
            tuple(layers),
        )
        notes.setdefault(note, []).append(ki)
    licence = DEBIAN_LICENCES.get(folder.name) or _text(root, "license") or _text(root, "licence") or "unknown"
    return DrumKit(
        _text(root, "name", folder.name),
        folder,
        licence,
        _text(root, "author"),
        {k: tuple(v) for k, v in notes.items()},
    )


def usable_kits(folders: tuple[Path, ...]) -> list[DrumKit]:
    """Kits with at least a kick, a snare and a hi-hat or ride (percussion-only kits are left out)."""
    kits = []
    for folder in folders:
        try:
            kit = load_kit(folder)
        except ValueError as e:
            log.warning("%s", e)
            continue
        if all(n in kit.notes for n in REQUIRED) and any(n in kit.notes for n in (42, 51)):
            kits.append(kit)
    return kits


@functools.lru_cache(maxsize=512)
def _load_sample(path: Path, samplerate: int) -> np.ndarray:
    """Shape: (2, T) float32 at ``samplerate``."""
    data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    x = data.T
    if x.shape[0] == 1:
        x = np.repeat(x, 2, axis=0)
    x = x[:2]
    if sr != samplerate:
        x = resample(x, sr, samplerate, quality="HQ")
    x.setflags(write=False)
    return x


# A one-shot is one stroke. Some kit samples were cut from played beats and hold two: rumpf_kit_z01's ride bell
# has a second stroke 40 ms after the first and 2 dB under it, its toms a flam. Played as one hit, such a sample puts
# a stroke into the drums that the song's hit list (the drum-replacement ground truth) does not have. A sample holds
# two strokes when its envelope (the peak over 20 ms, on a 5 ms hop) has a valley at least STROKE_VALLEY_DB under
# the lower of the two strokes around it, both within STROKE_LEVEL_DB of the sample's peak. Of the 483 samples of
# Debian's Hydrogen kits this marks 6, all rumpf_kit_z01's (ride bell, three toms, crash, hi-hat pedal); a
# cymbal's or a kick's own ringing never dips 8 dB and comes back that loud.
STROKE_LEVEL_DB = -12.0
STROKE_VALLEY_DB = 8.0


def has_second_stroke(sample: np.ndarray, samplerate: int) -> bool:
    """Whether ``(C, T)`` ``sample`` holds two strokes (see :data:`STROKE_LEVEL_DB`)."""
    if sample.size == 0:
        return False
    env = maximum_filter1d(np.abs(sample).max(axis=0), max(1, int(0.02 * samplerate)))[:: max(1, int(0.005 * samplerate))]
    if env.max() <= 0:
        return False
    db = 20 * np.log10(np.maximum(env / env.max(), 1e-12))
    before = np.maximum.accumulate(db)  # the loudest stroke up to each frame
    after = np.maximum.accumulate(db[::-1])[::-1]  # and from it on
    around = np.minimum(before, after)
    return bool(np.any((around >= STROKE_LEVEL_DB) & (around - db >= STROKE_VALLEY_DB)))


@functools.lru_cache(maxsize=1024)
def _one_stroke(path: Path) -> bool:
    return not has_second_stroke(_load_sample(path, 44100), 44100)


def playable(kit: DrumKit, note: int) -> tuple[KitInstrument, ...]:
    """The kit's instruments for ``note`` with their one-stroke layers only; an instrument left without is left out."""
    out = []
    for inst in kit.notes.get(note, ()):
        layers = tuple(la for la in inst.layers if _one_stroke(la.path))
        if layers == inst.layers:
            out.append(inst)
        elif layers:
            out.append(dataclasses.replace(inst, layers=layers))
        else:
            log.debug("%s: %s left out (every sample holds two strokes)", kit.folder.name, inst.name)
    return tuple(out)


def _resolve(note: int, options: Callable[[int], tuple[KitInstrument, ...]]) -> int | None:
    if options(note):
        return note
    return next((f for f in FALLBACK.get(note, ()) if options(f)), None)


def render_drums(
    kit: DrumKit,
    hits: list[tuple[float, int, int]],
    n_samples: int,
    samplerate: int,
    rng: np.random.Generator,
    pan_width: float = 1.0,
    played: list[dict] | None = None,
) -> tuple[np.ndarray, dict[int, str]]:
    """Mix ``hits`` = [(time_s, gm_note, velocity)] into a stereo buffer.

    An open hi-hat is choked (15 ms fade) by the next closed or pedal hi-hat, as a real hat closes.
    Shape: returns ``(2, n_samples)`` float32 and the GM note -> kit instrument name mapping actually used.
    ``played``: a list that receives each hit played, ``{"time_s", "attack_s", "note", "velocity", "peak"}``, where
    ``attack_s`` is when the sample reaches :data:`ATTACK_FRACTION` of its peak (samples start up to ~20 ms before
    their attack): the ground truth of the drum-replacement evaluation (``stemwright.drums``).
    """
    out = np.zeros((2, n_samples), dtype=np.float32)
    used: dict[int, str] = {}
    hits = sorted(hits)
    chosen: dict[int, KitInstrument] = {}  # one kit instrument per GM note for the whole song
    pool: dict[int, tuple[KitInstrument, ...]] = {}

    def options(n: int) -> tuple[KitInstrument, ...]:  # read a note's samples only when the song plays it
        if n not in pool:
            pool[n] = playable(kit, n)
        return pool[n]

    closing = [int(round(t * samplerate)) for t, n, _ in hits if n in (42, 44)]
    for t, note, vel in hits:
        target = _resolve(note, options)
        start = int(round(t * samplerate))
        if target is None or start >= n_samples:
            continue
        if target not in chosen:
            chosen[target] = pool[target][int(rng.integers(len(pool[target])))]
        inst = chosen[target]
        v = vel / 127.0
        layers = [la for la in inst.layers if la.vmin <= v <= la.vmax] or list(inst.layers)
        layer = layers[int(rng.integers(len(layers)))]  # round robin among overlapping layers
        sample = _load_sample(layer.path, samplerate)
        if target == 46:
            sample = _choked(sample, start, closing, samplerate)
        gain = _balance(inst, target) * layer.gain * v**1.6
        pan = PAN.get(note, 0.0) * pan_width
        gl, gr = np.cos((pan + 1) * np.pi / 4) * np.sqrt(2), np.sin((pan + 1) * np.pi / 4) * np.sqrt(2)
        end = min(n_samples, start + sample.shape[1])
        out[0, start:end] += sample[0, : end - start] * np.float32(gain * gl * inst.pan_l)
        out[1, start:end] += sample[1, : end - start] * np.float32(gain * gr * inst.pan_r)
        used[note] = inst.name
        if played is not None:
            played.append({"time_s": round(t, 6), "attack_s": round(t + attack_offset(sample) / samplerate, 6),
                           "note": int(note), "velocity": int(vel),
                           "peak": round(float(np.abs(sample).max()) * gain * max(gl, gr), 6)})
    return out, used


ATTACK_FRACTION = 0.1  # -20 dB under the hit's peak: where its attack starts


def attack_offset(sample: np.ndarray) -> int:
    """Index of the first sample of ``(C, T)`` ``sample`` whose level reaches :data:`ATTACK_FRACTION` of its peak."""
    env = np.abs(sample).max(axis=0)
    if env.size == 0 or env.max() <= 0:
        return 0
    return int(np.argmax(env >= ATTACK_FRACTION * env.max()))


def _balance(inst: KitInstrument, note: int) -> float:
    """Gain putting the instrument's loudest layer at its :data:`BALANCE` peak."""
    loudest = max(inst.layers, key=lambda la: (la.vmax, la.gain))
    peak = float(np.max(np.abs(_load_sample(loudest.path, 44100)))) * loudest.gain
    return BALANCE.get(note, 0.5) / peak if peak > 1e-6 else 0.0


def _choked(sample: np.ndarray, start: int, closing: list[int], samplerate: int) -> np.ndarray:
    """The open-hat sample cut with a 15 ms fade where the next closing hat hits (a copy; the cache stays intact)."""
    nxt = next((c for c in closing if c > start), None)
    if nxt is None or nxt - start >= sample.shape[1]:
        return sample
    fade = int(0.015 * samplerate)
    cut = sample[:, : nxt - start + fade].copy()
    cut[:, -min(fade, cut.shape[1]) :] *= np.linspace(1.0, 0.0, min(fade, cut.shape[1]), dtype=np.float32)
    return cut
