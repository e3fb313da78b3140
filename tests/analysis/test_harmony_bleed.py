"""Key and chords of a generated song whose stems carry a separator's bleed (tests/mixer/songs.py)."""
from __future__ import annotations

import numpy as np

from stemwright.analysis import analyze
from tests.mixer.songs import make_song

SR = 22050


def _agreement(a, b, seconds: float) -> float:
    """Share of ``seconds`` (sampled every 50 ms) where two chord lists give the same label."""
    def at(chords, t):
        return next((c.label for c in chords if c.start <= t < c.end), "N")
    times = np.arange(0.0, seconds, 0.05)
    return float(np.mean([at(a, t) == at(b, t) for t in times]))


def test_drum_bleed_and_instruments_in_the_vocals_keep_key_and_chords(tmp_path):
    stems = make_song(tmp_path / "clean", 110.0, 9, "minor", seconds=12.0, sr=SR)
    clean = analyze(stems, SR)
    rng = np.random.default_rng(1)
    noise = rng.standard_normal(stems["other"].shape[1]).astype(np.float32)
    other_rms = float(np.sqrt(np.mean(stems["other"] ** 2)))
    bled = {
        "drums": stems["drums"],
        "bass": stems["bass"] + 0.3 * stems["drums"],  # the kick and snare under the bass
        # drum hits and broadband hiss at about the instruments' level (separator bleed) ...
        "other": 0.6 * stems["other"] + 0.5 * stems["drums"] + 0.5 * other_rms * noise[None],
        # ... and part of the instruments in the vocals stem
        "vocals": stems["vocals"] + 0.4 * stems["other"],
    }
    before = {k: v.copy() for k, v in bled.items()}
    a = analyze(bled, SR)
    assert all(np.array_equal(before[k], bled[k]) for k in bled)  # the caller's arrays are untouched
    assert clean.key == "A minor" and a.key == "A minor"
    assert _agreement(clean.chords, a.chords, 12.0) >= 0.8
