"""Accuracy of ``stemwright.analysis.analyze`` on songs made by ``stemwright synth`` (tempo, meter, key and bar lines
known exactly from each song's ``song.json``).

Metrics (MIREX conventions):
- tempo Acc1: within +-1 % of the true BPM; Acc2: within +-1 % of the true BPM times 1/3, 1/2, 1, 2 or 3
  (octave errors allowed); the share of octave errors is Acc2 - Acc1;
- meter: estimated beats per bar equals the true one (3/4 and 6/8 both have 3 quarter-note beats per bar);
- downbeat F-measure: +-70 ms tolerance, one-to-one matching (mir_eval.beat.f_measure's default window);
- key: exact tonic and mode (church modes counted by their third: dorian as minor, mixolydian as major); also the MIREX weighted score (1 exact, 0.5 fifth, 0.3 relative, 0.2 parallel).

Usage::

    stemwright synth -o /tmp/songs -n 10 -s 20 --seed 14
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_analysis.py /tmp/songs [--stems drums,bass,other,vocals]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

NOTES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
FLATS = {"Db": 1, "Eb": 3, "Gb": 6, "Ab": 8, "Bb": 10}
# Church modes scored by their third, as major/minor key detection does (D dorian counts as D minor).
MODE_CLASS = {"major": "major", "ionian": "major", "lydian": "major", "mixolydian": "major",
              "minor": "minor", "aeolian": "minor", "dorian": "minor", "phrygian": "minor", "locrian": "minor"}


def f_measure(reference: np.ndarray, estimate: np.ndarray, window: float = 0.07) -> float:
    """One-to-one matched F-measure of event times (greedy on sorted times; events are >= 0.3 s apart here)."""
    if len(reference) == 0 or len(estimate) == 0:
        return 0.0
    used = np.zeros(len(estimate), bool)
    hits = 0
    for t in reference:
        d = np.abs(estimate - t)
        d[used] = np.inf
        j = int(np.argmin(d))
        if d[j] <= window:
            used[j], hits = True, hits + 1
    p, r = hits / len(estimate), hits / len(reference)
    return 0.0 if hits == 0 else 2 * p * r / (p + r)


def truth(song: Path) -> dict:
    meta = json.loads((song / "song.json").read_text())
    num, den = (int(x) for x in meta["meter"].split("/"))
    bpb = num * 4 / den
    tempo = float(meta["tempo_bpm"])
    tonic = NOTES.index(meta["key"]) if meta["key"] in NOTES else FLATS[meta["key"]]
    bar = bpb * 60.0 / tempo
    downbeats = np.arange(0.0, float(meta["seconds"]) - 1e-6, bar)
    return {"tempo": tempo, "bpb": bpb, "tonic": tonic, "mode": MODE_CLASS[meta["mode"]], "downbeats": downbeats,
            "meter": meta["meter"], "style": meta["style"]}


def key_score(t: dict, tonic: int, mode: str) -> float:
    if (tonic, mode) == (t["tonic"], t["mode"]):
        return 1.0
    if mode == t["mode"] and (tonic - t["tonic"]) % 12 in (5, 7):
        return 0.5
    rel = (t["tonic"] - 3) % 12 if t["mode"] == "major" else (t["tonic"] + 3) % 12
    if mode != t["mode"] and tonic == rel:
        return 0.3
    if mode != t["mode"] and tonic == t["tonic"]:
        return 0.2
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="a folder of `stemwright synth` songs")
    parser.add_argument("--stems", default="drums,bass,other,vocals", help="stems given to the analysis")
    args = parser.parse_args()
    from stemwright.analysis import analyze
    from stemwright.mixer.stems import load_stems

    rows = []
    songs = sorted(p for p in args.folder.iterdir() if (p / "song.json").is_file())
    if not songs:
        sys.exit(f"error: {args.folder}: no synth songs (folders with song.json)")
    wanted = args.stems.split(",")
    for song in songs:
        t = truth(song)
        stems = load_stems(song)
        stems.audio = {k: v for k, v in stems.audio.items() if k in wanted}
        t0 = time.perf_counter()
        a = analyze(stems)
        seconds = time.perf_counter() - t0
        ratio = a.tempo_bpm / t["tempo"]
        acc1 = abs(ratio - 1) <= 0.01
        acc2 = any(abs(ratio / m - 1) <= 0.01 for m in (1 / 3, 0.5, 1, 2, 3))
        rows.append({
            "song": song.name, "style": t["style"], "true_bpm": t["tempo"], "bpm": a.tempo_bpm, "acc1": acc1,
            "acc2": acc2, "meter": t["meter"], "bpb": a.beats_per_bar, "meter_ok": a.beats_per_bar == t["bpb"],
            "downbeat_f": f_measure(t["downbeats"], np.array(a.downbeats)),
            "key": f"{NOTES[t['tonic']]} {t['mode']}", "est_key": a.key,
            "key_ok": (a.key_tonic, a.key_mode) == (t["tonic"], t["mode"]),
            "key_weighted": key_score(t, a.key_tonic, a.key_mode), "seconds": seconds,
        })
    print(f"{'song':<18}{'style':<11}{'true':>7}{'est':>8} {'meter':>5}{'bpb':>4}{'dbF':>6}  {'key':<10}{'est key':<10}")
    for r in rows:
        print(f"{r['song']:<18}{r['style']:<11}{r['true_bpm']:7.1f}{r['bpm']:8.2f} {r['meter']:>5}{r['bpb']:4d}"
              f"{r['downbeat_f']:6.2f}  {r['key']:<10}{r['est_key']:<10}")
    n = len(rows)
    mean = lambda k: float(np.mean([float(r[k]) for r in rows]))  # noqa: E731
    print(f"\n{n} songs, stems {args.stems}")
    print(f"tempo Acc1 (+-1 %)      {mean('acc1'):.2f}")
    print(f"tempo Acc2 (octaves ok) {mean('acc2'):.2f}  (octave errors {mean('acc2') - mean('acc1'):.2f})")
    print(f"meter accuracy          {mean('meter_ok'):.2f}")
    print(f"downbeat F (+-70 ms)    {mean('downbeat_f'):.2f}")
    print(f"key accuracy            {mean('key_ok'):.2f}  (MIREX weighted {mean('key_weighted'):.2f})")
    print(f"seconds per song        {mean('seconds'):.2f}")


if __name__ == "__main__":
    main()
