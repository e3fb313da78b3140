"""Scoring whole datasets: per-track scores (museval JSON layout), summary tables (CSV/Markdown/JSON) and plots.

Used by ``stemwright eval``; the pieces are plain functions so they can be called from Python too.
"""
from __future__ import annotations

import csv
import io
import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from stemwright.atomic import atomic_write_png, atomic_write_text
from stemwright.metrics.aggregate import frames_median, track_json, tracks_aggregate
from stemwright.metrics.bsseval import bss_eval_v4
from stemwright.metrics.sdr import length_weighted_mean, mdx_sdr, nsdr

log = logging.getLogger(__name__)

PROTOCOLS = ("museval", "mdx", "all")


@dataclass
class TrackResult:
    """Scores of one track. ``museval``: the museval-layout JSON dict (or None); ``mdx``: stem -> global SDR;
    ``nsdr``: stem -> {SDR, SIR, SAR, SDR_mix, NSDR} (MIR-1K); ``length``: samples."""

    name: str
    subset: str
    samplerate: int
    length: int
    museval: dict | None = None
    mdx: dict[str, float] = field(default_factory=dict)
    nsdr: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def medians(self) -> dict[str, dict[str, float]]:
        return frames_median(self.museval) if self.museval else {}


def score_track(
    name: str,
    references: Mapping[str, np.ndarray],
    estimates: Mapping[str, np.ndarray],
    samplerate: int,
    *,
    protocol: str = "all",
    mixture: np.ndarray | None = None,
    subset: str = "",
    window_s: float = 1.0,
) -> TrackResult:
    """Score one track's estimates. ``mixture`` given: also NSDR (MIR-1K protocol, whole-clip bss_eval_sources).

    Shape: every stem ``(C, T)``; estimates must match the references' shape exactly.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    stems = list(references)
    for s in stems:
        if s not in estimates:
            raise ValueError(f"track {name!r}: no estimate for stem {s!r}")
        if estimates[s].shape != references[s].shape:
            raise ValueError(f"track {name!r}: estimate of {s!r} has shape {estimates[s].shape}, "
                             f"reference {references[s].shape}")
    length = int(next(iter(references.values())).shape[-1])
    result = TrackResult(name, subset, samplerate, length)
    refs, ests = _stack(references, stems), _stack(estimates, stems)
    if protocol in ("museval", "all"):
        win = int(window_s * samplerate)
        sc = bss_eval_v4(refs, ests, window=win, hop=win)
        per = {s: {k: v[i] for k, v in sc.as_dict().items()} for i, s in enumerate(stems)}
        result.museval = track_json(per, samplerate, extra={"win": window_s, "hop": window_s, "track": name})
    if protocol in ("mdx", "all"):
        result.mdx = {s: mdx_sdr(references[s], estimates[s]) for s in stems}
    if mixture is not None:
        mono = lambda x: np.asarray(x, np.float64).mean(axis=0)  # noqa: E731 - MIR-1K is mono
        res = nsdr(np.stack([mono(references[s]) for s in stems]), np.stack([mono(estimates[s]) for s in stems]),
                   mono(mixture))
        result.nsdr = {s: {k: float(v[i]) for k, v in res.items()} for i, s in enumerate(stems)}
    return result


def _stack(arrays: Mapping[str, np.ndarray], stems: list[str]) -> np.ndarray:
    """``(S, C, T)`` filled stem by stem in the stems' precision (float32 from audio files: the BSS Eval kernel
    casts block by block, exactly); one allocation, no temporaries. Fresh memory (a 3-minute 4-stem track is
    0.5 GB per side in float64) was what the eval command spent its system time on."""
    first = np.asarray(arrays[stems[0]])
    dtype = np.float32 if all(np.asarray(arrays[s]).dtype == np.float32 for s in stems) else np.float64
    out = np.empty((len(stems), *first.shape), dtype=dtype)
    for i, s in enumerate(stems):
        out[i] = arrays[s]
    return out


def summarize(results: Sequence[TrackResult]) -> dict[str, dict[str, float]]:
    """Per-stem summary row: museval median/mean over tracks of the frame medians, MDX SDR (mean over songs),
    and for MIR-1K GNSDR/GSIR/GSAR (length-weighted) and mean NSDR. Key ``"_all"`` holds set-level figures.
    """
    stems: list[str] = []
    for r in results:
        for s in list(r.mdx) + list(r.nsdr) + [t["name"] for t in (r.museval or {}).get("targets", [])]:
            if s not in stems:
                stems.append(s)
    agg = tracks_aggregate([r.medians for r in results if r.museval])
    table: dict[str, dict[str, float]] = {}
    for s in stems:
        row: dict[str, float] = {}
        for m in ("SDR", "SIR", "SAR", "ISR"):
            if s in agg and m in agg[s]:
                row[f"{m} median"] = agg[s][m]["median"]
                if m == "SDR":
                    row["SDR mean"] = agg[s][m]["mean"]
        mdx = [r.mdx[s] for r in results if s in r.mdx]
        if mdx:
            row["MDX SDR"] = float(np.mean(mdx))
        nd = [(r.nsdr[s], r.length) for r in results if s in r.nsdr]
        if nd:
            lengths = [n for _, n in nd]
            row["GNSDR"] = length_weighted_mean([d["NSDR"] for d, _ in nd], lengths)
            row["GSIR"] = length_weighted_mean([d["SIR"] for d, _ in nd], lengths)
            row["GSAR"] = length_weighted_mean([d["SAR"] for d, _ in nd], lengths)
            row["GSDR"] = length_weighted_mean([d["SDR"] for d, _ in nd], lengths)
            row["NSDR mean"] = float(np.mean([d["NSDR"] for d, _ in nd]))
        table[s] = row
    songs = [float(np.mean(list(r.mdx.values()))) for r in results if r.mdx]
    table["_all"] = {"tracks": float(len(results))}
    if songs:
        table["_all"]["MDX SDR (set)"] = float(np.mean(songs))
    return table


def _fmt(v: float) -> str:
    return "nan" if not math.isfinite(v) else f"{v:.3f}"


def table_columns(table: Mapping[str, Mapping[str, float]]) -> list[str]:
    cols: list[str] = []
    for s, row in table.items():
        if s != "_all":
            cols += [c for c in row if c not in cols]
    return cols


def to_markdown(table: Mapping[str, Mapping[str, float]], title: str = "") -> str:
    cols = table_columns(table)
    lines = [f"### {title}", ""] if title else []
    lines += ["| stem | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
    for s, row in table.items():
        if s != "_all":
            lines.append(f"| {s} | " + " | ".join(_fmt(row[c]) if c in row else "" for c in cols) + " |")
    extra = {k: v for k, v in table.get("_all", {}).items() if k != "tracks"}
    lines += ["", f"tracks: {int(table.get('_all', {}).get('tracks', 0))}"]
    lines += [f"{k}: {_fmt(v)}" for k, v in extra.items()]
    return "\n".join(lines) + "\n"


def to_text(table: Mapping[str, Mapping[str, float]]) -> str:
    cols = table_columns(table)
    width = max([len("stem")] + [len(s) for s in table if s != "_all"])
    head = f"{'stem':<{width}}  " + "  ".join(f"{c:>11}" for c in cols)
    lines = [head, "-" * len(head)]
    for s, row in table.items():
        if s != "_all":
            lines.append(f"{s:<{width}}  " + "  ".join(f"{_fmt(row[c]) if c in row else '':>11}" for c in cols))
    for k, v in table.get("_all", {}).items():
        if k != "tracks":
            lines.append(f"{k}: {_fmt(v)}")
    return "\n".join(lines)


def to_csv(table: Mapping[str, Mapping[str, float]]) -> str:
    cols = table_columns(table)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["stem", *cols])
    for s, row in table.items():
        if s != "_all":
            w.writerow([s, *[(f"{row[c]:.6f}" if c in row else "") for c in cols]])
    return buf.getvalue()


def track_record(r: TrackResult) -> dict:
    """What is saved per track: museval's layout plus stemwright's MDX/NSDR figures."""
    data = dict(r.museval) if r.museval else {"targets": []}
    data.update({"track": r.name, "subset": r.subset, "samplerate": r.samplerate, "length": r.length})
    if r.mdx:
        data["mdx_sdr"] = r.mdx
    if r.nsdr:
        data["nsdr"] = r.nsdr
    return data


def save_plots(results: Sequence[TrackResult], outdir: Path, title: str) -> list[Path]:
    """Per-stem box plots across tracks and per-track grouped bars. Returns the PNG paths."""
    import matplotlib  # lazy: a 0.3-0.6 s import only plots need

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # see above

    metric, values = _plot_values(results)
    if not values:
        return []
    stems = list(values)
    paths = []
    fig, ax = plt.subplots(figsize=(1.6 * len(stems) + 2, 4))
    ax.boxplot([np.asarray(values[s])[np.isfinite(values[s])] for s in stems], showmeans=True)
    ax.set_xticks(range(1, len(stems) + 1), stems)
    ax.set_ylabel("dB")
    ax.set_title(f"{title}\n{metric}, distribution over tracks", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    paths.append(atomic_write_png(outdir / "boxplot.png", fig))

    names = [r.name for r in results]
    fig, ax = plt.subplots(figsize=(max(6, 0.5 * len(names) * len(stems) / 2 + 3), 4.5))
    w = 0.8 / len(stems)
    x = np.arange(len(names))
    for k, s in enumerate(stems):
        ax.bar(x + (k - (len(stems) - 1) / 2) * w, values[s], w, label=s)
    ax.set_xticks(x, names, rotation=60 if len(names) > 4 else 0, ha="right" if len(names) > 4 else "center",
                  fontsize=7 if len(names) > 20 else 9)
    ax.set_ylabel("dB")
    ax.set_title(f"{title}\n{metric} by track", fontsize=10)
    ax.axhline(0, color="k", lw=0.5)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    paths.append(atomic_write_png(outdir / "tracks.png", fig))
    return paths


def _plot_values(results: Sequence[TrackResult]) -> tuple[str, dict[str, list[float]]]:
    """The figure to plot: museval SDR (frame median) if computed, else NSDR, else MDX SDR."""
    if any(r.museval for r in results):
        metric = "SDR (BSS Eval v4, median over frames)"
        get = lambda r, s: r.medians.get(s, {}).get("SDR", float("nan"))  # noqa: E731
        stems = [t["name"] for t in results[0].museval["targets"]] if results[0].museval else []
    elif any(r.nsdr for r in results):
        metric, stems = "NSDR", list(results[0].nsdr)
        get = lambda r, s: r.nsdr.get(s, {}).get("NSDR", float("nan"))  # noqa: E731
    else:
        metric, stems = "MDX SDR", list(results[0].mdx)
        get = lambda r, s: r.mdx.get(s, float("nan"))  # noqa: E731
    return metric, {s: [get(r, s) for r in results] for s in stems}


def save_report(results: Sequence[TrackResult], outdir: Path, title: str, meta: Mapping[str, object]) -> dict[str, Path]:
    """Per-track JSON (``outdir/<subset>/<track>.json``), summary CSV/Markdown/JSON and plots."""
    written: dict[str, Path] = {}
    for r in results:
        sub = outdir / r.subset if r.subset else outdir / "tracks"
        written[f"track:{r.name}"] = atomic_write_text(sub / f"{r.name}.json", json.dumps(track_record(r), indent=2))
    table = summarize(results)
    written["csv"] = atomic_write_text(outdir / "summary.csv", to_csv(table))
    written["markdown"] = atomic_write_text(outdir / "summary.md", to_markdown(table, title))
    tracks = [{"track": r.name, "subset": r.subset, "samplerate": r.samplerate, "length": r.length,
               "museval_median": r.medians, "mdx_sdr": r.mdx, "nsdr": r.nsdr} for r in results]
    summary = {**meta, "summary": table, "tracks": tracks}
    written["json"] = atomic_write_text(outdir / "summary.json", json.dumps(summary, indent=2))
    try:
        plots = save_plots(results, outdir, title)
    except ImportError as e:  # matplotlib is the optional [plot] extra: the scores matter more than the figures
        log.warning("plots skipped: %s is not installed (pip install 'stemwright[plot]')", e.name or "matplotlib")
        plots = []
    for p in plots:
        written[p.stem] = p
    return written
