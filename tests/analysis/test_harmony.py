"""Chords and key from chroma (stemwright.analysis.harmony): templates, bass roots, Viterbi, key alternatives."""
from __future__ import annotations

import numpy as np

from stemwright.analysis.harmony import ChordSpan, estimate_chords, estimate_key, segment_means
from stemwright.mixer.analysis import KK_MINOR


def _chroma(*pcs: int, weights: tuple[float, ...] | None = None) -> np.ndarray:
    c = np.full(12, 0.02)
    for pc, w in zip(pcs, weights or (1.0,) * len(pcs)):
        c[pc % 12] += w
    return c


def test_qualities_and_roots_from_the_bass():
    # 2 beats each: A minor 7, D major, G dominant 7, C major 7, E sus4, B diminished, then silence
    chords = [(9, (0, 3, 7, 10)), (2, (0, 4, 7)), (7, (0, 4, 7, 10)), (0, (0, 4, 7, 11)), (4, (0, 5, 7)), (11, (0, 3, 6))]
    harm = np.array([_chroma(*(r + i for i in iv)) for r, iv in chords for _ in range(2)] + [np.zeros(12)] * 2)
    bass = np.array([_chroma(r) for r, _ in chords for _ in range(2)] + [np.zeros(12)] * 2)
    edges = np.arange(len(harm) + 1) * 0.5
    spans = estimate_chords(harm, bass, edges)
    assert [c.label for c in spans] == ["A:min7", "D:maj", "G:7", "C:maj7", "E:sus4", "B:dim", "N"]
    assert [c.name for c in spans] == ["Am7", "D", "G7", "Cmaj7", "Esus4", "Bdim", "N"]
    assert spans[0] == ChordSpan(0.0, 1.0, "A:min7") and spans[-1].end == 7.0


def test_the_bass_decides_between_relative_chords():
    # C-E-G-A sounds as C6 or Am7: the bass on A makes it A minor 7
    harm = np.array([_chroma(0, 4, 7, 9)] * 4)
    spans = estimate_chords(harm, np.array([_chroma(9)] * 4), np.arange(5.0))
    assert [c.label for c in spans] == ["A:min7"]


def test_one_odd_beat_does_not_change_the_chord():
    # a passing D (in the bass and above) over a held C chord: alone, that beat scores best as D minor 7
    harm = np.array([_chroma(0, 4, 7)] * 3 + [_chroma(0, 2, 4, 7)] + [_chroma(0, 4, 7)] * 3)
    bass = np.array([_chroma(0)] * 3 + [_chroma(2)] + [_chroma(0)] * 3)
    assert [c.label for c in estimate_chords(harm[3:4], bass[3:4], np.arange(2.0))] != ["C:maj"]
    assert [c.label for c in estimate_chords(harm, bass, np.arange(8.0))] == ["C:maj"]


def test_key_and_alternatives():
    k = estimate_key(np.roll(KK_MINOR, 4), np.roll(KK_MINOR, 4))
    assert (k.tonic, k.mode) == (4, "minor") and k.alternatives[0] == ("E minor", k.confidence)
    assert len(k.alternatives) == 4 and sum(w for _, w in k.alternatives) <= 1.0 + 1e-6
    assert [w for _, w in k.alternatives] == sorted((w for _, w in k.alternatives), reverse=True)


def test_the_tonic_chord_tells_a_key_from_its_relative():
    # the notes of C major / A minor (white keys), the music resting on A minor chords: A minor
    white = _chroma(0, 2, 4, 5, 7, 9, 11)
    am = (ChordSpan(0, 4, "A:min"), ChordSpan(4, 6, "F:maj"), ChordSpan(6, 8, "G:maj"), ChordSpan(8, 12, "A:min"))
    assert estimate_key(white, _chroma(9, 5, 7), am).alternatives[0][0] == "A minor"
    c = (ChordSpan(0, 4, "C:maj"), ChordSpan(4, 6, "F:maj"), ChordSpan(6, 8, "G:maj"), ChordSpan(8, 12, "C:maj"))
    assert estimate_key(white, _chroma(0, 5, 7), c).alternatives[0][0] == "C major"


def test_segment_means():
    chroma = np.tile(np.arange(10.0), (12, 1))  # frame i has value i
    out = segment_means(chroma, np.arange(10.0), np.array([0.0, 2.0, 5.0, 9.5]))
    assert out.shape == (3, 12) and out[:, 0].tolist() == [0.5, 3.0, 7.0]


def test_the_chords_in_the_scale_tell_a_key_from_the_key_a_fifth_away():
    # the notes of C major and G major alike (F and F# equal), as long on C as on G, starting on C and ending on G:
    # the D major chord (F#) is in G major's scale, not in C major's
    both = _chroma(0, 2, 4, 5, 6, 7, 9, 11)
    chords = (ChordSpan(0, 2, "C:maj"), ChordSpan(2, 4, "D:maj"), ChordSpan(4, 6, "G:maj"))
    assert estimate_key(both, _chroma(0, 7), chords).alternatives[0][0] == "G major"
