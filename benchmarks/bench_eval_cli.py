"""Times the whole ``stemwright eval`` command against museval's own ``museval.eval_dir`` (0.4.1), each as a fresh
process on the same files: one 3-minute, 4-source stereo track (built as in bench_museval.py from the MUSDB18
excerpt), BSS Eval v4 with 1 s windows and hops.

Run:  .venv/bin/python benchmarks/bench_eval_cli.py [--seconds 180] [--repeat 3] [--skip-museval] [--json]
Prints the wall and CPU seconds of both processes and the ratio (issue 17 asks for >= 10x in wall time). museval
takes ~80 s: --skip-museval times only stemwright (and reuses --museval-seconds for the ratio, if given).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_museval import STEMS, make_track  # noqa: E402 - the shared track recipe

MUSEVAL_SCRIPT = """
import sys, types
sys.modules["musdb"] = types.ModuleType("musdb")  # museval imports musdb -> stempeg -> ffmpeg; eval_dir needs none
import museval
museval.eval_dir(sys.argv[1], sys.argv[2], mode="v4", win=1.0, hop=1.0)
"""


def write_track(root: Path, seconds: float) -> tuple[Path, Path]:
    """``root/refs/track/<stem>.wav`` and ``root/ests/track/<stem>.wav`` (float32 wav, 44.1 kHz)."""
    refs, ests = make_track(seconds)
    for side, arrays in (("refs", refs), ("ests", ests)):
        folder = root / side / "track"
        folder.mkdir(parents=True, exist_ok=True)
        for stem, x in zip(STEMS, arrays):
            sf.write(str(folder / f"{stem}.wav"), x.T.astype(np.float32), 44100, subtype="FLOAT")
    return root / "refs", root / "ests"


def timed(cmd: list[str]) -> tuple[float, float]:
    """Wall and CPU (user + system, children) seconds of one process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=180.0)
    ap.add_argument("--repeat", type=int, default=3, help="stemwright runs (the fastest is reported)")
    ap.add_argument("--skip-museval", action="store_true")
    ap.add_argument("--museval-seconds", type=float, default=None, help="a museval time measured earlier")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        refs, ests = write_track(Path(tmp), args.seconds)
        ours = []
        for k in range(args.repeat):
            ours.append(timed([sys.executable, "-m", "stemwright.cli.main", "eval", "--references", str(refs),
                               "--estimates", str(ests), "--format", "folder", "--protocol", "museval",
                               "-o", str(Path(tmp) / f"report{k}"), "-q"]))
        wall, cpu = min(ours)
        if args.skip_museval:
            theirs = (args.museval_seconds, None) if args.museval_seconds else (None, None)
        else:
            theirs = timed([sys.executable, "-c", MUSEVAL_SCRIPT, str(refs / "track"), str(ests / "track")])
    report = {
        "seconds_audio": args.seconds, "sources": len(STEMS), "channels": 2,
        "stemwright_eval_wall_s": round(wall, 2), "stemwright_eval_cpu_s": round(cpu, 2),
        "stemwright_all_wall_s": [round(w, 2) for w, _ in ours],
        "museval_eval_dir_wall_s": round(theirs[0], 2) if theirs[0] else None,
        "museval_eval_dir_cpu_s": round(theirs[1], 2) if theirs[1] else None,
        "speedup_wall": round(theirs[0] / wall, 1) if theirs[0] else None,
        "cpu_count": os.cpu_count(), "load_average_1min": round(os.getloadavg()[0], 2),
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for k, v in report.items():
            print(f"{k:<26} {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
