"""debleed (issue 27, "Clean a stem"): the Wiener re-mask against the other stems lowers bleed without harming the
stem, is neutral at strength 0, is refused on the master and without the other stems, and works through render()."""
from __future__ import annotations

import numpy as np
import pytest

from stemwright.metrics.sdr import mdx_sdr
from stemwright.mixer.debleed import debleed
from stemwright.mixer.document import Mix
from stemwright.mixer.effects import Effect, MixError, apply_chain, parse_chain
from stemwright.mixer.render import render

SR = 22050


def _tones_and_hits(seconds: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """A harmonic 'voice' (220 Hz with overtones, phrases with gaps) and noise-burst 'drums', both ``(2, T)``."""
    rng = np.random.default_rng(7)
    t = np.arange(int(seconds * SR)) / SR
    voice = sum(np.sin(2 * np.pi * 220 * k * t) / k for k in range(1, 6)) * 0.1
    voice *= (np.sin(2 * np.pi * 1.5 * t) > -0.3)  # phrases and gaps
    drums = np.zeros_like(t)
    for start in range(0, len(t), SR // 4):
        n = min(SR // 10, len(t) - start)
        drums[start:start + n] += rng.standard_normal(n) * np.exp(-np.arange(n) / (0.02 * SR)) * 0.5
    return np.stack([voice, voice]).astype(np.float32), np.stack([drums, drums * 0.9]).astype(np.float32)


def test_debleed_lowers_the_bleed_and_raises_sdr():
    voice, drums = _tones_and_hits()
    separated_voice = voice + 0.15 * drums  # a separator's vocal stem with drum bleed
    separated_drums = drums * 0.85 + 0.05 * voice
    before = voice.copy(), separated_voice.copy()
    cleaned = debleed(separated_voice, separated_drums, SR, strength=0.5)
    assert cleaned.shape == voice.shape and cleaned.dtype == np.float32
    bleed_before = np.sum((separated_voice - voice) ** 2)
    bleed_after = np.sum((cleaned - voice) ** 2)
    # The default re-mask only turns down cells the stem holds under 5 % of (docs/remix.md, "Clean a stem").
    assert bleed_after < 0.75 * bleed_before
    assert mdx_sdr(voice, cleaned) > mdx_sdr(voice, separated_voice) + 1.5
    stronger = debleed(separated_voice, separated_drums, SR, strength=1.0)
    assert np.sum((stronger - voice) ** 2) < 0.5 * bleed_before  # strength is monotonic here
    assert mdx_sdr(voice, stronger) > mdx_sdr(voice, separated_voice) + 3.0
    assert np.array_equal(before[0], voice) and np.array_equal(before[1], separated_voice)  # inputs untouched


def test_strength_zero_and_frequency_range_leave_the_stem_alone():
    voice, drums = _tones_and_hits(1.0)
    x = voice + 0.2 * drums
    assert np.array_equal(debleed(x, drums, SR, strength=0.0), x)
    # Only the bins between low_hz and high_hz change: a range above the content leaves the stem as it was.
    above = debleed(x, drums, SR, strength=1.0, low_hz=12000, high_hz=20000)  # Nyquist is 11025 Hz
    assert np.allclose(above, x, atol=1e-5)
    top = debleed(x, drums, SR, strength=1.0, low_hz=10000, high_hz=20000)
    spec_top, spec_x = np.fft.rfft(top[0]), np.fft.rfft(x[0])
    low = np.fft.rfftfreq(x.shape[1], 1 / SR) < 9000
    assert np.sum(np.abs(spec_top[low] - spec_x[low]) ** 2) < 1e-3 * np.sum(np.abs(spec_x[low]) ** 2)
    assert np.sum(np.abs(spec_top[~low] - spec_x[~low]) ** 2) > 0.01 * np.sum(np.abs(spec_x[~low]) ** 2)
    assert not np.allclose(debleed(x, drums, SR, strength=1.0, low_hz=0, high_hz=11000), x, atol=1e-3)


def test_debleed_through_render_against_the_other_stems():
    voice, drums = _tones_and_hits(1.0)
    stems = {"vocals": voice + 0.15 * drums, "drums": drums}
    mix = Mix.from_stems(stems)
    mix.channel("vocals").effects = parse_chain("debleed(0.7)")
    mix.channel("drums").mute = True  # a muted stem still tells what bleeds
    out = render(mix, stems, samplerate=SR)
    expected = debleed(stems["vocals"], drums, SR, strength=0.7, stem="vocals")  # the vocals' own tuning
    assert np.allclose(out, expected, atol=1e-6)
    assert mdx_sdr(voice, out) > mdx_sdr(voice, stems["vocals"])


def test_debleed_needs_a_channel():
    voice, drums = _tones_and_hits(0.5)
    with pytest.raises(MixError, match="other stems"):
        apply_chain(voice, [Effect.create("debleed")], SR)
    with pytest.raises(MixError, match=r"master\.effects\[0\]\.type: debleed"):
        Mix.from_dict({"version": 1, "channels": [], "master": {"effects": [{"type": "debleed", "strength": 0.5}]}})
    with pytest.raises(MixError, match="strength"):
        parse_chain("debleed(1.5)")


def test_chain_mixes_pedalboard_and_debleed_in_order():
    voice, drums = _tones_and_hits(0.5)
    chain = parse_chain("highpass(100),debleed(0.5),lowpass(5000)")
    out = apply_chain(voice + 0.1 * drums, chain, SR, others=drums)
    step = apply_chain(voice + 0.1 * drums, chain[:1], SR)
    step = debleed(step, drums, SR, strength=0.5)
    step = apply_chain(step, chain[2:], SR)
    assert np.allclose(out, step, atol=1e-6)


def test_cells_the_stem_holds_a_tenth_of_are_kept():
    # A cell where the stem holds 10 % of the power is often its own sound under a loud mix (pads, reverb tails in the
    # `other` stem): the default re-mask leaves it; only cells the stem holds under 5 % of are turned down.
    import torch

    from stemwright.mixer.debleed import debleed_gain

    stem = torch.ones(4, 3, dtype=torch.float64)
    others = torch.tensor([9.0, 19.0, 39.0, 99.0], dtype=torch.float64)[:, None].expand(4, 3)  # shares .1 .05 .025 .01
    gain = debleed_gain(stem, others, torch.full((4,), 1000.0, dtype=torch.float64), strength=0.5, low_hz=20,
                        high_hz=20000, gate_db=-60)
    assert torch.allclose(gain[:2], torch.ones(2, 3, dtype=torch.float64))
    assert torch.allclose(gain[2], torch.full((3,), 0.75, dtype=torch.float64))  # half the share: half the cut
    assert torch.all(gain[3] < gain[2]) and torch.all(gain >= 0.5)


def test_each_stem_gets_its_own_tuning(monkeypatch):
    """The renderer (and the studio's clean_stem) hand debleed the channel's stem name, which picks the stem's
    Tuning (docs/remix.md, "Clean a stem": per-stem defaults); a name without one gets the default."""
    import stemwright.mixer.debleed as debleed_module
    from stemwright.mixer.debleed import DEFAULT_TUNING, Tuning, tuning_for
    from stemwright.mixer.render import clean_stem
    from stemwright.mixer.stems import as_stemset

    voice, drums = _tones_and_hits(1.0)
    stems = {"vocals": voice + 0.15 * drums, "drums": drums}
    gentle = Tuning(share=0.01, gate_depth_db=0.0, low_hz=1000.0)
    monkeypatch.setitem(debleed_module.STEM_TUNING, "vocals", gentle)
    assert tuning_for("vocals") == gentle and tuning_for("guitar") == tuning_for(None) == DEFAULT_TUNING
    mix = Mix.from_stems(stems)
    mix.channel("vocals").effects = parse_chain("debleed(0.7)")
    out = render(mix, stems, samplerate=SR) - drums
    want = debleed(stems["vocals"], drums, SR, strength=0.7, tuning=gentle)
    assert np.allclose(out, want, atol=1e-6)
    assert not np.allclose(want, debleed(stems["vocals"], drums, SR, strength=0.7), atol=1e-4)
    assert np.allclose(clean_stem(as_stemset(stems, SR), "vocals", 0.7), want, atol=1e-6)
