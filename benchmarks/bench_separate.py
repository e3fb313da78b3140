"""Benchmark a model (default: the default model) on a 3-minute stereo file through :class:`stemwright.Separator`.

Prints wall-clock seconds, real-time factor (seconds / audio seconds; < 1 is faster than real time) and peak
resident memory. Not a timed test: run it by hand (``make bench``) and quote the figures.

    .venv/bin/python benchmarks/bench_separate.py [-m MODEL] [--seconds 180] [--threads N] [--keep DIR]
"""
from __future__ import annotations

import argparse
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if platform.system() == "Darwin" else peak / 1024


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def make_song(path: Path, seconds: float, samplerate: int = 44100) -> Path:
    """The demo song looped to ``seconds``, with a little noise so no two loops are identical. Shape on disk: stereo."""
    from stemwright.synth.demo import render_demo

    mix, _ = render_demo(samplerate)
    reps = int(np.ceil(seconds * samplerate / mix.shape[1]))
    song = np.tile(mix, reps)[:, : int(seconds * samplerate)]
    song = song + 1e-3 * np.random.default_rng(0).standard_normal(song.shape).astype(np.float32)
    sf.write(str(path), (0.9 * song / np.abs(song).max()).T, samplerate, subtype="PCM_16")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-m", "--model", default=None, help="model name or checkpoint (default: stemwright's default)")
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--keep", type=Path, default=None, help="write the stems here instead of a temp folder")
    parser.add_argument("--make", type=Path, default=None, help=argparse.SUPPRESS)  # internal: render the song only
    args = parser.parse_args()
    if args.make:
        make_song(args.make, args.seconds)
        return
    if args.threads:
        torch.set_num_threads(args.threads)

    import stemwright

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "bench.wav"
        # Rendered in a child process, so that this process's peak RSS is the separation's (plus imports).
        subprocess.run([sys.executable, __file__, "--make", str(src), "--seconds", str(args.seconds)], check=True)
        from stemwright.models.defaults import DEFAULT_MODEL

        model = args.model or DEFAULT_MODEL
        sep = stemwright.Separator(model, device="cpu")
        rss_before = peak_rss_mib()
        cpu0 = _cpu_seconds()
        t0 = time.perf_counter()
        result = sep.separate_file(src, args.keep or Path(tmp) / "out", overwrite=True)
        seconds = time.perf_counter() - t0
        cpu = _cpu_seconds() - cpu0
    print(f"{model} on a {args.seconds:.0f} s stereo 44.1 kHz file ({torch.get_num_threads()} torch threads, "
          f"{platform.processor() or platform.machine()})")
    print(f"  seconds (read + separate + write 4 x 24-bit wav): {seconds:.2f}")
    print(f"  real-time factor: {seconds / args.seconds:.3f}  ({args.seconds / seconds:.1f}x faster than real time)")
    print(f"  CPU time (user + sys, all threads): {cpu:.2f} s; on a busy machine wall-clock exceeds CPU / threads")
    print(f"  peak RSS: {peak_rss_mib():.0f} MiB (after imports and model set-up, before separating: {rss_before:.0f} MiB)")
    print(f"  manifest rtf: {result.manifest.rtf}")


if __name__ == "__main__":
    main()
