"""Song analysis on generated songs of known tempo, meter, key and bar lines (tests/mixer/songs.py)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from stemwright.analysis import SongAnalysis, analyze, analyze_path
from stemwright.analysis.song import AnalysisError, estimate_key_profile, meter_scores
from stemwright.cli.main import main
from stemwright.mixer.analysis import KK_MINOR
from tests.mixer.songs import make_song

SR = 22050


@pytest.fixture(scope="module")
def song_4_4(tmp_path_factory):
    folder = tmp_path_factory.mktemp("song44")
    # A lead-in that is not a whole number of beats: the grid must not simply start at 0.
    return folder, make_song(folder, 110.0, 9, "minor", seconds=12.0, sr=SR, lead_in=0.3)


@pytest.fixture(scope="module")
def song_3_4(tmp_path_factory):
    folder = tmp_path_factory.mktemp("song34")
    return folder, make_song(folder, 120.0, 2, "major", seconds=12.0, sr=SR, beats_per_bar=3)


def _near(times, t, tol=0.05):
    return np.min(np.abs(np.asarray(times) - t)) < tol


def test_4_4_song(song_4_4):
    folder, _ = song_4_4
    a = analyze_path(folder)
    assert a.tempo_bpm == pytest.approx(110.0, rel=0.01)
    assert a.beats_per_bar == 4 and a.time_signature == "4/4"
    assert a.key == "A minor"
    bar = 4 * 60 / 110
    # every true bar line inside the song is a downbeat, and no downbeat is off the true bar lines
    for k in range(1, int((12.0 - 0.3) / bar)):
        assert _near(a.downbeats, 0.3 + k * bar), k
    assert all(_near(0.3 + bar * np.arange(12), t) for t in a.downbeats)
    assert set(a.rhythm_stems) == {"drums", "bass"} and set(a.harmonic_stems) == {"bass", "other"}
    for c in (a.tempo_confidence, a.meter_confidence, a.downbeat_confidence, a.key_confidence):
        assert 0.0 <= c <= 1.0
    assert a.tempo_confidence > 0.8
    assert a.bar_at(0.3 + 2.5 * bar) == 3


def test_3_4_song(song_3_4):
    folder, stems = song_3_4
    a = analyze(stems, SR)
    assert a.beats_per_bar == 3
    assert a.tempo_bpm == pytest.approx(120.0, rel=0.01)
    assert a.key == "D major"
    bar = 3 * 0.5
    assert all(_near(bar * np.arange(10), t) for t in a.downbeats)


def test_round_trip_and_validation(song_4_4):
    a = analyze_path(song_4_4[0])
    assert SongAnalysis.from_dict(json.loads(json.dumps(a.to_dict()))) == a
    with pytest.raises(ValueError, match="beats_per_bar"):
        SongAnalysis.from_dict({**a.to_dict(), "beats_per_bar": 5})


def test_silent_and_short_input_are_clear_errors():
    with pytest.raises(AnalysisError, match="silent"):
        analyze({"drums": np.zeros((2, SR * 3), np.float32)}, SR)
    with pytest.raises(AnalysisError, match="too short"):
        analyze({"drums": np.ones((2, SR), np.float32)}, SR)


def test_meter_scores_prefer_the_true_bar_length():
    accent = np.tile([3.0, 0.0, 0.0], 12)  # an accent every 3 beats, starting on beat 2
    scores = meter_scores(np.roll(accent, 1), np.zeros_like(accent))
    assert max(scores, key=scores.get) == (3, 1)


def test_key_profile_of_a_pure_profile():
    tonic, mode, conf = estimate_key_profile(np.roll(KK_MINOR, 4))
    assert (tonic, mode) == (4, "minor") and conf > 0.5


def test_cli(song_4_4, capsys, tmp_path):
    folder, _ = song_4_4
    assert main(["analyze", str(folder), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["time_signature"] == "4/4" and out["key"] == "A minor" and len(out["downbeats"]) >= 4
    assert main(["analyze", str(folder)]) == 0
    assert "110." in capsys.readouterr().out
    assert main(["analyze", str(tmp_path / "missing")]) == 1
    assert "missing: not found" in capsys.readouterr().err
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio")
    assert main(["analyze", str(bad)]) == 1
    assert "bad.wav" in capsys.readouterr().err
