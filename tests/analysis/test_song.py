"""Song analysis on generated songs of known tempo, meter, key and bar lines (tests/mixer/songs.py)."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

from stemwright.analysis import SongAnalysis, analyze, analyze_path
from stemwright.analysis.song import MAX_WANDER, WANDER_CAP, AnalysisError, _wander, meter_scores, tempo_confidence
from stemwright.cli.main import main
from tests.analysis.grooves import dance_groove, funk_groove, groove
from tests.mixer.songs import make_song
from tests.reference import require

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


def test_cli(song_4_4, capsys, tmp_path):
    folder, _ = song_4_4
    assert main(["analyze", str(folder), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["time_signature"] == "4/4" and out["key"] == "A minor" and len(out["downbeats"]) >= 4
    # chords over the grid: i-iv-V-i of A minor (the V major: harmonic minor), one per bar
    assert {c["name"] for c in out["chords"]} >= {"Am", "Dm", "E"}
    assert out["key_alternatives"][0]["key"] == "A minor" and len(out["key_alternatives"]) == 4
    assert main(["analyze", str(folder)]) == 0
    assert "110." in capsys.readouterr().out
    assert main(["analyze", str(tmp_path / "missing")]) == 1
    assert "missing: not found" in capsys.readouterr().err
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio")
    assert main(["analyze", str(bad)]) == 1
    assert "bad.wav" in capsys.readouterr().err


def _concat(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([a[k], b[k]], axis=1) for k in a}


@pytest.fixture(scope="module")
def tempo_change(tmp_path_factory):
    """8 s at 100 BPM, then 8 s at 128 BPM."""
    folder = tmp_path_factory.mktemp("change")
    return _concat(make_song(folder / "a", 100.0, 0, "major", seconds=8.0, sr=SR),
                   make_song(folder / "b", 128.0, 0, "major", seconds=8.0, sr=SR))


def test_a_tempo_change_is_no_steady_tempo(tempo_change):
    a = analyze(tempo_change, SR)
    assert a.tempo_bpm is None and "changes" in a.tempo_note and a.tempo_confidence < 0.9
    lo, hi = (int(x) for x in re.findall(r"(\d+) to (\d+) BPM", a.tempo_note)[0])
    assert lo < 105 and hi > 123 and len(a.tempo_curve) >= 10
    assert SongAnalysis.from_dict(json.loads(json.dumps(a.to_dict()))) == a


def test_noise_is_no_steady_tempo():
    noise = np.random.default_rng(0).standard_normal((2, SR * 12)).astype(np.float32) * 0.1
    a = analyze({"drums": noise, "other": noise[:, ::-1].copy()}, SR)
    assert a.tempo_bpm is None and a.tempo_note and a.tempo_confidence == 0.0


def test_cli_never_prints_a_contradicted_tempo(tempo_change, tmp_path, capsys):
    import soundfile as sf

    folder = tmp_path / "change"
    folder.mkdir()
    for name, x in tempo_change.items():
        sf.write(str(folder / f"{name}.wav"), x.T, SR, subtype="FLOAT")
    assert main(["analyze", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "no steady tempo: the tempo changes" in out and "BPM (confidence" not in out


def _write_stems(folder, stems: dict[str, np.ndarray]) -> None:
    import soundfile as sf

    folder.mkdir()
    for name, x in stems.items():
        sf.write(str(folder / f"{name}.wav"), x.T, SR, subtype="FLOAT")


def _grid_agrees(a: SongAnalysis) -> bool:
    """The printed tempo is the tempo of the analysis's own beats (median interval within 2 %), and they keep it."""
    ibi = np.diff(np.array(a.beats))
    return a.tempo_bpm is not None and abs(60.0 / np.median(ibi) / a.tempo_bpm - 1) < 0.02 and (
        np.percentile(a.tempo_curve, 90) / np.percentile(a.tempo_curve, 10) - 1 < 0.06)


def test_cli_prints_no_tempo_for_noise_and_fails_on_silence(tmp_path, capsys):
    """`analyze` on noise says "no steady tempo" (never "N BPM (confidence ...)"), in the text and in the JSON; on
    silent stems it fails with one error line and prints no tempo at all."""
    noise = np.random.default_rng(1).standard_normal((2, SR * 12)).astype(np.float32) * 0.1
    _write_stems(tmp_path / "noise", {"drums": noise, "bass": noise[::-1].copy(), "other": noise[:, ::-1].copy()})
    assert main(["analyze", str(tmp_path / "noise")]) == 0
    out = capsys.readouterr().out
    assert "no steady tempo: no clear pulse" in out and "BPM (confidence" not in out
    assert main(["analyze", str(tmp_path / "noise"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["tempo_bpm"] is None and data["tempo_confidence"] == 0.0 and data["tempo_note"]
    _write_stems(tmp_path / "silence", {"drums": np.zeros((2, SR * 6), np.float32),
                                        "other": np.zeros((2, SR * 6), np.float32)})
    assert main(["analyze", str(tmp_path / "silence")]) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("error:") and "silent" in captured.err and "BPM" not in captured.out


def test_a_confident_tempo_is_the_tempo_of_its_own_grid(song_4_4, song_3_4, tempo_change):
    """Every tempo reported with confidence >= 0.9 is the tempo of the beats reported with it; the tempo change is
    not reported as a tempo at all (its confidence stays under 0.9)."""
    results = [analyze_path(song_4_4[0]), analyze_path(song_3_4[0]), analyze(tempo_change, SR)]
    assert any(r.tempo_confidence >= 0.9 for r in results)
    for r in results:
        assert r.tempo_confidence < 0.9 or _grid_agrees(r), r.tempo_bpm
    assert results[2].tempo_bpm is None and results[2].tempo_confidence < 0.9


def test_four_on_the_floor_is_not_halved(tmp_path):
    """A kick on every beat (dance music) at 120 BPM stays 120: bars of 8 tracked beats can accent better than bars
    of 4 when the chords change slowly, which made Awakening (a real song, 120 BPM) 60 BPM with confidence 1."""
    sr, bpm, seconds = SR, 120.0, 16.0
    n, beat = int(seconds * sr), 60.0 / 120.0
    t = np.arange(int(0.2 * sr)) / sr
    kick = (np.sin(2 * np.pi * 55 * t) * np.exp(-t / 0.05)).astype(np.float32)
    drums = np.zeros(n, np.float32)
    for k in range(int(seconds / beat)):
        i = int(k * beat * sr)
        drums[i:i + len(kick)] += kick[: n - i]
    # one chord per two bars: harmonic change every 8 beats
    tt = np.arange(n) / sr
    root = np.where((tt // (8 * beat)) % 2 == 0, 220.0, 174.6)
    other = (0.1 * np.sin(2 * np.pi * np.cumsum(root) / sr)).astype(np.float32)
    a = analyze({"drums": np.stack([drums, drums]), "other": np.stack([other, other])}, sr)
    assert a.tempo_bpm == pytest.approx(bpm, rel=0.02)


def test_awakening_mixture_is_not_a_degenerate_grid(mixtures_dir):
    """The real CC song of the issue, first 40 s as-is: a 120 BPM grid (it was 60.00 BPM, confidence 1.00)."""
    from stemwright.audio.io import read_audio

    audio = read_audio(next(mixtures_dir.glob("*Awakening*")))
    clip = audio.samples[:, : 40 * audio.samplerate]
    a = analyze({"mix": clip}, audio.samplerate)
    assert a.tempo_bpm is not None and a.tempo_bpm == pytest.approx(120.0, rel=0.02)
    beats = np.array(a.beats)
    assert len(beats) > 70  # about 2 beats a second, not 1


def test_plot(song_4_4, tmp_path):
    require("matplotlib", reason="install the plot extra: pip install -e '.[plot]'")
    png = tmp_path / "a.png"
    assert main(["analyze", str(song_4_4[0]), "--plot", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["analyze", str(song_4_4[0]), "--plot", str(png)]) == 1  # kept unless --overwrite


def test_octave_uncertain_offers_half_and_double_time(song_4_4, tmp_path, capsys):
    """Drums that play nothing between the beats (kick and snare on the beats, only hats between) could as well be a
    slow song's eighth notes: the analysis says its octave is uncertain and offers the half and double tempos; the
    110 BPM song with kick and snare on the beats and drum hits between them does not."""
    import soundfile as sf

    sure = analyze_path(song_4_4[0])
    assert not sure.octave_uncertain and sure.tempo_alternatives == ()
    folder = tmp_path / "loop"
    folder.mkdir()
    for name, x in _offbeat_dance_loop(122.0, 16.0, SR).items():
        sf.write(str(folder / f"{name}.wav"), x.T, SR, subtype="FLOAT")
    a = analyze_path(folder)
    assert a.tempo_bpm == pytest.approx(122.0, rel=0.02) and a.octave_uncertain and a.tempo_confidence < 0.9
    assert a.tempo_alternatives == pytest.approx((a.tempo_bpm / 2, a.tempo_bpm * 2), rel=1e-3)
    assert SongAnalysis.from_dict(json.loads(json.dumps(a.to_dict()))) == a
    assert main(["analyze", str(folder)]) == 0
    assert "octave uncertain: or" in capsys.readouterr().out


def _offbeat_dance_loop(bpm: float, seconds: float, sr: int) -> dict[str, np.ndarray]:
    """Kick on every beat, snare on 2 and 4, loud open hats and bass notes on every off-beat (dance music)."""
    rng = np.random.default_rng(3)
    n, beat = int(seconds * sr), 60.0 / bpm
    t = np.arange(int(0.3 * sr)) / sr
    kick = np.sin(2 * np.pi * 55 * t) * np.exp(-t / 0.05)
    snare = rng.standard_normal(len(t)) * np.exp(-t / 0.04) * 0.5 + 0.3 * np.sin(2 * np.pi * 190 * t) * np.exp(-t / 0.05)
    spectrum = np.fft.rfft(rng.standard_normal(len(t)))
    spectrum[np.fft.rfftfreq(len(t), 1 / sr) < 5000] = 0  # an open hat: noise above 5 kHz
    hat = np.fft.irfft(spectrum, len(t)) * np.exp(-t / 0.08) * 3.0
    bass_note = np.sin(2 * np.pi * 110 * t) * np.minimum(1.0, t / 0.005) * np.exp(-t / 0.15) * 0.9
    drums, bass = np.zeros(n), np.zeros(n)
    for k in range(int(seconds / beat)):
        for sig, at, out in ((kick, k * beat, drums), (hat, (k + 0.5) * beat, drums), (bass_note, (k + 0.5) * beat, bass)) + (
                ((snare, k * beat, drums),) if k % 2 else ()):
            i = int(at * sr)
            m = min(len(sig), n - i)
            if m > 0:
                out[i:i + m] += sig[:m]
    return {"drums": np.stack([drums, drums]).astype(np.float32), "bass": np.stack([bass, bass]).astype(np.float32)}


def test_off_beat_hats_and_bass_do_not_pull_the_beats_off_the_beat():
    """The tracker followed the onsets of drums + bass, which loud off-beat hats and bass notes put half a beat late
    (4 development songs of `stemwright synth` had beat F 0 that way); it follows the drums' kick and snare now."""
    bpm = 122.0
    a = analyze(_offbeat_dance_loop(bpm, 16.0, SR), SR)
    beats = np.array(a.beats)
    beats = beats[(beats > 1.0) & (beats < 15.0)]
    true = np.arange(0.0, 16.0, 60.0 / bpm)
    on = np.array([np.min(np.abs(true - b)) < 0.07 for b in beats])
    assert len(beats) > 20 and on.mean() > 0.9, on.mean()


def test_walking_bass_and_backbeat_do_not_move_the_bar_lines():
    """A jazz-like groove (ghost kick and a walking bass note on every beat, pedal hat on 2 and 4, a chord a bar):
    the bar lines were put on beat 2 or 4 (the pedal's low end, the bass's note changes; jazz downbeats were right on
    2 of 10 development songs). The kick and snare bands and the chords without the bass put them on the one."""
    bpm, lead_in = 112.0, 0.3
    a = analyze(groove(bpm, 16.0, lead_in, walking=True), SR)
    assert a.tempo_bpm == pytest.approx(bpm, rel=0.02) and a.beats_per_bar == 4
    true = lead_in + np.arange(1, 7) * 4 * 60.0 / bpm
    assert all(_near(a.downbeats, t, 0.07) for t in true), a.downbeats


def test_a_slow_ballad_tracked_in_eighth_notes_is_halved():
    """68 BPM, kick and snare on the quarter notes only, hats on every eighth: tracked at 136, and the bars of
    8 tracked beats did not accent 1.8x better, so it stayed 136 (7 development ballads and slow songs did). The
    drums' empty half-beats and alternating low band halve it; the octave is not taken as sure."""
    a = analyze(groove(68.0, 20.0, 0.3, walking=False), SR)
    assert a.tempo_bpm == pytest.approx(68.0, rel=0.02)
    assert a.octave_uncertain and a.tempo_confidence < 0.9


def test_hats_between_kicks_on_the_beats_keep_a_dance_groove_from_being_halved():
    """128 BPM dance music with a kick on every beat, hats on the off-eighths and the bass and chords changing every
    two bars: the bars of 8 tracked beats accent 2.4x better and the low band alternates (0.73), so the double-time
    rule made it 64 BPM (two development and two held-out electronic songs were halved so). Hats half-way between the
    beats and the kick on them keep the quarter notes; the octave is not taken as sure (two rules disagree)."""
    a = analyze(dance_groove(128.0, 20.0), SR)
    assert a.tempo_bpm == pytest.approx(128.0, rel=0.02)
    assert a.octave_uncertain and a.tempo_confidence < 0.9
    assert a.tempo_alternatives == pytest.approx((64.0, 256.0), rel=0.02)


def test_the_hats_tell_quarter_notes_from_eighths():
    """Hats on the off-eighths (straight or swung to 2/3 of the beat) with the kick on the beats: quarter notes (+1);
    hats on the beats only: eighth notes (-1); hats and kick both half-way between: no call (0). No drums: 0."""
    from stemwright.analysis.song import _hat_octave

    frames = np.arange(20, 2000, 40)
    kick, on_beats, straight, swung = (np.zeros(2100) for _ in range(4))
    kick[frames] = on_beats[frames] = straight[frames] = swung[frames] = 1.0
    straight[frames + 20] = 0.8
    swung[frames + 26] = 0.8
    assert _hat_octave({"hats": straight, "kick": kick}, frames)[0] == 1
    assert _hat_octave({"hats": swung, "kick": kick}, frames)[0] == 1
    assert _hat_octave({"hats": on_beats, "kick": kick}, frames)[0] == -1
    busy_kick = kick.copy()
    busy_kick[frames + 20] = 1.0
    assert _hat_octave({"hats": straight, "kick": busy_kick}, frames) == (0, 0.0)
    assert _hat_octave(None, frames) == (0, 0.0)


def test_a_grid_that_wanders_is_never_a_sure_tempo(song_4_4):
    """Beats that stray from their straight line by more than MAX_WANDER of a beat (a drift or a phase jump the
    single tempo hides) cap the tempo confidence below 0.9; a straight grid keeps it."""
    from dataclasses import replace

    from stemwright.analysis.song import NON_HARMONIC_STEMS, RHYTHM_STEMS, _drum_bands, _pick, _sum, _track, load_path

    straight = np.arange(40) * 0.5
    drifting = straight + 0.1 * np.sin(2 * np.pi * np.arange(40) / 10)  # back and forth by a fifth of a beat
    assert _wander(straight) < 1e-9 and _wander(drifting) > MAX_WANDER
    s = load_path(song_4_4[0])
    grid = _track(s, _sum(s, _pick(s, RHYTHM_STEMS, False)), _pick(s, NON_HARMONIC_STEMS, True), _drum_bands(s))
    assert grid.wander < MAX_WANDER and tempo_confidence(grid) >= 0.9
    assert tempo_confidence(replace(grid, wander=0.15)) == WANDER_CAP < 0.9


def _swung_onsets(bpm: float, seconds: float, swing: float) -> np.ndarray:
    """An onset envelope (one value per analysis frame): a strong onset on every beat, a weaker one on the swung
    eighth between (``swing`` of the way from the half beat to the triplet's 2/3)."""
    from stemwright.analysis.song import HOP

    fps = SR / HOP
    env = np.zeros(int(seconds * fps))
    beat = 60.0 / bpm
    for t in np.arange(0.2, seconds - 0.1, beat):
        env[int(round(t * fps))] = 1.0
        env[min(len(env) - 1, int(round((t + (0.5 + swing / 6) * beat) * fps)))] = 0.6
    return env


def test_the_straight_grid_comb_prefers_the_beat_to_its_triplet_relatives():
    """Swung eighths put the onsets' autocorrelation peaks at 3:4 and 4:3 of the beat, where the tracker locked
    (131 for a 175 BPM jazz song, 145 for a 107 BPM funk song); a straight grid meets the onsets best at the beat."""
    from stemwright.analysis.song import grid_comb

    env = _swung_onsets(96.0, 20.0, 0.8)
    before = env.copy()
    beat, bpm = grid_comb(env, 96.0)
    assert bpm == pytest.approx(96.0, rel=0.01)
    assert all(beat > 1.3 * grid_comb(env, 96.0 * r)[0] for r in (0.75, 4 / 3, 1.5))
    assert np.array_equal(env, before)  # the caller's array is left alone


def test_a_syncopated_funk_groove_is_tracked_at_its_beat():
    """The kick's dotted-eighth run (3/4 of a beat apart) locked the tracker at 4:3 of the tempo: 107 BPM read as
    "the tempo changes (from 144 to 144 BPM)", 115 as 145.1 (confidence 0.73). The 3:4 relative's straight grid
    meets the kick and snare clearly better and replaces it."""
    for bpm in (107.0, 115.0):
        a = analyze(funk_groove(bpm, 16.0, 0.0), SR)
        assert a.tempo_bpm == pytest.approx(bpm, rel=0.02), (bpm, a.tempo_bpm, a.tempo_note)


def test_swung_eighths_are_not_a_tempo_change():
    """A window whose local tempo peak is a triplet relative of the grid (4:3 here) stays on the grid when the
    grid's straight comb meets its onsets as well; a window of another tempo does not."""
    from stemwright.analysis.song import _comb_rescued

    swung = _swung_onsets(90.0, 20.0, 0.6)
    off = np.ones(len(swung), bool)
    assert _comb_rescued(swung, 90.0, np.full(len(swung), 120.0), off).mean() > 0.9
    other = _swung_onsets(127.0, 20.0, 0.0)
    assert _comb_rescued(other, 90.0, np.full(len(other), 127.0), off).mean() < 0.1


def test_bars_are_never_surer_than_the_beat_grid_they_are_counted_on(tempo_change):
    """The meter and the downbeats are counted on the tracked beats: a grid whose tempo is not sure (a tempo change,
    a ballad whose octave rests on its drums' empty half-beats) gives no sure bar lines either."""
    for a in (analyze(tempo_change, SR), analyze(groove(68.0, 20.0, 0.3, walking=False), SR)):
        assert a.tempo_confidence < 0.9
        assert a.meter_confidence <= a.tempo_confidence and a.downbeat_confidence <= a.tempo_confidence, a


@pytest.mark.parametrize("bpm", [160.0, 176.0, 196.0])
def test_a_fast_walking_bass_is_not_tracked_in_half_time(bpm):
    """Fast jazz (a walking bass note and a ghost kick on every beat, pedal hat on 2 and 4): the tracker locks on
    every other beat, and the half-time grid was reported at confidence up to 1.00 (4 of the 5 tempo misses on the
    development songs were fast jazz at half time). The bass stepping to a new note half-way between the tracked
    beats doubles the grid; the octave rests on one threshold, so it is never taken as sure."""
    a = analyze(groove(bpm, 20.0, 0.3, walking=True), SR)
    assert a.tempo_bpm == pytest.approx(bpm, rel=0.02)
    assert a.octave_uncertain and a.tempo_confidence < 0.9


def test_a_bass_pumping_eighths_on_one_note_does_not_double_the_tempo():
    """The walking-bass rule reads the bass's pitch, not its onsets: eighth notes on the chord's root (rock, pop)
    put onsets half-way between the beats as a walking bass does, but the same note, so the tempo stays."""
    bpm, lead_in = 92.0, 0.3
    stems = groove(bpm, 20.0, lead_in, walking=False)
    beat, n = 60.0 / bpm, stems["bass"].shape[1]
    bass = np.zeros(n)
    t = np.arange(int(beat / 2 * SR)) / SR
    note = np.sin(2 * np.pi * 55.0 * t) * np.exp(-t / 0.2) * np.minimum(1, t / 0.003)
    for k in range(int((20.0 - lead_in) / (beat / 2))):
        i = int(round((lead_in + k * beat / 2) * SR))
        m = min(note.size, n - i)
        bass[i:i + m] += 0.5 * note[:m]
    stems["bass"] = np.stack([bass, bass]).astype(np.float32)
    a = analyze(stems, SR)
    assert a.tempo_bpm == pytest.approx(bpm, rel=0.02)
