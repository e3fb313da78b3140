"""Peak memory and seconds of separating long files: the streaming file path (``Separator.separate_file``, what
``stemwright separate`` runs) against the in-memory path (read the whole file, ``Separator.separate`` on the array,
one clip gain over the stems, write each stem), for several lengths of generated stereo 44.1 kHz audio.

Each run is a fresh interpreter, so its peak RSS (``ru_maxrss``) is that run's alone; CPU seconds (user + system,
model load included) compare the paths fairly on a machine shared with other work, where wall seconds do not. The audio is generated on
the fly (a synthetic song looped with noise, written block by block: nothing is shipped), to a scratch folder.
Not a timed test: run it by hand and quote the figures with the command and the machine's load.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_stream_memory.py -m classic --minutes 3 10 30 60 \
        [--paths stream memory] [--threads 1] [--scratch DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

# One run, in a child interpreter: prints a JSON line with seconds and peak RSS.
CHILD = r"""
import json, resource, sys, time
import torch
torch.set_num_threads(int(sys.argv[4]))
from stemwright.api import Separator, select_outputs
from stemwright.audio.io import read_audio, prepare_peaks_many, write_audio
path, out, model, _, mode = sys.argv[1:6]
t0 = time.perf_counter()
sep = Separator(model, device="cpu", offline=True)
load = time.perf_counter() - t0
t1 = time.perf_counter()
if mode == "stream":
    sep.separate_file(path, out, overwrite=True)
else:
    audio = read_audio(path)
    stems = select_outputs(sep.separate(audio.samples, audio.samplerate), list(sep.sources), None, audio.samples)
    arrays, _ = prepare_peaks_many(list(stems.values()), "rescale")
    for name, a in zip(stems, arrays):
        write_audio(f"{out}/{name}.wav", a, audio.samplerate, overwrite=True)
secs = time.perf_counter() - t1
u = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"seconds": secs, "load_seconds": load, "cpu_seconds": u.ru_utime + u.ru_stime,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def make_long_song(path: Path, minutes: float, samplerate: int = 44100) -> Path:
    """Write ``minutes`` of stereo float audio block by block (tones, beats and noise; never held whole)."""
    rng = np.random.default_rng(0)
    total = int(minutes * 60 * samplerate)
    block = samplerate * 10
    with sf.SoundFile(str(path), "w", samplerate, 2, subtype="PCM_16") as f:
        for start in range(0, total, block):
            n = min(block, total - start)
            t = (start + np.arange(n)) / samplerate
            tone = 0.2 * np.sin(2 * np.pi * (220 + 20 * np.floor(t / 4) % 200) * t)
            beat = 0.3 * np.exp(-40 * (t % 0.5)) * np.sin(2 * np.pi * 60 * t)
            noise = 0.03 * rng.standard_normal((2, n))
            f.write((np.stack([tone + beat, 0.8 * tone + beat]) + noise).T.astype(np.float32))
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-m", "--model", default="classic")
    ap.add_argument("--minutes", type=float, nargs="+", default=[3, 10, 30, 60, 120])
    ap.add_argument("--paths", nargs="+", choices=("stream", "memory"), default=["stream", "memory"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--scratch", type=Path, default=None, help="folder for the generated audio and stems")
    args = ap.parse_args()
    src = Path(__file__).resolve().parents[1] / "src"
    env = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "OMP_NUM_THREADS": str(args.threads)}
    with tempfile.TemporaryDirectory(dir=args.scratch) as tmp:
        for minutes in args.minutes:
            song = make_long_song(Path(tmp) / f"song_{minutes:g}min.wav", minutes)
            for mode in args.paths:
                out = Path(tmp) / f"out_{mode}"
                out.mkdir(exist_ok=True)
                t0 = time.perf_counter()
                proc = subprocess.run([sys.executable, "-c", CHILD, str(song), str(out), args.model,
                                       str(args.threads), mode], capture_output=True, text=True, env=env)
                if proc.returncode != 0:
                    print(f"{args.model} {minutes:g} min {mode}: failed ({proc.stderr.strip().splitlines()[-1:]})",
                          flush=True)
                    continue
                r = json.loads(proc.stdout.strip().splitlines()[-1])
                rtf = r["seconds"] / (minutes * 60)
                print(f"{args.model:18s} {minutes:6g} min  {mode:6s}  peak RSS {r['peak_rss_mib']:8.0f} MiB  "
                      f"{r['seconds']:8.1f} s  RTF {rtf:.4f}  CPU {r['cpu_seconds']:7.1f} s  (model load {r['load_seconds']:.1f} s, "
                      f"wall {time.perf_counter() - t0:.0f} s)", flush=True)
                for f in out.rglob("*"):
                    if f.is_file():
                        f.unlink()
            song.unlink()


if __name__ == "__main__":
    main()
