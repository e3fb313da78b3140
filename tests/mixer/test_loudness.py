"""Loudness: true peak measurement, limiter, normalisation to -14 LUFS with true peak <= -1 dBTP."""
from __future__ import annotations

import math

import numpy as np
import pytest

from stemwright.mixer.document import Mix
from stemwright.mixer.effects import MixError
from stemwright.mixer.loudness import integrated_lufs, normalize_loudness, true_peak_db, true_peak_limit
from stemwright.mixer.render import render

SR = 44100


def test_true_peak_sees_intersample_peaks():
    # a sine at fs/4 sampled 45 degrees off its crests: every sample is at 0.707, the waveform reaches 1.0
    n = np.arange(SR)
    x = np.sin(2 * np.pi * n / 4 + np.pi / 4)[None].astype(np.float32)
    assert 20 * math.log10(np.abs(x).max()) == pytest.approx(-3.01, abs=0.01)
    assert true_peak_db(x) == pytest.approx(0.0, abs=0.2)


def test_limiter_holds_the_ceiling():
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((2, SR * 2)) * 0.5).astype(np.float32)
    y, reduction = true_peak_limit(x, SR, -1.0)
    assert true_peak_db(y) <= -1.0 and reduction > 0
    quiet = x * 0.01
    same, r0 = true_peak_limit(quiet, SR, -1.0)
    assert r0 == 0.0 and np.array_equal(same, quiet)


@pytest.mark.parametrize("boost_db", [-20.0, 0.0, 12.0])
def test_normalise_real_mix_to_minus_14(separated, boost_db):
    mix = Mix.from_stems(separated)
    mix.master.gain_db = boost_db  # quiet, as is, and hot (forces the limiter)
    out, info = render(mix, loudness_lufs=-14.0, return_info=True)
    lufs = integrated_lufs(out, separated.samplerate)
    assert lufs == pytest.approx(-14.0, abs=0.5)
    assert true_peak_db(out) <= -1.0
    assert info["loudness"]["output_lufs"] == pytest.approx(lufs, abs=1e-3)


def test_loudness_target_in_the_document(separated):
    mix = Mix.from_stems(separated)
    mix.loudness_lufs = -20.0
    assert integrated_lufs(render(mix), separated.samplerate) == pytest.approx(-20.0, abs=0.5)


def test_loudness_errors():
    with pytest.raises(MixError, match="silent"):
        normalize_loudness(np.zeros((2, SR), np.float32), SR, -14)
    with pytest.raises(MixError, match=r"target must be in \[-70, 0\]"):
        normalize_loudness(np.ones((2, SR), np.float32), SR, 5)
    with pytest.raises(MixError, match="needs >= 0.4 s"):
        integrated_lufs(np.ones((2, 100), np.float32), SR)
