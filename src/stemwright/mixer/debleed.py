"""``debleed``: clean one separated stem of the other stems' bleed (issue 27, "Clean a stem").

A soft Wiener-style re-mask: at each time-frequency cell the stem keeps the share of power it has against the sum
of the other stems, ``M = P_stem / (P_stem + P_others)`` (powers averaged over channels and smoothed over 3 frames x
3 bins, which keeps the musical noise of hard masks away), read as bleed only where the stem holds less than
:data:`BLEED_SHARE` of the power, and blended with the untouched signal by ``strength``:
``g = 1 - strength * (1 - min(1, M / BLEED_SHARE))``. Then a gentle spectral gate: cells more
than ``-gate_db`` dB under the loudest level of their frequency bin in the whole stem are attenuated by at most
``GATE_DEPTH_DB * strength`` dB (a downward expander, never a hard cut), which takes the quiet bleed between
phrases. Both act only between ``low_hz`` and ``high_hz``. The gain is shared by the stem's channels, so the stereo image is kept.

It needs the other stems, so it is a *stem-aware* effect: the renderer hands each channel the sum of the other stems
(raw, time-aligned with the channel) and it cannot be used on the master. Shapes are ``(C, T)`` float32.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from stemwright.dsp.stft import StftConfig, istft, stft

STFT = StftConfig(n_fft=2048, hop_length=512)
# Cells where the stem holds at least this share of the power are left alone; below it the mask falls linearly to 0.
# A plain Wiener ratio (1.0 here) also thins cells the stem shares with the others and cost the classic model's
# vocals and other 0.6 dB SDR on the MUSDB excerpt. What the re-mask takes from a cell the stem holds 5-20 % of is
# partly its own sound (the `other` stem, a catch-all, has pads and reverb tails under a loud mix): on 10 dev songs
# (stemwright synth --seed 11, classic) 0.2 cost `other` 0.14 dB SDR on average (vocals 0.03), 0.1 cost 0.08 and
# 0.05 cost 0.04, while the drums gained 0.23 / 0.14 / 0.08 dB; 0.05 is the default (docs/remix.md, "Clean a stem").
BLEED_SHARE = 0.05
GATE_DEPTH_DB = 12.0  # at strength 1 the gate takes quiet cells down by 12 dB: gentle, as producers advise
FLOOR_DB = -30.0  # the re-mask never takes a cell down by more than this (no holes in the spectrum)
_EPS = 1e-12


@dataclass(frozen=True)
class Tuning:
    """How hard debleed works on one kind of stem: the re-mask's bleed share (cells where the stem holds less of
    the power are turned down), the gate's depth at strength 1, and the band it may work in (the effect's
    ``low_hz``..``high_hz`` narrowed to it)."""

    share: float = BLEED_SHARE
    gate_depth_db: float = GATE_DEPTH_DB
    low_hz: float = 0.0
    high_hz: float = float("inf")


DEFAULT_TUNING = Tuning()
# Per-stem defaults, chosen on the dev songs (stemwright synth --seed 11, classic's stems) and the MUSDB excerpt at
# strength 0.5 (benchmarks/bench_remix.sh; docs/remix.md, "Clean a stem"): among shares 0.01/0.02/0.05 and bands
# from 0/300/1000 Hz, the one that did not lower SDR (mean and worst song) and worked the widest. The drums gain
# from the full re-mask (+0.08 dB mean, worst song +0.01); in vocals, bass and other every re-mask below 1 kHz took
# some of the stem's own sound (bass -0.01 to -0.02 dB mean, other -0.01 to -0.05), so they are cleaned above it
# only: the hi-hat, cymbal and sibilance bleed; other, the catch-all, only where it holds under 1 %.
STEM_TUNING: dict[str, Tuning] = {
    "drums": Tuning(share=0.05),
    "vocals": Tuning(share=0.01, low_hz=1000.0),
    "bass": Tuning(share=0.05, low_hz=1000.0),
    "other": Tuning(share=0.01, low_hz=1000.0),
}


def _smooth(power: torch.Tensor) -> torch.Tensor:
    """3 bins x 3 frames box average of a ``(F, N)`` power map (edges replicated)."""
    p = torch.nn.functional.pad(power[None, None], (1, 1, 1, 1), mode="replicate")
    return torch.nn.functional.avg_pool2d(p, 3, stride=1)[0, 0]


def _power(spec: torch.Tensor) -> torch.Tensor:
    return _smooth((spec.real ** 2 + spec.imag ** 2).mean(dim=0))


def debleed_gain(stem_power: torch.Tensor, others_power: torch.Tensor, freqs: torch.Tensor, *, strength: float,
                 low_hz: float, high_hz: float, gate_db: float, tuning: Tuning = DEFAULT_TUNING) -> torch.Tensor:
    """The ``(F, N)`` real gain of :func:`debleed` from the smoothed powers (``(F, N)``) and bin frequencies ``(F,)``."""
    if tuning.share > 0:
        wiener = stem_power / (stem_power + others_power + _EPS)
        gain = 1.0 - strength * (1.0 - torch.clamp(wiener / tuning.share, max=1.0))
    else:
        gain = torch.ones_like(stem_power)
    # Gate: a 2:1 downward expander below the threshold, bounded by strength * the tuning's depth.
    threshold = stem_power.amax(dim=1, keepdim=True) * 10 ** (gate_db / 10)
    below = torch.clamp(stem_power / (threshold + _EPS), max=1.0)
    gate = torch.clamp(below.sqrt(), min=10 ** (-tuning.gate_depth_db * strength / 20))
    gain = torch.clamp(gain * gate, min=10 ** (FLOOR_DB / 20), max=1.0)
    band = ((freqs >= max(low_hz, tuning.low_hz)) & (freqs <= min(high_hz, tuning.high_hz)))[:, None]
    return torch.where(band, gain, torch.ones_like(gain))


def tuning_for(stem: str | None) -> Tuning:
    """The tuning of a stem by name (:data:`STEM_TUNING`), the default for other names and for None."""
    return STEM_TUNING.get(stem or "", DEFAULT_TUNING)


def debleed(x: np.ndarray, others: np.ndarray, samplerate: float, *, strength: float = 0.5, low_hz: float = 20.0,
            high_hz: float = 20000.0, gate_db: float = -60.0, stem: str | None = None,
            tuning: Tuning | None = None) -> np.ndarray:
    """``x`` ``(C, T)`` with the bleed of ``others`` ``(C', T)`` (the sum of the other stems) turned down.

    ``stem`` names the stem, which picks its :class:`Tuning` (``tuning`` overrides it: benchmarks).
    Returns a new ``(C, T)`` float32 array; ``strength`` 0 returns a copy of ``x``.
    """
    x = np.asarray(x, dtype=np.float32)
    if strength <= 0.0 or x.shape[1] == 0:
        return x.copy()
    if others.shape[1] != x.shape[1]:
        raise ValueError(f"debleed: the other stems have {others.shape[1]} samples, the stem {x.shape[1]}")
    with torch.no_grad():
        spec = stft(torch.from_numpy(np.ascontiguousarray(x)).double(), STFT)
        other = stft(torch.from_numpy(np.ascontiguousarray(others, dtype=np.float32)).double(), STFT)
        freqs = torch.linspace(0, samplerate / 2, STFT.n_bins, dtype=torch.float64)
        gain = debleed_gain(_power(spec), _power(other), freqs, strength=float(strength), low_hz=float(low_hz),
                            high_hz=float(high_hz), gate_db=float(gate_db), tuning=tuning or tuning_for(stem))
        out = istft(spec * gain, STFT, length=x.shape[1])
    return out.float().numpy()


__all__ = ["debleed", "debleed_gain", "tuning_for", "Tuning", "STEM_TUNING", "STFT", "GATE_DEPTH_DB"]
