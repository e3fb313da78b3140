"""Memory and time of the studio's upload check on a decompression bomb: one hour of 44.1 kHz stereo FLAC silence
(~600 KB on disk, 1.3 GB as float32).

Prints, for ``stemwright.server.probe.probe_audio`` (what the studio runs) and, with ``--compare``, for a full
``read_audio`` decode (what it ran before issue 15): seconds, the Python-tracked peak (tracemalloc, which numpy
reports to) and the growth of the process's peak resident memory (``ru_maxrss``), each in a fresh child process.

Usage::

    .venv/bin/python benchmarks/bench_studio_upload.py [--compare] [--seconds 3600]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = """
import json, resource, sys, time, tracemalloc
from pathlib import Path
path, how = Path(sys.argv[1]), sys.argv[2]
from stemwright.audio.io import read_audio
from stemwright.server.probe import probe_audio
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tracemalloc.start()
t0 = time.perf_counter()
if how == "probe":
    info = probe_audio(path, 7200)
    duration = info.duration
else:
    duration = read_audio(path).duration
seconds = time.perf_counter() - t0
peak = tracemalloc.get_traced_memory()[1]
grow = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base
print(json.dumps({"how": how, "duration_s": duration, "seconds": seconds, "traced_peak_mb": peak / 2**20,
                  "rss_growth_mb": grow / 1024}))
"""


def make_silence(path: Path, seconds: int) -> Path:
    import numpy as np
    import soundfile as sf

    block = np.zeros((44100 * 10, 2), np.float32)
    with sf.SoundFile(str(path), "w", 44100, 2, subtype="PCM_16", format="FLAC") as f:
        for _ in range(seconds // 10):
            f.write(block)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=int, default=3600)
    ap.add_argument("--compare", action="store_true", help="also time a full decode (needs ~1.3 GB per hour)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = make_silence(Path(tmp) / "silence.flac", args.seconds)
        print(f"file: {args.seconds} s of FLAC silence, {path.stat().st_size / 1024:.0f} KB")
        for how in ["probe"] + (["full-decode"] if args.compare else []):
            out = subprocess.run([sys.executable, "-c", CHILD, str(path), how], check=True, capture_output=True,
                                 text=True, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin",
                                                 "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")})
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{r['how']:>12}: {r['seconds']:.2f} s, duration {r['duration_s']:.1f} s, traced peak "
                  f"{r['traced_peak_mb']:.1f} MB, peak RSS growth {r['rss_growth_mb']:.0f} MB")


if __name__ == "__main__":
    main()
