"""PNG plots of ``stemwright inspect``: per-stem spectrograms, a stacked waveform overview, bleed heat maps.

Written with matplotlib's non-interactive Agg backend to temporary names, then renamed (atomic outputs).
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from stemwright.atomic import atomic_write_png
from stemwright.mixer.effects import MixError

if TYPE_CHECKING:
    from stemwright.mixer.inspect import InspectReport
    from stemwright.mixer.stems import StemSet

COLOURS = {"vocals": "#d62728", "drums": "#1f77b4", "bass": "#2ca02c", "other": "#9467bd", "mixture": "#444444",
           "residual": "#ff7f0e"}


def _save(fig, path: Path, overwrite: bool) -> Path:
    import matplotlib.pyplot as plt  # lazy: a 0.3-0.6 s import only plots need

    if path.exists() and not overwrite:
        plt.close(fig)
        raise MixError(f"{path}: already exists (use --overwrite to replace it)")
    return atomic_write_png(path, fig)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def spectrogram(name: str, x: np.ndarray, sr: int, path: Path, overwrite: bool) -> Path:
    """Log-frequency spectrogram in dBFS (mono fold). Shape of ``x``: ``(C, T)``."""
    import matplotlib.pyplot as plt  # lazy: a 0.3-0.6 s import only plots need
    from scipy.signal import stft  # lazy: a 1 s import only this plot needs

    f, t, z = stft(x.mean(axis=0), fs=sr, nperseg=2048, noverlap=2048 - 512)
    db = 20 * np.log10(np.abs(z) * 2 + 1e-10)  # x2: one-sided spectrum of a Hann-windowed sine reads ~0 dBFS
    # 320 log-spaced rows (max-pooled bins) keep plotting fast without losing what the eye can see
    edges = np.unique(np.searchsorted(f, np.geomspace(30.0, sr / 2, 321)).clip(1, len(f) - 1))
    rows = np.maximum.reduceat(db, edges[:-1], axis=0)
    fig, ax = plt.subplots(figsize=(10, 4), layout="constrained")
    mesh = ax.pcolormesh(t, f[edges[:-1]], rows, shading="nearest", cmap="magma", vmin=-100, vmax=0, rasterized=True)
    ax.set_yscale("log")
    ax.set_ylim(f[edges[0]], sr / 2)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("frequency (Hz)")
    ax.set_title(f"{name} — spectrogram")
    fig.colorbar(mesh, ax=ax, label="level (dBFS)")
    return _save(fig, path, overwrite)


def _envelope(x: np.ndarray, columns: int = 2000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mono = x.mean(axis=0)
    step = max(1, len(mono) // columns)
    n = len(mono) // step * step
    blocks = mono[:n].reshape(-1, step)
    return np.arange(blocks.shape[0]) * step, blocks.min(axis=1), blocks.max(axis=1)


def waveforms(stems: dict[str, np.ndarray], sr: int, mixture: np.ndarray | None, path: Path, overwrite: bool) -> Path:
    """Stacked min/max waveform envelopes: the mixture, each stem, and the residual mixture - sum(stems)."""
    import matplotlib.pyplot as plt  # lazy: a 0.3-0.6 s import only plots need

    rows: list[tuple[str, np.ndarray]] = []
    if mixture is not None:
        rows.append(("mixture", mixture))
    rows += list(stems.items())
    if mixture is not None:
        total = sum(s.mean(axis=0) for s in stems.values())
        n = min(len(total), mixture.shape[1])
        rows.append(("residual", (mixture.mean(axis=0)[:n] - total[:n])[None]))
    fig, axes = plt.subplots(len(rows), 1, figsize=(11, 1.3 * len(rows) + 0.8), sharex=True, sharey=True,
                             layout="constrained", squeeze=False)
    for ax, (name, x) in zip(axes[:, 0], rows):
        pos, lo, hi = _envelope(x)
        ax.fill_between(pos / sr, lo, hi, color=COLOURS.get(name, "#555555"), linewidth=0)
        peak = float(np.abs(x).max())
        peak_db = f"{20 * np.log10(peak):.1f} dBFS" if peak > 0 else "silent"
        ax.set_ylabel(name, rotation=0, ha="right", va="center")
        ax.text(1.0, 0.95, f"peak {peak_db}", transform=ax.transAxes, ha="right", va="top", fontsize=8)
        ax.axhline(0, color="#999999", linewidth=0.5)
        ax.set_ylim(-1.05, 1.05)
    axes[-1, 0].set_xlabel("time (s)")
    fig.suptitle("waveform overview (mono fold, full scale = ±1)")
    return _save(fig, path, overwrite)


def bleed_heatmap(report: InspectReport, path: Path, overwrite: bool) -> Path:
    """One heat map per band: row stem's magnitude variance explained by column stem (0 = none, 1 = all)."""
    import matplotlib.pyplot as plt  # lazy: a 0.3-0.6 s import only plots need

    names = report.stems
    bands = list(report.bleed)
    size = max(2.6, 0.65 * len(names) + 1.2)
    fig, axes = plt.subplots(1, len(bands), figsize=(size * len(bands) + 1.2, size + 0.9), layout="constrained",
                             squeeze=False)
    image = None
    for ax, band in zip(axes[0], bands):
        m = np.array([[np.nan if v is None else v for v in row] for row in report.bleed[band]], dtype=float)
        image = ax.imshow(m, vmin=0, vmax=1, cmap="viridis")
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
        ax.set_yticks(range(len(names)), names if ax is axes[0, 0] else [""] * len(names))
        ax.set_title(band)
        for i in range(len(names)):
            for j in range(len(names)):
                if not np.isnan(m[i, j]):
                    ax.text(j, i, f"{m[i, j]:.2f}", ha="center", va="center", fontsize=8,
                            color="black" if m[i, j] > 0.6 else "white")
    axes[0, 0].set_ylabel("stem (row) ...")
    fig.supxlabel("... explained by stem (column)")
    fig.suptitle("bleed matrix per band: share of the row stem's |STFT| variance explained by the column stem")
    fig.colorbar(image, ax=axes[0, -1], shrink=0.8, label="explained share (r²)")
    return _save(fig, path, overwrite)


def write_plots(report: InspectReport, stemset: StemSet, mixture: np.ndarray | None, folder: Path,
                overwrite: bool = True) -> list[Path]:
    """All plots into ``folder`` (created); returns the paths."""
    import matplotlib  # lazy: a 0.3-0.6 s import only plots need

    matplotlib.use("Agg", force=False)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise MixError(f"{folder}: cannot create plots folder ({e.strerror})") from None
    targets = [folder / f"spectrogram-{_safe(n)}.png" for n in stemset.audio] + [folder / "waveforms.png",
                                                                                folder / "bleed.png"]
    existing = [p for p in targets if p.exists()]
    if existing and not overwrite:  # check all before writing any, so a refusal leaves nothing half-done
        raise MixError(f"{existing[0]}: already exists (use --overwrite to replace the plots)")
    paths = [spectrogram(n, x, stemset.samplerate, p, overwrite) for (n, x), p in zip(stemset.audio.items(), targets)]
    paths.append(waveforms(stemset.audio, stemset.samplerate, mixture, folder / "waveforms.png", overwrite))
    paths.append(bleed_heatmap(report, folder / "bleed.png", overwrite))
    return paths
