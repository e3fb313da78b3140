"""PNG of an analysis (``stemwright analyze --plot``): the song's waveform with its beats, downbeats and chords,
to check the grid by eye where there is no truth (real songs). matplotlib's Agg backend, atomic write."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from stemwright.atomic import atomic_write_png
from stemwright.mixer.effects import MixError

if TYPE_CHECKING:
    from stemwright.analysis.song import SongAnalysis
    from stemwright.mixer.stems import StemSet

COLUMNS = 4000  # envelope columns drawn (max / min of each): enough for the eye, fast for long songs


def _envelope(mono: np.ndarray, samplerate: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Times, min and max of ``mono`` ``(T,)`` over :data:`COLUMNS` windows."""
    step = max(1, len(mono) // COLUMNS)
    n = max(step, len(mono) // step * step)
    blocks = np.pad(mono, (0, max(0, n - len(mono))))[:n].reshape(-1, step)
    return np.arange(len(blocks)) * step / samplerate, blocks.min(axis=1), blocks.max(axis=1)


def plot_analysis(stems: StemSet, analysis: SongAnalysis, path: Path, *, overwrite: bool = False) -> Path:
    """Waveform of the stems' sum with beats (thin), downbeats (thick) and chord names along the top."""
    import matplotlib  # lazy: a 0.3-0.6 s import only plots need

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: see above

    if path.exists() and not overwrite:
        raise MixError(f"{path}: already exists (use --overwrite to replace it)")
    mono = sum(np.asarray(a, np.float32).mean(axis=0) for a in stems.audio.values())
    t, lo, hi = _envelope(np.asarray(mono), stems.samplerate)
    fig, ax = plt.subplots(figsize=(max(10.0, min(60.0, stems.duration / 4)), 4), layout="constrained")
    ax.fill_between(t, lo, hi, color="#888888", linewidth=0)
    ax.vlines(analysis.beats, -1, 1, color="#1f77b4", linewidth=0.5, alpha=0.6, label="beats")
    ax.vlines(analysis.downbeats, -1, 1, color="#d62728", linewidth=1.5, label="downbeats")
    peak = float(max(np.abs(lo).max(initial=0), np.abs(hi).max(initial=0), 1e-6))
    for c in analysis.chords:
        if c.label != "N":
            ax.text(c.start, 1.02 * peak, c.name, fontsize=7, va="bottom", clip_on=True)
    ax.set_ylim(-1.1 * peak, 1.25 * peak)
    ax.set_xlim(0, stems.duration)
    ax.set_xlabel("time (s)")
    tempo = f"{analysis.tempo_bpm:.1f} BPM" if analysis.tempo_bpm is not None else "no steady tempo"
    ax.set_title(f"{tempo} ({analysis.tempo_confidence:.2f}), {analysis.time_signature}, {analysis.key}")
    ax.legend(loc="lower right", fontsize=7)
    return atomic_write_png(path, fig)
