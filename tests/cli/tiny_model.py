"""A tiny registered model for the CLI plumbing tests: fixed fractions of the mixture, no weights, instant.

The CLI tests check options, layouts, exit statuses and re-runs; they need a model that runs in no time, not a
real separation (one end-to-end test per command still runs a real model).
"""
from __future__ import annotations

import torch
from torch import nn

SOURCES = ("vocals", "drums", "bass", "other")
SHARES = (0.4, 0.3, 0.2, 0.1)  # sum to 1: the stems add up to the mixture


class TinySplit(nn.Module):
    """``(B, C, T) -> (B, 4, C, T)``: each stem a fixed share of the mixture."""

    sources = SOURCES
    samplerate = 44100
    audio_channels = 2
    segment = 2.0

    def forward(self, mix: torch.Tensor) -> torch.Tensor:
        shares = torch.tensor(SHARES, dtype=mix.dtype, device=mix.device).view(1, -1, 1, 1)
        return shares * mix.unsqueeze(1)


def build() -> TinySplit:
    return TinySplit()
