"""Key and chords from the harmonic stems: chroma of the pitched stems for the chord quality, the bass stem's
chroma for the root, both averaged between beats.

- Chords: each beat-to-beat segment is scored against binary templates of :data:`QUALITIES` on all 12 roots
  (cosine of the segment's chroma with the template, plus the bass chroma at the root), then a Viterbi pass
  with a fixed cost for each chord change keeps a chord for as long as the music does (chords change on beats,
  rarely every beat). Segments whose harmonic energy is far below the song's are "N" (no chord).
- Key: Krumhansl-Kessler key profiles correlated with the song's chroma (the pitched stems' plus half the bass's),
  plus a bonus for the key whose tonic chord (root and third) the chords dwell on and start or end with (songs
  rest on their tonic chord: this tells a key from its relative, which shares all the notes) and one for the share
  of the chord time on chords of the key's scale (natural minor with its leading tone for minor keys; tells a key
  from the keys a fifth away). The 24 scores through a softmax give the alternatives' weights. First set on the 12
  songs of `stemwright synth --seed 101` (Temperley's Kostka-Payne profiles were tried and did worse), the chord
  bonuses reset on 54 dev songs (eighth session, docs/practice.md).
- A separated vocals stem carries instruments: its chroma is added to the pitched stems' at
  :data:`VOCALS_WEIGHT` (``song._harmony``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stemwright.mixer.analysis import KK_MAJOR, KK_MINOR, PITCH_CLASSES

#: Chord qualities recognised (mir_eval / Harte names) and their intervals above the root.
QUALITIES: dict[str, tuple[int, ...]] = {
    "maj": (0, 4, 7), "min": (0, 3, 7), "7": (0, 4, 7, 10), "maj7": (0, 4, 7, 11), "min7": (0, 3, 7, 10),
    "sus4": (0, 5, 7), "sus2": (0, 2, 7), "dim": (0, 3, 6),
}
#: Suffix of each quality in the short name shown to musicians ("Am7", "F#", "Bsus4").
SHORT = {"maj": "", "min": "m", "7": "7", "maj7": "maj7", "min7": "m7", "sus4": "sus4", "sus2": "sus2", "dim": "dim"}
# Weight of the bass chroma at a chord's root, next to the template cosine (in [0, 1]), and the margin a seventh
# chord needs over its triad. Set on 30 development songs (`stemwright synth --seed 202` and the first 3 of
# --seed 101, beats from the analysis): majmin / sevenths 0.81 / 0.61 with 0.5 and 0.02, 0.83 / 0.69 with these
# (the bass often plays passing notes and fifths, which a larger weight took for roots).
BASS_WEIGHT = 0.25
CHANGE_COST = 0.25  # Viterbi cost of a chord change, in units of the per-segment score
SILENT = 0.05  # a segment below this share of the song's median harmonic energy is "N"
KEY_BASS = 0.5  # weight of the bass's chroma in the key's chroma
# Weight of the vocals stem's chroma (each frame max-normalised, as the pitched stems') added to the pitched
# stems' chroma. A separated vocals stem carries instruments: on the 54 dev songs (/work/h-tempo-data/devall,
# seeds 101/202) `classic`'s vocals stem correlates more with the true `other` stem's chroma (0.4-0.75) than with
# the true vocals' on most songs. 0.3 (with the key bonuses below): classic key 0.65 -> 0.72, majmin 0.687 ->
# 0.701; true stems key 0.78 -> 0.76 (one song), majmin 0.833 -> 0.837; 0.7 cost true-stem chords (0.813).
VOCALS_WEIGHT = 0.3
# Key bonuses from the chords: the share of the chord time on the key's tonic chord, each end (first, last chord)
# on it, and the share of the chord time on chords of the key's scale (tells keys a fifth apart, which share a
# profile's shape but not their chords). Set on the 54 dev songs (seeds 101/202, true and `classic` stems, beats
# from the analysis), a plateau of TONIC_SHARE 0.5-1, TONIC_ENDS 0.2-0.4, DIATONIC 0.5-1: key exact true / classic
# 0.61 / 0.59 with the old 0.5 / 0.05 / 0, 0.78 / 0.65 with these (vocals chroma not added).
TONIC_SHARE = 0.75
TONIC_ENDS = 0.3
DIATONIC = 0.75
# Softmax temperature over the 24 key scores (weights of the alternatives and the key's confidence); it does not
# change the best key. Calibrated on the 54 dev songs (seeds 101/202, true and `classic` stems) so that a key at
# confidence >= 0.9 is right >= 95 % of the time: at 0.2 those keys were right 0.89 (18 songs, true stems) and 0.88
# (16, `classic`); at 0.25, 1.00 (8) and 0.78 (9); from 0.26 on, all right (0.26: 6 and 7 songs); 0.3: 2 and 3, all
# right, and the keys at 0.5-0.9 right 0.85 / 0.74. 0.3 rather than the edge of 0.26 (one song either way moves it).
KEY_TEMPERATURE = 0.3
TETRAD_PENALTY = 0.05  # a seventh chord must beat its triad by this much (a triad's chroma matches both)


@dataclass(frozen=True)
class ChordSpan:
    """One chord from ``start`` to ``end`` seconds; ``label`` in Harte syntax ("A:min7", "N")."""

    start: float
    end: float
    label: str

    @property
    def name(self) -> str:
        """Short name for musicians: "Am7", "F#", "N"."""
        if self.label == "N":
            return "N"
        root, quality = self.label.split(":")
        return root + SHORT[quality]


@dataclass(frozen=True)
class KeyEstimate:
    tonic: int  # pitch class, 0 = C
    mode: str  # "major" | "minor"
    confidence: float  # weight of the best key among the 24
    alternatives: tuple[tuple[str, float], ...]  # ("E minor", weight), best first, the best key included


def _labels() -> list[tuple[int, str]]:
    return [(root, q) for q in QUALITIES for root in range(12)]


def _templates() -> np.ndarray:
    """Unit-norm binary templates, shape ``(len(_labels()), 12)``."""
    rows = []
    for root, q in _labels():
        t = np.zeros(12)
        t[[(root + i) % 12 for i in QUALITIES[q]]] = 1.0
        rows.append(t / np.linalg.norm(t))
    return np.array(rows)


def segment_means(chroma: np.ndarray, frame_times: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Mean chroma between consecutive ``edges`` (seconds). Shapes: ``(12, F)``, ``(F,)``, ``(S+1,)`` -> ``(S, 12)``."""
    idx = np.searchsorted(frame_times, edges)
    out = np.zeros((len(edges) - 1, chroma.shape[0]))
    for i, (a, b) in enumerate(zip(idx[:-1], idx[1:])):
        if b > a:
            out[i] = chroma[:, a:b].mean(axis=1)
        elif a < chroma.shape[1]:
            out[i] = chroma[:, a]
    return out


def _unit(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.divide(x, n, out=np.zeros_like(x), where=n > 1e-12)


def chord_scores(harm: np.ndarray, bass: np.ndarray) -> np.ndarray:
    """Score of every (root, quality) for each segment. Shapes: ``(S, 12)`` chroma, ``(S, 12)`` bass chroma ->
    ``(S, 96)`` in the order of :func:`_labels`."""
    cos = _unit(harm) @ _templates().T
    bass_n = bass / np.maximum(bass.max(axis=1, keepdims=True), 1e-12)
    roots = np.array([root for root, _ in _labels()])
    tetrad = np.array([len(QUALITIES[q]) == 4 for _, q in _labels()])
    return cos + BASS_WEIGHT * bass_n[:, roots] - TETRAD_PENALTY * tetrad


def viterbi(scores: np.ndarray, change_cost: float) -> np.ndarray:
    """Best path through ``(S, K)`` scores with ``change_cost`` per change of state. Returns ``(S,)`` states."""
    n, k = scores.shape
    total = scores[0].copy()
    back = np.zeros((n, k), int)
    for i in range(1, n):
        best = int(np.argmax(total))
        stay = total
        switch = total[best] - change_cost
        back[i] = np.where(stay >= switch, np.arange(k), best)
        total = np.maximum(stay, switch) + scores[i]
    path = np.zeros(n, int)
    path[-1] = int(np.argmax(total))
    for i in range(n - 1, 0, -1):
        path[i - 1] = back[i, path[i]]
    return path


def _segment_scores(harm: np.ndarray, bass: np.ndarray) -> np.ndarray:
    """Chord scores with an "N" state last, ``(S, 12)`` x 2 -> ``(S, len(_labels()) + 1)``: "N" wins the segments
    whose harmonic energy is below :data:`SILENT` of the song's median and loses the others."""
    energy = harm.sum(axis=1) + bass.sum(axis=1)
    ref = np.median(energy[energy > 0]) if np.any(energy > 0) else 0.0
    silent = energy <= SILENT * ref
    scores = chord_scores(harm + 0.5 * bass, bass)
    scores = np.concatenate([scores, np.zeros((len(scores), 1))], axis=1)  # last state: N
    scores[silent, :-1] = -1.0
    scores[silent, -1] = 1.0
    scores[~silent, -1] = -1.0
    return scores


def _spans(path: np.ndarray, edges: np.ndarray) -> tuple[ChordSpan, ...]:
    """Chord spans from Viterbi states ``(S,)`` over ``edges`` ``(S+1,)``; equal neighbours merged."""
    labels = _labels()
    spans: list[ChordSpan] = []
    for i, state in enumerate(path):
        label = "N" if state == len(labels) else f"{PITCH_CLASSES[labels[state][0]]}:{labels[state][1]}"
        if spans and spans[-1].label == label:
            spans[-1] = ChordSpan(spans[-1].start, float(edges[i + 1]), label)
        else:
            spans.append(ChordSpan(float(edges[i]), float(edges[i + 1]), label))
    return tuple(ChordSpan(round(c.start, 4), round(c.end, 4), c.label) for c in spans)


def estimate_chords(harm: np.ndarray, bass: np.ndarray, edges: np.ndarray) -> tuple[ChordSpan, ...]:
    """Chords over the segments between ``edges`` (the beat grid, seconds, ``(S+1,)``) from per-segment chroma
    ``(S, 12)`` of the pitched stems and of the bass. Neighbouring segments with the same chord are merged."""
    if len(edges) < 2:
        return ()
    return _spans(viterbi(_segment_scores(harm, bass), CHANGE_COST), edges)


MAJOR_THIRD = ("maj", "7", "maj7")
MINOR_THIRD = ("min", "min7")
MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
MINOR_SCALE = (0, 2, 3, 5, 7, 8, 10, 11)  # natural minor and its leading tone (the major V chord)


def _tonic_time(chords: tuple[ChordSpan, ...], tonic: int, mode: str) -> tuple[float, float]:
    """Share of the chord time on the tonic chord of (tonic, mode), and the share of the ends (first, last chord)."""
    qualities = MAJOR_THIRD if mode == "major" else MINOR_THIRD

    def is_tonic(c: ChordSpan) -> bool:
        root, _, quality = c.label.partition(":")
        return root == PITCH_CLASSES[tonic] and quality in qualities

    voiced = [c for c in chords if c.label != "N"]
    total = sum(c.end - c.start for c in voiced)
    if not voiced or total <= 0:
        return 0.0, 0.0
    share = sum(c.end - c.start for c in voiced if is_tonic(c)) / total
    return share, (is_tonic(voiced[0]) + is_tonic(voiced[-1])) / 2


def _is_diatonic(label: str, tonic: int, mode: str) -> bool:
    """Whether the chord's triad (root, third, fifth; "N" never) lies in the scale of (tonic, mode)."""
    if label == "N":
        return False
    root, _, quality = label.partition(":")
    scale = {(tonic + i) % 12 for i in (MAJOR_SCALE if mode == "major" else MINOR_SCALE)}
    return {(PITCH_CLASSES.index(root) + i) % 12 for i in QUALITIES[quality][:3]} <= scale


def _diatonic_time(chords: tuple[ChordSpan, ...], tonic: int, mode: str) -> float:
    """Share of the chord time on chords of the scale of (tonic, mode)."""
    voiced = [c for c in chords if c.label != "N"]
    total = sum(c.end - c.start for c in voiced)
    if total <= 0:
        return 0.0
    return sum(c.end - c.start for c in voiced if _is_diatonic(c.label, tonic, mode)) / total


def estimate_key(harm_mean: np.ndarray, bass_mean: np.ndarray, chords: tuple[ChordSpan, ...] = ()) -> KeyEstimate:
    """Key from the song's mean chroma of the pitched stems and of the bass (each ``(12,)``) and its chords."""
    chroma = _unit(harm_mean) + KEY_BASS * _unit(bass_mean)
    keys = [(t, m) for m in ("major", "minor") for t in range(12)]
    rs = np.nan_to_num(np.array([np.corrcoef(chroma, np.roll(KK_MAJOR if m == "major" else KK_MINOR, t))[0, 1]
                                 for t, m in keys]))
    for i, (t, m) in enumerate(keys):
        share, ends = _tonic_time(chords, t, m)
        rs[i] += TONIC_SHARE * share + TONIC_ENDS * 2 * ends + DIATONIC * _diatonic_time(chords, t, m)
    w = np.exp((rs - rs.max()) / KEY_TEMPERATURE)
    w /= w.sum()
    order = np.argsort(-w)
    tonic, mode = keys[int(order[0])]
    alts = tuple((f"{PITCH_CLASSES[keys[i][0]]} {keys[i][1]}", round(float(w[i]), 3)) for i in order[:4])
    return KeyEstimate(tonic, mode, round(float(w[order[0]]), 3), alts)
