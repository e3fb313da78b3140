"""Mashup on two generated songs of known tempo and key (see songs.py)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stemwright.mixer.analysis import Key, estimate_key, estimate_rhythm, fold_tempo_ratio, parse_key, semitones_to_match
from stemwright.mixer.effects import MixError
from stemwright.mixer.mashup import mashup, transform_vocal
from stemwright.mixer.stems import load_stems

from .songs import make_song

A_TEMPO, A_KEY = 100.0, Key(2, "major")  # D major
B_TEMPO, B_KEY = 120.0, Key(7, "major")  # G major


@pytest.fixture(scope="module")
def songs(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("songs")
    make_song(root / "a", A_TEMPO, A_KEY.tonic, A_KEY.mode, seed=1, lead_in=0.3)
    make_song(root / "b", B_TEMPO, B_KEY.tonic, B_KEY.mode, seed=2, lead_in=0.1)
    return root / "a", root / "b"


@pytest.fixture(scope="module")
def result(songs):
    return mashup(*songs)


def test_estimates_match_the_generated_songs(result):
    plan = result.plan
    assert plan.vocals_tempo == pytest.approx(A_TEMPO, abs=1.0)
    assert plan.backing_tempo == pytest.approx(B_TEMPO, abs=1.0)
    assert (plan.vocals_key.tonic, plan.vocals_key.mode) == (A_KEY.tonic, A_KEY.mode)
    assert (plan.backing_key.tonic, plan.backing_key.mode) == (B_KEY.tonic, B_KEY.mode)
    assert plan.stretch == pytest.approx(B_TEMPO / A_TEMPO, rel=0.01)
    assert plan.semitones == 5  # D -> G: +5 is nearer than -7
    assert plan.vocals_downbeat == pytest.approx(0.3, abs=0.03)
    assert plan.backing_downbeat == pytest.approx(0.1, abs=0.03)


def test_vocal_lands_on_the_backing_tempo(result):
    rhythm = estimate_rhythm(result.vocals, result.samplerate)
    assert rhythm.tempo == pytest.approx(B_TEMPO, abs=1.0)


def test_transformed_song_lands_on_the_backing_key(songs, result):
    a = load_stems(songs[0])
    full = sum(a.audio.values())  # the vocal alone is a melody; its song is what carries the key unambiguously
    moved = transform_vocal(full, a.samplerate, result.plan)
    key = estimate_key(moved, a.samplerate)
    assert (key.tonic, key.mode) == (B_KEY.tonic, B_KEY.mode)
    assert estimate_rhythm(moved, a.samplerate).tempo == pytest.approx(B_TEMPO, abs=1.0)


def test_first_downbeats_are_aligned(result):
    plan = result.plan
    vocal_downbeat = plan.offset_s + plan.vocals_downbeat / plan.stretch
    bar = 4 * 60.0 / plan.backing_tempo
    phase = (vocal_downbeat - plan.backing_downbeat) / bar
    assert abs(phase - round(phase)) * bar < 0.03  # on a downbeat of B, within 30 ms
    # the first note of the vocal really starts there
    env = np.abs(result.vocals).max(axis=0)
    onset = np.argmax(env > 0.05 * env.max()) / result.samplerate
    assert onset == pytest.approx(vocal_downbeat, abs=0.03)


def test_output_is_backing_length_and_contains_both(songs, result):
    b = load_stems(songs[1])
    assert result.audio.shape == (2, b.length) and result.samplerate == b.samplerate
    backing = b["drums"] + b["bass"] + b["other"]
    np.testing.assert_allclose(result.audio, backing + result.vocals, atol=1e-5)


def test_overrides(songs):
    r = mashup(*songs, semitones=-2, offset_s=0.5, backing_tempo=60.0)
    assert r.plan.semitones == -2 and r.plan.offset_s == 0.5
    assert r.plan.stretch == pytest.approx(1.2, rel=0.01)  # 60 vs 100 BPM: folded to double time
    assert "offset +0.5 s" in r.plan.overrides
    r = mashup(*songs, vocals_key=parse_key("Dm"), backing_key=parse_key("G"), stretch=False, offset_s=0.0)
    assert r.plan.stretch == 1.0 and r.plan.semitones == semitones_to_match(Key(2, "minor"), Key(7, "major"))


def test_analysis_helpers():
    assert str(parse_key("F#m")) == "F# minor" and str(parse_key("Bb major")) == "A# major"
    with pytest.raises(MixError, match="cannot parse"):
        parse_key("H")
    assert semitones_to_match(Key(9, "minor"), Key(0, "major")) == 0  # A minor over C major: relative keys
    assert semitones_to_match(Key(0, "major"), Key(6, "major")) == -6  # a tritone: down rather than up
    assert semitones_to_match(Key(0, "major"), Key(5, "major")) == 5
    assert fold_tempo_ratio(0.4) == pytest.approx(0.8) and fold_tempo_ratio(3.0) == pytest.approx(0.75)


def test_missing_vocal_stem(songs, tmp_path):
    with pytest.raises(MixError, match="no 'lead' stem"):
        mashup(*songs, vocal_stem="lead")


def test_a_song_mashed_with_itself_stays_in_place(songs):
    """Issue 17 defect 9: the vocal landed one bar late when A's downbeat estimate came out a hair after B's."""
    from stemwright.mixer.mashup import plan_mashup

    a = load_stems(songs[0])
    plan = plan_mashup(a, a)
    assert abs(plan.offset_s) < 0.02, plan.describe()


def test_offset_beyond_the_backing_is_refused(songs):
    """Issue 17 defect 9: --offset past the end of the song silently dropped the vocal."""
    with pytest.raises(MixError, match="entirely outside the backing"):
        mashup(*songs, offset_s=3600.0, vocals_tempo=A_TEMPO, backing_tempo=B_TEMPO, semitones=0)
    with pytest.raises(MixError, match="entirely outside the backing"):
        mashup(*songs, offset_s=-3600.0, vocals_tempo=A_TEMPO, backing_tempo=B_TEMPO, semitones=0)
