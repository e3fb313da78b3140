"""Presets on real separated stems (the spleeter example separated with the classic model)."""
from __future__ import annotations

import functools

import numpy as np
import pytest

from stemwright.mixer.document import Mix
from stemwright.mixer.effects import MixError
from stemwright.mixer.presets import GUIDE_VOCAL_DB, apply_preset
from stemwright.mixer.render import render


def _sum(stems, names):
    return functools.reduce(np.add, [stems.audio[n] for n in names])


@pytest.mark.parametrize(
    ("preset", "playing"),
    [
        ("instrumental", ["drums", "bass", "other"]),
        ("karaoke", ["drums", "bass", "other"]),
        ("drumless", ["vocals", "bass", "other"]),
        ("bassless", ["vocals", "drums", "other"]),
        ("practice:other", ["vocals", "drums", "bass"]),
        ("practice:bass", ["vocals", "drums", "other"]),
    ],
)
def test_removal_presets_are_exact_sums(separated, preset, playing):
    mix = apply_preset(Mix.from_stems(separated), preset)
    assert mix.audible() == playing
    assert np.array_equal(render(mix), _sum(separated, playing))


def test_karaoke_guide_vocal(separated):
    out = render(apply_preset(Mix.from_stems(separated), "karaoke:guide"))
    guide = separated.audio["vocals"] * np.float32(10 ** (GUIDE_VOCAL_DB / 20))
    expected = _sum(separated, ["drums", "bass", "other"])
    np.testing.assert_allclose(out, guide + expected, atol=1e-6)
    out24 = render(apply_preset(Mix.from_stems(separated), "karaoke:-24"))
    assert np.abs(out24 - expected).max() < np.abs(out - expected).max()


def test_practice_at_minus_12(separated):
    out = render(apply_preset(Mix.from_stems(separated), "practice:bass:-12"))
    expected = (separated.audio["vocals"] + separated.audio["drums"] + separated.audio["bass"] * np.float32(10 ** (-12 / 20))
                + separated.audio["other"])
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_acapella_is_gated_vocals_only(separated):
    mix = apply_preset(Mix.from_stems(separated), "acapella")
    assert mix.audible() == ["vocals"]
    assert [e.type for e in mix.channel("vocals").effects] == ["gate"]
    out = render(mix)
    vocals = separated.audio["vocals"]
    # the gate only attenuates: loud passages pass almost unchanged, the quietest frames get quieter
    frame = 2048
    n = vocals.shape[1] // frame * frame
    e_in = (vocals[:, :n] ** 2).reshape(2, -1, frame).mean(axis=(0, 2))
    e_out = (out[:, :n] ** 2).reshape(2, -1, frame).mean(axis=(0, 2))
    loud = e_in > np.quantile(e_in, 0.75)
    assert np.allclose(e_out[loud] / e_in[loud], 1.0, atol=0.1)
    quiet = (e_in > 0) & (e_in < 10 ** (-60 / 10))
    if quiet.any():
        assert (e_out[quiet] <= e_in[quiet] * 1.01).all()
    assert np.abs(out).max() <= np.abs(vocals).max() * 1.01


def test_preset_does_not_modify_its_input(separated):
    mix = Mix.from_stems(separated)
    before = mix.to_dict()
    apply_preset(mix, "acapella")
    assert mix.to_dict() == before


@pytest.mark.parametrize(
    ("preset", "message"),
    [
        ("remix", "unknown preset 'remix'"),
        ("practice", "name the stem to practise"),
        ("practice:piano", r"needs a 'piano' stem; these stems are available: vocals, drums, bass, other"),
        ("practice:bass:loud", "'loud' is not a number"),
        ("karaoke:+40", r"level must be in"),
        ("instrumental:3", "takes no argument"),
    ],
)
def test_preset_errors(separated, preset, message):
    with pytest.raises(MixError, match=message):
        apply_preset(Mix.from_stems(separated), preset)


def test_preset_needs_the_stem():
    mix = Mix.from_stems(["vocals", "accompaniment"])
    assert apply_preset(mix, "instrumental").audible() == ["accompaniment"]
    with pytest.raises(MixError, match="preset 'drumless' needs a 'drums' stem; these stems are available: vocals, accompaniment"):
        apply_preset(mix, "drumless")
