"""The files behind a song's layers in the studio (mix document v3 ``layers``, issue 27 "Add your own layers").

A layer dropped onto the mixer is stored as ``DATA_DIR/songs/ID/layers/<32 hex>.<ext>`` with a sidecar
``.<32 hex>.json`` (:class:`LayerInfo`: the user's file name, audio or MIDI, duration) and the audio the page plays,
``.<32 hex>.play.wav`` (float: never clipped, as the export). A posted mix document may only name such files (:func:`check_layers`): a document never
makes the server read a file of its choosing, and the sidecar's duration bounds what a layer may ask the renderer
for (loops). No heavy imports here: ``renders`` imports this module at start-up.
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from stemwright.atomic import atomic_write_text
from stemwright.server.exports import MAX_EFFECTS_PER_CHANNEL

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
MIDI_SUFFIXES = (".mid", ".midi")
LAYER_FILE = re.compile(r"^[0-9a-f]{32}\.(wav|flac|ogg|mid)$")
MAX_LAYER_MB = 50  # a few minutes of 24-bit stereo WAV
MAX_MIDI_BYTES = 1024 * 1024  # a MIDI file of a song is kilobytes
MAX_LAYER_S = 600.0  # a layer (and its loops together) plays at most ten minutes
MAX_LAYERS = 16  # layers in one mix document (strips on the page)
MAX_LAYER_FILES = 64  # layer files kept per song (uploads of every saved mix)
MAX_LAYER_OFFSET_S = 7200.0  # the longest song the studio takes


@dataclass(frozen=True, kw_only=True)
class LayerInfo:
    """A stored layer: ``file`` is the name the mix document uses, ``name`` the user's file name (shown only)."""

    file: str
    name: str
    kind: str  # "audio" or "midi"
    duration: float  # seconds, as the page plays it (a MIDI file rendered)
    drums: dict[str, Any] | None = None  # a replaced drums stem (drums panel): the settings it was made with

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def info_path(folder: Path, file: str) -> Path:
    return folder / f".{Path(file).stem}.json"


MAX_GRID_PLAYS = 8  # renders of one MIDI layer on the grid kept (one per bar it was placed at)


def play_path(folder: Path, file: str, at: tuple[int, int] | None = None) -> Path:
    """The audio the page plays for layer ``file``; for a MIDI layer on the grid, the render for bar/beat ``at``."""
    where = "" if at is None else f".bar{at[0]}-{at[1]}"
    return folder / f".{Path(file).stem}.play{where}.wav"


def grid_plays(folder: Path, file: str) -> list[Path]:
    """The stored on-grid renders of a MIDI layer, oldest first."""
    return sorted(folder.glob(f".{Path(file).stem}.play.bar*.wav"), key=lambda p: p.stat().st_mtime_ns)


def write_info(folder: Path, info: LayerInfo) -> None:
    atomic_write_text(info_path(folder, info.file), json.dumps(info.to_dict()))


def read_info(folder: Path, file: str) -> LayerInfo | None:
    """The stored layer ``file`` (a name matching :data:`LAYER_FILE`), or None when there is none."""
    if not LAYER_FILE.match(file) or not (folder / file).is_file():
        return None
    try:
        data = json.loads(info_path(folder, file).read_text())
        drums = data.get("drums")
        return LayerInfo(file=file, name=str(data["name"]), kind=str(data["kind"]), duration=float(data["duration"]),
                         drums=drums if isinstance(drums, dict) else None)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def stored_layers(folder: Path) -> list[LayerInfo]:
    if not folder.is_dir():
        return []
    found = (read_info(folder, p.name) for p in sorted(folder.iterdir()) if LAYER_FILE.match(p.name))
    return [x for x in found if x is not None]


def check_layers(mix: Any, folder: Path | None) -> None:
    """Raise ValueError naming the field when a :class:`~stemwright.mixer.document.Mix`'s layers are not the
    song's stored layers, use a soundfont file, or exceed the studio's bounds."""
    if not mix.layers:
        return
    if folder is None:
        raise ValueError("layers: not accepted here")
    if len(mix.layers) > MAX_LAYERS:
        raise ValueError(f"layers: at most {MAX_LAYERS} layers in a mix (got {len(mix.layers)})")
    for i, layer in enumerate(mix.layers):
        where = f"layers[{i}]"
        info = read_info(folder, layer.file)
        if info is None:
            raise ValueError(f"{where}.file: {layer.file[:60]!r} is not a layer uploaded to this song "
                             "(drop the file onto the mixer)")
        if layer.soundfont is not None:
            raise ValueError(f"{where}.soundfont: the studio renders MIDI with the installed General MIDI soundfont")
        if layer.loop > 1 and layer.loop * info.duration > MAX_LAYER_S:  # one play: bounded when it was stored
            raise ValueError(f"{where}.loop: {layer.loop} loops of {info.duration:.1f} s play more than "
                             f"{MAX_LAYER_S:g} s")
        if abs(layer.offset_s) > MAX_LAYER_OFFSET_S:
            raise ValueError(f"{where}.offset_s: must be within ±{MAX_LAYER_OFFSET_S:g} s (got {layer.offset_s:g})")
        if len(layer.effects) > MAX_EFFECTS_PER_CHANNEL:
            raise ValueError(f"{where}.effects: at most {MAX_EFFECTS_PER_CHANNEL} effects per layer")
