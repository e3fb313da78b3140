"""Spleeter's 2-stem model in stemwright: quality against ``classic`` and ``stemwright_vocals``, whole-track vs chunked
path, speed, memory and load time. Prints figures; tunes nothing it reports.

Honest selection (issue 16 part 6): MIR-1K ``dev`` has two singers. Spleeter's options (``mask_extension`` zeros /
average, Wiener post-filter off / on) are chosen on singer **Ani** (38 clips) only; the figures are reported on singer
**fdps** (48 clips), which nothing here was selected on. The MUSDB18 excerpt (7 s, 6 windows) is reported too but is
noise at +-1 dB, and ``classic`` was tuned on it. MIR-1K: 16 kHz mono (mixture = left + right channel; references
vocals = right, accompaniment = left), separated by each model at its own rate through stemwright.Separator.

Metrics: BSS Eval v4 SDR (stemwright.metrics, equal to museval 0.4.1) per 1 s window, median over windows per clip,
then median over clips; and MIR-1K's GNSDR (length-weighted NSDR of whole-clip bss_eval_sources).

Whole-track vs chunked (``--chunked``): ``segment=None`` runs the whole track at once (independent 512-frame blocks
inside ``forward``, the parity path); with a segment the engine's overlap-add runs chunks, on the whole track's block
grid when the segment and the stride are whole numbers of blocks (loaded published models: 8 blocks = 95.1 s). ``--segment-blocks N`` (default 4 = 47.6 s, so that the real songs have chunk edges) is the
chunk length measured; ``--segment S`` instead measures an arbitrary length in seconds (off the grid). Measured (a) as an SDR difference with true stems on long tracks made of MIR-1K fdps clips joined
end to end, and (b) on the real songs of ../shared/data/mixtures (no stems): SDR of the chunked output against the
whole-track output, and the largest sample-to-sample jump of the difference within 10 ms of each chunk edge vs
elsewhere (clicks).

Speed (``--speed``): a fresh child process: load time after ``import torch``, separation of a 3-minute stereo
44.1 kHz song (Awakening, first 180 s) and the peak resident memory.

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/spleeter_quality.py --select --report --musdb --threads 1
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/spleeter_quality.py --chunked --segment 30 --threads 1
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/spleeter_quality.py --speed --threads 1
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
SR = 44100

SPEED_CHILD = r"""
import json, resource, sys, time
import numpy as np, torch
torch.set_num_threads(int(sys.argv[2]))
seconds = float(sys.argv[3])
from stemwright.audio.io import read_audio
from stemwright.audio.resample import resample
a = read_audio(sys.argv[4])
song = np.ascontiguousarray(resample(a.samples, a.samplerate, 44100)[:, : int(seconds * 44100)])
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t0 = time.perf_counter()
import stemwright
from stemwright.pretrained.loading import load_model
model = load_model(sys.argv[1], offline=True)
load = time.perf_counter() - t0
if sys.argv[5] == "none":  # the whole track in one call, whatever its length
    import dataclasses
    from stemwright.models.spleeter import Spleeter
    whole = Spleeter(dataclasses.replace(model.config, segment=None))
    whole.load_state_dict(model.state_dict())
    model = whole.eval()
sep = stemwright.Separator(model, device="cpu")
t0 = time.perf_counter()
stems = sep.separate(song, 44100)
took = time.perf_counter() - t0
print(json.dumps({"model": sys.argv[1], "load_s": round(load, 3), "seconds": round(took, 2),
                  "audio_s": song.shape[1] / 44100, "rtf": round(took / (song.shape[1] / 44100), 4),
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                  "rss_before_load_mb": round(base), "threads": int(sys.argv[2]), "segment": model.segment}))
"""


def mir1k_clips(singer: str):
    from stemwright.audio.io import read_audio

    for f in sorted((SHARED / "mir1k" / "dev").glob(f"{singer}_*.opus")):
        a = read_audio(f)
        acc, voc = a.samples[0:1].astype(np.float64), a.samples[1:2].astype(np.float64)
        yield f.stem, (acc + voc).astype(np.float32), a.samplerate, {"vocals": voc, "accompaniment": acc}


def musdb_tracks():
    from stemwright.audio.io import read_audio

    for song in sorted(p for p in (SHARED / "musdb18-excerpts").iterdir() if p.is_dir()):
        refs = {s: read_audio(song / f"{s}.flac").samples.astype(np.float64) for s in ("vocals", "drums", "bass", "other")}
        refs = {"vocals": refs["vocals"], "accompaniment": refs["drums"] + refs["bass"] + refs["other"]}
        yield song.name, read_audio(song / "mixture.flac").samples, SR, refs


def spleeter(**overrides):
    """spleeter_2stems with config overrides that keep its weights (mask_extension, wiener, segment)."""
    from stemwright.pretrained.loading import load_model
    from stemwright.models.spleeter import Spleeter, SpleeterConfig

    base = load_model("spleeter_2stems", offline=True)
    if not overrides:
        return base
    model = Spleeter(SpleeterConfig(**{**base.config.__dict__, **overrides}))
    model.load_state_dict(base.state_dict())
    return model.eval()


def two_stems(stems: dict[str, np.ndarray], mix: np.ndarray) -> dict[str, np.ndarray]:
    """vocals + accompaniment of any model's stems (a 4-stem model's accompaniment: the sum of the others)."""
    vocals = stems["vocals"]
    acc = stems.get("accompaniment")
    if acc is None:
        acc = sum(v for k, v in stems.items() if k != "vocals")
    return {"vocals": vocals, "accompaniment": acc}


def score(model, tracks, label: str, segment: float | None = None) -> dict:
    import stemwright
    from stemwright.metrics.report import score_track, summarize

    sep = stemwright.Separator(model, device="cpu", segment=segment)
    results, spent, audio = [], 0.0, 0.0
    for name, mix, sr, refs in tracks:
        t0 = time.perf_counter()
        stems = sep.separate(mix, sr)
        spent += time.perf_counter() - t0
        audio += mix.shape[-1] / sr
        est = {k: np.asarray(v, np.float64)[:, : refs[k].shape[1]] for k, v in two_stems(stems, mix).items()}
        if mix.shape[0] == 1:
            est = {k: v.mean(0, keepdims=True) for k, v in est.items()}
        results.append(score_track(name, refs, est, sr, protocol="museval", mixture=mix if mix.shape[0] == 1 else None))
    table = summarize(results)
    out = {"set": label, "clips": len(results), "rtf": spent / max(audio, 1e-9)}
    for s in ("vocals", "accompaniment"):
        row = table.get(s, {})
        out[s] = {"sdr_median": row.get("SDR median"), "gnsdr": row.get("GNSDR")}
    return out


def fmt(r: dict) -> str:
    parts = []
    for s in ("vocals", "accompaniment"):
        v = r[s]
        parts.append(f"{s} SDR {v['sdr_median']:6.2f}" + (f" GNSDR {v['gnsdr']:6.2f}" if v.get("gnsdr") is not None else ""))
    return "  ".join(parts) + f"  (clips {r['clips']}, rtf {r['rtf']:.3f})"


OPTIONS = {
    "zeros": dict(mask_extension="zeros", wiener=False),
    "average": dict(mask_extension="average", wiener=False),
    "zeros+wiener": dict(mask_extension="zeros", wiener=True),
    "average+wiener": dict(mask_extension="average", wiener=True),
}


def select(results: list[dict]) -> str:
    """Best option on singer Ani by the mean of the vocals and accompaniment SDR medians."""
    ani = {r["option"]: r for r in results if r.get("stage") == "select"}
    best = max(ani, key=lambda k: ani[k]["vocals"]["sdr_median"] + ani[k]["accompaniment"]["sdr_median"])
    return best


def chunk_edges(length: int, segment_s: float, overlap: float = 0.25) -> list[int]:
    from stemwright.engine.chunking import plan_offsets

    seg = int(round(segment_s * SR))
    offsets = plan_offsets(length, seg, overlap)
    edges = sorted({o for o in offsets if o > 0} | {o + seg for o in offsets if o + seg < length})
    return edges


def chunked(args, results: list[dict]) -> None:
    import torch

    from stemwright.audio.io import read_audio
    from stemwright.audio.resample import resample
    from stemwright.engine.run import separate_tensor
    from stemwright.metrics.report import score_track, summarize

    whole_model = spleeter(segment=None)
    block = whole_model.config.block_samples
    segment = args.segment if args.segment else args.segment_blocks * block / SR
    chunk_model = spleeter(segment=segment)
    print(f"chunked path: segment {segment:.3f} s ({segment * SR / block:.2f} blocks), overlap 0.25", flush=True)
    # (a) with true stems: MIR-1K fdps clips joined end to end into long tracks (16 kHz mono).
    clips = list(mir1k_clips("fdps"))
    groups = [clips[i : i + 12] for i in range(0, len(clips), 12)]
    rows = {"whole": [], "chunked": []}
    for gi, group in enumerate(groups):
        mix = np.concatenate([c[1] for c in group], axis=1)
        refs = {k: np.concatenate([c[3][k] for c in group], axis=1) for k in ("vocals", "accompaniment")}
        sr = group[0][2]
        x = torch.from_numpy(np.repeat(resample(mix, sr, SR), 2, 0))
        for path, model in (("whole", whole_model), ("chunked", chunk_model)):
            out = separate_tensor(model, x)
            est = {s: resample(out[j].mean(0, keepdim=True).numpy(), SR, sr)[:, : mix.shape[1]].astype(np.float64)
                   for j, s in enumerate(model.sources)}
            rows[path].append(score_track(f"fdps_long_{gi}", refs, est, sr, protocol="museval", mixture=mix))
    a = {p: summarize(r) for p, r in rows.items()}
    length_s = [sum(c[1].shape[1] for c in g) / group[0][2] for g in groups]
    for s in ("vocals", "accompaniment"):
        w, c = a["whole"][s], a["chunked"][s]
        line = {"stage": "chunked_sdr", "stem": s, "segment": round(segment, 3), "tracks": len(groups),
                "track_seconds": [round(t, 1) for t in length_s],
                "whole_sdr_median": w["SDR median"], "chunked_sdr_median": c["SDR median"],
                "sdr_difference_db": c["SDR median"] - w["SDR median"], "whole_gnsdr": w["GNSDR"],
                "chunked_gnsdr": c["GNSDR"], "gnsdr_difference_db": c["GNSDR"] - w["GNSDR"]}
        results.append(line)
        print(json.dumps(line), flush=True)
    # (b) real songs without stems: agreement and clicks at chunk edges
    for song in sorted((SHARED / "mixtures").glob("*.*")):
        if song.suffix not in (".ogg", ".mp3"):
            continue
        au = read_audio(song)
        x = torch.from_numpy(np.ascontiguousarray(resample(au.samples, au.samplerate, SR)))
        whole = separate_tensor(whole_model, x)
        part = separate_tensor(chunk_model, x)
        d = (part - whole).numpy()
        edges = chunk_edges(x.shape[-1], segment)
        near = np.zeros(x.shape[-1], bool)
        for e in edges:
            near[max(0, e - 441) : e + 441] = True
        if not edges:
            near[:] = False
        jump_d = np.abs(np.diff(d, axis=-1)).max(axis=(0, 1))
        jump_p = np.abs(np.diff(part.numpy(), axis=-1)).max(axis=(0, 1))
        jump_w = np.abs(np.diff(whole.numpy(), axis=-1)).max(axis=(0, 1))
        for j, s in enumerate(whole_model.sources):
            w = whole[j].numpy().astype(np.float64)
            agree = 10 * np.log10(np.sum(w**2) / max(np.sum(d[j].astype(np.float64) ** 2), 1e-20))
            line = {"stage": "chunked_song", "song": song.name, "stem": s, "segment": round(segment, 3),
                    "seconds": round(x.shape[-1] / SR, 1), "chunk_edges": len(edges),
                    "sdr_chunked_vs_whole_db": round(float(agree), 2),
                    "max_abs_diff": float(np.abs(d[j]).max()),
                    "max_diff_jump_near_edges": float(jump_d[near[1:]].max()) if edges else None,
                    "max_diff_jump_elsewhere": float(jump_d[~near[1:]].max()),
                    "max_jump_chunked_near_edges": float(jump_p[near[1:]].max()) if edges else None,
                    "max_jump_whole_near_edges": float(jump_w[near[1:]].max()) if edges else None}
            results.append(line)
            print(json.dumps(line), flush=True)


def speed(model: str, threads: int, seconds: float, segment: str) -> dict:
    song = SHARED / "mixtures" / "singularity_Awakening_MaxMcCracken_CC-BY-SA-3.0.ogg"
    out = subprocess.run([sys.executable, "-c", SPEED_CHILD, model, str(threads), str(seconds), str(song), segment],
                         capture_output=True, text=True, check=False, env=None)
    if out.returncode != 0:
        return {"model": model, "error": (out.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--select", action="store_true", help="compare Spleeter's options on singer Ani (selection)")
    ap.add_argument("--option", choices=sorted(OPTIONS), help="report with this option (default: the one --select picks, else zeros)")
    ap.add_argument("--report", action="store_true", help="spleeter_2stems vs classic vs stemwright_vocals on singer fdps")
    ap.add_argument("--musdb", action="store_true", help="the same three on the MUSDB excerpt (noisy; classic tuned on it)")
    ap.add_argument("--chunked", action="store_true", help="whole-track vs chunked path")
    ap.add_argument("--segment-blocks", type=int, default=4, help="chunk length for --chunked, in blocks (on the grid)")
    ap.add_argument("--segment", type=float, default=0.0, help="chunk length for --chunked in seconds (off the grid)")
    ap.add_argument("--speed", action="store_true")
    ap.add_argument("--speed-seconds", type=float, default=180.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    results: list[dict] = []
    option = args.option
    if args.select:
        for name, opts in OPTIONS.items():
            r = score(spleeter(**opts), mir1k_clips("Ani"), "mir1k_dev_Ani")
            results.append({"stage": "select", "option": name, **r})
            print(f"select  Ani   spleeter[{name:15s}] {fmt(r)}", flush=True)
        option = option or select(results)
        print(f"selected on Ani: {option}", flush=True)
    option = option or "zeros"
    candidates = {f"spleeter_2stems[{option}]": spleeter(**OPTIONS[option]), "classic": "classic",
                  "stemwright_vocals": "stemwright_vocals"}
    if args.report:
        for name, model in candidates.items():
            r = score(model, mir1k_clips("fdps"), "mir1k_dev_fdps")
            results.append({"stage": "report", "model": name, **r})
            print(f"report fdps   {name:28s} {fmt(r)}", flush=True)
    if args.musdb:
        for name, model in candidates.items():
            r = score(model, musdb_tracks(), "musdb_excerpt")
            results.append({"stage": "musdb", "model": name, **r})
            print(f"musdb excerpt {name:28s} {fmt(r)}", flush=True)
    if args.chunked:
        chunked(args, results)
    if args.speed:
        for seg in ("none", "default"):
            s = speed("spleeter_2stems", args.threads, args.speed_seconds, seg)
            results.append({"stage": "speed", **s})
            print(f"speed {json.dumps(s)}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
