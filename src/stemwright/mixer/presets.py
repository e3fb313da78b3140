"""One-word remix workflows, each a transformation of a :class:`Mix`.

- ``instrumental``: every stem but vocals.
- ``acapella``: vocals only (solo), with a gentle noise gate that removes low-level bleed between phrases.
- ``karaoke``: instrumental; ``karaoke:guide`` keeps the vocals at -18 dB as a guide, ``karaoke:-24`` at -24 dB.
- ``drumless`` / ``bassless``: everything but drums / bass.
- ``practice:<stem>``: that stem removed (-inf) so a musician can play it; ``practice:<stem>:-12`` keeps it at -12 dB.
"""
from __future__ import annotations

import math

from stemwright.mixer.document import GAIN_RANGE, Mix
from stemwright.mixer.effects import Effect, MixError

PRESETS = ("instrumental", "acapella", "karaoke", "drumless", "bassless", "practice:<stem>")
GUIDE_VOCAL_DB = -18.0  # quiet enough to sing over, loud enough to follow
# Gentle gate for a cappella exports: 2:1 expansion below -50 dBFS only attenuates the quiet bleed between phrases.
ACAPELLA_GATE = {"threshold_db": -50.0, "ratio": 2.0, "attack_ms": 1.0, "release_ms": 150.0}


def _need(mix: Mix, stem: str, preset: str) -> None:
    if stem not in mix.stems:
        raise MixError(f"preset {preset!r} needs a {stem!r} stem; these stems are available: {', '.join(mix.stems)}")


def _level(text: str, preset: str) -> float:
    if text.lower() in ("-inf", "mute", "off"):
        return -math.inf
    try:
        v = float(text.removesuffix("dB").removesuffix("db"))
    except ValueError:
        raise MixError(f"preset {preset!r}: level {text!r} is not a number of dB or -inf") from None
    if not GAIN_RANGE[0] <= v <= GAIN_RANGE[1]:
        raise MixError(f"preset {preset!r}: level must be in [{GAIN_RANGE[0]:g}, {GAIN_RANGE[1]:g}] dB or -inf, got {v:g}")
    return v


def _without(mix: Mix, stem: str, preset: str) -> Mix:
    _need(mix, stem, preset)
    mix.channel(stem).mute = True
    return mix


def _karaoke(mix: Mix, arg: str | None, preset: str) -> Mix:
    _need(mix, "vocals", preset)
    if arg is None:
        return _without(mix, "vocals", preset)
    level = GUIDE_VOCAL_DB if arg.lower() == "guide" else _level(arg, preset)
    ch = mix.channel("vocals")
    if level == -math.inf:
        ch.mute = True
    else:
        ch.mute, ch.gain_db = False, level
    return mix


def _practice(mix: Mix, arg: str | None, preset: str) -> Mix:
    if not arg:
        raise MixError(f"preset {preset!r}: name the stem to practise, e.g. practice:bass or practice:bass:-12 "
                       f"(stems: {', '.join(mix.stems)})")
    stem, _, level_text = arg.partition(":")
    _need(mix, stem, preset)
    level = _level(level_text, preset) if level_text else -math.inf
    ch = mix.channel(stem)
    if level == -math.inf:
        ch.mute = True
    else:
        ch.gain_db = level
    return mix


def apply_preset(mix: Mix, name: str) -> Mix:
    """Return a copy of ``mix`` with preset ``name`` applied (see module docstring); the input is not modified."""
    if not isinstance(name, str) or not name.strip():
        raise MixError(f"preset: expected a name ({', '.join(PRESETS)}), got {name!r}")
    base, _, arg = name.strip().partition(":")
    base = base.lower()
    if arg and base not in ("karaoke", "practice"):
        raise MixError(f"preset {name!r}: {base!r} takes no argument after ':'")
    out = mix.copy()
    if base == "instrumental":
        return _without(out, "vocals", name)
    if base in ("acapella", "acappella", "a-cappella"):
        _need(out, "vocals", name)
        for c in out.channels:
            c.solo = c.stem == "vocals"
        out.channel("vocals").mute = False
        out.channel("vocals").effects.insert(0, Effect.create("gate", "preset acapella", **ACAPELLA_GATE))
        return out
    if base == "karaoke":
        return _karaoke(out, arg or None, name)
    if base == "drumless":
        return _without(out, "drums", name)
    if base == "bassless":
        return _without(out, "bass", name)
    if base == "practice":
        return _practice(out, arg or None, name)
    raise MixError(f"preset: unknown preset {name!r} (choose from {', '.join(PRESETS)})")
