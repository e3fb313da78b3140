"""``stemwright live`` on a dummy JACK server: latency vs CPU vs quality, per model and requested latency.

For each setting and song, a fresh ``jackd -d dummy -r 44100 -p 1024`` runs (real time: the dummy driver paces
itself like a sound card), ``stemwright live -m MODEL --latency S`` starts, a player plays a song into it (a unit
impulse first, then the song) and a recorder captures the stems. The songs: the visible MUSDB excerpt when
``--track`` names it, and, with ``--generated SECONDS``, the generated demo song (``stemwright.synth.demo``, its true
stems known) repeated to that length. Per setting it prints ``measured_latency_s`` (first sound out minus the offline
stems' first sound, from the impulse), ``xruns``, ``late_blocks``, ``dropped_blocks``, the worker's ``cpu_share`` of
one core, ``max_abs_diff_vs_offline`` (against the offline separation with the same chunking, as the live worker
runs it: 0 up to float rounding), the MDX SDR of the live stems against the song's true stems (``sdr_db``; late
blocks are silence, and count), the SDR of that offline separation with the same chunks (``sdr_same_chunks_db``: what
the live stems are when the worker keeps up) and the machine's 1-minute load average at the end of the session; one ``offline`` row per model and song gives the SDR of the model
as shipped with its own chunking. Not a timed test: quote the figures with the command, the CPU and the load.

    .venv/bin/python benchmarks/bench_live.py -m stemwright_4stem --latency 0.5 1 2 4 12 \
        --track "../shared/data/musdb18-excerpts/Music Delta - 80s Rock" --generated 24 [--json]
    .venv/bin/python benchmarks/bench_live.py -m classic stemwright_4stem --latency 2 --generated 60 --json
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

from stemwright.audio.io import read_audio
from stemwright.engine.live import LatencyError, plan_live, prefer_short_blocks
from stemwright.engine.run import separate_tensor
from stemwright.live_check import PERIOD, RATE, dummy_server, offline_same_chunks, record_live
from stemwright.metrics.sdr import mdx_sdr
from stemwright.pretrained.loading import load_model
from stemwright.synth.demo import render_demo

LEAD_IN = 16384  # silence before the impulse, and between it and the song: longer than an STFT model spreads it back


def _song(track: Path | None, seconds: float) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Shape: (2, T) at 44.1 kHz (an impulse at LEAD_IN, the song from 2 * LEAD_IN) and the reference stems
    aligned to it: the MUSDB ``track``, or (``track`` None) the demo song repeated to ``seconds``."""
    if track is not None:
        mix = read_audio(track / "mixture.flac").samples
        refs = {p.stem: read_audio(p).samples for p in sorted(track.glob("*.flac")) if p.stem != "mixture"}
    else:
        demo, stems = render_demo(RATE)
        n = int(seconds * RATE)
        reps = -(-n // demo.shape[1])
        mix = np.tile(demo, reps)[:, :n]
        refs = {k: np.tile(v, reps)[:, :n] for k, v in stems.items()}
    pad = ((0, 0), (2 * LEAD_IN, 0))
    song = np.pad(mix, pad).astype(np.float32)
    song[:, LEAD_IN] = 0.5
    return song, {k: np.pad(v, pad) for k, v in refs.items()}


def _sdr(stems: np.ndarray, sources: tuple[str, ...], refs: dict[str, np.ndarray]) -> float | None:
    """Mean MDX SDR over the stems with a reference, on the song part. ``stems``: (S, C, T)."""
    if not refs:
        return None
    start = 2 * LEAD_IN
    return float(np.mean([mdx_sdr(refs[s][:, start:], stems[i][:, start:]) for i, s in enumerate(sources) if s in refs]))


def _setting(model_name: str, model: torch.nn.Module, latency: float, song: np.ndarray,
             refs: dict[str, np.ndarray], label: str, fallback: str | None) -> dict:
    """One live session; ``model`` as the live worker runs it (short blocks). With ``fallback``, the difference to
    the offline separation is measured before the switch only."""
    row: dict = {"model": model_name, "latency_s": latency, "song": label, "song_s": round(song.shape[1] / RATE, 1)}
    extra = ["--fallback", fallback] if fallback else []
    try:
        plan = plan_live(model, latency, block_size=PERIOD)
    except LatencyError as e:
        return {**row, "error": str(e)}
    sources = tuple(model.sources)
    ports = [f"{s}_{c}" for s in sources for c in "LR"]
    L = plan.latency_samples
    with dummy_server():
        run = record_live(song, ports, song.shape[1] + L, ["-m", model_name, "--latency", str(latency), *extra])
    if run.returncode != 0:
        return {**row, "error": run.stderr.strip().splitlines()[-1] if run.stderr.strip() else f"exit {run.returncode}"}
    stems = run.recording.reshape(len(sources), 2, -1)
    offline = offline_same_chunks(model, np.pad(song, ((0, 0), (run.lead, 0))), plan)[..., run.lead :]
    first_offline = np.flatnonzero(np.abs(offline).max(axis=(0, 1)) > 0)
    first_live = np.flatnonzero(np.abs(stems).max(axis=(0, 1)) > 0)  # none: every block was late
    measured = (first_live[0] - first_offline[0]) / RATE if len(first_live) and len(first_offline) else None
    n = song.shape[1]
    if run.report.get("fallbacks"):
        row.update(fallback=fallback, switched_at_s=round(run.report["fallback_block"] * PERIOD / RATE, 2),
                   late_blocks_after_fallback=run.report["late_blocks_after_fallback"])
        n = max(0, min(n, run.report["fallback_block"] * PERIOD - run.lead))
    live = stems[..., L:]
    return {**row, "segment_s": round(plan.segment, 3), "measured_latency_s": measured,
            "xruns": run.report["xruns"], "late_blocks": run.report["late_blocks"],
            "dropped_blocks": run.report["dropped_blocks"], "cpu_share": round(run.report["cpu_share"], 3),
            "max_abs_diff_vs_offline": float(np.abs(live[..., :n] - offline[..., :n]).max()) if n else None,
            "sdr_db": _sdr(live, sources, refs), "sdr_same_chunks_db": _sdr(offline, sources, refs),
            "load_1min": round(os.getloadavg()[0], 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-m", "--models", nargs="+", default=["classic"])
    ap.add_argument("--latency", nargs="+", type=float, default=[1.0, 2.0, 4.0])
    ap.add_argument("--track", type=Path, help="a MUSDB-style folder: mixture.flac and one .flac per stem")
    ap.add_argument("--generated", type=float, metavar="SECONDS",
                    help="also (or, without --track, only) the generated demo song repeated to this length")
    ap.add_argument("--fallback", help="pass --fallback MODEL to stemwright live")
    ap.add_argument("--json", action="store_true", help="one JSON object per setting")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
    songs = []
    if args.track is not None:
        songs.append((args.track.name, *_song(args.track, 0.0)))
    if args.generated or args.track is None:
        seconds = args.generated or 24.0
        songs.append((f"generated {seconds:g} s", *_song(None, seconds)))
    for name in args.models:
        shipped = load_model(name, device="cpu", offline=True)
        live = prefer_short_blocks(load_model(name, device="cpu", offline=True))
        for label, song, refs in songs:
            rows = [_setting(name, live, latency, song, refs, label, args.fallback) for latency in args.latency]
            offline = separate_tensor(shipped, torch.from_numpy(song)).numpy()
            rows.append({"model": name, "latency_s": "offline", "song": label,
                         "sdr_db": _sdr(offline, tuple(shipped.sources), refs)})
            for row in rows:
                print(json.dumps(row) if args.json else "  ".join(f"{k}={v}" for k, v in row.items()), flush=True)


if __name__ == "__main__":
    sys.exit(main())
