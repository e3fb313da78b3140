"""Test helper: a model whose stems are the input and twice the input, for the engine's reconstruction tests."""
from __future__ import annotations

import torch
from torch import nn


class Identity(nn.Module):
    """Two 'sources': the input and twice the input. Records every chunk length it was given; with
    ``multiple > 1`` it asks for valid lengths as Demucs pads them and checks it gets them."""

    sources = ("a", "b")
    samplerate = 100  # so that segment seconds x 100 = samples
    audio_channels = 2

    def __init__(self, segment: float | None = 1.0, multiple: int = 1) -> None:
        super().__init__()
        self.segment = segment
        self.multiple = multiple
        self.seen: list[int] = []

    def valid_length(self, n: int) -> int:
        return -(-n // self.multiple) * self.multiple + (8 if self.multiple > 1 else 0)

    def forward(self, mix: torch.Tensor) -> torch.Tensor:
        self.seen.append(mix.shape[-1])
        if self.multiple > 1:
            assert mix.shape[-1] % self.multiple == 8 % self.multiple
        return torch.stack([mix, 2 * mix], dim=1)
