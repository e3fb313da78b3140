"""Separation quality metrics computed exactly as the reference tools do.

- :func:`bss_eval_v4`: BSS Eval v4 (museval 0.4.1 / SiSEC 2018), per-window SDR/ISR/SIR/SAR.
- :func:`mdx_sdr`: the Music Demixing Challenge global SDR; :func:`si_sdr`; :func:`nsdr` (MIR-1K).
- :mod:`stemwright.metrics.aggregate`: museval's JSON layout and median-of-medians aggregation.
"""
from stemwright.metrics.aggregate import frames_median, track_json, tracks_aggregate
from stemwright.metrics.bsseval import BssEvalScores, bss_eval_v4, framing
from stemwright.metrics.sdr import (
    bss_sources_sdr,
    length_weighted_mean,
    mdx_sdr,
    mdx_set_score,
    mdx_song_score,
    nsdr,
    si_sdr,
)

__all__ = [
    "BssEvalScores", "bss_eval_v4", "framing", "mdx_sdr", "mdx_song_score", "mdx_set_score", "si_sdr",
    "bss_sources_sdr", "nsdr", "length_weighted_mean", "track_json", "frames_median", "tracks_aggregate",
]
