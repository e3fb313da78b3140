"""Benchmark stemwright's shipped models against ``classic``: museval-protocol SDR on real data, speed and memory.

Quality (BSS Eval v4 as museval 0.4.1, via :mod:`stemwright.metrics`): SDR per 1 s window, median over windows per
track, then median over tracks (SiSEC 2018 reporting); also the mean over tracks, and the global "MDX" SDR.

- MUSDB18 excerpt (``../shared/data/musdb18-excerpts``, 4 stems + accompaniment): the file's own mixture is
  separated (as musdb does), the references are the stems.
- MIR-1K ``dev`` (16 kHz): mixture = left + right; references vocals = right, accompaniment = left. A 4-stem
  model's accompaniment is the sum of its drums, bass and other. Scored mono at 16 kHz.

Speed: seconds, real-time factor and peak resident memory (``ru_maxrss`` of a fresh child process, model load
included) of ``stemwright.Separator(model).separate`` on a 3-minute stereo 44.1 kHz song. ``--isa avx2,native`` times
each model once per instruction-set level, each child with ATen, oneDNN and MKL capped at that level
(``benchmarks/bench_zoo.py``'s ``ISA_LEVELS``), the levels interleaved per model; ``--fast`` adds the fast path.
The CPU model, its flags and each child's ISA are printed.

Usage::

    .venv/bin/python benchmarks/bench_default.py --models stemwright_4stem classic --json out.json
    .venv/bin/python benchmarks/bench_default.py --models stemwright_vocals --no-musdb --speed
    .venv/bin/python benchmarks/bench_default.py --models stemwright_4stem --no-musdb --no-mir1k --speed \
        --isa avx2,native --repeat 2
    .venv/bin/python benchmarks/bench_default.py --models stemwright_4stem classic --speed \
        --synth /work/data-synth-novocals/val      # also prints the issue's target table against classic

Honest selection (issue 16 part 6): MIR-1K dev singer Ani (38 clips) and generated validation songs select; the
default reports on singer fdps (48 clips). The MUSDB excerpt is 7 s (6 windows: read +-1 dB as noise) and ``classic``
was tuned on it.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from bench_zoo import cpu_description, isa_environment, isa_levels  # noqa: E402  (the same CPU/ISA helpers)

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"

SPEED_CHILD = r"""
import json, resource, sys, time
import numpy as np, torch
torch.set_num_threads(int(sys.argv[3]))
import stemwright
t0 = time.perf_counter()
sep = stemwright.Separator(sys.argv[1], device="cpu", fast=sys.argv[5] == "fast")
load = time.perf_counter() - t0
seconds = float(sys.argv[2])
rng = np.random.default_rng(0)
song = None
path = sys.argv[4]
if path:
    from stemwright.audio.io import read_audio
    from stemwright.audio.resample import resample
    a = read_audio(path)
    x = resample(a.samples, a.samplerate, 44100)
    reps = int(np.ceil(seconds * 44100 / x.shape[1]))
    song = np.tile(x, (1, reps))[:, : int(seconds * 44100)]
if song is None:
    song = (0.1 * rng.standard_normal((2, int(seconds * 44100)))).astype(np.float32)
if song.shape[0] == 1:
    song = np.repeat(song, 2, 0)
t0 = time.perf_counter()
cpu0 = time.process_time()
stems = sep.separate(song, 44100)
took, cpu = time.perf_counter() - t0, time.process_time() - cpu0
from stemwright.engine import cpu_kernels
print(json.dumps({"model": sys.argv[1], "load_s": load, "seconds": took, "cpu_s": cpu, "rtf": took / seconds,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "threads": int(sys.argv[3]),
                  "aten_isa": torch.backends.cpu.get_cpu_capability(), "precision": sep.precision.reason,
                  "kernels": str(cpu_kernels.routes())}))
"""


def _tracks_mir1k(limit: int | None, singer: str | None = None):
    from stemwright.audio.io import read_audio

    files = sorted((SHARED / "mir1k" / "dev").glob(f"{singer}_*.opus" if singer else "*.opus"))
    if limit:
        files = [files[i] for i in np.linspace(0, len(files) - 1, limit).round().astype(int)]
    for f in files:
        a = read_audio(f)
        acc, voc = a.samples[0:1].astype(np.float64), a.samples[1:2].astype(np.float64)
        yield f.stem, (acc + voc).astype(np.float32), a.samplerate, {"vocals": voc, "accompaniment": acc}


def _tracks_musdb():
    from stemwright.audio.io import read_audio

    for song in sorted(p for p in (SHARED / "musdb18-excerpts").iterdir() if p.is_dir()):
        refs = {s: read_audio(song / f"{s}.flac").samples.astype(np.float64) for s in ("vocals", "drums", "bass", "other")}
        refs["accompaniment"] = refs["drums"] + refs["bass"] + refs["other"]
        mix = read_audio(song / "mixture.flac")
        yield song.name, mix.samples, mix.samplerate, refs


#: Stems that a 4-stem model's "other" holds: the reference "other4" of a 6-stem song is their sum, and a 6-stem
#: model's "other4" estimate the sum of its guitar, piano and other (so 4- and 6-stem models compare on one stem).
OTHER4_PARTS = ("other", "guitar", "piano")


def _tracks_synth(folder: Path):
    """Generated validation songs (``stemwright synth``, ``--six-stems`` too): the mixture is the exact sum of the
    stems found; silent references are not scored (a song without vocals scores drums, bass, other). Six-stem songs
    also score ``other4`` = other + guitar + piano (what a 4-stem model's ``other`` holds)."""
    from stemwright.audio.io import read_audio

    for song in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        refs = {s: read_audio(song / f"{s}.wav").samples.astype(np.float64)
                for s in ("vocals", "drums", "bass", "guitar", "piano", "other") if (song / f"{s}.wav").exists()}
        mix = sum(refs.values())
        if "guitar" in refs or "piano" in refs:
            refs["other4"] = sum(refs[s] for s in OTHER4_PARTS if s in refs)
        refs = {k: v for k, v in refs.items() if np.sum(v ** 2) > 1e-6}
        yield song.name, mix.astype(np.float32), 44100, refs


def _estimates(stems: dict[str, np.ndarray], wanted: list[str]) -> dict[str, np.ndarray]:
    out = {}
    for name in wanted:
        if name in stems:
            out[name] = stems[name]
        elif name == "accompaniment" and "vocals" in stems and len(stems) > 1:
            out[name] = sum(v for k, v in stems.items() if k != "vocals")
        elif name == "other4" and "other" in stems:
            out[name] = sum(v for k, v in stems.items() if k in OTHER4_PARTS)
    return out


def score(model: str, tracks, label: str) -> dict:
    import stemwright
    from stemwright.metrics.report import score_track

    sep = stemwright.Separator(model, device="cpu")
    per_track = []
    t_total, audio_total = 0.0, 0.0
    for name, mix, sr, refs in tracks:
        t0 = time.perf_counter()
        stems = sep.separate(mix, sr)
        t_total += time.perf_counter() - t0
        audio_total += mix.shape[-1] / sr
        est = _estimates(stems, list(refs))
        refs_used = {k: v for k, v in refs.items() if k in est}
        est = {k: np.asarray(v, np.float64)[:, : refs_used[k].shape[1]] for k, v in est.items()}
        if mix.shape[0] == 1:
            est = {k: v.mean(0, keepdims=True) for k, v in est.items()}
        res = score_track(name, refs_used, est, sr, protocol="all")
        per_track.append({"track": name, "museval_median": {k: v["SDR"] for k, v in res.medians.items()}, "mdx": res.mdx})
    stems_scored = sorted({k for t in per_track for k in t["museval_median"]})
    summary = {}
    for s in stems_scored:
        vals = np.array([t["museval_median"].get(s, np.nan) for t in per_track], float)
        mdx = np.array([t["mdx"].get(s, np.nan) for t in per_track], float)
        summary[s] = {"museval_sdr_median": float(np.nanmedian(vals)), "museval_sdr_mean": float(np.nanmean(vals)),
                      "mdx_sdr_mean": float(np.nanmean(mdx))}
    return {"model": model, "set": label, "tracks": len(per_track), "rtf": t_total / max(audio_total, 1e-9),
            "stems": summary, "per_track": per_track}


def speed(model: str, seconds: float, threads: int, song: str, isa: str | None = None, fast: bool = False) -> dict:
    """One timed separation in a fresh child process (at ISA level ``isa``: its ATen/oneDNN/MKL caps; None: this
    process's environment)."""
    env = isa_environment(isa) if isa else None
    out = subprocess.run([sys.executable, "-c", SPEED_CHILD, model, str(seconds), str(threads), song,
                          "fast" if fast else "exact"], capture_output=True, text=True, check=False, env=env)
    if out.returncode != 0:
        return {"model": model, "error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "failed"}
    return {**json.loads(out.stdout.strip().splitlines()[-1]), "isa": isa or "inherited", "fast": fast,
            "load_avg": os.getloadavg()[0]}


def speeds(model: str, args: argparse.Namespace) -> list[dict]:
    """``--repeat`` rounds of one child per ISA level (and exact/fast), interleaved; each setting's best run."""
    settings = [(isa, fast) for isa in (args.isa or [None]) for fast in ((False, True) if args.fast else (False,))]
    best: dict[tuple, dict] = {}
    for _ in range(max(1, args.repeat)):
        for isa, fast in settings:
            run = speed(model, args.speed_seconds, args.threads, args.song, isa, fast)
            if (isa, fast) not in best or run.get("seconds", float("inf")) < best[(isa, fast)].get("seconds", float("inf")):
                best[(isa, fast)] = run
    return list(best.values())


def _avg(summary: dict, stems: list[str], key: str = "museval_sdr_median") -> float:
    vals = [summary[s][key] for s in stems if s in summary]
    return float(np.mean(vals)) if vals else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=["stemwright_4stem", "classic"])
    ap.add_argument("--mir1k-items", type=int, default=0, help="MIR-1K dev clips (0: all of the singer's)")
    ap.add_argument("--mir1k-singer", default="fdps",
                    help="MIR-1K dev singer to report on: fdps (48 clips, the reporting singer; Ani's 38 clips are "
                         "the selection singer), Ani, or all")
    ap.add_argument("--synth", type=Path, action="append", default=[],
                    help="a folder of generated validation songs (stemwright synth); repeatable")
    ap.add_argument("--no-musdb", action="store_true")
    ap.add_argument("--no-mir1k", action="store_true")
    ap.add_argument("--speed", action="store_true", help="also time a 3-minute stereo song (child process)")
    ap.add_argument("--speed-seconds", type=float, default=180.0)
    ap.add_argument("--isa", type=isa_levels, default=None,
                    help="with --speed: comma-separated ISA levels (avx2, avx512, native), one child each")
    ap.add_argument("--fast", action="store_true", help="with --speed: also time Separator(fast=True)")
    ap.add_argument("--repeat", type=int, default=1, help="with --speed: rounds of the children, best kept")
    ap.add_argument("--profile", type=float, default=0.0, metavar="SECONDS",
                    help="profile separate_file (read, resample, model, rescale pass, writing) of the first model on "
                         "this many seconds of --song, in process CPU time; prints the largest entries")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--song", default=str(SHARED / "mixtures" / "singularity_Awakening_MaxMcCracken_CC-BY-SA-3.0.ogg"))
    ap.add_argument("--json", type=Path, help="write all results here")
    ap.add_argument("--cards", action="store_true", help="write the figures into the model cards of shipped models")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    print(f"# CPU: {cpu_description()}; {args.threads} threads; load {os.getloadavg()[0]:.1f}", flush=True)
    if args.profile:
        profile(args.models[0], args.song, args.profile)
    singer = None if args.mir1k_singer == "all" else args.mir1k_singer
    mir_label = f"mir1k_dev_{args.mir1k_singer}"
    results = []
    for model in args.models:
        if not args.no_musdb:
            r = score(model, _tracks_musdb(), "musdb_excerpt")
            results.append(r)
            four = ["vocals", "drums", "bass", "other"]
            print(f"{model:16s} musdb excerpt  " + "  ".join(f"{s} {v['museval_sdr_median']:6.2f}" for s, v in r["stems"].items())
                  + f"  | avg4 {_avg(r['stems'], four):6.2f}  rtf {r['rtf']:.3f}", flush=True)
        if not args.no_mir1k:
            r = score(model, _tracks_mir1k(args.mir1k_items or None, singer), mir_label)
            results.append(r)
            print(f"{model:16s} mir1k dev {args.mir1k_singer} ({r['tracks']})  " + "  ".join(f"{s} {v['museval_sdr_median']:6.2f} (mean {v['museval_sdr_mean']:.2f})" for s, v in r["stems"].items())
                  + f"  | avg {_avg(r['stems'], ['vocals', 'accompaniment']):6.2f}", flush=True)
        for folder in args.synth:
            r = score(model, _tracks_synth(folder), f"synth:{folder.name}")
            results.append(r)
            print(f"{model:16s} synth {folder.name} ({r['tracks']})  " + "  ".join(f"{s} {v['museval_sdr_median']:6.2f}" for s, v in r["stems"].items()), flush=True)
        if args.speed:
            for s in speeds(model, args):
                results.append({"speed": s})
                print(f"{model:16s} speed {json.dumps(s)}", flush=True)
    if "classic" in args.models:
        for model in (m for m in args.models if m != "classic"):
            print_targets(results, model, mir_label)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    if args.cards:
        write_cards(results, args)
    return 0


def profile(model: str, song: str, seconds: float, top: int = 40) -> None:
    """cProfile of ``Separator(model).separate_file`` on the first ``seconds`` of ``song`` (written to a temporary
    WAV first), timed in process CPU time (other processes on a shared machine do not count); prints the ``top``
    entries by cumulative time."""
    import cProfile
    import io
    import pstats
    import tempfile

    import soundfile as sf

    import stemwright
    from stemwright.audio.io import read_audio

    audio = read_audio(song)
    clip = audio.samples[:, : int(seconds * audio.samplerate)]
    sep = stemwright.Separator(model, device="cpu")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "clip.wav"
        sf.write(str(path), clip.T, audio.samplerate, subtype="FLOAT")
        prof = cProfile.Profile(time.process_time)
        prof.enable()
        sep.separate_file(path, Path(tmp) / "out")
        prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(top)
    print(f"# profile of {model}.separate_file, {clip.shape[1] / audio.samplerate:.1f} s at {audio.samplerate} Hz, "
          f"process CPU seconds", flush=True)
    print(out.getvalue(), flush=True)


def _exact_speeds(results: list[dict]) -> dict[str, dict]:
    """Per model its exact-path speed run (with ``--isa``: the last level's, ``native`` when listed last)."""
    return {r["speed"]["model"]: r["speed"] for r in results if "speed" in r and not r["speed"].get("fast")}


def print_targets(results: list[dict], model: str, mir_label: str) -> None:
    """The issue's floors for ``model`` against ``classic`` (missing measurements print as not measured)."""
    def sdr(m: str, label: str, stem: str) -> float:
        for r in results:
            if r.get("model") == m and r.get("set") == label and stem in r["stems"]:
                return r["stems"][stem]["museval_sdr_median"]
        return float("nan")

    speeds = _exact_speeds(results)
    rows = []
    for stem in ("vocals", "accompaniment"):
        rows.append((f"{mir_label} {stem} >= classic + 3 dB", sdr(model, mir_label, stem), sdr("classic", mir_label, stem) + 3))
    for stem, margin in (("vocals", 1.0), ("drums", 0.0), ("bass", 0.0), ("other", 0.0)):
        rows.append((f"musdb excerpt {stem} >= classic + {margin:g} dB (noisy; classic was tuned on it)",
                     sdr(model, "musdb_excerpt", stem), sdr("classic", "musdb_excerpt", stem) + margin))
    sp = speeds.get(model, {})
    print(f"\ntargets for {model} (floors)")
    print(f"| target | {model} | floor | met |\n|---|---:|---:|---|")
    for name, value, floor in rows:
        met = "n/a" if value != value or floor != floor else ("yes" if value >= floor else "NO")
        print(f"| {name} | {value:.2f} | {floor:.2f} | {met} |")
    for name, key, limit in (("RTF, 3 min stereo", "rtf", 0.15), ("peak RSS MB", "peak_rss_mb", 1536.0),
                             ("load s after import torch", "load_s", 1.0)):
        value = float(sp.get(key, float("nan")))
        met = "n/a" if value != value else ("yes" if value <= limit else "NO")
        print(f"| {name} <= {limit:g} | {value:.3f} | {limit:g} | {met} |")


def _table(results: list[dict], model: str, label: str) -> list[str]:
    rows = {r["model"]: r for r in results if r.get("set") == label}
    if model not in rows:
        return []
    others = [m for m in rows if m != model]
    stems = list(rows[model]["stems"])
    head = "| stem | " + model + "".join(f" | {m}" for m in others) + " |"
    lines = [f"{label} ({rows[model]['tracks']} track(s)), museval SDR (median over 1 s windows, median over tracks):", "",
             head, "|---|" + "---:|" * (1 + len(others))]
    for s in stems:
        vals = [rows[m]["stems"].get(s, {}).get("museval_sdr_median", float("nan")) for m in [model, *others]]
        lines.append(f"| {s} | " + " | ".join((f"{v:.2f}" if v == v else "–") for v in vals) + " |")
    return lines + [""]


def write_cards(results: list[dict], args) -> None:
    """Replace the measured section of each shipped model's card with this run's figures."""
    import platform

    from stemwright.models.checkpoint import read_metadata
    from stemwright.models.shipped import DEFAULT4, DEFAULT4_SPLITTER, shipped_path, weights_dir
    from stemwright.train.card import MARKER

    speeds = _exact_speeds(results)
    for model in args.models:
        try:  # the 4-stem default is a cascade: its own weights are the splitter's checkpoint
            base = shipped_path(DEFAULT4_SPLITTER if model == DEFAULT4 else model)
        except ValueError:
            continue
        meta = read_metadata(base)
        card = weights_dir() / (model + ".md")
        text = card.read_text()
        body = text[: text.index(MARKER)] if MARKER in text else text
        lines = [MARKER, "", "## Measured (benchmarks/bench_default.py)", "",
                 f"Measured checkpoint: sha256 `{meta['sha256']}`, step {meta.get('training', {}).get('steps')} "
                 f"(training may have exported newer weights since; the validation table above follows the weights).",
                 f"Command: `.venv/bin/python benchmarks/bench_default.py --models {' '.join(args.models)} --threads {args.threads}"
                 + (" --speed" if args.speed else "") + (f" --mir1k-items {args.mir1k_items}" if args.mir1k_items else "")
                 + f" --mir1k-singer {args.mir1k_singer}" + "".join(f" --synth {f}" for f in args.synth) + " --cards`",
                 f"Machine: {platform.machine()}, shared 2-core CPU, torch threads {args.threads}.", ""]
        for label in dict.fromkeys(r["set"] for r in results if r.get("set")):
            lines += _table(results, model, label)
        if model in speeds:
            sp = speeds[model]
            lines += [f"Speed, {args.speed_seconds:.0f} s stereo 44.1 kHz song: {sp.get('seconds', float('nan')):.1f} s, "
                      f"real-time factor {sp.get('rtf', float('nan')):.3f}, peak RSS {sp.get('peak_rss_mb', float('nan')):.0f} MB, "
                      f"load {sp.get('load_s', float('nan')):.2f} s.", ""]
        card.write_text(body + "\n".join(lines) + "\n")
        print(f"updated {card}")


if __name__ == "__main__":
    sys.exit(main())
