"""Random but musical composition: the song plan (style, tempo, key, mode, meter, sections, chords).

Times inside the plan are in beats (quarter notes); the tempo is constant, so ``seconds = beats * 60 / tempo``.
A 16th-note grid is used for rhythms: 16 steps per 4/4 bar, 12 per 3/4 or 6/8 bar.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from stemwright.synth.theory import JAZZ_PROGRESSIONS, NOTE_NAMES, PROGRESSIONS, Chord, diatonic_chord

STYLES = ("rock", "pop", "funk", "hip-hop", "electronic", "jazz", "ballad")

# Per style: tempo range (BPM), modes, meters with weights, swing range (0 straight .. 1 triplet), swing unit (beats).
STYLE_TRAITS: dict[str, dict] = {
    "rock": {
        "tempo": (96, 150),
        "modes": ("major", "minor", "mixolydian"),
        "meters": {(4, 4): 0.85, (6, 8): 0.15},
        "swing": (0.0, 0.0),
        "swing_unit": 0.5,
    },
    "pop": {
        "tempo": (88, 128),
        "modes": ("major", "minor"),
        "meters": {(4, 4): 0.9, (3, 4): 0.1},
        "swing": (0.0, 0.15),
        "swing_unit": 0.25,
    },
    "funk": {
        "tempo": (88, 118),
        "modes": ("dorian", "mixolydian", "minor"),
        "meters": {(4, 4): 1.0},
        "swing": (0.0, 0.35),
        "swing_unit": 0.25,
    },
    "hip-hop": {
        "tempo": (78, 100),
        "modes": ("minor", "dorian"),
        "meters": {(4, 4): 1.0},
        "swing": (0.1, 0.6),
        "swing_unit": 0.25,
    },
    "electronic": {
        "tempo": (115, 135),
        "modes": ("minor", "major", "dorian"),
        "meters": {(4, 4): 1.0},
        "swing": (0.0, 0.0),
        "swing_unit": 0.25,
    },
    "jazz": {
        "tempo": (100, 200),
        "modes": ("major", "minor", "dorian"),
        "meters": {(4, 4): 0.8, (3, 4): 0.2},
        "swing": (0.6, 1.0),
        "swing_unit": 0.5,
    },
    "ballad": {
        "tempo": (58, 84),
        "modes": ("major", "minor"),
        "meters": {(4, 4): 0.65, (3, 4): 0.2, (6, 8): 0.15},
        "swing": (0.0, 0.0),
        "swing_unit": 0.5,
    },
}

# Song forms: (section name, bars in a full-length song). Shorter songs take a random window of the form.
FORMS = (
    (
        ("intro", 4),
        ("verse", 8),
        ("chorus", 8),
        ("verse", 8),
        ("chorus", 8),
        ("bridge", 8),
        ("chorus", 8),
        ("outro", 4),
    ),
    (("intro", 2), ("verse", 8), ("verse", 8), ("chorus", 8), ("bridge", 4), ("chorus", 8), ("outro", 4)),
    (("intro", 4), ("chorus", 8), ("verse", 8), ("chorus", 8), ("verse", 8), ("chorus", 8), ("outro", 2)),
    (
        ("intro", 4),
        ("verse", 4),
        ("chorus", 4),
        ("verse", 4),
        ("chorus", 4),
        ("bridge", 4),
        ("chorus", 8),
        ("outro", 4),
    ),
)
ENERGY = {"intro": 0.45, "verse": 0.6, "chorus": 0.95, "bridge": 0.7, "outro": 0.5}
VOCAL_SECTIONS = ("verse", "chorus", "bridge")


@dataclass(frozen=True)
class Section:
    """A song section. ``start``/``end`` in beats."""

    name: str
    start_bar: int
    bars: int
    start: float
    end: float
    energy: float
    vocals: bool


@dataclass
class SongPlan:
    """Everything the part generators need to know about the song."""

    seed: int
    seconds: float
    style: str
    tempo: float
    key: int
    mode: str
    meter: tuple[int, int]
    swing: float
    swing_unit: float
    sections: list[Section]
    chords: list[Chord]
    section_progressions: dict[str, tuple[int, ...]] = field(default_factory=dict)

    @property
    def beats_per_bar(self) -> float:
        return self.meter[0] * 4 / self.meter[1]

    @property
    def steps_per_bar(self) -> int:
        return int(round(self.beats_per_bar * 4))

    @property
    def total_beats(self) -> float:
        return self.sections[-1].end

    def seconds_per_beat(self) -> float:
        return 60.0 / self.tempo

    def to_seconds(self, beats: float) -> float:
        return beats * 60.0 / self.tempo

    def swung(self, beat: float) -> float:
        """Delay off-beat positions of the swing unit towards the triplet position (swing 1 = 2:1)."""
        unit = self.swing_unit
        pos = beat % (2 * unit)
        if self.swing > 0 and abs(pos - unit) < 1e-6:
            return beat + self.swing * unit / 3
        return beat

    def chords_between(self, start: float, end: float) -> list[Chord]:
        return [c for c in self.chords if c.start < end and c.end > start]

    def section_at(self, beat: float) -> Section:
        for s in self.sections:
            if s.start <= beat < s.end:
                return s
        return self.sections[-1]

    def to_json(self) -> dict:
        spb = self.seconds_per_beat()
        return {
            "style": self.style,
            "tempo_bpm": round(self.tempo, 3),
            "key": NOTE_NAMES[self.key],
            "mode": self.mode,
            "meter": f"{self.meter[0]}/{self.meter[1]}",
            "swing": round(self.swing, 3),
            "sections": [
                {
                    "name": s.name,
                    "start_bar": s.start_bar,
                    "bars": s.bars,
                    "start_s": round(s.start * spb, 4),
                    "end_s": round(s.end * spb, 4),
                    "energy": s.energy,
                    "vocals": s.vocals,
                }
                for s in self.sections
            ],
            "progressions": {k: list(v) for k, v in self.section_progressions.items()},
            "chords": [
                {
                    "name": c.name,
                    "degree": c.degree + 1,
                    "start_s": round(c.start * spb, 4),
                    "end_s": round(c.end * spb, 4),
                }
                for c in self.chords
            ],
        }


def _weighted_choice(rng: np.random.Generator, options: dict):
    keys = list(options)
    probs = np.array([options[k] for k in keys], dtype=float)
    return keys[int(rng.choice(len(keys), p=probs / probs.sum()))]


def _plan_sections(rng: np.random.Generator, bars_needed: int) -> list[tuple[str, int]]:
    """Pick a form and a window of it covering ``bars_needed`` bars; short songs shrink sections to 4 bars."""
    form = list(FORMS[int(rng.integers(len(FORMS)))])
    if bars_needed < sum(b for _, b in form):
        form = [(n, min(b, 4) if bars_needed <= 24 else b) for n, b in form]
    total = sum(b for _, b in form)
    while total < bars_needed:  # long songs: repeat chorus/verse pairs before the outro
        form[-1:-1] = [("verse", 8), ("chorus", 8)]
        total += 16
    # Random start at a section boundary so short songs are not always intro+verse.
    starts = [i for i in range(len(form)) if sum(b for _, b in form[i:]) >= bars_needed]
    first = int(rng.choice(starts)) if rng.random() < 0.6 else 0
    out, bars = [], 0
    for name, b in form[first:]:
        if bars >= bars_needed:
            break
        out.append((name, b))
        bars += b
    return out


def _progression(rng: np.random.Generator, style: str, mode: str) -> tuple[int, ...]:
    pool = JAZZ_PROGRESSIONS if style == "jazz" else PROGRESSIONS[mode]
    return pool[int(rng.integers(len(pool)))]


def _chord_for(rng: np.random.Generator, style: str, key: int, mode: str, degree: int) -> tuple[int, tuple[int, ...]]:
    sevenths = {"jazz": 1.0, "funk": 0.7, "hip-hop": 0.5, "ballad": 0.35, "pop": 0.2, "electronic": 0.25, "rock": 0.05}
    size = 4 if rng.random() < sevenths[style] else 3
    add9 = style in ("jazz", "ballad", "hip-hop") and rng.random() < 0.3
    root, intervals = diatonic_chord(key, mode, degree, size=size, add9=add9)
    if size == 3 and style in ("pop", "rock", "ballad") and rng.random() < 0.08 and intervals == (0, 4, 7):
        intervals = (0, 5, 7) if rng.random() < 0.5 else (0, 2, 7)  # occasional sus chord
    return root, intervals


def plan_song(seed: int, seconds: float, style: str | None = None) -> SongPlan:
    """Draw the song's global parameters, sections and chords from ``seed``."""
    rng = np.random.default_rng([seed, 1])
    style = style or STYLES[int(rng.integers(len(STYLES)))]
    if style not in STYLE_TRAITS:
        raise ValueError(f"style must be one of {', '.join(STYLES)}, got {style!r}")
    traits = STYLE_TRAITS[style]
    tempo = float(np.round(rng.uniform(*traits["tempo"]), 1))
    meter = _weighted_choice(rng, traits["meters"])
    mode = traits["modes"][int(rng.integers(len(traits["modes"])))]
    key = int(rng.integers(12))
    swing = float(rng.uniform(*traits["swing"])) if traits["swing"][1] > 0 else 0.0
    beats_per_bar = meter[0] * 4 / meter[1]
    bars_needed = math.ceil(seconds * tempo / 60.0 / beats_per_bar) + 1  # +1 bar so reverb tails are natural
    layout = _plan_sections(rng, bars_needed)
    progressions: dict[str, tuple[int, ...]] = {}
    chord_bars: dict[str, float] = {}  # bars per chord for each section type
    sections, chords, bar = [], [], 0
    vocal_bridge = rng.random() < 0.5
    for name, bars in layout:
        if name not in progressions:
            progressions[name] = _progression(rng, style, mode)
            chord_bars[name] = float(rng.choice([1.0, 0.5, 2.0], p=[0.7, 0.15, 0.15])) if meter == (4, 4) else 1.0
        start = bar * beats_per_bar
        end = (bar + bars) * beats_per_bar
        vocals = name in ("verse", "chorus") or (name == "bridge" and vocal_bridge)
        sections.append(Section(name, bar, bars, start, end, ENERGY[name], vocals))
        prog = progressions[name]
        length = chord_bars[name] * beats_per_bar
        t, i = start, 0
        while t < end - 1e-9:
            degree = prog[i % len(prog)]
            root, intervals = _chord_for(rng, style, key, mode, degree)
            chords.append(Chord(root, intervals, degree, t, min(length, end - t)))
            t += length
            i += 1
        bar += bars
    return SongPlan(
        seed=seed,
        seconds=seconds,
        style=style,
        tempo=tempo,
        key=key,
        mode=mode,
        meter=meter,
        swing=swing,
        swing_unit=traits["swing_unit"],
        sections=sections,
        chords=chords,
        section_progressions=progressions,
    )
