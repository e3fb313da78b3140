"""Test helpers: a model whose stems are the input and twice the input, for the engine's reconstruction tests,
and one whose output mixes neighbouring samples."""
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


class Mixing(nn.Module):
    """Not an identity: each output sample depends on its neighbours (a convolution), so context and chunk
    boundaries matter and a wrong window would show."""

    sources = ("a", "b")
    samplerate = 100
    audio_channels = 2
    segment = 0.6

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(2, 4, 9, padding=4)
        torch.nn.init.normal_(self.conv.weight, generator=torch.Generator().manual_seed(0))

    def forward(self, mix: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.conv(mix)).reshape(mix.shape[0], 2, 2, -1)
