"""The mix document: a remix as data (docs/ARCHITECTURE.md, "Mix document").

The same JSON is written by the web mixer, by ``stemwright mix --save-mix`` and by :meth:`Mix.save`, so a mix made
in the browser can be exported from the command line and vice versa. Validation is strict (unknown keys are
errors, so a typo like ``"gian_db"`` is reported rather than ignored) and every message names the field.
"""
from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stemwright.atomic import atomic_write_text
from stemwright.mixer.effects import EFFECTS, Effect, MixError
from stemwright.mixer.layers import LAYER_KEYS, Layer, check_layer
from stemwright.mixer.stems import StemSet, load_stems

VERSION = 3
# Version 1 documents (no ``time_pitch``) and 2 (no ``layers``) are still read; a document is written with the
# lowest version that holds it (1 at normal speed and pitch without layers) so that older readers keep reading it.
READ_VERSIONS = (1, 2, 3)
SPEED_RANGE = (0.5, 1.5)  # the practice studio's speed range (issue 14): 50-150 %
SEMITONE_LIMIT = 12.0  # transpose -12..+12 semitones (issue 14)
GAIN_RANGE = (-120.0, 24.0)  # dB; below -120 dB is inaudible in float, -inf is allowed separately
OFFSET_LIMIT_S = 3600.0
LUFS_RANGE = (-70.0, 0.0)

_CHANNEL_KEYS = ("stem", "gain_db", "mute", "solo", "pan", "invert", "offset_s", "effects")
_MASTER_KEYS = ("gain_db", "effects")
_MIX_KEYS = ("version", "channels", "master", "loudness_lufs", "time_pitch", "layers")
_TIME_PITCH_KEYS = ("speed", "semitones")

MAX_DOCUMENT_BYTES = 1 << 20  # a mix document of a hundred stems with effects is ~50 kB


def parse_gain(value: Any, where: str) -> float:
    """A gain in dB: a number, ``"-inf"`` or ``None`` (both meaning silent)."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("-inf", "-infinity")):
        return -math.inf
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MixError(f"{where}: must be a number in dB, \"-inf\" or null, got {value!r}")
    v = float(value)
    if v == -math.inf:
        return v
    if not math.isfinite(v) or not GAIN_RANGE[0] <= v <= GAIN_RANGE[1]:
        raise MixError(f"{where}: must be in [{GAIN_RANGE[0]:g}, {GAIN_RANGE[1]:g}] dB or -inf, got {value!r}")
    return v


def gain_to_json(gain_db: float) -> float | str:
    return "-inf" if gain_db == -math.inf else gain_db


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise MixError(f"{where}: must be true or false, got {value!r}")
    return value


def _float(value: Any, where: str, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise MixError(f"{where}: must be a finite number, got {value!r}")
    if not lo <= value <= hi:
        raise MixError(f"{where}: must be in [{lo:g}, {hi:g}], got {value!r}")
    return float(value)


def _check_keys(data: dict, allowed: tuple[str, ...], where: str) -> None:
    unknown = [k for k in data if k not in allowed]
    if unknown:
        raise MixError(f"{where}: unknown field {unknown[0]!r} (fields: {', '.join(allowed)})")


def _object(data: Any, allowed: tuple[str, ...], where: str) -> dict:
    """``data`` checked to be an object with only ``allowed`` fields."""
    if not isinstance(data, dict):
        raise MixError(f"{where}: must be an object, got {data!r}")
    _check_keys(data, allowed, where)
    return data


def _effects(data: Any, where: str, stem_aware: bool = True) -> list[Effect]:
    """A list of effects; ``stem_aware=False`` (the master) refuses those that need the other stems (debleed)."""
    if data is None:
        return []
    if not isinstance(data, list):
        raise MixError(f"{where}: must be a list of effects, got {type(data).__name__}")
    effects = [Effect.from_dict(e, f"{where}[{i}]") for i, e in enumerate(data)]
    for i, e in enumerate(effects):
        if not stem_aware and EFFECTS[e.type].stem_aware:
            raise MixError(f"{where}[{i}].type: {e.type} cleans a stem against the others; it goes on a channel, "
                           "not on the master")
    return effects


@dataclass
class Channel:
    """One stem's strip: gain (dB, may be -inf), mute, solo, pan in [-1, 1], polarity, time offset, effects."""

    stem: str
    gain_db: float = 0.0
    mute: bool = False
    solo: bool = False
    pan: float = 0.0
    invert: bool = False
    offset_s: float = 0.0
    effects: list[Effect] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: Any, where: str) -> Channel:
        data = _object(data, _CHANNEL_KEYS, where)
        stem = data.get("stem")
        if not isinstance(stem, str) or not stem.strip():
            raise MixError(f"{where}.stem: must be a non-empty stem name, got {stem!r}")
        return cls(
            stem=stem,
            gain_db=parse_gain(data.get("gain_db", 0.0), f"{where}.gain_db"),
            mute=_bool(data.get("mute", False), f"{where}.mute"),
            solo=_bool(data.get("solo", False), f"{where}.solo"),
            pan=_float(data.get("pan", 0.0), f"{where}.pan", -1.0, 1.0),
            invert=_bool(data.get("invert", False), f"{where}.invert"),
            offset_s=_float(data.get("offset_s", 0.0), f"{where}.offset_s", -OFFSET_LIMIT_S, OFFSET_LIMIT_S),
            effects=_effects(data.get("effects", []), f"{where}.effects"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "stem": self.stem, "gain_db": gain_to_json(self.gain_db), "mute": self.mute, "solo": self.solo,
            "pan": self.pan, "invert": self.invert, "offset_s": self.offset_s,
            "effects": [e.to_dict() for e in self.effects],
        }


def layer_from_dict(data: Any, where: str) -> Layer:
    """A :class:`Layer` from its JSON object (docs/ARCHITECTURE.md, "Mix document", version 3)."""
    data = _object(data, LAYER_KEYS, where)
    if "at" in data and "offset_s" in data:
        raise MixError(f"{where}: give \"at\" (bar:N) or \"offset_s\" (seconds), not both")
    layer = Layer(
        file=data.get("file"), name=data.get("name", "") if isinstance(data.get("name", ""), str) else "",
        offset_s=_float(data.get("offset_s", 0.0), f"{where}.offset_s", -OFFSET_LIMIT_S, OFFSET_LIMIT_S),
        at=data.get("at"), gain_db=parse_gain(data.get("gain_db", 0.0), f"{where}.gain_db"),
        pan=_float(data.get("pan", 0.0), f"{where}.pan", -1.0, 1.0), mute=_bool(data.get("mute", False), f"{where}.mute"),
        loop=data.get("loop", 1), effects=_effects(data.get("effects", []), f"{where}.effects"),
        program=data.get("program"), soundfont=data.get("soundfont"),
    )
    if layer.soundfont is not None and not isinstance(layer.soundfont, str):
        raise MixError(f"{where}.soundfont: must be a file name, got {layer.soundfont!r}")
    check_layer(layer, where)
    return layer


@dataclass(frozen=True, kw_only=True)
class TimePitch:
    """Speed and transpose applied to the whole mix after the master (one processor keeps the stems in sync).

    ``speed`` 1.0 is the original tempo (0.5 = half speed, twice as long) without a change of pitch;
    ``semitones`` transposes without a change of speed. The web mixer plays it with SoundTouch, the export renders
    it with Rubber Band (pedalboard).
    """

    speed: float = 1.0
    semitones: float = 0.0

    def __post_init__(self) -> None:
        _float(self.speed, "time_pitch.speed", *SPEED_RANGE)
        _float(self.semitones, "time_pitch.semitones", -SEMITONE_LIMIT, SEMITONE_LIMIT)

    @property
    def neutral(self) -> bool:
        return self.speed == 1.0 and self.semitones == 0.0

    @classmethod
    def from_dict(cls, data: Any, where: str = "time_pitch") -> TimePitch:
        if data is None:
            return cls()
        data = _object(data, _TIME_PITCH_KEYS, where)
        speed = _float(data.get("speed", 1.0), f"{where}.speed", *SPEED_RANGE)
        semitones = _float(data.get("semitones", 0.0), f"{where}.semitones", -SEMITONE_LIMIT, SEMITONE_LIMIT)
        return cls(speed=speed, semitones=semitones)

    def to_dict(self) -> dict[str, float]:
        return {"speed": self.speed, "semitones": self.semitones}


@dataclass
class Master:
    gain_db: float = 0.0
    effects: list[Effect] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: Any, where: str = "master") -> Master:
        if data is None:
            return cls()
        data = _object(data, _MASTER_KEYS, where)
        return cls(parse_gain(data.get("gain_db", 0.0), f"{where}.gain_db"), _effects(data.get("effects", []), f"{where}.effects", stem_aware=False))

    def to_dict(self) -> dict[str, Any]:
        return {"gain_db": gain_to_json(self.gain_db), "effects": [e.to_dict() for e in self.effects]}


@dataclass
class Mix:
    """A remix of a set of stems.

    ``source`` (not part of the JSON) optionally remembers the stems the mix was made for, so that
    ``stemwright.render(mix)`` works without passing them again. ``base`` (not part of the JSON either) is the
    folder that layer files are read from: :meth:`load` sets the document's folder; a mix without one (a
    document posted to the studio) does not render layers.
    """

    channels: list[Channel] = field(default_factory=list)
    master: Master = field(default_factory=Master)
    loudness_lufs: float | None = None
    version: int = VERSION
    time_pitch: TimePitch = field(default_factory=TimePitch)
    source: StemSet | None = field(default=None, repr=False, compare=False)
    layers: list[Layer] = field(default_factory=list)
    base: Path | None = field(default=None, repr=False, compare=False)

    def add_layer(self, file: str | Path, **fields: Any) -> Layer:
        """Add a layer (fields of :class:`Layer`: ``at="bar:5"``, ``offset_s``, ``gain_db``, ``pan``, ``loop``,
        ``effects``, ``program``, ``soundfont``); a mix without a base reads files from the working directory."""
        layer = Layer(file=str(file), **fields)
        check_layer(layer, f"layers[{len(self.layers)}]")
        self.layers.append(layer)
        if self.base is None:
            self.base = Path.cwd()
        return layer

    # ---- construction -------------------------------------------------------------------------------------------
    @classmethod
    def from_stems(cls, stems: StemSet | list[str] | tuple[str, ...] | dict) -> Mix:
        """A neutral mix (every stem at 0 dB, centred, no effects) for a :class:`StemSet`, a dict or stem names."""
        names = stems.names if isinstance(stems, StemSet) else list(stems)
        return cls([Channel(n) for n in names], source=stems if isinstance(stems, StemSet) else None)

    @classmethod
    def from_folder(cls, path: str | Path) -> Mix:
        """A neutral mix of the stems in a folder written by ``stemwright separate`` (or any folder of audio files)."""
        return cls.from_stems(load_stems(path))

    @classmethod
    def from_dict(cls, data: Any) -> Mix:
        if not isinstance(data, dict):
            raise MixError(f"mix document: must be a JSON object, got {type(data).__name__}")
        _check_keys(data, _MIX_KEYS, "mix document")
        version = data.get("version", VERSION)
        if isinstance(version, bool) or version not in READ_VERSIONS:
            raise MixError(f"version: unsupported mix document version {version!r} (this stemwright reads "
                           f"{', '.join(map(str, READ_VERSIONS))})")
        if version == 1 and "time_pitch" in data:
            raise MixError("time_pitch: needs mix document version 2 (this document says version 1)")
        if version < 3 and "layers" in data:
            raise MixError(f"layers: needs mix document version 3 (this document says version {version})")
        layers = data.get("layers", [])
        if not isinstance(layers, list):
            raise MixError(f"layers: must be a list, got {type(layers).__name__}")
        chans = data.get("channels", [])
        if not isinstance(chans, list):
            raise MixError(f"channels: must be a list, got {type(chans).__name__}")
        mix = cls(
            channels=[Channel.from_dict(c, f"channels[{i}]") for i, c in enumerate(chans)],
            master=Master.from_dict(data.get("master")),
            loudness_lufs=_lufs(data.get("loudness_lufs")),
            time_pitch=TimePitch.from_dict(data.get("time_pitch")),
            layers=[layer_from_dict(la, f"layers[{i}]") for i, la in enumerate(layers)],
        )
        mix.validate()
        return mix

    @classmethod
    def from_json(cls, text: str) -> Mix:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise MixError(f"mix document: not valid JSON ({e})") from None
        except RecursionError:
            raise MixError("mix document: nested too deeply to be a mix document") from None
        return cls.from_dict(data)

    @classmethod
    def load(cls, path: str | Path) -> Mix:
        p = Path(path)
        try:
            if p.stat().st_size > MAX_DOCUMENT_BYTES:
                raise MixError(f"{p}: too large for a mix document ({p.stat().st_size} bytes; at most "
                               f"{MAX_DOCUMENT_BYTES})")
            text = p.read_text(encoding="utf-8")
        except OSError as e:
            raise MixError(f"{p}: cannot read mix file ({e.strerror or e})") from None
        except UnicodeDecodeError:
            raise MixError(f"{p}: not a mix document (not UTF-8 text; expected JSON such as the web mixer saves)") from None
        try:
            mix = cls.from_json(text)
        except MixError as e:
            raise MixError(f"{p}: {e}") from None
        mix.base = p.resolve().parent
        return mix

    # ---- serialisation ------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "version": 3 if self.layers else 1 if self.time_pitch.neutral else 2,
            "channels": [c.to_dict() for c in self.channels],
            "master": self.master.to_dict(),
            "loudness_lufs": self.loudness_lufs,
        }
        if not self.time_pitch.neutral:
            out["time_pitch"] = self.time_pitch.to_dict()
        if self.layers:
            out["layers"] = [la.to_dict() for la in self.layers]
        return out

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def save(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write the JSON document atomically (temporary name + rename); refuses to replace a file unless asked."""
        p = Path(path)
        if p.exists() and not overwrite:
            raise MixError(f"{p}: already exists")
        try:
            return atomic_write_text(p, self.to_json() + "\n")
        except OSError as e:
            raise MixError(f"{p}: cannot write ({e.strerror or e})") from None

    def copy(self) -> Mix:
        new = copy.deepcopy(Mix(self.channels, self.master, self.loudness_lufs, self.version, self.time_pitch,
                                layers=self.layers))
        new.source, new.base = self.source, self.base
        return new

    # ---- queries ------------------------------------------------------------------------------------------------
    @property
    def stems(self) -> list[str]:
        return [c.stem for c in self.channels]

    def channel(self, stem: str) -> Channel:
        for c in self.channels:
            if c.stem == stem:
                return c
        raise MixError(f"unknown stem {stem!r} (stems in this mix: {', '.join(self.stems) or 'none'})")

    def audible(self) -> list[str]:
        """Stems that play: DAW semantics — mute always silences; if any channel is soloed only soloed ones play."""
        any_solo = any(c.solo for c in self.channels)
        return [c.stem for c in self.channels if not c.mute and (c.solo or not any_solo) and c.gain_db != -math.inf]

    def validate(self) -> None:
        """Re-check every field (dataclasses are mutable, so the API validates again before rendering)."""
        if self.version not in READ_VERSIONS:
            raise MixError(f"version: unsupported mix document version {self.version!r}")
        if not isinstance(self.time_pitch, TimePitch):
            raise MixError(f"time_pitch: must be a stemwright TimePitch, got {type(self.time_pitch).__name__}")
        seen: set[str] = set()
        for i, c in enumerate(self.channels):
            where = f"channels[{i}]"
            Channel.from_dict(c.to_dict(), where)
            if c.stem in seen:
                raise MixError(f"{where}.stem: stem {c.stem!r} appears in more than one channel")
            seen.add(c.stem)
        Master.from_dict(self.master.to_dict())
        _lufs(self.loudness_lufs)
        for i, layer in enumerate(self.layers):
            if not isinstance(layer, Layer):
                raise MixError(f"layers[{i}]: must be a stemwright Layer, got {type(layer).__name__}")
            layer_from_dict(layer.to_dict(), f"layers[{i}]")


def _lufs(value: Any) -> float | None:
    if value is None:
        return None
    return _float(value, "loudness_lufs", *LUFS_RANGE)
