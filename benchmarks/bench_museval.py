"""Times stemwright's BSS Eval v4 against ``museval.evaluate`` (0.4.1) on the same 3-minute, 4-source stereo track.

The track is built from the MUSDB18 excerpt in ../shared/data/musdb18-excerpts (each stem tiled to the requested
length with a different circular offset per stem, so the sources do not repeat in lock-step); the estimates follow
the museval fixture recipe (70 % stem + 30 % of a quarter of the mixture + white noise, seeded).

Run:  .venv/bin/python benchmarks/bench_museval.py [--seconds 180] [--json]
Prints both times, the ratio and the max |difference| per metric. museval is a test-only dependency ([dev] extra).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import types
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
EXCERPT = REPO.parent / "shared" / "data" / "musdb18-excerpts" / "Music Delta - 80s Rock"
STEMS = ("vocals", "drums", "bass", "other")


def import_museval():
    """museval's ``__init__`` imports musdb -> stempeg, which needs the ffmpeg binary; evaluate() needs neither."""
    try:
        import museval
    except RuntimeError:
        for name in [k for k in sys.modules if k.split(".")[0] in ("museval", "musdb", "stempeg")]:
            del sys.modules[name]
        sys.modules["musdb"] = types.ModuleType("musdb")
        import museval
    return museval


def make_track(seconds: float, rate: int = 44100) -> tuple[np.ndarray, np.ndarray]:
    """References and estimates. Shape: ``(S, C, T)`` float64 each."""
    n = int(seconds * rate)
    refs = []
    for k, stem in enumerate(STEMS):
        x, sr = sf.read(EXCERPT / f"{stem}.flac", dtype="float64", always_2d=True)
        assert sr == rate
        x = np.roll(x.T, k * 37_013, axis=-1)
        refs.append(np.tile(x, (1, n // x.shape[1] + 1))[:, :n])
    refs = np.stack(refs)
    mix = refs.sum(0)
    rng = np.random.default_rng(0)
    ests = np.stack([0.7 * r + 0.3 * mix / 4 + 0.01 * rng.standard_normal(r.shape) for r in refs])
    return refs, ests


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=180.0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    from stemwright.metrics import bss_eval_v4

    museval = import_museval()
    refs, ests = make_track(args.seconds)
    t0, c0 = time.perf_counter(), time.process_time()
    ours = bss_eval_v4(refs, ests, window=44100, hop=44100)
    t_ours, c_ours = time.perf_counter() - t0, time.process_time() - c0
    t0, c0 = time.perf_counter(), time.process_time()
    theirs = museval.evaluate(refs.transpose(0, 2, 1), ests.transpose(0, 2, 1), win=44100, hop=44100, mode="v4")
    t_museval, c_museval = time.perf_counter() - t0, time.process_time() - c0
    diffs = {}
    for name, a, b in zip(("SDR", "ISR", "SIR", "SAR"), (ours.sdr, ours.isr, ours.sir, ours.sar), theirs):
        both = np.isfinite(a) & np.isfinite(b)
        assert (np.isfinite(a) == np.isfinite(b)).all(), f"{name}: NaN/inf pattern differs"
        diffs[name] = float(np.abs(a[both] - b[both]).max())
        diffs[name + "_median_per_stem"] = float(np.abs(np.median(a, 1) - np.median(b, 1)).max())
    report = {
        "seconds_audio": args.seconds, "sources": len(STEMS), "channels": 2, "windows": int(ours.sdr.shape[1]),
        "stemwright_s": round(t_ours, 3), "museval_s": round(t_museval, 3), "speedup": round(t_museval / t_ours, 2),
        "stemwright_cpu_s": round(c_ours, 3), "museval_cpu_s": round(c_museval, 3),
        "cpu_speedup": round(c_museval / c_ours, 2), "cpu_count": os.cpu_count(),
        "max_abs_diff_db": {k: round(v, 6) for k, v in diffs.items()},
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"track: {args.seconds:.0f} s, {len(STEMS)} sources, stereo, {report['windows']} windows of 1 s")
        print(f"stemwright bss_eval_v4 : {t_ours:8.2f} s wall, {c_ours:8.2f} s CPU")
        print(f"museval.evaluate     : {t_museval:8.2f} s wall, {c_museval:8.2f} s CPU")
        print(f"speed-up             : {t_museval / t_ours:8.1f} x wall, {c_museval / c_ours:.1f} x CPU "
              f"({os.cpu_count()} cores)")
        for k, v in diffs.items():
            print(f"max |diff| {k:<18}: {v:.6f} dB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
