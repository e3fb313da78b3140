"""MDX SDR, SI-SDR, NSDR/GNSDR and museval-style aggregation, against hand-computed values."""
from __future__ import annotations

import math

import numpy as np
import pytest

from stemwright.metrics import (
    frames_median,
    length_weighted_mean,
    mdx_sdr,
    mdx_set_score,
    mdx_song_score,
    nsdr,
    si_sdr,
    track_json,
    tracks_aggregate,
)


def test_mdx_sdr_hand_computed():
    ref = np.array([[1.0, 2.0], [3.0, 4.0]])  # Σs² = 30
    est = np.array([[1.0, 2.0], [3.0, 3.0]])  # Σ(s-ŝ)² = 1
    assert mdx_sdr(ref, est) == pytest.approx(10 * math.log10((30 + 1e-7) / (1 + 1e-7)), abs=1e-12)
    assert mdx_sdr(ref, est) == pytest.approx(14.771212547, abs=1e-6)
    # ε keeps silence finite: silent reference and silent estimate -> 0 dB; perfect estimate -> 10 log10(Σs²/ε)
    assert mdx_sdr(np.zeros((2, 4)), np.zeros((2, 4))) == 0.0
    assert mdx_sdr(ref, ref) == pytest.approx(10 * math.log10(30 / 1e-7 + 1), abs=1e-9)


def test_mdx_song_and_set_scores():
    refs = {"a": np.ones((1, 4)), "b": np.ones((1, 4))}
    ests = {"a": np.ones((1, 4)) * 0.5, "b": np.zeros((1, 4))}  # a: 4/1 -> 6.0206 dB, b: 4/4 -> 0 dB
    song = mdx_song_score(refs, ests)
    assert song["a"] == pytest.approx(10 * math.log10(4), abs=1e-6)
    assert song["b"] == pytest.approx(0.0, abs=1e-6)
    assert song["song"] == pytest.approx((song["a"] + song["b"]) / 2)
    assert mdx_set_score([1.0, 2.0, 6.0]) == 3.0
    with pytest.raises(ValueError, match="lack stem"):
        mdx_song_score(refs, {"a": ests["a"]})


def test_si_sdr_scale_invariant_and_hand_value():
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((2, 1000))
    noise = rng.standard_normal((2, 1000))
    est = ref + 0.1 * noise
    base = si_sdr(ref, est)
    for scale in (0.01, 0.5, 3.0, 1000.0):
        assert si_sdr(ref, scale * est) == pytest.approx(base, abs=1e-9)
    assert si_sdr(ref, est) != pytest.approx(si_sdr(ref, est + 0.1 * noise))
    # hand value without mean removal: ŝ = 2 s + n, n ⟂ s -> α = 2, SI-SDR = 10 log10(4 |s|² / |n|²)
    s = np.array([1.0, 0.0, 1.0, 0.0])
    n = np.array([0.0, 1.0, 0.0, -1.0])
    assert si_sdr(s, 2 * s + n, zero_mean=False) == pytest.approx(10 * math.log10(8 / 2), abs=1e-9)
    # MDX SDR is not scale invariant
    assert mdx_sdr(ref, 0.5 * est) != pytest.approx(mdx_sdr(ref, est))


def test_nsdr_of_mixture_is_zero_and_gnsdr_length_weighted():
    rng = np.random.default_rng(1)
    voice, acc = rng.standard_normal((2, 4000))
    refs = np.stack([voice, acc])
    mix = voice + acc
    res = nsdr(refs, np.stack([mix, mix]), mix)
    np.testing.assert_allclose(res["NSDR"], 0.0, atol=1e-9)
    better = nsdr(refs, np.stack([voice + 0.2 * acc, acc + 0.2 * voice]), mix)
    assert (better["NSDR"] > 5).all()
    assert length_weighted_mean([1.0, 4.0], [100, 300]) == pytest.approx((100 + 1200) / 400)
    assert length_weighted_mean([1.0, float("nan")], [100, 300]) == 1.0


def test_track_json_layout_and_median_of_medians():
    from stemwright.metrics import BssEvalScores

    def sc(v):
        a = np.array([v], dtype=float)
        return BssEvalScores(a, a, a, a, window=100, hop=100, time=np.arange(a.shape[1]) * 100)

    t1 = track_json({"vocals": sc([1.0, 2.0, np.nan, 9.0]), "bass": sc([np.inf, 1.234567891, 3.0, 5.0])}, 100)
    assert t1["targets"][0]["name"] == "vocals"
    frame = t1["targets"][1]["frames"][0]
    assert frame["time"] == 0.0 and frame["duration"] == 1.0 and set(frame["metrics"]) == {"SDR", "SIR", "ISR", "SAR"}
    assert math.isnan(frame["metrics"]["SDR"])  # inf stored as NaN, as museval
    assert t1["targets"][1]["frames"][1]["metrics"]["SDR"] == 1.23457  # 5-decimal quantisation
    m1 = frames_median(t1)
    assert m1["vocals"]["SDR"] == 2.0 and m1["bass"]["SDR"] == 3.0  # NaN frames skipped
    t2 = track_json({"vocals": sc([4.0]), "bass": sc([1.0])}, 100)
    t3 = track_json({"vocals": sc([10.0]), "bass": sc([2.0])}, 100)
    agg = tracks_aggregate([m1, frames_median(t2), frames_median(t3)])
    assert agg["vocals"]["SDR"]["median"] == 4.0
    assert agg["vocals"]["SDR"]["mean"] == pytest.approx(16 / 3)
    assert agg["bass"]["SDR"]["median"] == 2.0 and agg["bass"]["SDR"]["n"] == 3
