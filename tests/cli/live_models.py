"""``stemwright`` with test models registered (a helper run as ``python -m tests.cli.live_models live ...``):
``live_test_slow`` is ``classic`` that sleeps ``SLOW_SECONDS`` per chunk, longer than a chunk's stride at any
latency a test uses, so that a live session falls behind it at once (without using the CPU the test needs).

The models are registered on import: the live worker, a spawned process, imports this module again as its
``__main__`` and so finds them too."""
from __future__ import annotations

import sys
import time

import torch
from torch import nn

from stemwright.engine.run import model_valid_length
from stemwright.models.registry import MODELS, ModelEntry

SLOW_SECONDS = 1.5


class Slow(nn.Module):
    """``inner`` (sources, rate, chunking and output alike), ``seconds`` slower per call. Shape: (B, C, T) -> (B, S,
    C, T)."""

    def __init__(self, inner: nn.Module, seconds: float) -> None:
        super().__init__()
        self.inner, self.seconds = inner, seconds
        self.sources, self.samplerate = tuple(inner.sources), int(inner.samplerate)
        self.audio_channels = int(inner.audio_channels)
        self.segment = getattr(inner, "segment", None)

    def valid_length(self, length: int) -> int:
        return model_valid_length(self.inner, length)

    def forward(self, mix: torch.Tensor) -> torch.Tensor:
        time.sleep(self.seconds)
        return self.inner(mix)


def _slow_classic() -> nn.Module:
    return Slow(MODELS["classic"].loader(), SLOW_SECONDS)


MODELS["live_test_slow"] = ModelEntry(name="live_test_slow", architecture="classic",
                                      sources=MODELS["classic"].sources, samplerate=44100,
                                      description="classic, slower per chunk than real time (tests)",
                                      licence="MIT (no weights)", loader=_slow_classic)

if __name__ == "__main__":
    from stemwright.cli.main import main

    sys.exit(main(sys.argv[1:]))
