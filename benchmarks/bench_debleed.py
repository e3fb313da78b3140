"""debleed figures (docs/remix.md, "Clean a stem"): per stem, inspect's bleed (mean squared |STFT| correlation with
the other stems, all bands) and SDR against the true stems, before and after ``debleed(STRENGTH)``.

    python benchmarks/bench_debleed.py SEPARATED_DIR REFERENCE_DIR [--strength 0.5] [--share 0.05 [--gate 12]]
    python benchmarks/bench_debleed.py --songs SONGS_DIR --separated SEP_DIR [--share 0.2]

SEPARATED_DIR: a folder written by ``stemwright separate``; REFERENCE_DIR: the true stems (same names). With
``--songs``: every song folder of SONGS_DIR (``stemwright synth``) against SEP_DIR/<song>/mixture (``stemwright
separate SONG/mixture.wav -o SEP_DIR/<song>``), summarised per stem: mean bleed change, mean and worst SDR change.
``--share`` / ``--gate``: one tuning for every stem (the re-mask's bleed share, the gate's depth in dB); default:
each stem's own (``debleed.STEM_TUNING``).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from stemwright.metrics.sdr import mdx_sdr
from stemwright.mixer.debleed import GATE_DEPTH_DB, Tuning, debleed
from stemwright.mixer.inspect import bleed_matrix
from stemwright.mixer.stems import load_stems


def _bleed(audio: dict[str, np.ndarray], samplerate: int) -> dict[str, float]:
    matrix, _ = bleed_matrix(audio, samplerate)
    names = list(audio)
    rows = matrix["all"]
    return {n: float(np.mean([v for j, v in enumerate(rows[i]) if j != i and v is not None])) for i, n in enumerate(names)}


def measure(separated: Path, reference: Path, strength: float,
            tuning: Tuning | None = None) -> dict[str, tuple[float, float, float, float]]:
    """Per stem ``(bleed before, bleed after, SDR before, SDR after)``."""
    est = load_stems(separated)
    ref = load_stems(reference)
    if ref.samplerate != est.samplerate:
        raise SystemExit(f"error: {reference}: {ref.samplerate} Hz, the separated stems {est.samplerate} Hz")
    n = min(est.length, ref.length)
    names = [s for s in est.names if s in ref.audio]
    before = {s: est[s][:, :n] for s in names}
    total = sum(before.values())
    after = {s: debleed(before[s], total - before[s], est.samplerate, strength=strength, stem=s, tuning=tuning)
             for s in names}
    b0, b1 = _bleed(before, est.samplerate), _bleed(after, est.samplerate)
    return {s: (b0[s], b1[s], mdx_sdr(ref[s][:, :n], before[s]), mdx_sdr(ref[s][:, :n], after[s])) for s in names}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("separated", nargs="?")
    ap.add_argument("reference", nargs="?")
    ap.add_argument("--songs", type=Path)
    ap.add_argument("--separated", dest="sep_dir", type=Path)
    ap.add_argument("--strength", type=float, default=0.5)
    ap.add_argument("--share", type=float)
    ap.add_argument("--gate", type=float, default=GATE_DEPTH_DB)
    args = ap.parse_args()
    tuning = None if args.share is None else Tuning(args.share, args.gate)
    print(f"strength {args.strength}, " + ("each stem's own tuning" if tuning is None else f"for every stem {tuning}"))
    if args.songs is None:
        print(f"{'stem':<8} {'bleed before':>12} {'bleed after':>12} {'SDR before':>11} {'SDR after':>10}")
        for s, (b0, b1, s0, s1) in measure(Path(args.separated), Path(args.reference), args.strength, tuning).items():
            print(f"{s:<8} {b0:12.3f} {b1:12.3f} {s0:11.2f} {s1:10.2f}")
        return
    rows: dict[str, list[tuple[float, float, float, float]]] = {}
    for song in sorted(p for p in args.songs.iterdir() if (p / "song.json").is_file()):
        for s, r in measure(args.sep_dir / song.name / "mixture", song, args.strength, tuning).items():
            rows.setdefault(s, []).append(r)
    print(f"{len(next(iter(rows.values())))} songs")
    print(f"{'stem':<8} {'bleed before':>12} {'bleed after':>12} {'SDR change mean':>16} {'worst':>7}")
    for s, r in rows.items():
        a = np.array(r)
        d = a[:, 3] - a[:, 2]
        print(f"{s:<8} {a[:, 0].mean():12.3f} {a[:, 1].mean():12.3f} {d.mean():16.3f} {d.min():7.3f}")


if __name__ == "__main__":
    main()
