"""Selection figures for the 4-stem default (issue 16 part 6): variants of the cascade on the *selection* data only.

Selection data: MIR-1K dev singer Ani (38 clips; vocals / accompaniment) and generated validation songs (``stemwright
synth``: 4-stem songs with MIR-1K *train* voices, and instrument-only songs). The reporting data (singer fdps, the MUSDB
excerpt) is never read here: benchmarks/bench_default.py reports on it.

Variants: the vocals model + {``classic`` restricted to drums/bass/other (= the untrained splitter), the trained
splitter checkpoint} x {no Wiener, joint multichannel Wiener with 1 EM iteration}.

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/select_default.py --splitter /work/runs/splitter3/best \\
        --synth /work/data-synth-novocals/val4 --synth /work/data-synth-novocals/val
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_default as bench  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--splitter", type=Path, required=True, help="stemwright checkpoint of the instrument splitter")
    ap.add_argument("--vocals-model", default="spleeter_2stems")
    ap.add_argument("--synth", type=Path, action="append", default=[], help="generated validation songs; repeatable")
    ap.add_argument("--wiener", type=int, nargs="+", default=[0, 1], help="EM iterations to try (0: off)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    import torch

    from stemwright.models.cascade import Cascade
    from stemwright.models.checkpoint import load_checkpoint
    from stemwright.models.refiner import ClassicRefiner
    from stemwright.pretrained.loading import load_model

    torch.set_num_threads(args.threads)
    vocals = load_model(args.vocals_model, offline=True, progress=False)
    trained = load_checkpoint(args.splitter)
    splitters = {"classic": ClassicRefiner(trained.config).eval(), "trained": trained}
    results = []
    ani_done: dict[int, dict] = {}
    for sname, splitter in splitters.items():
        for w in args.wiener:
            model = Cascade.from_models(vocals, splitter, wiener_iterations=w).eval()
            label = f"{sname} splitter, wiener {w}"
            row: dict = {"variant": label}
            # The splitter cannot change MIR-1K vocals / accompaniment without Wiener (vocals = the vocals model's,
            # accompaniment = mix - vocals), so Ani is scored once per Wiener setting.
            if w not in ani_done:
                ani_done[w] = bench.score(model, bench._tracks_mir1k(None, "Ani"), "mir1k_dev_Ani")["stems"]
            row["mir1k_dev_Ani"] = ani_done[w]
            for folder in args.synth:
                row[f"synth:{folder.name}"] = bench.score(model, bench._tracks_synth(folder), folder.name)["stems"]
            results.append(row)
            figures = []
            for key, stems in row.items():
                if key == "variant":
                    continue
                figures.append(key + " " + " ".join(f"{s} {v['museval_sdr_median']:.2f}" for s, v in stems.items()))
            four = [v["museval_sdr_median"] for k, st in row.items() if k != "variant" for s, v in st.items()
                    if s in ("vocals", "drums", "bass", "other")]
            print(f"{label:32s} | " + " | ".join(figures) + f" | mean {np.mean(four):.2f}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
