"""Rendering: exact unity mix, DAW mute/solo, the Web Audio pan law, polarity, offsets, effects, inputs untouched."""
from __future__ import annotations

import functools
import math

import numpy as np
import pytest

import stemwright
from stemwright.mixer.document import Channel, Master, Mix, TimePitch
from stemwright.mixer.effects import Effect, MixError
from stemwright.mixer.render import apply_pan, clean_stem, pan_gains, render
from stemwright.mixer.stems import as_stemset

SR = 44100


def _sum(stems, names=None):
    names = names or list(stems)
    return functools.reduce(np.add, [stems[n] for n in names])


def test_unity_mix_is_the_sum_bit_for_bit(random_stems):
    before = {k: v.copy() for k, v in random_stems.items()}
    out = stemwright.render(stemwright.Mix.from_stems(random_stems), random_stems, samplerate=SR)
    assert out.dtype == np.float32
    assert np.array_equal(out, _sum(random_stems))
    assert all(np.array_equal(before[k], random_stems[k]) for k in before)  # inputs never modified


def test_unity_mix_of_real_separated_stems(separated):
    out = render(Mix.from_stems(separated))  # the mix remembers its stems
    assert np.array_equal(out, _sum(separated.audio))


def test_mute_and_solo_follow_daw_semantics(random_stems):
    base = Mix.from_stems(random_stems)
    mix = base.copy()
    mix.channel("drums").mute = True
    assert np.array_equal(render(mix, random_stems, samplerate=SR), _sum(random_stems, ["vocals", "bass", "other"]))
    mix = base.copy()
    mix.channel("vocals").solo = mix.channel("bass").solo = True
    assert np.array_equal(render(mix, random_stems, samplerate=SR), _sum(random_stems, ["vocals", "bass"]))
    mix.channel("bass").mute = True  # mute beats solo
    assert np.array_equal(render(mix, random_stems, samplerate=SR), random_stems["vocals"])
    mix.channel("vocals").mute = True  # everything soloed is muted: silence, not "everything plays"
    out = render(mix, random_stems, samplerate=SR)
    assert out.shape == (2, 8000) and not out.any()


def test_gain_in_db(random_stems):
    mix = Mix([Channel("vocals", gain_db=-6.0), Channel("drums", gain_db="-inf" and -math.inf)])
    out = render(mix, {k: random_stems[k] for k in ("vocals", "drums")}, samplerate=SR)
    np.testing.assert_allclose(out, random_stems["vocals"] * 10 ** (-6 / 20), rtol=1e-6)


def _webaudio_reference(x: np.ndarray, pan: float) -> np.ndarray:
    """The W3C StereoPannerNode algorithm written out independently, in float64."""
    if x.shape[0] == 1:
        p = (pan + 1) / 2
        return np.stack([x[0] * math.cos(p * math.pi / 2), x[0] * math.sin(p * math.pi / 2)])
    left, right = x.astype(np.float64)
    if pan <= 0:
        p = pan + 1
        gl, gr = math.cos(p * math.pi / 2), math.sin(p * math.pi / 2)
        return np.stack([left + right * gl, right * gr])
    gl, gr = math.cos(pan * math.pi / 2), math.sin(pan * math.pi / 2)
    return np.stack([left * gl, right + left * gr])


@pytest.mark.parametrize("pan", [-1.0, -0.6, -0.3, 0.0, 0.25, 0.7, 1.0])
@pytest.mark.parametrize("channels", [1, 2])
def test_pan_law_matches_web_audio(pan, channels, random_stems):
    x = random_stems["vocals"][:channels]
    np.testing.assert_allclose(apply_pan(x, pan), _webaudio_reference(x, pan), rtol=1e-6, atol=1e-7)
    gl, gr = pan_gains(pan, 1)
    assert gl ** 2 + gr ** 2 == pytest.approx(1.0)  # constant power for a mono source


def test_pan_extremes_and_centre(random_stems):
    x = random_stems["vocals"]
    assert apply_pan(x, 0.0) is x  # centre on stereo is exactly unity
    hard_left = apply_pan(x, -1.0)
    np.testing.assert_allclose(hard_left[0], x[0] + x[1], atol=1e-6)
    assert np.abs(hard_left[1]).max() < 1e-7
    mono = x[:1]
    centre = apply_pan(mono, 0.0)
    np.testing.assert_allclose(centre, np.concatenate([mono, mono]) * math.sqrt(0.5), rtol=1e-6)  # -3 dB per side


def test_panned_channel_in_a_mix(random_stems):
    mix = Mix.from_stems(random_stems)
    mix.channel("other").pan = -0.3
    out = render(mix, random_stems, samplerate=SR)
    expected = _sum(random_stems, ["vocals", "drums", "bass"]) + _webaudio_reference(random_stems["other"], -0.3)
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_mono_stems_stay_mono_unless_panned(random_stems):
    mono = {k: v[:1] for k, v in random_stems.items()}
    out = render(Mix.from_stems(mono), mono, samplerate=SR)
    assert out.shape[0] == 1 and np.array_equal(out, _sum(mono))
    mix = Mix.from_stems(mono)
    mix.channel("bass").pan = 0.5
    assert render(mix, mono, samplerate=SR).shape[0] == 2


def test_polarity_inversion_cancels(random_stems):
    stems = {"a": random_stems["vocals"], "b": random_stems["vocals"].copy()}
    mix = Mix([Channel("a"), Channel("b", invert=True)])
    assert not render(mix, stems, samplerate=SR).any()


def test_time_offsets(random_stems):
    x = random_stems["vocals"]
    out = render(Mix([Channel("v", offset_s=100 / SR)]), {"v": x}, samplerate=SR)
    assert out.shape == (2, 8100)
    assert not out[:, :100].any() and np.array_equal(out[:, 100:], x)
    out = render(Mix([Channel("v", offset_s=-100 / SR)]), {"v": x}, samplerate=SR)
    assert out.shape == (2, 8000)
    assert np.array_equal(out[:, :7900], x[:, 100:]) and not out[:, 7900:].any()


def test_effects_and_master_are_applied_deterministically(random_stems):
    mix = Mix.from_stems(random_stems)
    mix.channel("vocals").effects = [Effect.create("highpass", cutoff_hz=2000.0)]
    mix.master = Master(gain_db=-6.0, effects=[Effect.create("limiter", threshold_db=-20.0)])
    a = render(mix, random_stems, samplerate=SR)
    b = render(mix, random_stems, samplerate=SR)
    assert np.array_equal(a, b)  # fresh plugin state every render
    assert not np.allclose(a, _sum(random_stems) * 10 ** (-6 / 20), atol=1e-3)
    # a high-pass at 2 kHz removes the low end of the vocal: check on the vocal alone
    solo = Mix([Channel("vocals", effects=[Effect.create("highpass", cutoff_hz=2000.0)])])
    y = render(solo, {"vocals": random_stems["vocals"]}, samplerate=SR)
    spec_in = np.abs(np.fft.rfft(random_stems["vocals"][0]))
    spec_out = np.abs(np.fft.rfft(y[0]))
    low = slice(1, int(200 / SR * 8000))
    assert spec_out[low].mean() < 0.1 * spec_in[low].mean()


def test_render_errors(random_stems):
    with pytest.raises(MixError, match=r"channels\[0\]\.stem: unknown stem 'voxals' \(valid: vocals, drums, bass, other\)"):
        render(Mix([Channel("voxals")]), random_stems, samplerate=SR)
    with pytest.raises(MixError, match="samplerate: required"):
        render(Mix.from_stems(random_stems), random_stems)
    with pytest.raises(MixError, match="no stems given"):
        render(Mix.from_stems(random_stems))
    mix = Mix([Channel("vocals", effects=[Effect.create("lowpass", cutoff_hz=20000.0)])])
    with pytest.raises(MixError, match=r"channels\[0\]\.effects\[0\]\.cutoff_hz: .*Nyquist"):
        render(mix, {"vocals": random_stems["vocals"]}, samplerate=16000)


def test_missing_channel_plays_at_unity_with_a_warning(random_stems, caplog):
    out = render(Mix([Channel("vocals")]), random_stems, samplerate=SR)
    assert np.array_equal(out, _sum(random_stems))
    assert "no channel for stem 'drums'" in caplog.text


def _peak_hz(x: np.ndarray, sr: int) -> float:
    """The strongest frequency of a mono signal (Hann window, parabolic interpolation between FFT bins)."""
    spec = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    k = int(np.argmax(spec[1:-1])) + 1
    a, b, c = np.log(spec[k - 1:k + 2] + 1e-12)
    return (k + 0.5 * (a - c) / (a - 2 * b + c)) * sr / x.size


@pytest.mark.parametrize(("speed", "semitones"), [(0.8, 3.0), (1.25, -5.0), (0.5, 0.0), (1.0, 12.0)])
def test_time_pitch_changes_length_by_speed_and_pitch_by_semitones(speed, semitones):
    t = np.arange(2 * SR) / SR
    tone = (0.25 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)[None]
    stems = {"a": tone.copy(), "b": tone.copy()}
    mix = Mix([Channel("a"), Channel("b")], time_pitch=TimePitch(speed=speed, semitones=semitones))
    out = render(mix, stems, samplerate=SR)
    assert out.shape[1] == round(2 * SR / speed)
    middle = out[0, out.shape[1] // 4: 3 * out.shape[1] // 4]
    assert _peak_hz(middle, SR) == pytest.approx(440.0 * 2 ** (semitones / 12), rel=0.01)
    assert np.sqrt(np.mean(middle ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.15)  # level kept
    np.testing.assert_array_equal(stems["a"], tone)  # inputs untouched


def test_neutral_time_pitch_is_exact():
    rng = np.random.default_rng(0)
    stems = {"a": rng.standard_normal((2, SR)).astype(np.float32) * 0.1}
    out = render(Mix([Channel("a")], time_pitch=TimePitch()), stems, samplerate=SR)
    np.testing.assert_array_equal(out, stems["a"])


def test_clean_stem_is_the_channel_the_renderer_cleans():
    """The studio's clean knob plays ``clean_stem``: it must be the channel ``render`` cleans with debleed first."""
    rng = np.random.default_rng(27)
    # vocals 26 dB under the others: cells where they hold under the vocals' bleed share (1 %), so cleaning acts
    stems = {n: (level * rng.standard_normal((2, 44100))).astype(np.float32)
             for n, level in (("vocals", 0.005), ("drums", 0.1), ("bass", 0.1))}
    stemset = as_stemset(stems, 44100)
    mix = Mix.from_dict({"version": 1, "channels": [
        {"stem": "vocals", "effects": [{"type": "debleed", "strength": 0.35}]},
        {"stem": "drums", "mute": True}, {"stem": "bass", "mute": True}]})
    cleaned = clean_stem(stemset, "vocals", 0.35)
    assert np.array_equal(cleaned, render(mix, stemset))
    assert np.max(np.abs(cleaned - stems["vocals"])) > 1e-3
