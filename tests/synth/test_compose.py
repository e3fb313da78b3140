"""Composition, drum sampler and production units of the synthesiser (fast, no FluidSynth)."""

from __future__ import annotations

import numpy as np
import pytest

from stemwright.synth import parts, production, sampler
from stemwright.synth.compose import STYLE_TRAITS, STYLES, plan_song
from stemwright.synth.resources import find_resources
from stemwright.synth.theory import scale_pitch_classes


@pytest.mark.parametrize("style", STYLES)
def test_plan_is_musical_and_covers_the_song(style: str) -> None:
    for seed in range(4):
        plan = plan_song(seed, 40.0, style)
        lo, hi = STYLE_TRAITS[style]["tempo"]
        assert lo <= plan.tempo <= hi and plan.mode in STYLE_TRAITS[style]["modes"]
        assert plan.to_seconds(plan.total_beats) >= 40.0
        for a, b in zip(plan.sections, plan.sections[1:]):
            assert a.end == b.start
        beats = 0.0
        scale = set(scale_pitch_classes(plan.key, plan.mode))
        for chord in plan.chords:  # contiguous, diatonic
            assert chord.start == pytest.approx(beats)
            beats = chord.end
            assert chord.root in scale
            assert set(chord.pitch_classes[:3]) <= scale or chord.intervals in ((0, 5, 7), (0, 2, 7))
        assert beats == pytest.approx(plan.total_beats)


def test_same_seed_same_plan_and_parts() -> None:
    a, b = plan_song(9, 30.0), plan_song(9, 30.0)
    assert a.to_json() == b.to_json()
    na, _ = parts.bass_part(a, np.random.default_rng(1), None)
    nb, _ = parts.bass_part(b, np.random.default_rng(1), None)
    assert na == nb and na


@pytest.mark.parametrize("style", STYLES)
def test_bass_follows_the_harmony(style: str) -> None:
    plan = plan_song(3, 30.0, style)
    notes, info = parts.bass_part(plan, np.random.default_rng(0), None)
    assert notes and all(24 <= n.pitch <= 64 for n in notes)
    for n in notes:  # the note on each chord's downbeat is the chord root
        chord = (
            next(c for c in plan.chords if abs(c.start - n.start) < 1e-9)
            if any(abs(c.start - n.start) < 1e-9 for c in plan.chords)
            else None
        )
        if chord is not None:
            assert n.pitch % 12 == chord.root, (info, chord.name, n)


def test_drums_have_backbeat_and_humanise_moves_notes() -> None:
    plan = plan_song(2, 30.0, "rock")
    notes, _ = parts.drum_part(plan, np.random.default_rng(0))
    pitches = {n.pitch for n in notes}
    assert 36 in pitches and (38 in pitches or 39 in pitches or 37 in pitches)
    timed = parts.humanise(notes, plan, np.random.default_rng(0), 8.0, 6.0)
    shifts = [t.start - plan.to_seconds(n.start) for n, t in zip(notes, timed) if n.start > 0]
    assert 0.002 < np.std(shifts) < 0.02  # ~8 ms timing jitter


def test_every_usable_kit_maps_kick_snare_and_renders() -> None:
    kits = sampler.usable_kits(find_resources().drumkits)
    assert len(kits) >= 8
    names = {k.folder.name for k in kits}
    assert "Gimme A Hand 1.0" not in names  # percussion-only kit is not a drum kit
    kit = next(k for k in kits if k.folder.name == "The Black Pearl 1.0")
    hits = [(0.0, 36, 110), (0.25, 38, 40), (0.25, 38, 127), (0.5, 46, 100), (0.6, 42, 90)]
    audio, used = sampler.render_drums(kit, hits, 44100, 44100, np.random.default_rng(0))
    assert audio.shape == (2, 44100) and np.abs(audio).max() > 0.05
    assert used[36] == "Pearl Kick" and 46 in used
    assert sampler.gm_note_for("Hi-Hat Open (Paiste)") == 46 and sampler.gm_note_for("Floor Tom") == 43


def test_pan_law_centre_is_unity_and_hard_left() -> None:
    x = np.random.default_rng(0).standard_normal((2, 100)).astype(np.float32)
    assert np.array_equal(production.pan_stereo(x, 0.0)[0], x[0] + x[1] * np.float32(np.cos(np.pi / 2)))
    np.testing.assert_allclose(production.pan_stereo(x, 0.0), x, atol=1e-6)
    left = production.pan_stereo(x, -1.0)
    np.testing.assert_allclose(left[0], x[0] + x[1], atol=1e-6)
    np.testing.assert_allclose(left[1], 0.0, atol=1e-6)


def test_effect_chains_are_valid_pedalboard_chains() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 44100)).astype(np.float32) * 0.1
    for stem in ("drums", "bass", "other", "vocals"):
        for _ in range(5):
            fx = production.stem_effects(stem, rng, "rock")
            y = production.apply_effects(x, fx, 44100)
            assert y.shape == x.shape and np.isfinite(y).all()
    with pytest.raises(ValueError, match="flanger"):
        production.build_board([{"type": "flanger"}])
