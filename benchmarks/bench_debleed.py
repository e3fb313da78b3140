"""debleed figures (docs/remix.md, "Clean a stem"): per stem, inspect's bleed (mean squared |STFT| correlation with
the other stems, all bands) and SDR against the true stems, before and after ``debleed(STRENGTH)``.

    python benchmarks/bench_debleed.py SEPARATED_DIR REFERENCE_DIR [--strength 0.5]

SEPARATED_DIR: a folder written by ``stemwright separate``; REFERENCE_DIR: the true stems (same names).
"""
from __future__ import annotations

import argparse

import numpy as np

from stemwright.metrics.sdr import mdx_sdr
from stemwright.mixer.debleed import debleed
from stemwright.mixer.inspect import bleed_matrix
from stemwright.mixer.stems import load_stems


def _bleed(audio: dict[str, np.ndarray], samplerate: int) -> dict[str, float]:
    matrix, _ = bleed_matrix(audio, samplerate)
    names = list(audio)
    rows = matrix["all"]
    return {n: float(np.mean([v for j, v in enumerate(rows[i]) if j != i and v is not None])) for i, n in enumerate(names)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("separated")
    ap.add_argument("reference")
    ap.add_argument("--strength", type=float, default=0.5)
    args = ap.parse_args()
    est = load_stems(args.separated)
    ref = load_stems(args.reference)
    if ref.samplerate != est.samplerate:
        raise SystemExit(f"error: {args.reference}: {ref.samplerate} Hz, the separated stems {est.samplerate} Hz")
    n = min(est.length, ref.length)
    names = [s for s in est.names if s in ref.audio]
    before = {s: est[s][:, :n] for s in names}
    total = sum(before.values())
    after = {s: debleed(before[s], total - before[s], est.samplerate, strength=args.strength) for s in names}
    b0, b1 = _bleed(before, est.samplerate), _bleed(after, est.samplerate)
    print(f"{'stem':<8} {'bleed before':>12} {'bleed after':>12} {'SDR before':>11} {'SDR after':>10}")
    for s in names:
        r = ref[s][:, :n]
        print(f"{s:<8} {b0[s]:12.3f} {b1[s]:12.3f} {mdx_sdr(r, before[s]):11.2f} {mdx_sdr(r, after[s]):10.2f}")


if __name__ == "__main__":
    main()
