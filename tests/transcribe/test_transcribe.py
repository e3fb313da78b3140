"""basic-pitch through ONNX Runtime on arrays (the real model: it ships in the basic-pitch wheel), and the note
scoring the benchmark uses."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stemwright.transcribe import BasicPitch, Note, transcribe_stems
from stemwright.transcribe.score import note_scores, song_notes
from tests.transcribe.melody import BASS, BEAT, MELODY, RATE, line

TRUTH = tuple(Note(i * BEAT, (i + 1) * BEAT - 0.04, p, 100) for i, p in enumerate(MELODY))


@pytest.fixture(scope="module")
def model() -> BasicPitch:
    return BasicPitch()


def test_truth_against_itself_scores_one() -> None:
    s = note_scores(TRUTH, TRUTH)
    assert (s.precision, s.recall, s.f, s.f_offset) == (1.0, 1.0, 1.0, 1.0)


def test_moved_notes_score_less() -> None:
    late = tuple(Note(n.start + 0.1, n.end + 0.1, n.pitch, n.velocity) for n in TRUTH)  # past the 50 ms window
    assert note_scores(TRUTH, late).f == 0.0
    sharp = tuple(Note(n.start, n.end, n.pitch + 1, n.velocity) for n in TRUTH)
    assert note_scores(TRUTH, sharp).f == 0.0
    short = tuple(Note(n.start, n.start + 0.1, n.pitch, n.velocity) for n in TRUTH)  # onsets right, offsets wrong
    s = note_scores(TRUTH, short)
    assert s.f == 1.0 and s.f_offset == 0.0
    half = TRUTH[::2]
    s = note_scores(TRUTH, half)
    assert s.precision == 1.0 and s.recall == 0.5 and s.f == pytest.approx(2 / 3)
    assert note_scores(TRUTH, ()).f == 0.0 and note_scores((), ()).f == 1.0


def test_song_notes_reads_one_stems_parts(tmp_path: Path) -> None:
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(initial_tempo=100)
    for name, pitch, drum in (("bass/line", 40, False), ("other/pad", 60, False), ("other/lead", 72, False),
                              ("drums/kit", 36, True), ("bassoon/x", 50, False)):
        inst = pretty_midi.Instrument(program=0, name=name, is_drum=drum)
        inst.notes = [pretty_midi.Note(velocity=90, pitch=pitch, start=t, end=t + 1.5) for t in (0.0, 2.0, 4.0)]
        pm.instruments.append(inst)
    pm.write(str(tmp_path / "song.mid"))
    bass = song_notes(tmp_path / "song.mid", "bass", until=3.0)
    assert [n.pitch for n in bass] == [40, 40] and [n.start for n in bass] == pytest.approx([0.0, 2.0], abs=2e-3)
    assert bass[-1].end == pytest.approx(3.0)  # cut at the rendered length
    assert sorted({n.pitch for n in song_notes(tmp_path / "song.mid", "other")}) == [60, 72]
    assert song_notes(tmp_path / "song.mid", "drums") == ()


def test_basic_pitch_finds_a_known_melody(model: BasicPitch) -> None:
    audio = np.stack([line(MELODY), line(MELODY)])  # stereo (2, T)
    before = audio.copy()
    notes = model.notes(audio, RATE)
    assert np.array_equal(audio, before)  # the caller's array is left alone
    s = note_scores(TRUTH, notes)
    assert s.f >= 0.9, (s, notes)


def test_transcribe_stems_from_arrays_at_a_given_tempo(model: BasicPitch) -> None:
    stems = {"bass": line(BASS)[np.newaxis], "other": line(MELODY)[np.newaxis],
             "drums": np.zeros((1, len(line(BASS))), dtype=np.float32)}
    result = transcribe_stems(stems, RATE, tempo=96.0, model=model)
    assert [p.stem for p in result.stems] == ["bass", "other"]  # drums are not pitched
    assert result.tempo_bpm == 96.0 and result.tempo_source == "given"
    bass = result.stems[0]
    truth = tuple(Note(i * BEAT, (i + 1) * BEAT - 0.04, p, 100) for i, p in enumerate(BASS))
    assert note_scores(truth, bass.notes).f >= 0.8 and bass.program == 33


def test_overtones_of_a_one_note_line_are_dropped() -> None:
    from stemwright.transcribe.run import drop_overtones

    low, octave = Note(0.0, 1.0, 40, 90), Note(0.02, 0.9, 52, 60)  # basic-pitch's octave ghost of a bass note
    twelfth, next_note = Note(0.5, 1.0, 59, 50), Note(1.0, 2.0, 52, 90)  # a twelfth over it; a real note after it
    fifth = Note(0.0, 1.0, 47, 80)  # not an overtone interval: kept
    assert drop_overtones([low, octave, twelfth, next_note, fifth]) == (low, next_note, fifth)
    barely = Note(0.8, 1.8, 52, 90)  # sounds with the low note for 0.2 s of its 1 s: a note of its own
    assert drop_overtones([low, barely]) == (low, barely)
