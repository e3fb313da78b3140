"""Music theory helpers: scales, diatonic chords, progressions, voicing."""

from __future__ import annotations

from dataclasses import dataclass

NOTE_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")

# Interval sets of the modes used (semitones above the tonic).
MODES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
}

# Progressions as 0-based scale degrees; common-practice pop/rock/jazz patterns.
PROGRESSIONS: dict[str, tuple[tuple[int, ...], ...]] = {
    "major": (
        (0, 4, 5, 3),
        (5, 3, 0, 4),
        (0, 3, 4, 3),
        (0, 5, 3, 4),
        (0, 3, 0, 4),
        (3, 4, 0, 5),
        (0, 2, 3, 4),
        (1, 4, 0, 0),
        (0, 3, 5, 4),
        (3, 0, 4, 5),
    ),
    "minor": ((0, 5, 2, 6), (0, 3, 4, 0), (0, 6, 5, 6), (0, 5, 3, 4), (0, 3, 6, 2), (5, 6, 0, 0), (0, 2, 3, 4)),
    "dorian": ((0, 3, 0, 3), (0, 3, 6, 0), (0, 1, 0, 3), (0, 6, 3, 0)),
    "mixolydian": ((0, 6, 3, 0), (0, 3, 6, 3), (0, 6, 0, 3), (0, 4, 6, 3)),
}
JAZZ_PROGRESSIONS = ((1, 4, 0, 0), (0, 5, 1, 4), (2, 5, 1, 4), (0, 3, 2, 5), (1, 4, 0, 5))

QUALITY_SUFFIX = {
    (0, 4, 7): "",
    (0, 3, 7): "m",
    (0, 3, 6): "dim",
    (0, 4, 8): "aug",
    (0, 4, 7, 11): "maj7",
    (0, 3, 7, 10): "m7",
    (0, 4, 7, 10): "7",
    (0, 3, 6, 10): "m7b5",
    (0, 2, 7): "sus2",
    (0, 5, 7): "sus4",
    (0, 4, 7, 14): "add9",
    (0, 3, 7, 14): "madd9",
    (0, 3, 7, 10, 14): "m9",
    (0, 4, 7, 11, 14): "maj9",
    (0, 4, 7, 10, 14): "9",
}


@dataclass(frozen=True)
class Chord:
    """A chord at a position in the song. Times in beats (quarter notes)."""

    root: int  # pitch class 0..11
    intervals: tuple[int, ...]  # semitones above the root
    degree: int
    start: float
    length: float

    @property
    def name(self) -> str:
        return NOTE_NAMES[self.root] + QUALITY_SUFFIX.get(
            self.intervals, "(" + ",".join(map(str, self.intervals)) + ")"
        )

    @property
    def pitch_classes(self) -> tuple[int, ...]:
        return tuple((self.root + i) % 12 for i in self.intervals)

    @property
    def end(self) -> float:
        return self.start + self.length


def scale_pitch_classes(key: int, mode: str) -> tuple[int, ...]:
    return tuple((key + i) % 12 for i in MODES[mode])


def diatonic_chord(key: int, mode: str, degree: int, size: int = 3, add9: bool = False) -> tuple[int, tuple[int, ...]]:
    """Root pitch class and intervals of the chord stacked in thirds on ``degree`` of the mode (size 3 or 4)."""
    scale = MODES[mode]
    steps = [0, 2, 4, 6][:size]
    absolute = [scale[(degree + s) % 7] + 12 * ((degree + s) // 7) for s in steps]
    root = absolute[0]
    intervals = [a - root for a in absolute]
    if add9:
        intervals.append(scale[(degree + 1) % 7] + 12 * ((degree + 1) // 7) - root + 12)
    return (key + root) % 12, tuple(intervals)


def scale_pitches(key: int, mode: str, low: int, high: int) -> list[int]:
    """All MIDI pitches of the scale between ``low`` and ``high`` inclusive."""
    pcs = set(scale_pitch_classes(key, mode))
    return [p for p in range(low, high + 1) if p % 12 in pcs]


def voice_chord(chord: Chord, low: int, high: int, previous: tuple[int, ...] | None, n_notes: int) -> tuple[int, ...]:
    """Close voicing of ``chord`` inside [low, high] nearest to ``previous`` (smooth voice leading)."""
    pcs = chord.pitch_classes
    candidates = []
    for inversion in range(len(pcs)):
        order = pcs[inversion:] + pcs[:inversion]
        for base in range(low, high - 6):
            if base % 12 != order[0]:
                continue
            notes = [base]
            for pc in order[1:]:
                nxt = notes[-1] + 1
                while nxt % 12 != pc:
                    nxt += 1
                notes.append(nxt)
            while len(notes) < n_notes:  # double from the bottom an octave up
                notes.append(notes[len(notes) - len(order)] + 12)
            notes = notes[:n_notes]
            if notes[-1] <= high:
                candidates.append(tuple(notes))
    if not candidates:
        return tuple(low + ((pc - low) % 12) for pc in pcs[:n_notes])
    if previous is None:
        centre = (low + high) / 2
        return min(candidates, key=lambda c: abs(sum(c) / len(c) - centre))
    prev_mean = sum(previous) / len(previous)
    return min(candidates, key=lambda c: abs(sum(c) / len(c) - prev_mean) + 0.1 * abs(c[0] - previous[0]))
