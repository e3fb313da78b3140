"""The mix document: JSON round trip, defaults, and validation messages that name the field."""
from __future__ import annotations

import json
import math

import pytest

from stemwright.mixer.document import Channel, Mix, TimePitch
from stemwright.mixer.effects import EFFECTS, Effect, MixError, parse_chain, parse_effect

DOC = {
    "version": 1,
    "channels": [
        {"stem": "vocals", "gain_db": -3.0, "mute": False, "solo": True, "pan": -0.25, "invert": True, "offset_s": 0.01,
         "effects": [{"type": "highpass", "cutoff_hz": 120.0}, {"type": "compressor", "threshold_db": -18, "ratio": 3}]},
        {"stem": "drums", "gain_db": "-inf"},
        {"stem": "bass", "gain_db": None, "mute": True},
    ],
    "master": {"gain_db": 1.5, "effects": [{"type": "limiter", "threshold_db": -1.0}]},
    "loudness_lufs": -14,
}


def test_round_trip_is_lossless(tmp_path):
    mix = Mix.from_dict(DOC)
    assert mix.channel("drums").gain_db == -math.inf and mix.channel("bass").gain_db == -math.inf
    assert mix.channel("vocals").effects[1].params["attack_ms"] == EFFECTS["compressor"].param("attack_ms").default
    text = mix.to_json()
    assert '"-inf"' in text and "Infinity" not in text  # valid JSON for browsers
    again = Mix.from_json(text)
    assert again == mix and again.to_dict() == mix.to_dict()
    path = mix.save(tmp_path / "mix.json")
    assert Mix.load(path) == mix
    with pytest.raises(MixError, match="already exists"):
        mix.save(path)
    mix.save(path, overwrite=True)
    assert [p.name for p in tmp_path.iterdir()] == ["mix.json"]  # no temporary leftovers


def test_defaults_and_audible():
    mix = Mix.from_dict({"channels": [{"stem": "a"}, {"stem": "b", "solo": True}, {"stem": "c", "solo": True, "mute": True}]})
    assert mix.loudness_lufs is None and mix.master.gain_db == 0.0
    assert mix.audible() == ["b"]  # solo wins, mute always silences


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"version": 9}, "version"),
        ({"channels": {}}, "channels: must be a list"),
        ({"channels": [{"gain_db": 0}]}, r"channels\[0\]\.stem"),
        ({"channels": [{"stem": "a", "pan": 1.5}]}, r"channels\[0\]\.pan: must be in \[-1, 1\]"),
        ({"channels": [{"stem": "a", "gain_db": "loud"}]}, r"channels\[0\]\.gain_db"),
        ({"channels": [{"stem": "a", "gain_db": 60}]}, r"channels\[0\]\.gain_db: must be in"),
        ({"channels": [{"stem": "a", "mute": "yes"}]}, r"channels\[0\]\.mute: must be true or false"),
        ({"channels": [{"stem": "a", "gian_db": 1}]}, r"channels\[0\]: unknown field 'gian_db'"),
        ({"channels": [{"stem": "a"}, {"stem": "a"}]}, r"channels\[1\]\.stem: stem 'a' appears in more than one"),
        ({"channels": [{"stem": "a", "effects": [{"type": "fuzz"}]}]}, r"channels\[0\]\.effects\[0\]\.type: unknown effect 'fuzz'"),
        ({"channels": [{"stem": "a", "effects": [{"type": "highpass", "cutoff": 100}]}]},
         r"channels\[0\]\.effects\[0\]\.cutoff: highpass has no parameter 'cutoff' \(parameters: cutoff_hz\)"),
        ({"channels": [{"stem": "a", "effects": [{"type": "compressor", "ratio": 0.5}]}]},
         r"channels\[0\]\.effects\[0\]\.ratio: must be in \[1, 100\]"),
        ({"channels": [{"stem": "a", "effects": [{"type": "reverb", "room_size": "big"}]}]}, r"room_size: must be a number"),
        ({"master": {"effects": [{"cutoff_hz": 3}]}}, r"master\.effects\[0\]\.type: missing"),
        ({"loudness_lufs": 3}, r"loudness_lufs: must be in \[-70, 0\]"),
        ({"extra": 1}, "unknown field 'extra'"),
    ],
)
def test_validation_names_the_field(patch, message):
    doc = {"version": 1, "channels": [{"stem": "a"}], **patch}
    with pytest.raises(MixError, match=message):
        Mix.from_dict(doc)


def test_invalid_json_and_missing_file(tmp_path):
    with pytest.raises(MixError, match="not valid JSON"):
        Mix.from_json("{")
    with pytest.raises(MixError, match="cannot read mix file"):
        Mix.load(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"channels": [{"stem": "a", "pan": 2}]}))
    with pytest.raises(MixError, match=r"bad\.json: channels\[0\]\.pan"):
        Mix.load(bad)


def test_mutated_mix_is_revalidated():
    mix = Mix([Channel("a")])
    mix.channels[0].pan = 3.0
    with pytest.raises(MixError, match=r"channels\[0\]\.pan"):
        mix.validate()


def test_parse_effect_positional_keyword_and_defaults():
    e = parse_effect("compressor(-18, 3)")
    assert e.params == {"threshold_db": -18.0, "ratio": 3.0, "attack_ms": 5.0, "release_ms": 100.0}
    assert parse_effect("compressor(ratio=4, threshold_db=-20)").params["ratio"] == 4.0
    assert parse_effect("reverb").params["room_size"] == 0.5
    chain = parse_chain("highpass(120),compressor(-18,3)")
    assert [x.type for x in chain] == ["highpass", "compressor"]
    assert Effect.from_dict(chain[0].to_dict()) == chain[0]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("hipass(120)", "unknown effect 'hipass'"),
        ("highpass(120, 3)", "at most 1 arguments"),
        ("highpass(abc)", "'abc' is not a number"),
        ("highpass(-5)", r"cutoff_hz: must be in \[1, 96000\] Hz"),
        ("compressor(ratio=3, ratio=4)", "given twice"),
        ("compressor(knee=3)", "no parameter 'knee'"),
        ("highpass(120", "unbalanced"),
        ("highpass(120),x)", "unbalanced"),
        ("gate(,)", "empty argument"),
    ],
)
def test_parse_effect_errors(text, message):
    with pytest.raises(MixError, match=message):
        parse_chain(text)


def test_every_effect_builds_a_pedalboard_plugin():
    for name in EFFECTS:
        if EFFECTS[name].stem_aware:  # rendered by the mixer against the other stems (tests/mixer/test_debleed.py)
            with pytest.raises(MixError, match="needs the other stems"):
                Effect.create(name).to_plugin(44100)
            continue
        plugin = Effect.create(name).to_plugin(44100)
        assert type(plugin).__name__ == EFFECTS[name].pb_class
    with pytest.raises(MixError, match="Nyquist"):
        Effect.create("lowpass", cutoff_hz=30000).to_plugin(44100)


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"version": 2, "time_pitch": {"speed": 0.4}}, r"time_pitch\.speed: must be in \[0\.5, 1\.5\]"),
        ({"version": 2, "time_pitch": {"semitones": 13}}, r"time_pitch\.semitones: must be in \[-12, 12\]"),
        ({"version": 2, "time_pitch": {"speed": "fast"}}, r"time_pitch\.speed: must be a finite number"),
        ({"version": 2, "time_pitch": {"tempo": 1}}, r"time_pitch: unknown field 'tempo'"),
        ({"version": 1, "time_pitch": {"speed": 0.8}}, r"time_pitch: needs mix document version 2"),
        ({"version": 4}, r"version: unsupported mix document version 4"),
    ],
)
def test_time_pitch_validation_names_the_field(patch, message):
    with pytest.raises(MixError, match=message):
        Mix.from_dict({"channels": [{"stem": "a"}], **patch})


def test_time_pitch_round_trip_and_neutral_documents_stay_version_1():
    mix = Mix.from_dict({"version": 2, "channels": [{"stem": "a"}], "time_pitch": {"speed": 0.75, "semitones": -2}})
    assert mix.time_pitch == TimePitch(speed=0.75, semitones=-2.0)
    doc = mix.to_dict()
    assert doc["version"] == 2 and doc["time_pitch"] == {"speed": 0.75, "semitones": -2.0}
    assert Mix.from_dict(doc).time_pitch == mix.time_pitch
    assert mix.copy().time_pitch == mix.time_pitch
    plain = Mix.from_dict({"version": 2, "channels": [{"stem": "a"}], "time_pitch": {"speed": 1, "semitones": 0}})
    assert plain.to_dict()["version"] == 1 and "time_pitch" not in plain.to_dict()
    with pytest.raises(MixError, match=r"time_pitch\.speed"):
        TimePitch(speed=2.0)
