"""The Hydrogen-kit drum sampler: one-shots of one stroke only, so that the song's hit list is what the drums play."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from stemwright.synth import sampler
from stemwright.synth.resources import DEFAULT_DRUMKIT_DIRS

SR = 44100


def _burst(n: int, at: int, gain: float, decay_s: float, rng: np.random.Generator) -> np.ndarray:
    """A struck-noise stroke starting at sample ``at``: shape (2, n)."""
    out = np.zeros((2, n), dtype=np.float32)
    t = np.arange(n - at) / SR
    out[:, at:] = gain * rng.standard_normal((2, n - at)).astype(np.float32) * np.exp(-t / decay_s)
    return out


def test_a_sample_with_a_second_stroke_is_told_from_a_ringing_one() -> None:
    rng = np.random.default_rng(0)
    n = SR // 2
    single = _burst(n, 0, 1.0, 0.01, rng)
    assert not sampler.has_second_stroke(single, SR)
    double = single + _burst(n, int(0.04 * SR), 0.8, 0.01, rng)  # 40 ms later, 2 dB under: rumpf's ride bell
    assert sampler.has_second_stroke(double, SR)
    quiet = single + _burst(n, int(0.04 * SR), 0.1, 0.01, rng)  # a -20 dB bounce is not a stroke of its own
    assert not sampler.has_second_stroke(quiet, SR)
    t = np.arange(n) / SR
    kick = np.tile(np.sin(2 * np.pi * 50 * t) * np.exp(-t / 0.15), (2, 1)).astype(np.float32)  # dips each half-cycle
    assert not sampler.has_second_stroke(kick, SR)
    cymbal = _burst(n, 0, 1.0, 0.4, rng)
    assert not sampler.has_second_stroke(cymbal, SR)


def test_a_kits_two_stroke_ride_bell_is_never_played_for_one_hit() -> None:
    folder = Path(DEFAULT_DRUMKIT_DIRS[0]) / "rumpf_kit_z01_h2"
    assert (folder / "drumkit.xml").is_file(), f"{folder}: hydrogen-drumkits is not installed (scripts/setup.sh)"
    kit = sampler.load_kit(folder)
    assert [i.name for i in kit.notes[53]] == ["f4 - ride bell"]  # the kit's only ride sample: two strokes
    assert sampler.playable(kit, 53) == ()
    assert [i.name for i in sampler.playable(kit, 36)] == [i.name for i in kit.notes[36]]  # its kicks all stay
    played: list[dict] = []
    hits = [(0.5 * k, 51, 100) for k in range(4)]  # ride hits: the kit has no plain ride, its fallback was the bell
    audio, used = sampler.render_drums(kit, hits, 3 * SR, SR, np.random.default_rng(0), played=played)
    assert used[51] != "f4 - ride bell" and len(played) == 4
    env = np.abs(audio).max(axis=0)
    for hit in played:  # each played sample has a single stroke: nothing as loud 30-60 ms after its attack
        at = int(hit["attack_s"] * SR)
        assert env[at + int(0.03 * SR):at + int(0.06 * SR)].max() < 0.5 * env[at:at + int(0.01 * SR)].max()
