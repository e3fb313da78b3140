"""Chunk batching and chunk workers against intra-op threads: time and difference from the unbatched stems.

Each mode runs :func:`stemwright.engine.run.separate_tensor` in a fresh child process (model built, one untimed
warm-up chunk, then the timed separation), with PyTorch's threads, ``batch_size`` (chunks stacked into one forward
call: larger products) and ``workers`` (groups of chunks run at once in threads, each with ``threads // workers``
intra-op threads) as the mode says. The first mode is the reference: every other mode prints its wall and CPU time,
the largest absolute difference of its stems from the reference's and their SNR (dB). ``--isa avx2,native`` runs
every mode once per instruction-set level (``benchmarks/bench_zoo.py``'s ``ISA_LEVELS``), the levels interleaved per
repeat. The CPU, its flags, each child's ISA and the load average are printed.

Models: ``default`` (``stemwright_4stem``, on the start of a real song from ``../shared/data/mixtures``),
``htdemucs`` (the published HT Demucs configuration, random weights: the products of the real model).

Usage::

    .venv/bin/python benchmarks/bench_engine_parallel.py --model default --seconds 60 --isa avx2,native
    .venv/bin/python benchmarks/bench_engine_parallel.py --model htdemucs --seconds 10 \
        --modes b1-t2-w1,b2-t2-w1,b1-t2-w2 --isa avx2,native
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
from bench_zoo import cpu_description, isa_environment, isa_levels  # noqa: E402  (the same CPU/ISA helpers)

REPO = Path(__file__).resolve().parents[1]
SONG = REPO.parent / "shared" / "data" / "mixtures" / "singularity_Awakening_MaxMcCracken_CC-BY-SA-3.0.ogg"

CHILD = r"""
import json, sys, time
import numpy as np, torch
model_name, seconds, batch, threads, workers, out = sys.argv[1], float(sys.argv[2]), *map(int, sys.argv[3:6]), sys.argv[6]
torch.set_num_threads(threads)
from stemwright.engine.run import separate_tensor
if model_name == "default":
    from stemwright.audio.io import read_audio
    from stemwright.audio.resample import resample
    from stemwright.models.shipped import build_default4
    model = build_default4()
    a = read_audio(sys.argv[7])
    mix = resample(a.samples[:, : int(seconds * a.samplerate) + a.samplerate], a.samplerate, 44100)[:, : int(seconds * 44100)]
else:
    from stemwright.models import htdemucs
    from stemwright.models.architectures import architecture_class
    torch.manual_seed(0)
    model = architecture_class("htdemucs")(htdemucs.PUBLISHED["htdemucs"]).eval()
    mix = (0.1 * np.random.default_rng(0).standard_normal((2, int(seconds * 44100)))).astype(np.float32)
mix = torch.from_numpy(np.ascontiguousarray(mix))
seg = int(model.segment * model.samplerate)
separate_tensor(model, mix[:, : seg // 2], segment=model.segment)  # warm-up: kernels, calibration, allocator
t0, c0 = time.perf_counter(), time.process_time()
stems = separate_tensor(model, mix, batch_size=batch, workers=workers)
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
np.save(out, stems.numpy())
from stemwright.engine import cpu_kernels
import resource
print(json.dumps({"wall_s": wall, "cpu_s": cpu, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "aten_isa": torch.backends.cpu.get_cpu_capability(),
                  "kernels": str(cpu_kernels.routes())}))
"""


def parse_mode(mode: str) -> tuple[int, int, int]:
    """``bB-tT-wW`` -> (batch_size, threads, workers)."""
    try:
        b, t, w = mode.split("-")
        assert b[0] == "b" and t[0] == "t" and w[0] == "w"
        return int(b[1:]), int(t[1:]), int(w[1:])
    except (ValueError, AssertionError, IndexError):
        raise argparse.ArgumentTypeError(f"mode {mode!r}: expected bB-tT-wW, e.g. b2-t2-w1") from None


def compare(reference, estimate) -> tuple[float, float]:
    """Largest absolute difference and SNR (dB) of ``estimate`` against ``reference``."""
    import numpy as np

    diff = estimate.astype(np.float64) - reference
    noise = float((diff ** 2).sum())
    snr = math.inf if noise == 0 else 10 * math.log10(float((reference.astype(np.float64) ** 2).sum()) / noise)
    return float(abs(diff).max()), snr


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=("default", "htdemucs"), default="default")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--modes", default="b1-t1-w1,b1-t2-w1,b2-t2-w1,b4-t2-w1,b1-t2-w2",
                    help="comma-separated bB-tT-wW (batch size, torch threads, workers); the first is the reference")
    ap.add_argument("--isa", type=isa_levels, default=["native"])
    ap.add_argument("--repeat", type=int, default=1, help="runs per mode (best wall kept), interleaved")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    for m in modes:
        parse_mode(m)
    print(f"CPU: {cpu_description()}; load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    import numpy as np

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_parallel_") as tmp:
        best: dict[tuple[str, str], dict] = {}
        for _ in range(args.repeat):
            for level in args.isa:
                for mode in modes:
                    b, t, w = parse_mode(mode)
                    out = Path(tmp) / f"{level}_{mode}.npy"
                    proc = subprocess.run(
                        [sys.executable, "-c", CHILD, args.model, str(args.seconds), str(b), str(t), str(w), str(out),
                         str(SONG)], env=isa_environment(level), capture_output=True, text=True, check=False)
                    if proc.returncode:
                        print(proc.stderr[-2000:], file=sys.stderr)
                        return 1
                    res = json.loads(proc.stdout.strip().splitlines()[-1])
                    res["load"] = os.getloadavg()[0]
                    key = (level, mode)
                    if key not in best or res["wall_s"] < best[key]["wall_s"]:
                        best[key] = res
        for level in args.isa:
            ref = np.load(Path(tmp) / f"{level}_{modes[0]}.npy").astype(np.float64)
            for mode in modes:
                res = best[(level, mode)]
                err, snr = compare(ref, np.load(Path(tmp) / f"{level}_{mode}.npy"))
                rows.append({"isa": level, "mode": mode, **res, "max_abs_diff": err, "snr_db": snr})
                print(f"{args.model} {args.seconds:g} s  isa {level} ({res['aten_isa']})  {mode:10s} "
                      f"wall {res['wall_s']:7.2f} s  cpu {res['cpu_s']:7.2f} s  rtf {res['wall_s'] / args.seconds:.3f}  "
                      f"max|diff| {err:.2e}  SNR {snr:.1f} dB  peak {res['peak_rss_mb']:.0f} MB  (load {res['load']:.1f}; kernels {res['kernels']})",
                      flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
