"""Effects of the mix document, rendered through pedalboard.

Every effect type of docs/ARCHITECTURE.md ("Mix document") is described here as data: its pedalboard class, its
parameters in document order (positional arguments of the CLI follow that order), their defaults and valid ranges.
The web mixer uses the same names and units, so a document saved in the browser renders identically here.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pedalboard

from stemwright.mixer.debleed import debleed
from stemwright.errors import MixError  # defined with the other user errors; imported from here too


@dataclass(frozen=True)
class Param:
    """One effect parameter: document name, default, inclusive range and the pedalboard keyword."""

    name: str
    default: float
    lo: float
    hi: float
    pb_name: str | None = None  # pedalboard keyword when it differs from the document name
    unit: str = ""


@dataclass(frozen=True)
class EffectSpec:
    type: str
    pb_class: str
    params: tuple[Param, ...]
    help: str
    stem_aware: bool = False  # needs the other stems (rendered by the mixer, not by pedalboard): channels only


    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)


def _cutoff(default: float) -> Param:
    # Upper bound is checked against the Nyquist frequency at render time (the document has no sample rate).
    return Param("cutoff_hz", default, 1.0, 96000.0, "cutoff_frequency_hz", "Hz")


_GAIN = Param("gain_db", 0.0, -48.0, 48.0, unit="dB")
_Q = Param("q", 0.7071, 0.05, 40.0)
_THRESH = Param("threshold_db", -18.0, -100.0, 0.0, unit="dB")
_ATTACK = Param("attack_ms", 5.0, 0.01, 2000.0, unit="ms")
_RELEASE = Param("release_ms", 100.0, 1.0, 5000.0, unit="ms")

EFFECTS: dict[str, EffectSpec] = {
    s.type: s
    for s in (
        EffectSpec("highpass", "HighpassFilter", (_cutoff(80.0),), "12 dB/oct high-pass filter"),
        EffectSpec("lowpass", "LowpassFilter", (_cutoff(16000.0),), "12 dB/oct low-pass filter"),
        EffectSpec("lowshelf", "LowShelfFilter", (_cutoff(250.0), _GAIN, _Q), "low-shelf EQ"),
        EffectSpec("highshelf", "HighShelfFilter", (_cutoff(4000.0), _GAIN, _Q), "high-shelf EQ"),
        EffectSpec("peak", "PeakFilter", (_cutoff(1000.0), _GAIN, Param("q", 1.0, 0.05, 40.0)), "peaking (bell) EQ"),
        EffectSpec(
            "compressor", "Compressor",
            (_THRESH, Param("ratio", 3.0, 1.0, 100.0), _ATTACK, _RELEASE), "downward compressor",
        ),
        EffectSpec(
            "gate", "NoiseGate",
            (Param("threshold_db", -50.0, -100.0, 0.0, unit="dB"), Param("ratio", 2.0, 1.0, 100.0),
             Param("attack_ms", 1.0, 0.01, 2000.0, unit="ms"), Param("release_ms", 150.0, 1.0, 5000.0, unit="ms")),
            "noise gate (downward expander)",
        ),
        EffectSpec(
            "limiter", "Limiter",
            (Param("threshold_db", -1.0, -60.0, 0.0, unit="dB"), _RELEASE), "peak limiter (JUCE)",
        ),
        EffectSpec(
            "reverb", "Reverb",
            (Param("room_size", 0.5, 0.0, 1.0), Param("damping", 0.5, 0.0, 1.0), Param("wet_level", 0.33, 0.0, 1.0),
             Param("dry_level", 0.4, 0.0, 1.0), Param("width", 1.0, 0.0, 1.0)),
            "Freeverb-style reverb",
        ),
        EffectSpec(
            "delay", "Delay",
            (Param("delay_seconds", 0.25, 0.0, 10.0, unit="s"), Param("feedback", 0.3, 0.0, 0.99),
             Param("mix", 0.3, 0.0, 1.0)),
            "feedback delay",
        ),
        EffectSpec("distortion", "Distortion", (Param("drive_db", 12.0, 0.0, 80.0, unit="dB"),), "tanh distortion"),
        EffectSpec(
            "chorus", "Chorus",
            (Param("rate_hz", 1.0, 0.01, 99.0, unit="Hz"), Param("depth", 0.25, 0.0, 1.0),
             Param("centre_delay_ms", 7.0, 1.0, 100.0, unit="ms"), Param("feedback", 0.0, -0.95, 0.95),
             Param("mix", 0.5, 0.0, 1.0)),
            "chorus",
        ),
        EffectSpec(
            "debleed", "",
            (Param("strength", 0.5, 0.0, 1.0), Param("low_hz", 20.0, 0.0, 96000.0, unit="Hz"),
             Param("high_hz", 20000.0, 0.0, 96000.0, unit="Hz"), Param("gate_db", -60.0, -100.0, -20.0, unit="dB")),
            "bleed reducer: Wiener re-mask against the other stems + gentle spectral gate (mixer/debleed.py)",
            stem_aware=True,
        ),
    )
}


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MixError(f"{where}: must be a number, got {value!r}")
    if not math.isfinite(value):
        raise MixError(f"{where}: must be finite, got {value!r}")
    return float(value)


@dataclass
class Effect:
    """One effect of a chain: ``type`` (a key of :data:`EFFECTS`) and its parameters (all filled in)."""

    type: str
    params: dict[str, float] = field(default_factory=dict)

    @classmethod
    def create(cls, type: str, where: str = "effect", **params: Any) -> Effect:
        """Validated constructor: unknown types/parameters and out-of-range values raise :class:`MixError`."""
        spec = EFFECTS.get(type) if isinstance(type, str) else None
        if spec is None:
            raise MixError(f"{where}.type: unknown effect {type!r} (choose from {', '.join(EFFECTS)})")
        filled: dict[str, float] = {}
        for name, value in params.items():
            p = spec.param(name)
            if p is None:
                valid = ", ".join(q.name for q in spec.params)
                raise MixError(f"{where}.{name}: {type} has no parameter {name!r} (parameters: {valid})")
            v = _number(value, f"{where}.{name}")
            if not p.lo <= v <= p.hi:
                raise MixError(f"{where}.{name}: must be in [{p.lo:g}, {p.hi:g}]{' ' + p.unit if p.unit else ''}, got {v:g}")
            filled[name] = v
        for p in spec.params:
            filled.setdefault(p.name, p.default)
        return cls(type, {p.name: filled[p.name] for p in spec.params})

    @classmethod
    def from_dict(cls, data: Any, where: str = "effect") -> Effect:
        if not isinstance(data, dict):
            raise MixError(f"{where}: must be an object like {{\"type\": \"highpass\", \"cutoff_hz\": 120}}, got {data!r}")
        if "type" not in data:
            raise MixError(f"{where}.type: missing (choose from {', '.join(EFFECTS)})")
        params = {k: v for k, v in data.items() if k != "type"}
        return cls.create(data["type"], where, **params)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, **self.params}

    def validate(self, where: str = "effect") -> None:
        Effect.create(self.type, where, **self.params)

    def to_plugin(self, samplerate: float, where: str = "effect") -> Any:
        """The pedalboard plugin for this effect at ``samplerate`` (checks cut-offs against Nyquist)."""
        spec = EFFECTS[self.type]
        if spec.stem_aware:
            raise MixError(f"{where}: {self.type} needs the other stems; it is rendered by the mixer, not pedalboard")
        cutoff = self.params.get("cutoff_hz")
        if cutoff is not None and cutoff >= samplerate / 2:
            raise MixError(f"{where}.cutoff_hz: {cutoff:g} Hz is not below the Nyquist frequency {samplerate / 2:g} Hz")
        kwargs = {(p.pb_name or p.name): self.params[p.name] for p in spec.params}
        return getattr(pedalboard, spec.pb_class)(**kwargs)


_CALL = re.compile(r"^\s*([A-Za-z_]+)\s*(?:\((.*)\))?\s*$", re.S)


def split_top_level(text: str, sep: str = ",") -> list[str]:
    """Split on ``sep`` outside parentheses: ``"a(1,2),b"`` -> ``["a(1,2)", "b"]``."""
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise MixError(f"unbalanced ')' in {text!r}")
        if ch == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if depth != 0:
        raise MixError(f"unbalanced '(' in {text!r}")
    parts.append("".join(cur))
    return [p.strip() for p in parts]


def _parse_value(text: str, where: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise MixError(f"{where}: {text!r} is not a number") from None


def parse_effect(text: str, where: str = "effect") -> Effect:
    """Parse ``"compressor(-18, 3)"``, ``"compressor(threshold_db=-18, ratio=3)"`` or ``"reverb"``.

    Positional arguments follow the parameter order of :data:`EFFECTS`; omitted parameters take their defaults.
    """
    m = _CALL.match(text)
    if not m:
        raise MixError(f"{where}: cannot parse effect {text!r} (expected e.g. highpass(120) or compressor(-18,3))")
    name, args = m.group(1).lower(), m.group(2)
    spec = EFFECTS.get(name)
    if spec is None:
        raise MixError(f"{where}: unknown effect {name!r} (choose from {', '.join(EFFECTS)})")
    params: dict[str, float] = {}
    items = [a for a in split_top_level(args)] if args and args.strip() else []
    for i, item in enumerate(items):
        if not item:
            raise MixError(f"{where}: empty argument in {text!r}")
        if "=" in item:
            key, val = (s.strip() for s in item.split("=", 1))
            if spec.param(key) is None:
                valid = ", ".join(p.name for p in spec.params)
                raise MixError(f"{where}: {name} has no parameter {key!r} (parameters: {valid})")
        else:
            if params and any("=" in it for it in items[:i]):
                raise MixError(f"{where}: positional argument after keyword argument in {text!r}")
            if i >= len(spec.params):
                raise MixError(f"{where}: {name} takes at most {len(spec.params)} arguments "
                               f"({', '.join(p.name for p in spec.params)}), got {len(items)}")
            key, val = spec.params[i].name, item
        if key in params:
            raise MixError(f"{where}: {name} parameter {key!r} given twice")
        params[key] = _parse_value(val, f"{where}: {name}.{key}")
    return Effect.create(name, f"{where}: {name}", **params)


def parse_chain(text: str, where: str = "effects") -> list[Effect]:
    """Parse a comma-separated chain: ``"highpass(120),compressor(-18,3)"``."""
    items = split_top_level(text)
    if not any(items):
        raise MixError(f"{where}: empty effect chain")
    return [parse_effect(item, where) for item in items]


def apply_chain(audio: np.ndarray, effects: list[Effect], samplerate: float, where: str = "effects",
                others: np.ndarray | None = None, stem: str | None = None) -> np.ndarray:
    """Run ``audio`` through the chain (a fresh pedalboard each call, so no state leaks between renders).

    Shape: ``(C, T)`` -> ``(C, T)`` float32. ``others`` ``(C', T)``: the sum of the other stems, time-aligned with
    ``audio``, which stem-aware effects (``debleed``) need; a chain with one and no ``others`` is a :class:`MixError`.
    ``stem``: the channel's stem name (debleed's per-stem tuning).
    Runs of ordinary effects go through one pedalboard each, in chain order.
    """
    if not effects:
        return audio
    out, start = audio, 0
    for i, e in enumerate(effects + [None]):
        if e is not None and not EFFECTS[e.type].stem_aware:
            continue
        if i > start:
            board = pedalboard.Pedalboard([x.to_plugin(samplerate, f"{where}[{start + k}]")
                                           for k, x in enumerate(effects[start:i])])
            out = np.ascontiguousarray(board(np.ascontiguousarray(out, dtype=np.float32), samplerate, reset=True),
                                       dtype=np.float32)
        if e is not None:
            out = _stem_aware(out, e, samplerate, f"{where}[{i}]", others, stem)
        start = i + 1
    return out


def _stem_aware(audio: np.ndarray, effect: Effect, samplerate: float, where: str, others: np.ndarray | None,
                stem: str | None) -> np.ndarray:
    if others is None:
        raise MixError(f"{where}: {effect.type} works on a stem against the other stems (a mix channel), "
                       "not on the master or a single signal")
    return debleed(audio, others, samplerate, stem=stem, **effect.params)
