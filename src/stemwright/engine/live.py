"""Separation at a fixed delay, block by block: the shape an audio plugin host (or a JACK client) calls.

:class:`LiveProcessor` runs the streaming chunk loop (:class:`~stemwright.engine.stream.StreamSplitter`: the same
chunks, triangle weights and order of additions as :func:`~stemwright.engine.run.separate_tensor`) over an endless
input. ``process(block (C, n)) -> {stem: (C, n)}`` returns the stems of the input ``latency_samples`` earlier (zeros
before the stream reaches that far), whatever ``n``.

Why the delay is fixed and what bounds it: chunk ``k`` starts at ``k * stride`` and runs once the input covers
its window (``segment`` samples plus the context its model's ``valid_length`` pads on the right), after which all
output before ``(k + 1) * stride`` is final. With ``A = segment + ceil(pad / 2)`` (``pad = valid_length(segment) -
segment``) the output known after ``R`` input samples always reaches ``R - A + 1``, so a delay of ``A - 1`` samples
is enough for a host that runs the model inside ``process``. A host that runs it on a worker thread (the JACK client)
needs one more audio block (the worker sees a block only after the callback has handed it on) and the time the
model takes for one chunk: :func:`plan_live` reserves one ``stride`` for that (a model that needs longer per chunk
than a stride cannot keep up at all).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from stemwright.engine.run import model_valid_length, run_batch
from stemwright.engine.stream import StreamSplitter
from stemwright.errors import UsageError

__all__ = ["LatencyError", "LivePlan", "LiveProcessor", "min_delay", "plan_fallback", "plan_live",
           "prefer_short_blocks", "reserve"]


class LatencyError(UsageError):
    """The requested latency cannot hold a chunk of the model (too short), or the plan is inconsistent."""


@dataclass(frozen=True)
class LivePlan:
    """Chunking of a live separation, in samples at the model's rate.

    ``segment_length``/``overlap`` are the engine's chunking (the offline separation with ``segment =
    segment_length / samplerate`` and this overlap gives the same stems); ``latency_samples`` is the fixed delay;
    ``block_size`` the host's block (part of the reserve, see the module docstring).
    """

    segment_length: int
    overlap: float
    latency_samples: int
    block_size: int
    samplerate: int

    @property
    def stride(self) -> int:
        return max(1, int((1 - self.overlap) * self.segment_length))

    @property
    def reserve_samples(self) -> int:
        """What a worker-thread host holds back from the delay: one block (it sees a block only after handing it
        on) plus a stride of compute time, in whole blocks."""
        return reserve(self.segment_length, self.overlap, self.block_size)

    @property
    def segment(self) -> float:
        """The chunk length in seconds, as ``separate_tensor(segment=...)`` takes it."""
        return self.segment_length / self.samplerate

    @property
    def latency(self) -> float:
        return self.latency_samples / self.samplerate


def min_delay(model: nn.Module, segment_length: int) -> int:
    """The smallest fixed delay (samples) at which a host running the model inside ``process`` is never short of
    output: ``segment + ceil(pad / 2) - 1``."""
    pad = model_valid_length(model, segment_length) - segment_length
    return segment_length + (pad - pad // 2) - 1


def reserve(segment_length: int, overlap: float, block_size: int) -> int:
    """One block plus one stride (the time to compute a chunk), rounded up to whole blocks (samples)."""
    stride = max(1, int((1 - overlap) * segment_length))
    return block_size * -(-(block_size + stride) // block_size)


def _needed(model: nn.Module, segment_length: int, overlap: float, block_size: int) -> int:
    """Delay for a worker-thread host: the minimum plus :func:`reserve`."""
    return min_delay(model, segment_length) + reserve(segment_length, overlap, block_size)


def plan_live(model: nn.Module, latency: float, *, overlap: float = 0.25, block_size: int = 1024,
              min_segment: float = 0.5) -> LivePlan:
    """The longest chunk that fits a total delay of ``latency`` seconds (``latency_samples = round(latency *
    samplerate)`` exactly; longer chunks separate better). Chunks never exceed the model's own ``segment``.
    Raises :class:`LatencyError` when even a ``min_segment`` chunk does not fit."""
    sr = int(model.samplerate)
    if not (isinstance(latency, (int, float)) and math.isfinite(latency) and latency > 0):
        raise LatencyError(f"latency must be a positive number of seconds, got {latency!r}")
    if not 0.0 <= overlap < 1.0:
        raise LatencyError(f"overlap must be in [0, 1), got {overlap}")
    if block_size < 1:
        raise LatencyError(f"block size must be >= 1, got {block_size}")
    total = int(round(latency * sr))
    lowest = max(1, int(round(min_segment * sr)))
    # the delay grows with the segment (about (2 - overlap) x): start from that estimate, step down to a fit
    seg = int((total - block_size) / (2 - overlap))
    model_segment = getattr(model, "segment", None)
    if model_segment:
        seg = min(seg, int(round(model_segment * sr)))
    step = max(1, sr // 100)
    while seg >= lowest and _needed(model, seg, overlap, block_size) > total:
        seg -= step
    if seg < lowest:
        need = _needed(model, lowest, overlap, block_size) / sr
        raise LatencyError(f"latency {latency:g} s is too short for this model: a {min_segment:g} s chunk needs "
                           f"{need:.2f} s (with {block_size}-sample blocks)")
    return LivePlan(segment_length=seg, overlap=overlap, latency_samples=total, block_size=block_size, samplerate=sr)


def prefer_short_blocks(model: nn.Module) -> nn.Module:
    """Ask every submodule that pads each input to a long fixed block (an attribute ``short_blocks``: Spleeter's
    11.9 s blocks) to pad a shorter chunk only as far as its network needs; ``model``, changed in place.

    For live chunks of about a second this is most of the default model's compute (measured: 0.6 of its 0.65 CPU
    seconds per 1.1 s chunk, on one thread); chunks as long as a block or longer are unchanged."""
    for module in model.modules():
        if hasattr(module, "short_blocks"):
            module.short_blocks = True
    return model


def plan_fallback(model: nn.Module, main: LivePlan, *, min_segment: float = 0.5) -> LivePlan:
    """The plan of a cheaper model that takes over from ``main`` at exactly the same delay.

    The host keeps ``main.reserve_samples`` of the delay for the worker (a block and one main stride of compute),
    so the fallback's processor must fit in the rest, ``main.latency_samples - main.reserve_samples``, with a chunk
    no longer than the main one (its stride, the compute time reserved, is then no longer either). The longest
    such chunk, at the main plan's overlap and block; :class:`LatencyError` when even a ``min_segment`` chunk does
    not fit (the model's ``valid_length`` needs more right-hand context than the main model's)."""
    sr = int(model.samplerate)
    if sr != main.samplerate:
        raise LatencyError(f"the fallback separates at {sr} Hz, the main model at {main.samplerate} Hz")
    room = main.latency_samples - main.reserve_samples
    seg = main.segment_length
    model_segment = getattr(model, "segment", None)
    if model_segment:
        seg = min(seg, int(round(model_segment * sr)))
    lowest, step = max(1, int(round(min_segment * sr))), max(1, sr // 100)
    while seg >= lowest and min_delay(model, seg) > room:
        seg -= step
    if seg < lowest:
        raise LatencyError(f"cannot run at the same {main.latency:g} s latency: a {min_segment:g} s chunk of it "
                           f"needs {(min_delay(model, lowest) + main.reserve_samples) / sr:.2f} s")
    return LivePlan(segment_length=seg, overlap=main.overlap, latency_samples=main.latency_samples,
                    block_size=main.block_size, samplerate=sr)


class LiveProcessor:
    """Stems of an endless input at a fixed delay.

    ``push(block (C, n)) -> (S, C, m)``: the output samples that became final (the stream's own pace);
    ``process(block (C, n)) -> {stem: (C, n)}`` (numpy) or ``process_tensor(block) -> (S, C, n)``: the stems of the
    input ``latency_samples`` earlier (zeros before that). Use ``push`` or ``process*`` on a processor, not both. A model with one audio channel separates each channel on its own.
    The caller's arrays are never modified.
    """

    def __init__(self, model: nn.Module, plan: LivePlan, channels: int = 2, device: torch.device | str = "cpu",
                 delay: int | None = None) -> None:
        delay = plan.latency_samples if delay is None else delay
        if delay < min_delay(model, plan.segment_length):
            raise LatencyError(f"delay {delay} samples is below the chunk's minimum "
                               f"{min_delay(model, plan.segment_length)}")
        if channels not in (1, 2):
            raise LatencyError(f"live separation takes 1 or 2 channels, got {channels}")
        self.model = model
        self.plan = plan
        self.channels = channels
        self.device = torch.device(device)
        self.sources = tuple(model.sources)
        self.latency_samples = delay
        self.reset()

    def reset(self) -> None:
        """Start over at the current moment: the output is silent for ``latency_samples`` again (what a host does
        after it fell too far behind)."""
        passes = self.channels if int(self.model.audio_channels) == 1 else 1
        self._splitters = [StreamSplitter(self.model, self.plan.segment_length, self.plan.overlap, 1, self.device)
                           for _ in range(passes)]
        self._dual_mono = int(self.model.audio_channels) == 2 and self.channels == 1
        self._fifo = torch.zeros(len(self.sources), self.channels, self.latency_samples)

    def warm_up(self, runs: int = 2) -> float:
        """Run the model ``runs`` times on a silent chunk of the live shape (every chunk of an endless stream has it;
        the first call allocates and picks kernels: slow), state untouched. Returns the wall seconds of the last
        run: what a chunk costs on this machine now."""
        target = model_valid_length(self.model, self.plan.segment_length)
        chunk = torch.zeros(int(self.model.audio_channels), target)
        seconds = 0.0
        with torch.inference_mode():
            for _ in range(runs):
                started = time.perf_counter()
                run_batch(self.model, [chunk], self.device)
                seconds = time.perf_counter() - started
        return seconds

    def push(self, block: torch.Tensor) -> torch.Tensor:
        """Shape: ``(C, n)`` -> ``(S, C, m)``, the newly final stems (``m`` follows the chunk grid)."""
        x = torch.as_tensor(block, dtype=torch.float32)
        if x.dim() != 2 or x.shape[0] != self.channels:
            raise LatencyError(f"block must be ({self.channels}, n), got shape {tuple(x.shape)}")
        if self._dual_mono:
            x = x.expand(2, -1)
        with torch.inference_mode():
            if len(self._splitters) == 1:
                out = self._splitters[0].push(x)
                out = self._empty() if out is None else out
                return out.mean(dim=1, keepdim=True) if self._dual_mono else out
            # a mono model: one pass per channel, final output as far as every pass has reached
            parts = [s.push(x[c : c + 1]) for c, s in enumerate(self._splitters)]
        if any(p is None for p in parts):
            return self._empty()
        return torch.cat(parts, dim=1)

    def _empty(self) -> torch.Tensor:
        return torch.zeros(len(self.sources), self.channels, 0)

    def process_tensor(self, block: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Shape: ``(C, n)`` -> ``(S, C, n)``: the stems of the input ``latency_samples`` samples ago."""
        n = int(block.shape[-1])
        self._fifo = torch.cat([self._fifo, self.push(block)], dim=-1)
        if self._fifo.shape[-1] < n:  # cannot happen with latency >= min_delay (module docstring)
            raise RuntimeError("live processor short of output (engine bug)")
        out, self._fifo = self._fifo[..., :n], self._fifo[..., n:]
        return out

    def process(self, block: np.ndarray) -> dict[str, np.ndarray]:
        """Shape: ``(C, n)`` float -> ``{stem: (C, n)}`` float32: the stems of the input ``latency_samples`` ago."""
        out = self.process_tensor(torch.as_tensor(np.asarray(block, dtype=np.float32)))
        return {name: out[i].numpy() for i, name in enumerate(self.sources)}
