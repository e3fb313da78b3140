"""Validation on real data: SDR per source of a model, chunked through the engine like at inference time.

SDR here is the global ("MDX", Mitsufuji et al. 2021) signal-to-distortion ratio
``10 log10(sum ref^2 / sum (ref - est)^2)`` over the whole clip (:func:`stemwright.metrics.sdr.mdx_sdr`): cheap
enough to run during training. The museval
(BSS Eval v4) protocol figures reported for the shipped models come from ``benchmarks/bench_default.py``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from stemwright.audio.io import is_audio_path, read_audio
from stemwright.audio.resample import resample
from stemwright.engine.run import separate_tensor
from stemwright.metrics.sdr import mdx_sdr
from stemwright.train.data import DataError

log = logging.getLogger(__name__)


@dataclass
class ValItem:
    """One validation clip. Shapes: ``mix (C, T)``, each reference ``(C, T)``, at the model's rate."""

    name: str
    mix: np.ndarray
    refs: dict[str, np.ndarray]


def sdr(ref: np.ndarray, est: np.ndarray) -> float:
    """Global (MDX) SDR in dB, from :mod:`stemwright.metrics`. Shape: equal shapes."""
    return mdx_sdr(ref, est)


def _fit(x: np.ndarray, sr: int, samplerate: int, channels: int) -> np.ndarray:
    x = resample(x, sr, samplerate) if sr != samplerate else x
    if x.shape[0] != channels:
        x = np.repeat(x.mean(0, keepdims=True), channels, axis=0) if channels > 1 else x.mean(0, keepdims=True)
    return np.ascontiguousarray(x, dtype=np.float32)


def _spread(items: list, n: int | None) -> list:
    """``n`` items evenly spread over the list (covers every singer/song of a sorted list)."""
    if not n or n >= len(items):
        return items
    idx = np.linspace(0, len(items) - 1, n).round().astype(int)
    return [items[i] for i in idx]


def load_val_set(spec: dict[str, Any], samplerate: int, channels: int) -> list[ValItem]:
    """Validation clips of a config entry ``{type: mir1k|musdb|stems, path, max_items?, max_seconds?}``.

    MIR-1K: mixture = left + right (the 0 dB mixture of the literature), references vocals = right,
    accompaniment = left. Stem folders: mixture = exact sum of the stems; ``accompaniment`` = sum of non-vocal stems.
    """
    kind, path = spec.get("type", "stems"), Path(spec["path"]).expanduser()
    if not path.is_dir():
        raise DataError(f"{path}: validation folder not found")
    max_frames = int(spec["max_seconds"] * samplerate) if spec.get("max_seconds") else None
    items = []
    if kind == "mir1k":
        files = _spread(sorted(p for p in path.iterdir() if p.suffix.lower() in (".opus", ".wav", ".flac")), spec.get("max_items"))
        for f in files:
            a = read_audio(f)
            acc, voc = a.samples[0:1], a.samples[1:2]
            refs = {"vocals": _fit(voc, a.samplerate, samplerate, channels), "accompaniment": _fit(acc, a.samplerate, samplerate, channels)}
            items.append(ValItem(f.stem, refs["vocals"] + refs["accompaniment"], refs))
    elif kind in ("musdb", "stems", "synth"):
        # Hidden folders skipped: a song that `stemwright synth` is still writing (stem_folder_songs)
        songs = _spread(sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")), spec.get("max_items"))
        for song in songs:
            refs = {}
            for f in sorted(song.iterdir()):
                if f.is_file() and is_audio_path(f) and f.stem != "mixture":
                    a = read_audio(f)
                    refs[f.stem] = _fit(a.samples, a.samplerate, samplerate, channels)
            if not refs:
                continue
            n = min(r.shape[1] for r in refs.values())
            refs = {k: v[:, :n] for k, v in refs.items()}
            if "vocals" in refs and len(refs) > 1 and "accompaniment" not in refs:
                refs["accompaniment"] = sum(v for k, v in refs.items() if k != "vocals")
            mix = sum(v for k, v in refs.items() if k != "accompaniment")
            items.append(ValItem(song.name, mix, refs))
    else:
        raise DataError(f"validation type {kind!r} unknown (mir1k, musdb, stems)")
    if max_frames:
        for it in items:
            it.mix = it.mix[:, :max_frames]
            it.refs = {k: v[:, :max_frames] for k, v in it.refs.items()}
    if not items:
        raise DataError(f"{path}: no validation clips found")
    return items


def estimates_for(sources: tuple[str, ...], stems: np.ndarray, wanted: list[str]) -> dict[str, np.ndarray]:
    """Map model outputs ``(S, C, T)`` to reference names; ``accompaniment`` from a multi-stem model is the sum of its
    non-vocal stems."""
    out = {}
    for name in wanted:
        if name in sources:
            out[name] = stems[sources.index(name)]
        elif name == "accompaniment" and "vocals" in sources and len(sources) > 1:
            out[name] = sum(stems[i] for i, s in enumerate(sources) if s != "vocals")
    return out


@torch.no_grad()
def evaluate_model(model: nn.Module, items: list[ValItem], device: torch.device | str = "cpu") -> dict[str, float]:
    """Mean SDR per source over the clips (sources whose reference is silent in a clip are skipped there), and
    ``"avg"``: the mean over sources. Sources the model cannot produce are not scored."""
    model.eval()
    scores: dict[str, list[float]] = {}
    sources = tuple(model.sources)
    for it in items:
        stems = separate_tensor(model, torch.from_numpy(it.mix), device=device).numpy()
        est = estimates_for(sources, stems, list(it.refs))
        for name, e in est.items():
            ref = it.refs[name]
            if np.sum(ref.astype(np.float64) ** 2) < 1e-6:
                continue
            scores.setdefault(name, []).append(sdr(ref, e))
    result = {k: float(np.mean(v)) for k, v in scores.items()}
    if result:
        result["avg"] = float(np.mean(list(result.values())))
    return result
