"""Layers: channels of a mix that are not stems (mix document version 3, issue 27 "Add your own layers").

A layer is an audio file, or a MIDI file rendered with FluidSynth (the ``fluidsynth`` program; a General MIDI
``program`` forced on every melodic channel, a ``soundfont`` or the first GM soundfont installed), placed at
``offset_s`` seconds or at ``at`` = ``"bar:N"`` / ``"bar:N.B"`` (bar N, beat B, counted from 1 on the grid that
``mixer.analysis.estimate_rhythm`` finds in the stems), played ``loop`` times back to back, then through its
strip: effects -> gain -> pan, like a stem's. Layers are cut at the end of the song.

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


def layer_start(layer: Layer, samplerate: int, rhythm: Any) -> int:
    """Where the layer starts in samples: ``offset_s``, or bar/beat ``at`` on ``rhythm`` (a ``Rhythm``)."""
    if layer.at is None:
        return int(round(layer.offset_s * samplerate))
    bar, beat = parse_at(layer.at, "at")
    spb = 60.0 / rhythm.tempo
    return int(round((rhythm.downbeat + ((bar - 1) * rhythm.beats_per_bar + beat - 1) * spb) * samplerate))


def load_layer_audio(layer: Layer, base: Path, samplerate: int, where: str) -> np.ndarray:
    """The layer's audio ``(C, T)`` at ``samplerate``, looped ``layer.loop`` times."""
    path = _resolve(base, layer.file, where)
    if layer.is_midi:
        x = render_midi(path, samplerate, layer.program, layer.soundfont and _resolve(base, layer.soundfont, where), where)
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


def _with_program(path: Path, program: int, tmp: Path) -> Path:
    import mido  # the [synth] extra; only MIDI layers with a program need it

    midi = mido.MidiFile(str(path))
    for track in midi.tracks:
        channels = sorted({m.channel for m in track if hasattr(m, "channel") and m.channel != 9})
        for m in [m for m in track if m.type == "program_change"]:
            track.remove(m)
        for ch in channels:
            track.insert(0, mido.Message("program_change", channel=ch, program=program, time=0))
    out = tmp / "layer.mid"
    midi.save(str(out))
    return out


def render_midi(path: Path, samplerate: int, program: int | None, soundfont: Path | None, where: str) -> np.ndarray:
    """``path`` rendered by the ``fluidsynth`` program (at the file's own tempo map). ``(2, T)`` float32."""
    exe = shutil.which("fluidsynth")
    if exe is None:
        raise MixError(f"{where}.file: rendering MIDI needs FluidSynth (apt install fluidsynth fluid-soundfont-gm)")
    font = soundfont or next((Path(p) for p in SOUNDFONTS if Path(p).is_file()), None)
    if font is None:
        raise MixError(f"{where}.soundfont: no General MIDI soundfont installed; give one (.sf2)")
    with tempfile.TemporaryDirectory(prefix="stemwright-layer-") as tmp:
        midi = _with_program(path, program, Path(tmp)) if program is not None else path
        wav = Path(tmp) / "layer.wav"
        cmd = [exe, "-ni", "-q", "-R", "0", "-C", "0", "-g", "0.6", "-r", str(samplerate), "-F", str(wav),
               str(font), str(midi)]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=FLUIDSYNTH_TIMEOUT_S)
        if done.returncode != 0 or not wav.is_file():
            raise MixError(f"{where}.file: {path}: FluidSynth failed ({(done.stderr or done.stdout).strip()[:200]})")
        return read_audio(wav).samples


__all__ = ["LAYER_KEYS", "Layer", "check_layer", "layer_start", "load_layer_audio", "midi_available", "midi_seconds",
           "parse_at", "render_midi"]
