"""Time an NI Stems export (mixture + 4 stems, AAC 256 kbit/s) of a real song: tracks encoded one at a time
(``--workers 1``) against the default (one thread per track up to the CPU count).

    PYTHONPATH=src .venv/bin/python benchmarks/bench_nistems.py SONG [--seconds 210] [--workers 1]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from stemwright.audio.io import read_audio
from stemwright.audio.nistems import NI_SLOTS, write_ni_stems


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("song", type=Path)
    ap.add_argument("--seconds", type=float, default=210.0, help="length used (the song is repeated to reach it)")
    ap.add_argument("--workers", type=int, default=0, help="0: the default")
    args = ap.parse_args()
    audio = read_audio(args.song)
    n = int(args.seconds * audio.samplerate)
    x = np.tile(audio.samples, (1, n // audio.samples.shape[1] + 1))[:, :n]
    x = np.repeat(x, 2, axis=0) if x.shape[0] == 1 else x
    # four different signals (a music-like load for the encoder; not a separation)
    stems = {name: np.roll(x, 4410 * i, axis=1) * (0.2 + 0.1 * i) for i, name in enumerate(NI_SLOTS)}
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        kwargs = {"workers": args.workers} if args.workers else {}  # (the default also runs on older versions)
        write_ni_stems(Path(tmp) / "song.stem.mp4", x * 0.5, stems, audio.samplerate, **kwargs)
        took = time.perf_counter() - t
    print(f"NI Stems export of {args.seconds:g} s at {audio.samplerate} Hz: {took:.1f} s "
          f"(workers={args.workers or 'default'}, cpu_count={os.cpu_count()})")


if __name__ == "__main__":
    main()
