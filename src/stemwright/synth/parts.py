"""Note generators for each part of a song: drums, bass, comping, pads, arpeggios, melodies, backing vocals.

Generators return :class:`Note` lists in beats; :func:`humanise` turns them into seconds with timing and velocity
jitter (the "feel" of a player), after swing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stemwright.synth.compose import SongPlan
from stemwright.synth.theory import Chord, scale_pitches, voice_chord


@dataclass(frozen=True)
class Note:
    """One note. ``start``/``length`` in beats before :func:`humanise`, seconds after."""

    start: float
    length: float
    pitch: int
    velocity: int


# ---------------------------------------------------------------------------------------------------------- drums
GM_DRUMS = {
    "kick": 36,
    "rim": 37,
    "snare": 38,
    "clap": 39,
    "toml": 43,
    "hat": 42,
    "tomm": 47,
    "pedal": 44,
    "tomh": 50,
    "ohat": 46,
    "crash": 49,
    "ride": 51,
    "tamb": 54,
    "shaker": 70,
}

# 16th-note grids. x = hit, X = accent, o = ghost note, . = rest.
DRUM_PATTERNS_44: dict[str, list[dict[str, str]]] = {
    "rock": [
        {"kick": "x.......x.x.....", "snare": "....x.......x...", "hat": "x.x.x.x.x.x.x.x."},
        {"kick": "x.....x.x.......", "snare": "....x.......x...", "hat": "x.x.x.x.x.x.x.x."},
        {"kick": "x.x.....x.x.....", "snare": "....x.......x..o", "hat": "xxxxxxxxxxxxxxxx"},
        {"kick": "x.......xx......", "snare": "....X.......X...", "hat": "X.x.X.x.X.x.X.x."},
    ],
    "pop": [
        {"kick": "x.....x...x.....", "snare": "....x.......x...", "hat": "x.x.x.x.x.x.x.x."},
        {"kick": "x...x...x...x...", "clap": "....x.......x...", "hat": "..x...x...x...x."},
        {"kick": "x..x..x...x.....", "snare": "....x.......x...", "hat": "xxxxxxxxxxxxxxxx"},
        {
            "kick": "x.......x.x.....",
            "snare": "....x.......x...",
            "shaker": "xoxoxoxoxoxoxoxo",
            "hat": "x...x...x...x...",
        },
    ],
    "funk": [
        {"kick": "x..x..x...x..x..", "snare": "....x..o.o..x..o", "hat": "XxxxXxxxXxxxXxxx"},
        {"kick": "x.x...x..x.x....", "snare": "....x.o.o..ox...", "hat": "x.xxx.xxx.xxx.xx"},
        {
            "kick": "x......x.xx.....",
            "snare": "..o.x..o..o.x.o.",
            "hat": "xxxxxxxxxxxxxxxx",
            "tamb": "....x.......x...",
        },
    ],
    "hip-hop": [
        {"kick": "x......x..x.....", "snare": "....x.......x...", "hat": "x.x.x.x.x.x.x.x."},
        {"kick": "x.x.......xx....", "snare": "....x.......x...", "hat": "xxxxxxxxxxxxxxxx"},
        {"kick": "x......x.x......", "clap": "....x.......x...", "hat": "x.x.x.xxx.x.x.xx"},
    ],
    "electronic": [
        {"kick": "x...x...x...x...", "clap": "....x.......x...", "ohat": "..x...x...x...x.", "hat": "xxxxxxxxxxxxxxxx"},
        {"kick": "x...x...x...x...", "snare": "....x.......x...", "hat": "..x...x...x...x."},
        {"kick": "x...x...x...x..x", "clap": "....x.......x...", "hat": "x.xxx.xxx.xxx.xx"},
    ],
    "jazz": [
        {"ride": "x...x.x.x...x.x.", "pedal": "....x.......x...", "kick": "o...o...o...o..."},
        {"ride": "X...x.x.X...x.x.", "pedal": "....x.......x...", "kick": "o.......o......."},
    ],
    "ballad": [
        {"kick": "x.........x.....", "rim": "....x.......x...", "hat": "x.x.x.x.x.x.x.x."},
        {"kick": "x.......x.......", "snare": "....x.......x...", "ride": "x.x.x.x.x.x.x.x."},
        {"kick": "x.....x.........", "snare": "....x.......x...", "hat": "x.x.x.x.x.x.x.x."},
    ],
}
DRUM_PATTERNS_34 = [
    {"kick": "x...........", "snare": "....x...x...", "hat": "x.x.x.x.x.x."},
    {"kick": "x.......x...", "rim": "....x.......", "hat": "x...x...x..."},
    {"ride": "x...x.x.x.x.", "pedal": "....x...x...", "kick": "o..........."},
]
DRUM_PATTERNS_68 = [
    {"kick": "x.....x.....", "snare": "......x.....", "hat": "x.x.x.x.x.x."},
    {"kick": "x.......x...", "snare": "......x.....", "hat": "x.x.x.x.x.x."},
    {"kick": "x...........", "rim": "......x.....", "ride": "x.x.x.x.x.x."},
]
VELOCITY = {"X": 118, "x": 96, "o": 46}


def _drum_pattern(plan: SongPlan, rng: np.random.Generator) -> dict[str, str]:
    if plan.meter == (3, 4):
        pool = DRUM_PATTERNS_34[2:] if plan.style == "jazz" else DRUM_PATTERNS_34[:2]
    elif plan.meter == (6, 8):
        pool = DRUM_PATTERNS_68
    else:
        pool = DRUM_PATTERNS_44[plan.style]
    return dict(pool[int(rng.integers(len(pool)))])


def _section_variant(base: dict[str, str], name: str, rng: np.random.Generator, steps: int) -> dict[str, str]:
    """Thin the groove in intros, open it up in choruses and bridges."""
    pattern = dict(base)
    if name == "intro" and rng.random() < 0.5:
        pattern = {k: v for k, v in pattern.items() if k in ("hat", "ride", "shaker", "kick")}
    if name == "chorus" and "hat" in pattern and rng.random() < 0.5:
        swap = "ride" if rng.random() < 0.5 else "ohat"
        pattern[swap] = "x.x." * (steps // 4) if swap == "ride" else "..x." * (steps // 4)
        if swap == "ride":
            del pattern["hat"]
    if name == "bridge" and "hat" in pattern and rng.random() < 0.5:
        pattern["ride"] = pattern.pop("hat")
    return pattern


def _fill(steps: int, rng: np.random.Generator) -> list[tuple[int, str, str]]:
    """A fill over the last one or two beats: 16th notes walking down snare -> toms."""
    length = 4 if rng.random() < 0.6 else 8
    voices = ["snare", "tomh", "tomm", "toml"]
    out = []
    for i in range(steps - length, steps):
        if rng.random() < 0.85:
            voice = voices[min(3, (i - (steps - length)) * 4 // length)] if rng.random() < 0.7 else "snare"
            out.append((i, voice, "x" if rng.random() < 0.7 else "X"))
    return out


def drum_part(plan: SongPlan, rng: np.random.Generator) -> tuple[list[Note], dict]:
    """Drum hits as GM percussion notes (pitch = GM drum number). Returns notes and a description."""
    base = _drum_pattern(plan, rng)
    steps = plan.steps_per_bar
    notes: list[Note] = []
    tacet_intro = rng.random() < 0.2
    variants: dict[str, dict[str, str]] = {}
    for si, sec in enumerate(plan.sections):
        if sec.name == "intro" and tacet_intro:
            continue
        pattern = variants.setdefault(sec.name, _section_variant(base, sec.name, rng, steps))
        gain = 0.75 + 0.3 * sec.energy
        for bar in range(sec.bars):
            bar_start = sec.start + bar * plan.beats_per_bar
            last_bar = bar == sec.bars - 1 and si < len(plan.sections) - 1
            fill = _fill(steps, rng) if last_bar and rng.random() < 0.7 else []
            fill_from = min((s for s, _, _ in fill), default=steps)
            hits = [(s, v, c) for v, grid in pattern.items() for s, c in enumerate(grid) if c != "." and s < fill_from]
            hits += fill
            if (
                bar == 0
                and sec.name in ("chorus", "outro", "bridge")
                and not (sec.name == "bridge" and rng.random() < 0.5)
            ):
                hits.append((0, "crash", "X"))
            for step, voice, ch in hits:
                vel = int(np.clip(VELOCITY[ch] * gain, 1, 127))
                notes.append(Note(bar_start + step * 0.25, 0.25, GM_DRUMS[voice], vel))
            if plan.style == "jazz":  # comping snare: random off-beat ghost notes and accents
                for s in range(2, steps, 4):
                    if rng.random() < 0.25:
                        notes.append(Note(bar_start + s * 0.25, 0.25, GM_DRUMS["snare"], int(rng.integers(35, 80))))
    return notes, {"pattern": base, "tacet_intro": tacet_intro}


# ----------------------------------------------------------------------------------------------------------- bass
def _bass_root(pc: int, low: int = 28) -> int:
    return low + (pc - low) % 12


def bass_part(plan: SongPlan, rng: np.random.Generator, kick_steps: str | None) -> tuple[list[Note], dict]:
    """A bass line following the chords; the figure depends on the style."""
    figures = {
        "rock": ("eighths", "root_fifth", "driving_octaves"),
        "pop": ("root_fifth", "syncopated", "eighths"),
        "funk": ("funk", "syncopated"),
        "hip-hop": ("kick", "long"),
        "electronic": ("kick", "offbeat", "eighths"),
        "jazz": ("walking",),
        "ballad": ("long", "root_fifth"),
    }[plan.style]
    figure = figures[int(rng.integers(len(figures)))]
    if plan.meter != (4, 4) and figure in ("funk", "kick", "syncopated", "offbeat", "walking"):
        figure = "root_fifth"
    octave_up = 12 if rng.random() < 0.3 else 0
    scale = scale_pitches(plan.key, plan.mode, 24, 60)
    notes: list[Note] = []
    for ci, chord in enumerate(plan.chords):
        root = _bass_root(chord.root) + octave_up
        fifth = root + 7
        nxt = plan.chords[ci + 1] if ci + 1 < len(plan.chords) else chord
        next_root = _bass_root(nxt.root) + octave_up
        energy = plan.section_at(chord.start).energy
        vel = int(70 + 40 * energy)
        notes += _bass_figure(figure, chord, root, fifth, next_root, vel, plan, rng, scale, kick_steps)
    return notes, {"figure": figure, "octave_up": bool(octave_up)}


def _bass_figure(
    figure: str,
    chord: Chord,
    root: int,
    fifth: int,
    next_root: int,
    vel: int,
    plan: SongPlan,
    rng: np.random.Generator,
    scale: list[int],
    kick_steps: str | None,
) -> list[Note]:
    t0, length = chord.start, chord.length
    out: list[Note] = []
    if figure == "long":
        out.append(Note(t0, length * 0.95, root, vel))
        if length >= 4 and rng.random() < 0.5:
            out[-1] = Note(t0, length / 2 - 0.05, root, vel)
            out.append(Note(t0 + length / 2, length / 2 - 0.05, fifth if rng.random() < 0.5 else root, vel - 8))
    elif figure == "eighths":
        for i in range(int(length * 2)):
            pitch = root + (12 if i % 8 == 7 and rng.random() < 0.3 else 0)
            out.append(Note(t0 + i * 0.5, 0.42, pitch, vel + (8 if i % 2 == 0 else -4)))
    elif figure == "driving_octaves":
        for i in range(int(length * 2)):
            out.append(Note(t0 + i * 0.5, 0.4, root + (12 if i % 2 else 0), vel))
    elif figure == "root_fifth":
        half = plan.beats_per_bar / 2 if plan.meter != (3, 4) else 2.0
        t = 0.0
        while t < length - 1e-6:
            pitch = root if (t // half) % 2 == 0 else (fifth if rng.random() < 0.7 else root + 12)
            out.append(Note(t0 + t, min(half, length - t) * 0.9, pitch, vel))
            t += half
    elif figure in ("syncopated", "funk", "offbeat", "kick"):
        grids = {
            "syncopated": ("x..x..x...x..x..", "x.....x..x..x..."),
            "funk": ("x.xx..x.x.xx.x.x", "x..x.xx...x.xx.x"),
            "offbeat": ("..x...x...x...x.",),
            "kick": (kick_steps or "x......x..x.....",),
        }[figure]
        grid = grids[int(rng.integers(len(grids)))]
        for bar_off in np.arange(0, length - 1e-6, plan.beats_per_bar):
            for s, c in enumerate(grid):
                if c == "." or bar_off + s * 0.25 >= length:
                    continue
                span = next((k for k in range(1, 16) if s + k >= len(grid) or grid[s + k] != "."), 1)
                pitch = root
                if figure == "funk" and s % 4 != 0 and rng.random() < 0.3:  # octave/fifth pops off the beat
                    pitch = root + (12 if rng.random() < 0.6 else 7)
                dur = 0.2 if figure == "funk" else span * 0.25 * 0.9
                out.append(Note(t0 + bar_off + s * 0.25, dur, pitch, vel if s % 4 == 0 else vel - 12))
    elif figure == "walking":
        beats = int(length)
        tones = [root, root + chord.intervals[1], root + chord.intervals[2]]
        for b in range(beats):
            if b == 0:
                pitch = root
            elif b == beats - 1:  # chromatic or scale approach to the next root
                pitch = next_root + (1 if rng.random() < 0.5 else -1)
            else:
                pitch = int(rng.choice(tones + [p for p in scale if abs(p - root) <= 9]))
            out.append(Note(t0 + b, 0.9, int(np.clip(pitch, 28, 60)), vel - (0 if b == 0 else 10)))
    return out


# ------------------------------------------------------------------------------------------------- harmony parts
COMP_GRIDS_44 = (
    "x---x---x---x---",
    "x-------x-------",
    "x--x--x-x--x--x-",
    "..x...x...x...x.",
    "x-.x-.x-x-.x-.x.",
    "x.x.x.x.x.x.x.x.",
    "x-x-x-x-x-x-x-x-",
    "x---------x-----",
)
COMP_GRIDS_JAZZ = ("x.....x.........", "x..x-...........", "....x.......x...", "x.........x-....")
COMP_GRIDS_3 = ("x---x---x---", "x-----------", "x...x-..x-..", "x-x-x-x-x-x-")


def _grid_hits(grid: str) -> list[tuple[int, int]]:
    """(step, length in steps) of each hit of a comping grid; '-' sustains, '.' is silence."""
    hits = []
    for s, c in enumerate(grid):
        if c == "x":
            n = 1
            while s + n < len(grid) and grid[s + n] == "-":
                n += 1
            hits.append((s, n))
    return hits


def comp_part(
    plan: SongPlan, rng: np.random.Generator, low: int, high: int, n_notes: int, strum: bool, active: tuple[str, ...]
) -> tuple[list[Note], dict]:
    """Rhythmic chords (piano, guitar, organ, brass stabs...). Guitar-like parts strum: notes spread a few ms."""
    if plan.meter != (4, 4):
        grids = COMP_GRIDS_3
    else:
        grids = COMP_GRIDS_JAZZ if plan.style == "jazz" else COMP_GRIDS_44
    by_section: dict[str, str] = {}
    notes: list[Note] = []
    previous = None
    for chord in plan.chords:
        sec = plan.section_at(chord.start)
        if sec.name not in active:
            continue
        grid = by_section.setdefault(sec.name, grids[int(rng.integers(len(grids)))])
        voicing = voice_chord(chord, low, high, previous, n_notes)
        previous = voicing
        vel = int(62 + 40 * sec.energy)
        for bar_off in np.arange(0, chord.length - 1e-6, plan.beats_per_bar):
            for hi, (s, n) in enumerate(_grid_hits(grid)):
                start = bar_off + s * 0.25
                if start >= chord.length - 1e-6:
                    continue
                dur = min(n * 0.25, chord.length - start) * 0.92
                up = strum and hi % 2 == 1
                order = voicing[::-1] if up else voicing
                for k, p in enumerate(order):
                    offset = k * 0.03 * (plan.tempo / 120) if strum else 0.0  # ~15 ms per string at 120 BPM
                    notes.append(
                        Note(
                            chord.start + start + offset,
                            max(0.1, dur - offset),
                            p,
                            int(np.clip(vel - (10 if up else 0) + rng.integers(-6, 7), 1, 127)),
                        )
                    )
    return notes, {"grids": by_section, "range": [low, high], "voices": n_notes, "strum": strum}


def pad_part(
    plan: SongPlan, rng: np.random.Generator, low: int, high: int, active: tuple[str, ...]
) -> tuple[list[Note], dict]:
    """Sustained chords (strings, pads, organs, choirs)."""
    notes: list[Note] = []
    previous = None
    n_notes = int(rng.integers(3, 5))
    for chord in plan.chords:
        sec = plan.section_at(chord.start)
        if sec.name not in active:
            continue
        voicing = voice_chord(chord, low, high, previous, n_notes)
        previous = voicing
        for p in voicing:
            notes.append(Note(chord.start, chord.length * 0.98, p, int(50 + 40 * sec.energy)))
    return notes, {"range": [low, high], "voices": n_notes}


def arp_part(
    plan: SongPlan, rng: np.random.Generator, low: int, high: int, active: tuple[str, ...]
) -> tuple[list[Note], dict]:
    """Arpeggiated chords in 8ths or 16ths, up, down or up-down."""
    rate = 0.25 if rng.random() < 0.5 and plan.tempo < 125 else 0.5
    shape = ("up", "down", "updown")[int(rng.integers(3))]
    notes: list[Note] = []
    previous = None
    for chord in plan.chords:
        sec = plan.section_at(chord.start)
        if sec.name not in active:
            continue
        voicing = list(voice_chord(chord, low, high, previous, 4))
        previous = tuple(voicing)
        seq = voicing if shape == "up" else voicing[::-1] if shape == "down" else voicing + voicing[-2:0:-1]
        for i in range(int(round(chord.length / rate))):
            notes.append(
                Note(
                    chord.start + i * rate,
                    rate * 0.9,
                    seq[i % len(seq)],
                    int(55 + 35 * sec.energy + (10 if i % 4 == 0 else 0)),
                )
            )
    return notes, {"rate_beats": rate, "shape": shape, "range": [low, high]}


# ------------------------------------------------------------------------------------------------------- melodies
RHYTHM_CELLS_44 = (
    "x-x-x---x-x-x---",
    "x--x--x-x-------",
    "x-x-x-x-x---x---",
    "..x-x-x-x-x-x---",
    "x---x---x-------",
    "x-xxx-x-x---....",
    "....x-x-x--x-x--",
    "x-----x-x-x-x---",
)
RHYTHM_CELLS_3 = ("x-x-x-x-----", "x---x-x-x---", "x-----x-x-x-", "..x-x-x-x---")


def melody_part(
    plan: SongPlan, rng: np.random.Generator, low: int, high: int, active: tuple[str, ...], density: float = 1.0
) -> tuple[list[Note], dict]:
    """A melodic line: chord tones on strong beats, scale steps between, phrases of two bars with rests.

    Rhythms are chosen once per section name, so a repeated chorus repeats its rhythm (a motif).
    """
    cells = RHYTHM_CELLS_3 if plan.meter != (4, 4) else RHYTHM_CELLS_44
    scale = scale_pitches(plan.key, plan.mode, low, high)
    rhythm: dict[str, list[str]] = {}
    notes: list[Note] = []
    idx = len(scale) // 2
    for sec in plan.sections:
        if sec.name not in active:
            continue
        phrase = rhythm.setdefault(sec.name, [cells[int(rng.integers(len(cells)))] for _ in range(2)])
        for bar in range(sec.bars):
            if bar % 4 == 3 and rng.random() < 0.6 or rng.random() > density:  # breathe between phrases
                continue
            bar_start = sec.start + bar * plan.beats_per_bar
            hits = _grid_hits(phrase[bar % 2])
            for hi, (s, n) in enumerate(hits):
                t = bar_start + s * 0.25
                chord = plan.chords_between(t, t + 0.01)
                strong = s % 4 == 0
                idx = int(np.clip(idx + rng.choice([-2, -1, -1, 0, 1, 1, 2]), 0, len(scale) - 1))
                pitch = scale[idx]
                if chord and (strong or hi == len(hits) - 1):
                    pcs = chord[0].pitch_classes
                    pitch = min((p for p in scale if p % 12 in pcs), key=lambda p: abs(p - pitch), default=pitch)
                    idx = scale.index(pitch) if pitch in scale else idx
                vel = int(np.clip(72 + 30 * sec.energy + (8 if strong else 0) + rng.integers(-8, 9), 1, 127))
                notes.append(Note(t, n * 0.25 * 0.9, pitch, vel))
    return notes, {"range": [low, high], "rhythms": rhythm}


# --------------------------------------------------------------------------------------------------- humanising
def humanise(
    notes: list[Note], plan: SongPlan, rng: np.random.Generator, timing_ms: float, velocity_sd: float
) -> list[Note]:
    """Swing, then Gaussian timing (ms) and velocity jitter; returns notes in seconds."""
    out = []
    spb = plan.seconds_per_beat()
    for n in notes:
        start = plan.swung(n.start) * spb + rng.normal(0.0, timing_ms / 1000.0)
        start = max(0.0, start)
        vel = int(np.clip(round(n.velocity + rng.normal(0.0, velocity_sd)), 1, 127))
        out.append(Note(start, max(0.02, n.length * spb), n.pitch, vel))
    return out
