"""stemwright_6stem against stemwright_4stem and classic on generated six-stem songs, per stem (global SDR).

Cheap enough for a loaded 2-core CPU: Spleeter's vocals are computed once per song and shared by the two cascades
(both take ``spleeter_2stems``' vocals as they are, models/shipped.py), then the 4- and 6-stem splitters run on the
mixture minus those vocals (the cascade's rule: ``other`` takes the rest); ``classic`` separates the mixture.

Stems scored where the reference is not silent: every stem of each model, plus ``other4`` = other + guitar + piano
(what a 4-stem model's ``other`` holds; for the 6-stem model the sum of its guitar, piano and other). SDR is the
global ("MDX") SDR of each song, then the mean and the median over songs; the museval median over 1 s windows
(``--museval``) is slower.

Usage::

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/bench_6stem.py /work/data-28/test --seconds 20 --json out.json
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from bench_default import _estimates, _tracks_synth  # noqa: E402  (the same references and other4 rule)
from bench_zoo import cpu_description  # noqa: E402


def even_share_splitter(six, four_splitter) -> torch.nn.Module:
    """The 6-stem splitter before its guitar/piano heads learned anything: the 4-stem splitter's weights (drums/bass
    heads included) with guitar, piano and other at even thirds of classic's other (models/refiner.py)."""
    from stemwright.models.refiner import ClassicRefiner

    model = ClassicRefiner(six.splitter.config)
    own = model.state_dict()
    model.load_state_dict({k: v for k, v in four_splitter.state_dict().items() if k in own}, strict=False)
    return model.eval()


def separations(mix: torch.Tensor, six, splitters: dict[str, torch.nn.Module], classic) -> dict[str, dict[str, np.ndarray]]:
    """Stems of the models for one mixture ``(C, T)``: name -> stem -> ``(C, T)``. ``splitters``: name -> a splitter
    run on the mixture minus ``six``'s (Spleeter's) vocals."""
    with torch.inference_mode():
        x = mix[None]
        vocals = six.vocals(x)[:, six._vocal_index]
        rest = x - vocals
        out = {}
        for name, splitter in splitters.items():
            parts = splitter(rest)
            k = splitter.sources.index("other")
            parts[:, k] = rest - parts.sum(1) + parts[:, k]  # the cascade's residual rule
            out[name] = {"vocals": vocals[0].numpy(), **{s: parts[0, i].numpy() for i, s in enumerate(splitter.sources)}}
        stems = classic(x)[0]
        out["classic"] = {s: stems[i].numpy() for i, s in enumerate(classic.sources)}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("folders", type=Path, nargs="+")
    ap.add_argument("--seconds", type=float, default=20.0, help="first seconds of each song")
    ap.add_argument("--museval", action="store_true", help="also the museval median over 1 s windows")
    ap.add_argument("--even-share", action="store_true", help="also the untrained 6-stem splitter (classic's other "
                    "split in three, the 4-stem splitter's drums/bass)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(1)
    from stemwright.metrics.sdr import mdx_sdr
    from stemwright.models.shipped import DEFAULT4_SPLITTER, SIX, load_shipped
    from stemwright.pretrained.loading import load_model

    print(f"# CPU: {cpu_description()}; 1 thread; load {os.getloadavg()[0]:.1f}", flush=True)
    six = load_model(SIX, offline=True)
    four = load_shipped(DEFAULT4_SPLITTER).eval()
    classic = load_model("classic")
    splitters = {"stemwright_6stem": six.splitter, "stemwright_4stem": four}
    if args.even_share:
        splitters["6stem_even_share"] = even_share_splitter(six, four)
    scores: dict[str, dict[str, list[float]]] = {}
    windows: dict[str, dict[str, list[float]]] = {}
    t0 = time.perf_counter()
    for folder in args.folders:
        for name, mix, sr, refs in _tracks_synth(folder):
            n = int(args.seconds * sr)
            mix, refs = mix[:, :n], {k: v[:, :n] for k, v in refs.items() if np.sum(v[:, :n] ** 2) > 1e-6}
            for model, stems in separations(torch.from_numpy(mix), six, splitters, classic).items():
                est = _estimates(stems, list(refs))
                if "guitar" not in stems and ("guitar" in refs or "piano" in refs):
                    est.pop("other", None)  # a 4-stem "other" holds guitar and piano: scored as other4 only
                for stem, e in est.items():
                    scores.setdefault(model, {}).setdefault(stem, []).append(mdx_sdr(refs[stem], e))
                if args.museval:
                    from stemwright.metrics.report import score_track

                    res = score_track(name, {k: refs[k] for k in est}, {k: np.asarray(v, np.float64) for k, v in est.items()}, sr)
                    for stem, v in res.medians.items():
                        windows.setdefault(model, {}).setdefault(stem, []).append(v["SDR"])
            print(f"{name} done ({time.perf_counter() - t0:.0f} s)", flush=True)
    stems = ["vocals", "drums", "bass", "guitar", "piano", "other", "other4"]
    print(f"\nglobal SDR (dB), mean / median over songs; songs with the stem in brackets; load {os.getloadavg()[0]:.1f}\n")
    print("| stem | " + " | ".join(scores) + " |\n|---|" + "---:|" * len(scores))
    for s in stems:
        cells = []
        for m in scores:
            v = scores[m].get(s)
            cells.append(f"{np.mean(v):.2f} / {np.median(v):.2f} ({len(v)})" if v else "–")
        print(f"| {s} | " + " | ".join(cells) + " |")
    if windows:
        print("\nmuseval SDR (median over 1 s windows, median over songs)\n")
        print("| stem | " + " | ".join(windows) + " |\n|---|" + "---:|" * len(windows))
        for s in stems:
            print(f"| {s} | " + " | ".join(f"{np.nanmedian(windows[m][s]):.2f}" if s in windows[m] else "–" for m in windows) + " |")
    if args.json:
        args.json.write_text(json.dumps({"global": scores, "museval": windows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
