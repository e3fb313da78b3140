"""Accuracy of ``stemwright.analysis.analyze`` on songs made by ``stemwright synth`` (tempo, beats, bar lines, key
and chords known exactly from each song's ``song.json``), plus real songs reported as-is (no truth).

Metrics:
- tempo: within +-2 % of the true BPM, no credit for half / double time (octave errors counted apart); "no steady
  tempo" counts as wrong;
- beat F and downbeat F: ``mir_eval.beat.f_measure`` (+-70 ms) against the song's true grid (``tempo_bpm``, meter);
- key: exact tonic and mode (church modes by their third: dorian as minor, mixolydian as major) and the MIREX
  weighted score (``mir_eval.key.weighted_score``);
- chords: ``mir_eval.chord`` majmin and sevenths, duration-weighted, the truth cut at the song's length;
- calibration: the reliability table (songs and share right per confidence bin) of the tempo, the key, the meter
  (beats per bar), the downbeats (right: downbeat F >= 0.8) and the beats against the tempo's confidence (beat F
  >= 0.8); the
  octave errors the analysis flagged (``octave_uncertain``);
- ``--compare``: the candidate beat trackers on the same songs (tempo from the median beat interval, beat F,
  downbeat F where the tracker gives downbeats): librosa's ``beat_track`` on the drums + bass onsets, librosa's PLP,
  madmom's RNN + DBN downbeat tracker on the mix (only where ``madmom`` imports: its models are CC BY-NC-SA,
  not shipped with stemwright) and stemwright's own analysis.

Usage::

    stemwright synth -o /tmp/held -n 40 -s 20 --seed 202                       # seeds not used for any choice
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_analysis.py /tmp/held [--separated /tmp/held-classic]
        [--real ../shared/data/mixtures]

``--separated DIR``: analyse ``DIR/<song>/`` (e.g. ``stemwright separate -m classic`` of each ``mixture.wav``,
moved to the song's name) against the truth of ``FOLDER/<song>/song.json`` instead of the true stems.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

NOTES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
FLATS = {"Db": 1, "Eb": 3, "Gb": 6, "Ab": 8, "Bb": 10}
# Church modes scored by their third, as major/minor key detection does (D dorian counts as D minor).
MODE_CLASS = {"major": "major", "ionian": "major", "lydian": "major", "mixolydian": "major",
              "minor": "minor", "aeolian": "minor", "dorian": "minor", "phrygian": "minor", "locrian": "minor"}
# stemwright synth chord names (synth/theory.py QUALITY_SUFFIX) -> Harte syntax (mir_eval)
HARTE = {"": "maj", "m": "min", "dim": "dim", "aug": "aug", "maj7": "maj7", "m7": "min7", "7": "7", "m7b5": "hdim7",
         "sus2": "sus2", "sus4": "sus4", "add9": "maj(9)", "madd9": "min(9)", "m9": "min9", "maj9": "maj9", "9": "9"}


def harte(name: str) -> str:
    """'Bbm7' -> 'Bb:min7'; a chord the generator names by its intervals ('D(0,3,6,10,13)') -> 'X' (not scored)."""
    root, suffix = re.match(r"([A-G][b#]?)(.*)$", name).groups()
    return f"{root}:{HARTE[suffix]}" if suffix in HARTE else "X"


def truth(song: Path) -> dict:
    meta = json.loads((song / "song.json").read_text())
    num, den = (int(x) for x in meta["meter"].split("/"))
    bpb = round(num * 4 / den)
    tempo, seconds = float(meta["tempo_bpm"]), float(meta["seconds"])
    beats = np.arange(0.0, seconds - 1e-6, 60.0 / tempo)
    chords = [c for c in meta.get("chords", []) if c["start_s"] < seconds]
    return {"tempo": tempo, "bpb": bpb, "beats": beats, "downbeats": beats[::bpb], "meter": meta["meter"],
            "tonic": NOTES.index(meta["key"]) if meta["key"] in NOTES else FLATS[meta["key"]],
            "mode": MODE_CLASS[meta["mode"]], "style": meta["style"],
            "chord_intervals": np.array([[c["start_s"], min(seconds, c["end_s"])] for c in chords]),
            "chord_labels": [harte(c["name"]) for c in chords]}


def chord_scores(t: dict, chords) -> tuple[float, float]:
    import mir_eval

    est_i = np.array([[c.start, c.end] for c in chords]) if chords else np.array([[0.0, t["chord_intervals"].max()]])
    est_l = [c.label for c in chords] or ["N"]
    ref_i, ref_l = t["chord_intervals"], t["chord_labels"]
    est_i, est_l = mir_eval.util.adjust_intervals(est_i, est_l, ref_i.min(), ref_i.max(), "N", "N")
    ints, ref, est = mir_eval.util.merge_labeled_intervals(ref_i, ref_l, est_i, est_l)
    dur = mir_eval.util.intervals_to_durations(ints)
    return tuple(float(mir_eval.chord.weighted_accuracy(f(ref, est), dur))
                 for f in (mir_eval.chord.majmin, mir_eval.chord.sevenths))


def score(song: Path, stems_dir: Path, wanted: list[str]) -> dict:
    import mir_eval

    from stemwright.analysis import analyze
    from stemwright.mixer.stems import load_stems

    t = truth(song)
    stems = load_stems(stems_dir)
    stems.audio = {k: v for k, v in stems.audio.items() if k in wanted}
    t0 = time.perf_counter()
    a = analyze(stems)
    seconds = time.perf_counter() - t0
    ratio = (a.tempo_bpm or 0.0) / t["tempo"]
    est_key = f"{NOTES[a.key_tonic]} {a.key_mode}"
    majmin, sevenths = chord_scores(t, a.chords)
    return {
        "song": song.name, "style": t["style"], "true_bpm": t["tempo"], "bpm": a.tempo_bpm, "conf": a.tempo_confidence,
        "tempo_ok": abs(ratio - 1) <= 0.02, "octave": any(abs(ratio / m - 1) <= 0.02 for m in (1 / 3, 0.5, 2, 3)),
        "meter": t["meter"], "bpb": a.beats_per_bar,
        "beat_f": mir_eval.beat.f_measure(t["beats"], np.array(a.beats)),
        "downbeat_f": mir_eval.beat.f_measure(t["downbeats"], np.array(a.downbeats)),
        "key": f"{NOTES[t['tonic']]} {t['mode']}", "est_key": est_key,
        "key_ok": (a.key_tonic, a.key_mode) == (t["tonic"], t["mode"]),
        "key_mirex": mir_eval.key.weighted_score(f"{NOTES[t['tonic']]} {t['mode']}", est_key),
        "majmin": majmin, "sevenths": sevenths, "seconds": seconds, "unsure": a.octave_uncertain,
        "key_conf": a.key_confidence,
        "meter_ok": a.beats_per_bar == t["bpb"], "meter_conf": a.meter_confidence,
        "down_conf": a.downbeat_confidence,
    }


def report(rows: list[dict], label: str) -> None:
    print(f"{'song':<18}{'style':<11}{'true':>7}{'est':>8}{'conf':>6} {'meter':>5}{'bpb':>4}{'beatF':>6}{'dbF':>6}"
          f"  {'key':<10}{'est key':<10}{'majmin':>7}{'7ths':>6}")
    for r in rows:
        bpm = f"{r['bpm']:8.2f}" if r["bpm"] is not None else f"{'none':>8}"
        print(f"{r['song']:<18}{r['style']:<11}{r['true_bpm']:7.1f}{bpm}{r['conf']:6.2f} {r['meter']:>5}{r['bpb']:4d}"
              f"{r['beat_f']:6.2f}{r['downbeat_f']:6.2f}  {r['key']:<10}{r['est_key']:<10}{r['majmin']:7.2f}"
              f"{r['sevenths']:6.2f}")
    mean = lambda k: float(np.mean([float(r[k]) for r in rows]))  # noqa: E731
    sure = [r for r in rows if r["conf"] >= 0.9]
    print(f"\n{len(rows)} songs, {label}")
    print(f"tempo within 2 % (no octave credit) {mean('tempo_ok'):.2f}  (octave errors {mean('octave'):.2f})")
    print(f"tempo confidence >= 0.9             {len(sure)} songs, right {np.mean([r['tempo_ok'] for r in sure]) if sure else float('nan'):.2f}")
    print(f"beat F (+-70 ms)                    {mean('beat_f'):.2f}")
    print(f"downbeat F (+-70 ms)                {mean('downbeat_f'):.2f}")
    print(f"key exact                           {mean('key_ok'):.2f}  (MIREX weighted {mean('key_mirex'):.2f})")
    print(f"chords majmin / sevenths            {mean('majmin'):.2f} / {mean('sevenths'):.2f}")
    print(f"seconds per song                    {mean('seconds'):.2f}")
    octave = [r for r in rows if r["octave"]]
    print(f"octave errors flagged octave_uncertain {sum(r['unsure'] for r in octave)} of {len(octave)}")
    reliability(rows, "conf", "tempo_ok", "tempo")
    reliability(rows, "key_conf", "key_ok", "key")
    reliability(rows, "meter_conf", "meter_ok", "meter")
    for r in rows:
        r["down_ok"] = r["downbeat_f"] >= DOWNBEATS_RIGHT
    reliability(rows, "down_conf", "down_ok", f"downbeat (right: downbeat F >= {DOWNBEATS_RIGHT})")
    for r in rows:  # the beat grid has no confidence of its own: the tempo's is what a user reads for it
        r["beats_ok"] = r["beat_f"] >= DOWNBEATS_RIGHT
    reliability(rows, "conf", "beats_ok", f"tempo confidence for the beats (right: beat F >= {DOWNBEATS_RIGHT})")


BINS = (0.0, 0.5, 0.9, 1.0001)
DOWNBEATS_RIGHT = 0.8  # a song's downbeats (beats) count as right in the reliability tables from this F on


def reliability(rows: list[dict], conf: str, ok: str, what: str) -> None:
    """Songs and share right per confidence bin: the confidence means something when the >= 0.9 bin is >= 95 % right."""
    print(f"reliability of the {what} confidence:  " + "   ".join(
        f"[{lo:.1f}, {min(hi, 1.0):.1f}{']' if hi > 1 else ')'}: {len(b)} songs, right "
        + (f"{np.mean([r[ok] for r in b]):.2f}" if b else "-")
        for lo, hi in zip(BINS[:-1], BINS[1:]) for b in [[r for r in rows if lo <= r[conf] < hi]]))


def _mono(folder: Path, names: tuple[str, ...]) -> tuple[np.ndarray, int]:
    import soundfile as sf

    total, rate = None, 0
    for n in names:
        x, rate = sf.read(str(folder / f"{n}.wav"), dtype="float32", always_2d=True)
        total = x.mean(axis=1) if total is None else total + x.mean(axis=1)
    return total, rate


def tracker_beats(song: Path, stems_dir: Path) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """Beats (and downbeats, or None) of each candidate tracker on one song."""
    import librosa

    rhythm, rate = _mono(stems_dir, ("drums", "bass"))
    y = librosa.resample(rhythm, orig_sr=rate, target_sr=22050)
    onset = librosa.onset.onset_strength(y=y, sr=22050, hop_length=512)
    to_t = lambda f: librosa.frames_to_time(f, sr=22050, hop_length=512)  # noqa: E731
    out = {"librosa beat_track (drums+bass)": (to_t(librosa.beat.beat_track(onset_envelope=onset, sr=22050,
                                                                         hop_length=512)[1]), None)}
    pulse = librosa.beat.plp(onset_envelope=onset, sr=22050, hop_length=512)
    out["librosa PLP (drums+bass)"] = (to_t(np.flatnonzero(librosa.util.localmax(pulse))), None)
    try:
        from madmom.audio.signal import Signal
        from madmom.features.downbeats import DBNDownBeatTrackingProcessor, RNNDownBeatProcessor
    except Exception:  # madmom is optional (and its models non-commercial): compared only where it imports
        pass
    else:
        mix, rate = _mono(stems_dir, ("drums", "bass", "other", "vocals"))
        act = RNNDownBeatProcessor()(Signal(mix, sample_rate=rate, num_channels=1))
        bd = DBNDownBeatTrackingProcessor(beats_per_bar=[3, 4], fps=100)(act)
        out["madmom RNN+DBN (mix)"] = (bd[:, 0], bd[bd[:, 1] == 1, 0])
    return out


def compare(songs: list[Path], stems_of, rows: list[dict]) -> None:
    import mir_eval

    table: dict[str, list[tuple[bool, float, float]]] = {}
    for song in songs:
        t = truth(song)
        for name, (beats, downs) in tracker_beats(song, stems_of(song)).items():
            bpm = 60.0 / np.median(np.diff(beats)) if len(beats) > 2 else 0.0
            table.setdefault(name, []).append((
                abs(bpm / t["tempo"] - 1) <= 0.02, mir_eval.beat.f_measure(t["beats"], beats),
                mir_eval.beat.f_measure(t["downbeats"], downs) if downs is not None else float("nan")))
    # stemwright's own row: its reported tempo ("no steady tempo" counts as wrong), from the main table
    table["stemwright analyze (stems)"] = [(r["tempo_ok"], r["beat_f"], r["downbeat_f"]) for r in rows]
    print(f"\ntrackers on the same {len(songs)} songs (tempo from the median beat interval, +-2 %)")
    print(f"{'tracker':<32}{'tempo':>7}{'beat F':>8}{'downbeat F':>12}")
    for name, rows in table.items():
        ok, bf, df = (np.mean([r[i] for r in rows]) for i in range(3))
        print(f"{name:<32}{ok:7.2f}{bf:8.2f}{df:12.2f}")


def real_songs(folder: Path) -> None:
    from stemwright.analysis.song import analyze_path

    print(f"\nreal songs in {folder} (as-is, no truth)")
    for f in sorted(p for p in folder.iterdir() if p.suffix.lower() in (".ogg", ".mp3", ".wav", ".flac")):
        a = analyze_path(f)
        tempo = f"{a.tempo_bpm:.2f} BPM" if a.tempo_bpm is not None else f"no steady tempo ({a.tempo_note})"
        print(f"{f.name[:48]:<50}{tempo} conf {a.tempo_confidence:.2f}, {a.time_signature}, {a.key} "
              f"({a.key_confidence:.2f}), {len(a.beats)} beats in {a.duration_s:.0f} s, {len(a.chords)} chords")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="a folder of `stemwright synth` songs")
    parser.add_argument("--stems", default="drums,bass,other,vocals", help="stems given to the analysis")
    parser.add_argument("--separated", type=Path, help="analyse DIR/<song>/ stems instead of the true stems")
    parser.add_argument("--real", type=Path, help="also analyse the audio files of this folder as-is")
    parser.add_argument("--limit", type=int, default=0, help="only the first N songs")
    parser.add_argument("--compare", action="store_true", help="also compare the candidate beat trackers")
    args = parser.parse_args()
    songs = sorted(p for p in args.folder.iterdir() if (p / "song.json").is_file())
    if args.separated:
        songs = [s for s in songs if (args.separated / s.name).is_dir()]
    if args.limit:
        songs = songs[:args.limit]
    if not songs:
        sys.exit(f"error: {args.folder}: no synth songs (folders with song.json)")
    wanted = args.stems.split(",")
    rows = [score(s, args.separated / s.name if args.separated else s, wanted) for s in songs]
    report(rows, f"stems {args.stems} ({'separated: ' + str(args.separated) if args.separated else 'true stems'})")
    if args.compare:
        compare(songs, lambda s: args.separated / s.name if args.separated else s, rows)
    if args.real:
        real_songs(args.real)


if __name__ == "__main__":
    main()
