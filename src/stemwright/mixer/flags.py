"""Parsing the mixing flags of ``stemwright mix`` into edits of a :class:`Mix`.

Syntax (each flag may be repeated; lists are comma separated):
``--gain vocals=-3,bass=+2`` (dB, or -inf), ``--mute drums,bass``, ``--solo vocals``, ``--pan other=-0.3``,
``--invert bass``, ``--offset vocals=0.02`` (seconds), ``--fx "vocals=highpass(120),compressor(-18,3)"``
(one stem per flag, its chain appended), ``--master "limiter(-1)"``,
``--layer FILE[@bar:N[.B]|@SECONDS][:gain=DB,pan=P,loop=N,program=P,soundfont=SF2,name=NAME]`` (a layer, docs/remix.md).
Unknown stem names are errors that list the valid names.
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from dataclasses import dataclass, field

from stemwright.mixer.document import GAIN_RANGE, OFFSET_LIMIT_S, Mix
from stemwright.mixer.effects import Effect, MixError, parse_chain, split_top_level
from stemwright.mixer.layers import Layer, check_layer

_LAYER = re.compile(r"^(?P<file>.+?\.[A-Za-z0-9]+?)(?:@(?P<pos>bar:[0-9.]+|-?[0-9.]+))?(?::(?P<opts>[a-z_]+=.*))?$")


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


def parse_layer(text: str, base: Path, flag: str = "--layer") -> Layer:
    """``"pad.wav@bar:5"``, ``"hit.wav@12.5:gain=-6,loop=4"``, ``"bass.mid:program=38"`` -> a :class:`Layer`
    whose file is made absolute against ``base``."""
    m = _LAYER.match(text.strip())
    if not m:
        raise FlagError(f"{flag}: expected FILE[@bar:N|@SECONDS][:key=value,...], got {text!r}")
    fields: dict = {}
    pos = m.group("pos")
    if pos and pos.startswith("bar:"):
        fields["at"] = pos
    elif pos:
        fields["offset_s"] = _bounded(pos, flag, m.group("file"), -OFFSET_LIMIT_S, OFFSET_LIMIT_S, "seconds")
    convert = {"gain": ("gain_db", lambda v: parse_gain_value(v, flag, "gain")),
               "pan": ("pan", lambda v: _bounded(v, flag, "pan", -1, 1, "-1 = left, 1 = right")),
               "loop": ("loop", lambda v: _whole(v, flag, "loop")), "program": ("program", lambda v: _whole(v, flag, "program")),
               "soundfont": ("soundfont", lambda v: str((base / v).resolve())), "name": ("name", str)}
    for item in (m.group("opts") or "").split(",") if m.group("opts") else []:
        key, _, value = item.partition("=")
        if key.strip() not in convert or not value.strip():
            raise FlagError(f"{flag}: unknown or empty option {item!r} (options: {', '.join(convert)})")
        name, parse = convert[key.strip()]
        fields[name] = parse(value.strip())
    layer = Layer(file=str((base / m.group("file")).resolve()), **fields)
    try:
        check_layer(layer, flag)
    except MixError as e:
        raise FlagError(str(e)) from None
    return layer


def _whole(text: str, flag: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise FlagError(f"{flag}: {what}={text!r} is not a whole number") from None


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
    layer: list[str] = field(default_factory=list)


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
    layers = [parse_layer(v, Path.cwd()) for v in flags.layer]
    out = mix.copy()
    out.layers.extend(layers)
    if layers and out.base is None:
        out.base = Path.cwd()
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
