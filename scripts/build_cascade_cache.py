"""Cache what a cascade's instrument splitter receives (``mixture - vocals_est``) for songs with vocals, once per song.

See :mod:`stemwright.train.cascade_cache`. Each ``SONGS`` folder (stems folders with drums / bass / other / vocals,
e.g. from ``stemwright synth``) is cached into ``OUT/<name of SONGS>/``; run it again to finish an interrupted build.
Training (``configs/splitter3_cascade.yaml``) then reads only the cache and never runs the vocals model.

Usage::

    OMP_NUM_THREADS=1 PYTHONPATH=src python scripts/build_cascade_cache.py --model stemwright_4stem \\
        --songs /work/data-28c/train /work/data-28c/val --out /work/data-28c/cache
"""
from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
import torch

from stemwright.pretrained.loading import load_model
from stemwright.train.cascade_cache import build_cascade_cache


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="stemwright_4stem", help="the cascade whose vocals the splitter will follow")
    ap.add_argument("--songs", type=Path, nargs="+", required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(1)
    model = load_model(args.model, offline=True, progress=False)
    for root in args.songs:
        t0 = time.process_time()
        records = build_cascade_cache(model, root, args.out / root.name, model_name=args.model)
        built = [r for r in records if r.built]
        sdrs = [r.vocals_sdr for r in built if r.vocals_sdr is not None]
        logging.info("%s: %d cached now, %d kept; vocal SDR mean %s dB; %.1f CPU s", root, len(built),
                     len(records) - len(built), round(float(np.mean(sdrs)), 2) if sdrs else None,
                     time.process_time() - t0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
