"""Separation diagnostics: is a set of stems usable?

- Reconstruction: energy of ``mixture - sum(stems)`` relative to the mixture, in dB (-inf = exact).
- Bleed matrix per frequency band: ``bleed[i][j]`` = share of stem i's STFT-magnitude variance explained by a
  least-squares fit ``a * |S_j| + c`` (squared Pearson correlation over the band's time-frequency cells). Clean
  stems give a near-diagonal matrix; stems that all contain the same music give values near 1 everywhere.
- Mono compatibility per stem and for the mix: L/R correlation and the level change when folded to mono
  (``(L + R) / 2``; 0 dB for a centred source, -3 dB for uncorrelated channels, -inf for anti-phase).
- Levels: sample peak, true peak, RMS, clipped samples (|x| >= 0.999 in runs of 3+), DC offset.
- Plots (PNG): a spectrogram per stem, a stacked waveform overview, the bleed matrices.
"""
from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from stemwright.audio.io import read_audio
from stemwright.audio.resample import resample
from stemwright.dsp.stft import StftConfig, stft
from stemwright.mixer.loudness import true_peak_db
from stemwright.mixer.plots import write_plots
from stemwright.mixer.stems import StemSet, as_stemset

log = logging.getLogger(__name__)

BANDS: tuple[tuple[str, float, float], ...] = (
    ("all", 0.0, math.inf), ("low <200 Hz", 0.0, 200.0), ("mid 200-2k", 200.0, 2000.0),
    ("high-mid 2k-8k", 2000.0, 8000.0), ("high >8k", 8000.0, math.inf),
)
N_FFT, HOP = 2048, 512
CLIP_LEVEL = 0.999  # -0.009 dBFS: decoded/quantised full-scale samples rarely hit exactly 1.0
CLIP_RUN = 3  # consecutive samples at full scale = clipping, a single one is just a loud peak
DC_WARN_DBFS = -40.0


def _db_power(x: float) -> float:
    return 10 * math.log10(x) if x > 0 else -math.inf


def _round(v: float | None, nd: int = 3) -> float | None:
    return None if v is None or not math.isfinite(v) else round(float(v), nd)


@dataclass
class InspectReport:
    """Everything :func:`inspect` measured; :meth:`to_dict` gives the JSON of ``stemwright inspect --json``."""

    stems: list[str]
    samplerate: int
    duration_s: float
    reconstruction: dict[str, Any] | None
    bleed: dict[str, list[list[float | None]]]
    bands: list[dict[str, Any]]
    mono: dict[str, dict[str, float | None]]
    levels: dict[str, dict[str, Any]]
    warnings: list[str] = field(default_factory=list)
    plots: list[str] = field(default_factory=list)
    source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source, "stems": self.stems, "samplerate": self.samplerate,
            "duration_s": round(self.duration_s, 3), "reconstruction": self.reconstruction,
            "bands": self.bands, "bleed": self.bleed, "mono": self.mono, "levels": self.levels,
            "warnings": self.warnings, "plots": self.plots,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def off_diagonal_mean(self, band: str = "all") -> float:
        """Mean off-diagonal bleed of a band (0 = no bleed, 1 = every stem is the same signal)."""
        m = np.array([[np.nan if v is None else v for v in row] for row in self.bleed[band]], dtype=float)
        off = m[~np.eye(len(m), dtype=bool)]
        return float(np.nanmean(off)) if off.size else 0.0

    def summary(self) -> str:
        """Human-readable report (what ``stemwright inspect`` prints)."""
        return format_report(self)


def _magnitudes(stems: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Mono STFT magnitudes. Shape: each ``(C, T)`` -> ``(F, N)``."""
    cfg = StftConfig(n_fft=N_FFT, hop_length=HOP)
    out = {}
    for name, x in stems.items():
        mono = np.ascontiguousarray(x.mean(axis=0))
        if mono.shape[0] <= N_FFT // 2:  # the centred STFT's reflect padding needs more than n_fft/2 samples
            mono = np.pad(mono, (0, N_FFT // 2 + 1 - mono.shape[0]))
        out[name] = stft(torch.from_numpy(mono), cfg).abs().numpy()
    return out


def bleed_matrix(stems: dict[str, np.ndarray], samplerate: int) -> tuple[dict[str, list[list[float | None]]], list[dict]]:
    """Per band, ``M[i][j]`` = squared correlation of |STFT| of stem i and stem j (None if either is silent there)."""
    mags = _magnitudes(stems)
    freqs = np.linspace(0, samplerate / 2, N_FFT // 2 + 1)
    names = list(stems)
    result: dict[str, list[list[float | None]]] = {}
    bands = []
    for label, lo, hi in BANDS:
        sel = (freqs >= lo) & (freqs < hi)
        if not sel.any():
            continue
        bands.append({"name": label, "lo_hz": lo, "hi_hz": None if math.isinf(hi) else hi})
        flat = np.stack([mags[n][sel].ravel() for n in names]).astype(np.float64)
        flat -= flat.mean(axis=1, keepdims=True)
        norms = np.linalg.norm(flat, axis=1)
        gram = flat @ flat.T
        matrix = []
        for i in range(len(names)):
            row = []
            for j in range(len(names)):
                ok = norms[i] > 1e-9 and norms[j] > 1e-9
                row.append(_round((gram[i, j] / (norms[i] * norms[j])) ** 2, 4) if ok else None)
            matrix.append(row)
        result[label] = matrix
    return result, bands


def mono_compatibility(x: np.ndarray) -> dict[str, float | None]:
    """L/R correlation and level change (dB) when folded to mono. Shape: ``(C, T)``."""
    if x.shape[0] == 1:
        return {"correlation": 1.0, "mono_loss_db": 0.0}
    left, right = x[0].astype(np.float64), x[1].astype(np.float64)
    stereo_power = (np.mean(left ** 2) + np.mean(right ** 2)) / 2
    if stereo_power == 0:
        return {"correlation": None, "mono_loss_db": None}
    mono_power = np.mean(((left + right) / 2) ** 2)
    denom = math.sqrt(np.mean(left ** 2) * np.mean(right ** 2))
    corr = float(np.mean(left * right) / denom) if denom > 0 else 0.0
    return {"correlation": _round(corr, 4), "mono_loss_db": _round(_db_power(mono_power / stereo_power), 2)}


def levels(x: np.ndarray) -> dict[str, Any]:
    """Peak, true peak, RMS (dBFS), clipping and DC of ``(C, T)`` audio."""
    peak = float(np.abs(x).max()) if x.size else 0.0
    hot = np.abs(x) >= CLIP_LEVEL
    clipped = 0
    for ch in hot:  # count samples inside runs of >= CLIP_RUN consecutive full-scale samples
        if not ch.any():
            continue
        edges = np.diff(np.concatenate([[0], ch.astype(np.int8), [0]]))
        starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        runs = ends - starts
        clipped += int(runs[runs >= CLIP_RUN].sum())
    dc = x.astype(np.float64).mean(axis=1)
    dc_max = float(np.abs(dc).max())
    return {
        "peak_dbfs": _round(20 * math.log10(peak) if peak > 0 else -math.inf, 2),
        "true_peak_dbtp": _round(true_peak_db(x), 2),
        "rms_dbfs": _round(_db_power(float(np.mean(x.astype(np.float64) ** 2))), 2),
        "clipped_samples": clipped,
        "dc_offset": [round(float(d), 6) for d in dc],
        "dc_dbfs": _round(20 * math.log10(dc_max) if dc_max > 0 else -math.inf, 1),
    }


def _load_mixture(mixture: Any, stemset: StemSet, samplerate: int | None) -> tuple[np.ndarray, str] | None:
    if mixture is None:
        if stemset.mixture_path is None:
            return None
        mixture = stemset.mixture_path
        log.info("using %s as the mixture", mixture)
    if isinstance(mixture, (str, Path)):
        a = read_audio(mixture)
        x, sr, label = a.samples, a.samplerate, str(mixture)
    else:
        x, sr, label = np.asarray(mixture, dtype=np.float32), samplerate or stemset.samplerate, "array"
        x = x[None] if x.ndim == 1 else x
    if sr != stemset.samplerate:
        log.warning("mixture is at %d Hz, stems at %d Hz; resampling the mixture", sr, stemset.samplerate)
        x = resample(x, sr, stemset.samplerate)
    return x, label


def reconstruction(stems: dict[str, np.ndarray], mixture: np.ndarray, warnings: list[str]) -> dict[str, Any]:
    """Residual energy of ``mixture - sum(stems)`` relative to the mixture, in dB. Shapes: ``(C, T)``."""
    total = sum(np.broadcast_to(x, (max(s.shape[0] for s in stems.values()), x.shape[1])) for x in stems.values())
    n = min(total.shape[1], mixture.shape[1])
    if total.shape[1] != mixture.shape[1]:
        msg = (f"mixture is {mixture.shape[1] - total.shape[1]:+d} samples longer than the stems; "
               f"compared over the first {n}")
        log.warning(msg)
        warnings.append(msg)
    mix = np.broadcast_to(mixture, (max(mixture.shape[0], total.shape[0]), mixture.shape[1]))[:, :n].astype(np.float64)
    res = mix - total[:, :n]
    e_mix, e_res = float(np.sum(mix ** 2)), float(np.sum(res ** 2))
    error_db = _db_power(e_res / e_mix) if e_mix > 0 else math.inf
    return {"error_db": _round(error_db, 2), "residual_peak": _round(float(np.abs(res).max()), 6),
            "compared_samples": n}


def inspect(
    stems: Any, mixture: Any = None, *, samplerate: int | None = None, plots: str | Path | None = None,
    overwrite: bool = False,
) -> InspectReport:
    """Diagnose separated stems (a folder, a :class:`StemSet` or a dict plus ``samplerate``).

    ``mixture``: a file or a ``(C, T)`` array; by default a ``mixture.*`` file in the stems folder if present.
    ``plots``: a folder to write PNGs to (spectrogram per stem, waveforms, bleed matrix); existing PNGs are only
    replaced with ``overwrite=True``.
    """
    stemset = as_stemset(stems, samplerate)
    warnings = list(stemset.warnings)
    mix_sum = sum(np.broadcast_to(x, (2 if any(s.shape[0] == 2 for s in stemset.audio.values()) else 1, x.shape[1]))
                  for x in stemset.audio.values())
    loaded = _load_mixture(mixture, stemset, samplerate)
    recon = None
    if loaded is not None:
        recon = reconstruction(stemset.audio, loaded[0], warnings)
        recon["mixture"] = loaded[1]
    bleed, bands = bleed_matrix(stemset.audio, stemset.samplerate)
    mono = {n: mono_compatibility(x) for n, x in stemset.audio.items()}
    mono["mix"] = mono_compatibility(np.asarray(mix_sum))
    lv = {n: levels(x) for n, x in stemset.audio.items()}
    lv["mix"] = levels(np.asarray(mix_sum, dtype=np.float32))
    for name, d in lv.items():
        if d["clipped_samples"]:
            warnings.append(f"{name}: {d['clipped_samples']} clipped samples")
        if d["dc_dbfs"] is not None and d["dc_dbfs"] > DC_WARN_DBFS:
            warnings.append(f"{name}: DC offset at {d['dc_dbfs']} dBFS")
    report = InspectReport(
        stemset.names, stemset.samplerate, stemset.duration, recon, bleed, bands, mono, lv, warnings,
        source=str(stemset.path) if stemset.path else None,
    )
    if plots is not None:
        report.plots = [str(p) for p in write_plots(report, stemset, loaded[0] if loaded else None, Path(plots), overwrite)]
    return report


def _fmt(v: Any, unit: str = "") -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float) and math.isinf(v):
        return "-inf" + unit
    return f"{v}{unit}"


def format_report(r: InspectReport) -> str:
    """Plain-text summary of a report (tables of levels, mono compatibility and the full-band bleed matrix)."""
    lines = [f"stems: {', '.join(r.stems)}  ({r.duration_s:.2f} s at {r.samplerate} Hz)"]
    if r.source:
        lines[0] = f"{r.source}: " + lines[0]
    if r.reconstruction:
        rec = r.reconstruction
        lines.append(f"reconstruction vs {rec['mixture']}: residual {_fmt(rec['error_db'], ' dB')} "
                     f"(peak {_fmt(rec['residual_peak'])})")
    else:
        lines.append("reconstruction: no mixture given (use --mixture FILE)")
    width = max(len(n) for n in [*r.stems, "mix"]) + 2
    lines += ["", f"{'':<{width}}{'peak dBFS':>10}{'true pk':>9}{'RMS dBFS':>10}{'clipped':>9}{'DC dBFS':>9}"
                  f"{'L/R corr':>10}{'mono dB':>9}"]
    for name in [*r.stems, "mix"]:
        lv, mo = r.levels[name], r.mono[name]
        lines.append(f"{name:<{width}}{_fmt(lv['peak_dbfs']):>10}{_fmt(lv['true_peak_dbtp']):>9}{_fmt(lv['rms_dbfs']):>10}"
                     f"{lv['clipped_samples']:>9}{_fmt(lv['dc_dbfs']):>9}{_fmt(mo['correlation']):>10}"
                     f"{_fmt(mo['mono_loss_db']):>9}")
    band = next(iter(r.bleed))
    lines += ["", f"bleed ({band} band; row explained by column, 0 = none, 1 = identical; "
                  f"mean off-diagonal {r.off_diagonal_mean(band):.3f}):",
              f"{'':<{width}}" + "".join(f"{n[:9]:>10}" for n in r.stems)]
    for name, row in zip(r.stems, r.bleed[band]):
        lines.append(f"{name:<{width}}" + "".join(f"{_fmt(v):>10}" for v in row))
    for w in r.warnings:
        lines.append(f"warning: {w}")
    for p in r.plots:
        lines.append(f"plot: {p}")
    return "\n".join(lines)
