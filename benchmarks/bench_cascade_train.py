"""Issue 28, parts 1 and 3: the 4-stem cascade with a candidate splitter against today's, and what each production
ingredient of ``stemwright synth`` does to today's model.

SDR here is the global (MDX) SDR per stem and song, ``10 log10(sum ref^2 / sum err^2)``, averaged over songs (silent
references skipped), as the training's validation; the museval medians of the model cards come from
``bench_default.py``. Mixtures are read from ``mixture.wav`` when a song has one (so a codec round trip is scored as
written), else summed from the stems.

    # part 1: today's splitter vs a fine-tuned one, same songs
    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/bench_cascade_train.py splitter \\
        --candidate /work/runs-28c/cascade/best.json --sets /work/data-28c/val ../shared/data/musdb18-excerpts --json OUT
    # part 3: production ingredients on/off (rendered once per song, produced once per variant), today's model
    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/bench_cascade_train.py production --seed 5100 --songs 3 \\
        --seconds 10 --json OUT
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch

from stemwright.audio.io import read_audio
from stemwright.engine.run import separate_tensor
from stemwright.metrics.sdr import mdx_sdr
from stemwright.models.cascade import Cascade
from stemwright.pretrained.loading import load_model

STEMS = ("vocals", "drums", "bass", "other")
log = logging.getLogger("bench_cascade_train")


def _song_folder(song: Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    def read(name: str) -> np.ndarray | None:
        for ext in (".wav", ".flac"):
            if (song / f"{name}{ext}").exists():
                return read_audio(song / f"{name}{ext}").samples.astype(np.float32)
        return None
    refs = {s: x for s in STEMS if (x := read(s)) is not None}
    mix = read("mixture")
    return (mix if mix is not None else sum(refs.values())), refs


def sdr_table(model: torch.nn.Module, songs) -> dict:
    """Mean global SDR per stem over ``songs`` (iterable of ``(name, mix (C, T), refs)``), ``avg``, per song too."""
    per = {}
    for name, mix, refs in songs:
        est = separate_tensor(model, torch.from_numpy(np.ascontiguousarray(mix))).numpy()
        n = min(mix.shape[1], *(r.shape[1] for r in refs.values()))
        per[name] = {s: round(mdx_sdr(refs[s][:, :n], est[model.sources.index(s)][:, :n]), 3)
                     for s in STEMS if s in refs and np.sum(refs[s].astype(np.float64) ** 2) > 1e-6}
    mean = {s: round(float(np.mean([p[s] for p in per.values() if s in p])), 3) for s in STEMS
            if any(s in p for p in per.values())}
    mean["avg"] = round(float(np.mean(list(mean.values()))), 3)
    return {"mean": mean, "songs": per}


def splitter(args: argparse.Namespace) -> dict:
    base = load_model("stemwright_4stem", offline=True, progress=False)
    cand = Cascade.from_models(base.vocals, load_model(args.candidate), copy=False)
    out = {}
    for root in args.sets:
        songs = [p for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith(".")]
        for label, model in (("today", base), ("candidate", cand)):
            t0 = time.process_time()
            table = sdr_table(model, ((p.name, *_song_folder(p)) for p in songs))
            out.setdefault(root.name, {})[label] = {**table, "cpu_s": round(time.process_time() - t0, 1)}
            log.info("%s %s: %s", root.name, label, table["mean"])
    return out


def production(args: argparse.Namespace) -> dict:
    from stemwright.synth.bus import INGREDIENTS, BusOptions
    from stemwright.synth.dataset import song_seed
    from stemwright.synth.song import generate_song_variants

    variants = {"none": BusOptions(), **{k: BusOptions(**{k: True}) for k in INGREDIENTS},
                "mp3": BusOptions(codec="mp3"), "aac": BusOptions(codec="aac"), "all": BusOptions.parse("all")}
    model = load_model("stemwright_4stem", offline=True, progress=False)
    songs: dict[str, list] = {k: [] for k in variants}
    for i in range(args.songs):
        seed = song_seed(args.seed, i)
        for label, song in zip(variants, generate_song_variants(seed, args.seconds, list(variants.values()))):
            songs[label].append((f"{args.seed}-{i}", song.mixture, song.stems))
    out = {}
    for label, items in songs.items():
        out[label] = sdr_table(model, items)
        log.info("%s: %s", label, out[label]["mean"])
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="mode", required=True)
    a = sub.add_parser("splitter")
    a.add_argument("--candidate", type=Path, required=True, help="a drums/bass/other splitter checkpoint")
    a.add_argument("--sets", type=Path, nargs="+", required=True)
    b = sub.add_parser("production")
    b.add_argument("--seed", type=int, default=5100, help="dataset seed of the songs (validation seeds)")
    b.add_argument("--songs", type=int, default=3)
    b.add_argument("--seconds", type=float, default=10.0)
    for p in (a, b):
        p.add_argument("--json", type=Path)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(1)
    result = splitter(args) if args.mode == "splitter" else production(args)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
