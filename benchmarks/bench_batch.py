"""Throughput of ``stemwright batch`` on a local Ray with 1, 2, ... workers: songs per minute, audio hours per
hour, and the per-track real-time factor, on generated songs (nothing shipped). Prints figures; not a test.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_batch.py -m classic --songs 8 --seconds 60 --workers 1 2
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_stream_memory import make_long_song  # noqa: E402 - the same generated audio as the memory benchmark


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-m", "--model", default="classic")
    ap.add_argument("--songs", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--scratch", type=Path, default=None)
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import ray

    from stemwright.api import Separator
    from stemwright.batch.ray_runner import BatchSettings, RayBatch

    options = Separator(args.model, device="cpu", offline=True).options()
    with tempfile.TemporaryDirectory(dir=args.scratch) as tmp:
        songs = [str(make_long_song(Path(tmp) / f"song{i:03d}.wav", args.seconds / 60)) for i in range(args.songs)]
        for n in args.workers:
            out = Path(tmp) / f"out{n}"
            settings = BatchSettings(model=args.model, device="cpu", offline=True, options=options, outdir=str(out))
            t0 = time.perf_counter()
            ray.init(num_cpus=n, include_dashboard=False, log_to_driver=False, configure_logging=False)
            start = time.perf_counter() - t0
            with RayBatch(settings, workers=n) as batch:
                batch.worker_pids()  # actors up, model loaded: the figures below are separation only
                ready = time.perf_counter() - t0 - start
                report = batch.run(songs)
            ray.shutdown()
            rtfs = sorted(r.seconds / r.duration for r in report.results if r.status == "done")
            hours = args.songs * args.seconds / 3600
            print(f"{args.model} {n} worker(s): {report.count('done')}/{args.songs} songs of {args.seconds:g} s in "
                  f"{report.seconds:.1f} s = {report.songs_per_minute:.2f} songs/min, "
                  f"{hours / (report.seconds / 3600):.2f} audio h per h; per-track RTF median "
                  f"{rtfs[len(rtfs) // 2]:.3f} (Ray start {start:.1f} s, actors ready {ready:.1f} s)", flush=True)


if __name__ == "__main__":
    main()
