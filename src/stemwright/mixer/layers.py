"""Layers: channels of a mix that are not stems (mix document version 3, issue 27 "Add your own layers").

A layer is an audio file, or a MIDI file rendered with FluidSynth (the ``fluidsynth`` program; a General MIDI
``program`` forced on every melodic channel, a ``soundfont`` or the first GM soundfont installed), placed at
``offset_s`` seconds or at ``at`` = ``"bar:N"`` / ``"bar:N.B"`` (bar N, beat B, counted from 1 on the grid that
``mixer.analysis.estimate_rhythm`` finds in the stems), played ``loop`` times back to back, then through its
strip: effects -> gain -> pan, like a stem's. Layers are cut at the end of the song.

A MIDI layer placed with ``at`` plays at the song's tempo: its own tempo map is replaced by the grid's, quarter note
q of the file on grid beat ``k0 + q`` (``k0``: the beat of ``at``), so a song whose tempo changes (``Rhythm.grid``)
carries the MIDI along; its loops repeat the notes every whole beat of the file's length, on the grid too. A MIDI
layer placed at ``offset_s`` seconds plays at its own tempo map.

Files are read relative to :attr:`Mix.base` (the document's folder for :meth:`Mix.load`, the working directory for
``stemwright mix``); a mix without a base (a document posted to the studio) cannot render layers, so a document
can never make a server read a file of its choosing.
"""
from __future__ import annotations

import logging
import math
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from stemwright.audio.io import AudioError, read_audio
from stemwright.audio.resample import resample
from stemwright.mixer.effects import EFFECTS, Effect, MixError

log = logging.getLogger(__name__)

MIDI_SUFFIXES = (".mid", ".midi")
SOUNDFONTS = ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf2/default-GM.sf2",
              "/usr/share/sounds/sf3/MuseScore_General.sf3", "/usr/share/sounds/sf3/default-GM.sf3")
MAX_LOOPS = 1000
FLUIDSYNTH_TIMEOUT_S = 300
_AT = re.compile(r"^bar:(\d+)(?:\.(\d+))?$")
MAX_GRID_BEATS = 20000  # tempo changes written into a MIDI layer on the grid (10 minutes at 2000 BPM)
LAYER_KEYS = ("file", "name", "offset_s", "at", "gain_db", "pan", "mute", "loop", "effects", "program", "soundfont")


def parse_at(text: str, where: str) -> tuple[int, int]:
    """``"bar:5"`` -> ``(5, 1)``, ``"bar:5.3"`` -> ``(5, 3)`` (bar and beat counted from 1)."""
    m = _AT.match(text.strip()) if isinstance(text, str) else None
    if not m or int(m.group(1)) < 1 or (m.group(2) is not None and int(m.group(2)) < 1):
        raise MixError(f"{where}: expected \"bar:N\" or \"bar:N.BEAT\" (from 1), got {text!r}")
    return int(m.group(1)), int(m.group(2) or 1)


@dataclass
class Layer:
    """One layer's strip (see the module docstring). ``at`` wins over ``offset_s`` when both are set."""

    file: str
    name: str = ""
    offset_s: float = 0.0
    at: str | None = None
    gain_db: float = 0.0
    pan: float = 0.0
    mute: bool = False
    loop: int = 1
    effects: list[Effect] = field(default_factory=list)
    program: int | None = None
    soundfont: str | None = None

    @property
    def is_midi(self) -> bool:
        return Path(self.file).suffix.lower() in MIDI_SUFFIXES

    def to_dict(self) -> dict[str, Any]:
        gain = "-inf" if self.gain_db == -math.inf else self.gain_db
        out: dict[str, Any] = {"file": self.file, **({"name": self.name} if self.name else {}), "gain_db": gain,
                               "pan": self.pan, "mute": self.mute, "loop": self.loop,
                               "effects": [e.to_dict() for e in self.effects]}
        out.update({"at": self.at} if self.at is not None else {"offset_s": self.offset_s})
        if self.program is not None:
            out["program"] = self.program
        if self.soundfont is not None:
            out["soundfont"] = self.soundfont
        return out


def check_layer(layer: Layer, where: str) -> None:
    """Field checks beyond the document's types: a file name, the position, loops, MIDI-only fields, effects."""
    if not isinstance(layer.file, str) or not layer.file.strip():
        raise MixError(f"{where}.file: must be a file name, got {layer.file!r}")
    if layer.at is not None:
        parse_at(layer.at, f"{where}.at")
    if isinstance(layer.loop, bool) or not isinstance(layer.loop, int) or not 1 <= layer.loop <= MAX_LOOPS:
        raise MixError(f"{where}.loop: must be a whole number in [1, {MAX_LOOPS}], got {layer.loop!r}")
    if not layer.is_midi and (layer.program is not None or layer.soundfont is not None):
        raise MixError(f"{where}.program: only a MIDI layer (.mid) has a program or soundfont")
    if layer.program is not None and (isinstance(layer.program, bool) or not isinstance(layer.program, int)
                                      or not 0 <= layer.program <= 127):
        raise MixError(f"{where}.program: must be a General MIDI program in [0, 127], got {layer.program!r}")
    for i, e in enumerate(layer.effects):
        if EFFECTS[e.type].stem_aware:
            raise MixError(f"{where}.effects[{i}].type: {e.type} cleans a stem against the others, not a layer")


def _resolve(base: Path, name: str, where: str) -> Path:
    path = Path(name).expanduser()
    path = path if path.is_absolute() else base / path
    if not path.is_file():
        raise MixError(f"{where}.file: {path}: not found")
    return path


def start_beat(layer: Layer, rhythm: Any) -> int:
    """The grid beat (0 = the first downbeat) of the layer's ``at`` on ``rhythm`` (a ``Rhythm``)."""
    bar, beat = parse_at(layer.at, "at")
    return (bar - 1) * rhythm.beats_per_bar + beat - 1


def layer_start(layer: Layer, samplerate: int, rhythm: Any) -> int:
    """Where the layer starts in samples: ``offset_s``, or bar/beat ``at`` on ``rhythm`` (a ``Rhythm``)."""
    if layer.at is None:
        return int(round(layer.offset_s * samplerate))
    return int(round(rhythm.beat_time(start_beat(layer, rhythm)) * samplerate))


def load_layer_audio(layer: Layer, base: Path, samplerate: int, where: str, rhythm: Any = None) -> np.ndarray:
    """The layer's audio ``(C, T)`` at ``samplerate``, looped ``layer.loop`` times. A MIDI layer placed ``at`` a bar
    needs the grid ``rhythm``: it is rendered on it (the module docstring)."""
    path = _resolve(base, layer.file, where)
    if layer.is_midi:
        font = layer.soundfont and _resolve(base, layer.soundfont, where)
        if layer.at is not None:
            if rhythm is None:
                raise MixError(f"{where}.at: a MIDI layer on the grid needs the song's beat grid")
            grid = GridPlacement(rhythm, start_beat(layer, rhythm), layer.loop)
            return render_midi(path, samplerate, layer.program, font, where, grid)
        x = render_midi(path, samplerate, layer.program, font, where)
    else:
        try:
            audio = read_audio(path)
        except AudioError as e:
            raise MixError(f"{where}.file: {e}") from None
        x = audio.samples if audio.samplerate == samplerate else resample(audio.samples, audio.samplerate, samplerate)
    return np.tile(x, (1, layer.loop)) if layer.loop > 1 else x


def midi_available() -> bool:
    """Whether MIDI files can be read (``mido``, the ``[synth]`` extra, is installed)."""
    import importlib.util  # (only asked when a MIDI layer comes)

    return importlib.util.find_spec("mido") is not None


def midi_seconds(path: Path) -> float:
    """How long the MIDI file ``path`` plays (its own tempo map); :class:`MixError` when it cannot be read."""
    import mido  # the [synth] extra (midi_available() says whether it is there)

    try:
        return float(mido.MidiFile(str(path)).length)
    except (OSError, EOFError, KeyError, IndexError, TypeError, ValueError) as e:
        raise MixError(f"{path.name}: not a readable MIDI file ({e})") from None


@dataclass(frozen=True)
class GridPlacement:
    """A MIDI layer on the song's grid: ``rhythm`` (a ``Rhythm``), the grid beat its first quarter note lands on,
    and how many times it plays."""

    rhythm: Any
    first_beat: int
    loop: int = 1


def _with_program(midi: Any, program: int) -> None:
    import mido  # the [synth] extra; only MIDI layers need it

    for track in midi.tracks:
        channels = sorted({m.channel for m in track if hasattr(m, "channel") and m.channel != 9})
        for m in [m for m in track if m.type == "program_change"]:
            track.remove(m)
        for ch in channels:
            track.insert(0, mido.Message("program_change", channel=ch, program=program, time=0))


def _absolute(track: Any) -> list[tuple[int, Any]]:
    """A track's messages with absolute ticks, without its tempo changes and its end."""
    out, tick = [], 0
    for m in track:
        tick += m.time
        if m.type not in ("set_tempo", "end_of_track"):
            out.append((tick, m))
    return out


def _on_grid(midi: Any, grid: GridPlacement, where: str) -> None:
    """Replace ``midi``'s tempo map by the grid's from ``grid.first_beat`` and repeat its notes ``grid.loop`` times
    (every whole beat of its length): quarter note q of the file (and of each loop) sounds on grid beat
    ``first_beat + q``. Edits ``midi`` (a ``mido.MidiFile`` of this render's own) in place."""
    import mido  # the [synth] extra; only MIDI layers need it

    if midi.type == 2:
        raise MixError(f"{where}.file: a MIDI file of independent patterns (type 2) cannot follow the grid")
    tpb = midi.ticks_per_beat
    tracks = [_absolute(t) for t in midi.tracks]
    length = max((tick for t in tracks for tick, _ in t), default=0)
    period = max(1, math.ceil(length / tpb)) * tpb
    beats = (period // tpb) * grid.loop + 1
    if beats > MAX_GRID_BEATS:
        raise MixError(f"{where}.file: plays {beats} beats on the grid; a layer plays at most {MAX_GRID_BEATS}")
    rebuilt = []
    for events in tracks:
        looped = sorted(((tick + j * period, m) for j in range(grid.loop) for tick, m in events), key=lambda e: e[0])
        track, last = mido.MidiTrack(), 0
        for tick, m in looped:
            track.append(m.copy(time=tick - last))
            last = tick
        rebuilt.append(track)
    times = [grid.rhythm.beat_time(grid.first_beat + i) for i in range(beats + 1)]
    conductor = mido.MidiTrack()
    for i in range(beats):  # microseconds per quarter note: the grid's beat i, bounded as MIDI allows
        us = int(round((times[i + 1] - times[i]) * 1e6))
        conductor.append(mido.MetaMessage("set_tempo", tempo=min(max(us, 1), 0xFFFFFF), time=0 if i == 0 else tpb))
    midi.tracks = [conductor, *rebuilt]
    midi.type = 1


def _prepared(path: Path, program: int | None, grid: GridPlacement | None, tmp: Path, where: str) -> Path:
    """The MIDI file FluidSynth plays: ``path`` itself, or a copy with the program forced and/or on the grid."""
    if program is None and grid is None:
        return path
    import mido  # the [synth] extra; only MIDI layers need it

    midi = mido.MidiFile(str(path))
    if program is not None:
        _with_program(midi, program)
    if grid is not None:
        _on_grid(midi, grid, where)
    out = tmp / "layer.mid"
    midi.save(str(out))
    return out


def render_midi(path: Path, samplerate: int, program: int | None, soundfont: Path | None, where: str,
                grid: GridPlacement | None = None) -> np.ndarray:
    """``path`` rendered by the ``fluidsynth`` program, at the file's own tempo map or on ``grid`` (then looped
    there). ``(2, T)`` float32."""
    exe = shutil.which("fluidsynth")
    if exe is None:
        raise MixError(f"{where}.file: rendering MIDI needs FluidSynth (apt install fluidsynth fluid-soundfont-gm)")
    font = soundfont or next((Path(p) for p in SOUNDFONTS if Path(p).is_file()), None)
    if font is None:
        raise MixError(f"{where}.soundfont: no General MIDI soundfont installed; give one (.sf2)")
    with tempfile.TemporaryDirectory(prefix="stemwright-layer-") as tmp:
        midi = _prepared(path, program, grid, Path(tmp), where)
        wav = Path(tmp) / "layer.wav"
        cmd = [exe, "-ni", "-q", "-R", "0", "-C", "0", "-g", "0.6", "-r", str(samplerate), "-F", str(wav),
               str(font), str(midi)]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=FLUIDSYNTH_TIMEOUT_S)
        if done.returncode != 0 or not wav.is_file():
            raise MixError(f"{where}.file: {path}: FluidSynth failed ({(done.stderr or done.stdout).strip()[:200]})")
        return read_audio(wav).samples


__all__ = ["LAYER_KEYS", "GridPlacement", "Layer", "check_layer", "layer_start", "load_layer_audio", "midi_available", "midi_seconds",
           "parse_at", "render_midi", "start_beat"]
