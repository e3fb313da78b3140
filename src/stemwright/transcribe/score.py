"""Note F-measure of a transcription against known notes (``mir_eval.transcription``), and the known notes of a
song made by ``stemwright synth --midi``: its ``song.mid`` names each part ``<stem>/<role>``.

Two scores, as MIREX reports them: onset only (pitch within 50 cents, onset within 50 ms) and with offsets too
(offset within 20 % of the reference note's length or 50 ms, whichever is longer).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from stemwright.transcribe.model import Note


@dataclass(frozen=True, kw_only=True)
class NoteScore:
    """Precision, recall and F of one transcription, onset only and with offsets; note counts."""

    precision: float
    recall: float
    f: float
    f_offset: float
    reference_notes: int
    estimated_notes: int


def _arrays(notes: Sequence[Note]) -> tuple[np.ndarray, np.ndarray]:
    """``(intervals (N, 2) s, pitches (N,) Hz)`` in mir_eval's layout."""
    import mir_eval  # the [transcribe] extra; slow to import

    intervals = np.array([[n.start, n.end] for n in notes], dtype=float).reshape(-1, 2)
    pitches = mir_eval.util.midi_to_hz(np.array([n.pitch for n in notes], dtype=float))
    return intervals, pitches


def note_scores(reference: Sequence[Note], estimate: Sequence[Note]) -> NoteScore:
    """Scores of ``estimate`` against ``reference``; with no reference note, F is 1 when nothing is estimated."""
    import mir_eval  # the [transcribe] extra; slow to import

    if not reference or not estimate:
        empty = 1.0 if not reference and not estimate else 0.0
        return NoteScore(precision=empty, recall=empty, f=empty, f_offset=empty,
                         reference_notes=len(reference), estimated_notes=len(estimate))
    ref_i, ref_p = _arrays(reference)
    est_i, est_p = _arrays(estimate)
    p, r, f, _ = mir_eval.transcription.precision_recall_f1_overlap(ref_i, ref_p, est_i, est_p, offset_ratio=None)
    _, _, f_off, _ = mir_eval.transcription.precision_recall_f1_overlap(ref_i, ref_p, est_i, est_p)
    return NoteScore(precision=float(p), recall=float(r), f=float(f), f_offset=float(f_off),
                     reference_notes=len(reference), estimated_notes=len(estimate))


def song_notes(song_mid: str | Path, stem: str, until: float | None = None) -> tuple[Note, ...]:
    """The notes of every part of ``stem`` in a ``stemwright synth --midi`` song (parts named ``<stem>/<role>``),
    cut at ``until`` seconds (the rendered length), sorted by start."""
    import pretty_midi  # the [transcribe] extra

    midi = pretty_midi.PrettyMIDI(str(song_mid))
    notes = [Note(float(n.start), float(min(n.end, until) if until else n.end), int(n.pitch), int(n.velocity))
             for inst in midi.instruments if not inst.is_drum and inst.name.split("/")[0] == stem
             for n in inst.notes if until is None or n.start < until]
    return tuple(sorted(notes, key=lambda n: (n.start, n.pitch)))
