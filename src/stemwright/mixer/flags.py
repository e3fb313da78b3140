"""Parsing the mixing flags of ``stemwright mix`` into edits of a :class:`Mix`.

Syntax (each flag may be repeated; lists are comma separated):
``--gain vocals=-3,bass=+2`` (dB, or -inf), ``--mute drums,bass``, ``--solo vocals``, ``--pan other=-0.3``,
``--invert bass``, ``--offset vocals=0.02`` (seconds), ``--fx "vocals=highpass(120),compressor(-18,3)"``
(one stem per flag, its chain appended), ``--master "limiter(-1)"``.
Unknown stem names are errors that list the valid names.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from stemwright.mixer.document import GAIN_RANGE, OFFSET_LIMIT_S, Mix
from stemwright.mixer.effects import Effect, MixError, parse_chain, split_top_level


class FlagError(MixError):
    """A command-line flag is malformed or names an unknown stem."""


def _stem(name: str, valid: list[str], flag: str) -> str:
    name = name.strip()
    if name not in valid:
        raise FlagError(f"{flag}: unknown stem {name!r} (valid stems: {', '.join(valid)})")
    return name


def parse_names(values: list[str] | None, valid: list[str], flag: str) -> list[str]:
    """``["drums,bass", "other"]`` -> ``["drums", "bass", "other"]``, each checked against ``valid``."""
    names: list[str] = []
    for v in values or []:
        for item in v.split(","):
            if not item.strip():
                raise FlagError(f"{flag}: empty stem name in {v!r}")
            names.append(_stem(item, valid, flag))
    return names


def parse_assignments(values: list[str] | None, valid: list[str], flag: str) -> list[tuple[str, str]]:
    """``["vocals=-3,bass=+2"]`` -> ``[("vocals", "-3"), ("bass", "+2")]`` with stems checked."""
    pairs: list[tuple[str, str]] = []
    for v in values or []:
        for item in v.split(","):
            if "=" not in item:
                raise FlagError(f"{flag}: expected STEM=VALUE, got {item.strip()!r} (e.g. {flag} vocals=-3)")
            name, value = item.split("=", 1)
            if not value.strip():
                raise FlagError(f"{flag}: missing value for {name.strip()!r}")
            pairs.append((_stem(name, valid, flag), value.strip()))
    return pairs


def parse_gain_value(text: str, flag: str, stem: str) -> float:
    t = text.strip().lower().removesuffix("db").strip()
    if t in ("-inf", "-infinity"):
        return -math.inf
    try:
        v = float(t)
    except ValueError:
        raise FlagError(f"{flag}: {stem}={text!r} is not a number of dB") from None
    if not math.isfinite(v) or not GAIN_RANGE[0] <= v <= GAIN_RANGE[1]:
        raise FlagError(f"{flag}: {stem}={text} is outside [{GAIN_RANGE[0]:g}, {GAIN_RANGE[1]:g}] dB (or -inf)")
    return v


def _bounded(text: str, flag: str, stem: str, lo: float, hi: float, what: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise FlagError(f"{flag}: {stem}={text!r} is not a number") from None
    if not math.isfinite(v) or not lo <= v <= hi:
        raise FlagError(f"{flag}: {stem}={text} is outside [{lo:g}, {hi:g}] ({what})")
    return v


def parse_fx(values: list[str] | None, valid: list[str], flag: str = "--fx") -> list[tuple[str, list[Effect]]]:
    """``["vocals=highpass(120),compressor(-18,3)"]`` -> ``[("vocals", [Effect, Effect])]``.

    Several stems in one flag are separated by ``;``: ``"vocals=highpass(120);drums=compressor(-20,4)"``.
    """
    out = []
    for v in values or []:
        try:
            parts = split_top_level(v, ";")
        except MixError as e:  # an unbalanced parenthesis is a typing error: usage, like every other flag error
            raise FlagError(f"{flag}: {e}") from None
        for part in parts:
            if not part:
                continue
            if "=" not in part.split("(", 1)[0]:
                raise FlagError(f"{flag}: expected STEM=EFFECT(...),EFFECT(...), got {part!r}")
            name, chain = part.split("=", 1)
            stem = _stem(name, valid, flag)
            try:
                out.append((stem, parse_chain(chain, f"{flag} {stem}")))
            except FlagError:
                raise
            except MixError as e:
                raise FlagError(str(e)) from None
    return out


@dataclass
class MixFlags:
    gain: list[str] = field(default_factory=list)
    mute: list[str] = field(default_factory=list)
    solo: list[str] = field(default_factory=list)
    pan: list[str] = field(default_factory=list)
    invert: list[str] = field(default_factory=list)
    offset: list[str] = field(default_factory=list)
    fx: list[str] = field(default_factory=list)
    master: list[str] = field(default_factory=list)


def apply_flags(mix: Mix, flags: MixFlags) -> Mix:
    """Return a copy of ``mix`` with the flags applied; every flag is checked before anything is changed."""
    valid = mix.stems
    gains = [(s, parse_gain_value(v, "--gain", s)) for s, v in parse_assignments(flags.gain, valid, "--gain")]
    pans = [(s, _bounded(v, "--pan", s, -1, 1, "-1 = left, 1 = right")) for s, v in parse_assignments(flags.pan, valid, "--pan")]
    offsets = [(s, _bounded(v, "--offset", s, -OFFSET_LIMIT_S, OFFSET_LIMIT_S, "seconds"))
               for s, v in parse_assignments(flags.offset, valid, "--offset")]
    mutes = parse_names(flags.mute, valid, "--mute")
    solos = parse_names(flags.solo, valid, "--solo")
    inverts = parse_names(flags.invert, valid, "--invert")
    fx = parse_fx(flags.fx, valid)
    master: list[Effect] = []
    for m in flags.master:
        try:
            master += parse_chain(m, "--master")
        except MixError as e:
            raise FlagError(str(e)) from None
    out = mix.copy()
    for s, g in gains:
        out.channel(s).gain_db = g
    for s, p in pans:
        out.channel(s).pan = p
    for s, o in offsets:
        out.channel(s).offset_s = o
    for s in mutes:
        out.channel(s).mute = True
    for s in solos:
        out.channel(s).solo = True
    for s in inverts:
        out.channel(s).invert = True
    for s, chain in fx:
        out.channel(s).effects.extend(chain)
    out.master.effects.extend(master)
    return out
