"""museval's JSON layout and aggregation: median over frames per track, then median (and mean) over tracks."""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from decimal import Decimal

import numpy as np

from stemwright import __version__
from stemwright.metrics.bsseval import BssEvalScores

METRICS = ("SDR", "SIR", "ISR", "SAR")


def _quantise(value: float) -> float:
    """museval's ``TrackStore._q``: 5 decimals, ``±inf`` stored as NaN."""
    if not math.isfinite(value):
        return float("nan")
    return float(Decimal(value).quantize(Decimal(".00001")))


def track_json(scores: Mapping[str, BssEvalScores | Mapping[str, np.ndarray]], samplerate: int,
               extra: Mapping[str, object] | None = None) -> dict:
    """Per-window scores of one track in museval's JSON layout (``musdb.schema.json``):
    ``{"targets": [{"name", "frames": [{"time", "duration", "metrics": {SDR, SIR, SAR, ISR}}]}], ...}``.

    ``scores``: target name -> :class:`BssEvalScores` of that target (row 0 used if it has several sources) or a
    dict ``{"SDR": (W,), ...}`` with ``window``/``hop`` given by ``extra``.
    """
    targets = []
    for name, sc in scores.items():
        if isinstance(sc, BssEvalScores):
            values = {k: np.atleast_2d(v)[0] for k, v in sc.as_dict().items()}
            win, hop = sc.window / samplerate, sc.hop / samplerate
        else:
            values = {k: np.asarray(v) for k, v in sc.items()}
            win, hop = float((extra or {}).get("win", 1.0)), float((extra or {}).get("hop", 1.0))
        frames = [
            {"time": i * hop, "duration": win, "metrics": {m: _quantise(float(values[m][i])) for m in METRICS}}
            for i in range(len(values["SDR"]))
        ]
        targets.append({"name": name, "frames": frames})
    out: dict = {"targets": targets, "museval_version": "0.4.1 (compatible)", "stemwright_version": __version__}
    if extra:
        out.update({k: v for k, v in extra.items() if k not in ("win", "hop")})
    return out


def frames_median(track: Mapping) -> dict[str, dict[str, float]]:
    """Median over frames (NaN frames skipped, as museval's pandas aggregation). -> ``{target: {metric: value}}``."""
    out = {}
    for target in track["targets"]:
        out[target["name"]] = {}
        for m in METRICS:
            vals = np.array([_nan(f["metrics"].get(m)) for f in target["frames"]], dtype=np.float64)
            vals = vals[np.isfinite(vals)]
            out[target["name"]][m] = float(np.median(vals)) if vals.size else float("nan")
    return out


def _nan(v: object) -> float:
    return float("nan") if v is None else float(v)  # type: ignore[arg-type]


def tracks_aggregate(per_track: Iterable[Mapping[str, Mapping[str, float]]]) -> dict[str, dict[str, dict[str, float]]]:
    """Median and mean over tracks of the per-track frame medians (museval ``EvalStore``: median of medians).

    ``per_track``: iterable of ``{target: {metric: value}}``. -> ``{target: {metric: {"median", "mean", "n"}}}``.
    """
    collected: dict[str, dict[str, list[float]]] = {}
    for track in per_track:
        for target, metrics in track.items():
            for m, v in metrics.items():
                collected.setdefault(target, {}).setdefault(m, []).append(float(v))
    out: dict[str, dict[str, dict[str, float]]] = {}
    for target, metrics in collected.items():
        out[target] = {}
        for m, vals in metrics.items():
            a = np.asarray(vals)
            a = a[np.isfinite(a)]
            out[target][m] = {
                "median": float(np.median(a)) if a.size else float("nan"),
                "mean": float(np.mean(a)) if a.size else float("nan"),
                "n": int(a.size),
            }
    return out
