"""What the short first chunk rule costs: the studio's stems (``first_segment``, engine/chunking.ChunkGrid) against
the offline stems (``stemwright separate``'s grid) of the same model.

For each song prints, per stem: the SDR of the studio's stems with the offline stems as reference (how close they
are: high is close; ``inf`` identical), over the whole song and over its first 30 s (the ramp lies there), the
maximum absolute difference, and, where the true stems are known, the MDX SDR of each against the truth (the
quality cost). Songs: the visible MUSDB18 excerpt (``/work/shared/data/musdb18-excerpts``) and the generated demo
song (``stemwright.synth.demo``, stems known).

Usage::

    .venv/bin/python benchmarks/first_chunk_quality.py [-m MODEL] [--first-segment 4] [--json]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

MUSDB = Path(__file__).resolve().parents[2] / "shared" / "data" / "musdb18-excerpts"
HEAD_S = 30.0
LONG_S = 75.0  # a song longer than the ramp: past it the stems must be the offline ones exactly


def songs(samplerate: int = 44100) -> list[tuple[str, np.ndarray, dict[str, np.ndarray] | None, int]]:
    from stemwright.audio.io import read_audio
    from stemwright.synth.demo import render_demo

    out = []
    for track in sorted(p for p in MUSDB.glob("*") if (p / "mixture.flac").is_file()):
        mix = read_audio(track / "mixture.flac")
        truth = {s: read_audio(track / f"{s}.flac").samples for s in ("vocals", "drums", "bass", "other")
                 if (track / f"{s}.flac").is_file()}
        out.append((f"MUSDB excerpt: {track.name}", mix.samples, truth, mix.samplerate))
    mix, stems = render_demo(samplerate)
    out.append(("generated demo song", mix, stems, samplerate))
    reps = int(np.ceil(LONG_S * samplerate / mix.shape[1]))
    n = int(LONG_S * samplerate)
    out.append((f"generated demo song repeated to {LONG_S:g} s", np.tile(mix, (1, reps))[:, :n],
                {k: np.tile(v, (1, reps))[:, :n] for k, v in stems.items()}, samplerate))
    return out


def ramp_extent(sep, first: float) -> float:
    """Seconds from which the studio's chunks are the offline ones: the first full chunk's start plus the overlap
    (before it, the offline grid's previous chunk still reaches in)."""
    from stemwright.engine.chunking import ChunkGrid
    from stemwright.engine.run import first_chunk_length

    sr = sep.samplerate
    seg = int(round((sep.segment or sep.model.segment) * sr))
    grid = ChunkGrid(seg, sep.overlap, first_chunk_length(first, sr))
    return (grid.chunk(len(grid.ramp))[0] + seg - grid.stride_after(seg)) / sr


def sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """10 log10(|ref|^2 / |ref - est|^2) over all samples (``inf`` when equal)."""
    num, den = float(np.sum(reference.astype(np.float64) ** 2)), float(np.sum((reference - estimate).astype(np.float64) ** 2))
    return float("inf") if den == 0 else 10 * np.log10(max(num, 1e-12) / den)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-m", "--model", default=None)
    ap.add_argument("--first-segment", type=float, default=None, help="seconds (default: the studio's)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    from stemwright.api import Separator
    from stemwright.metrics.sdr import mdx_sdr
    from stemwright.models.defaults import DEFAULT_MODEL
    from stemwright.server.jobs import STUDIO_FIRST_SEGMENT

    model = args.model or DEFAULT_MODEL
    first = args.first_segment or STUDIO_FIRST_SEGMENT
    offline_sep = Separator(model=model)
    studio_sep = Separator(model=offline_sep.model, first_segment=first)
    ramp_end = ramp_extent(offline_sep, first)
    rows = []
    for name, mix, truth, sr in songs():
        offline = offline_sep.separate(mix, sr)
        studio = studio_sep.separate(mix, sr)
        head = int(HEAD_S * sr)
        tail = int(np.ceil(ramp_end * sr))
        for stem in offline:
            row = {"song": name, "model": model, "first_segment": first, "stem": stem,
                   "sdr_vs_offline_db": sdr(offline[stem], studio[stem]),
                   "head_sdr_vs_offline_db": sdr(offline[stem][:, :head], studio[stem][:, :head]),
                   "max_abs_diff": float(np.max(np.abs(offline[stem] - studio[stem]))),
                   "ramp_end_s": ramp_end,
                   "after_ramp_max_abs_diff": float(np.max(np.abs(offline[stem][:, tail:] - studio[stem][:, tail:]),
                                                           initial=0.0))}
            if truth and stem in truth:
                row["offline_mdx_sdr"] = mdx_sdr(truth[stem], offline[stem])
                row["studio_mdx_sdr"] = mdx_sdr(truth[stem], studio[stem])
            rows.append(row)
            if args.json:
                print(json.dumps(row))
            else:
                extra = (f"; vs truth: offline {row['offline_mdx_sdr']:.3f} dB, studio {row['studio_mdx_sdr']:.3f} dB"
                         if "offline_mdx_sdr" in row else "")
                print(f"{name} / {stem}: studio vs offline SDR {row['sdr_vs_offline_db']:.1f} dB (first {HEAD_S:g} s: "
                      f"{row['head_sdr_vs_offline_db']:.1f} dB), max |diff| {row['max_abs_diff']:.2e}, after the ramp "
                      f"({ramp_end:.2f} s) {row['after_ramp_max_abs_diff']:.2e}{extra}")


if __name__ == "__main__":
    main()
