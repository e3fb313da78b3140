"""The chunk loop over audio that arrives in blocks: the same overlap-add as :func:`stemwright.engine.run.separate_tensor`
(same chunks, same batches, same weights, same order of additions), with memory bounded by a few segments
whatever the track's length.

A region of the output is final once the last chunk that overlaps it has been added: chunks start every ``stride``
samples in order, so everything before the next chunk's start is final and is handed out (divided by its summed
weights) at once. A chunk is run as soon as the input reaches the end of its window (its valid-length context
included); the last chunks, whose lengths depend on where the track ends, wait for the end of the stream.
Because every output sample is the same sum of the same terms in the same order, the stems equal the in-memory
path's (bit for bit where the model gives the same numbers for the same chunk).
"""
from __future__ import annotations

import random
from typing import Callable, Iterable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from stemwright.engine.chunking import ChunkGrid, center_trim, triangle_weight
from stemwright.engine.progress import ProgressCallback, ProgressEvent
from stemwright.engine.run import first_chunk_length, model_valid_length, run_chunks

__all__ = ["StreamSplitter", "StreamEngine", "separate_blocks"]


class StreamSplitter:
    """One overlap-add pass over a stream (the streaming twin of ``run._separate_split``).

    ``push((C, n))`` returns the output samples that became final, ``(S, C, m)`` (``m`` may be 0);
    ``finish(segment_length=None)`` runs the remaining chunks and returns the rest. ``segment_length=None`` at
    construction means "the whole track in one call": the input is buffered until ``finish`` gives the length.
    ``first_length``: the short first chunk rule (:class:`~stemwright.engine.chunking.ChunkGrid`).
    """

    def __init__(self, model: nn.Module, segment_length: int | None, overlap: float, batch_size: int,
                 device: torch.device, transition_power: float = 1.0,
                 on_chunks: Callable[[int], None] | None = None, workers: int = 1,
                 first_length: int | None = None) -> None:
        self.model = model
        self.workers = workers
        self.first_length = first_length
        self.requested_overlap = overlap
        self.overlap = overlap if segment_length is not None else 0.0
        self.batch_size = batch_size
        self.device = device
        self.transition_power = transition_power
        self.on_chunks = on_chunks
        self.segment_length: int | None = None
        self.grid: ChunkGrid | None = None
        self.weights: dict[int, torch.Tensor] = {}
        if segment_length is not None:
            self._set_segment(segment_length, first_length)
        self.buf: torch.Tensor | None = None  # input samples [buf_start, received)
        self.buf_start = 0
        self.received = 0
        self.next_chunk = 0  # index of the next chunk to run (its offset: self.grid.chunk(index))
        self.acc: torch.Tensor | None = None  # output sums for samples [emitted, emitted + acc's length)
        self.wsum = torch.zeros(0)
        self.emitted = 0
        self.sources: int | None = None

    @property
    def group_size(self) -> int:
        """Chunks run per step: ``batch_size`` per call, ``workers`` calls at once."""
        return self.batch_size * self.workers

    def chunk_from_now(self, segment_length: int) -> None:
        """Turn a whole-track pass (nothing run yet) into a chunked one: the track proved longer than the
        whole-track limit."""
        if self.segment_length is not None:
            raise RuntimeError("the pass is chunked already")
        self.overlap = self.requested_overlap
        self._set_segment(segment_length, None)  # a whole-track model: no short first chunk

    def _set_segment(self, segment_length: int, first_length: int | None) -> None:
        self.grid = ChunkGrid(segment_length, self.overlap, first_length)  # validates overlap and lengths
        self.segment_length = segment_length
        self.weights = {n: triangle_weight(n, self.transition_power) for n in (*self.grid.ramp, segment_length)}
        full = model_valid_length(self.model, segment_length)
        # input kept to the left of the next chunk: its left context, generously (a last, shorter chunk's valid
        # length can ask for more context than a full one's)
        self.keep_left = segment_length + full

    def push(self, block: torch.Tensor) -> torch.Tensor | None:
        """Shape: ``(C, n)`` -> ``(S, C, m)`` final output samples, or ``None`` before the first chunk has run."""
        block = block.detach().to("cpu", torch.float32)
        self.buf = block.clone() if self.buf is None else torch.cat([self.buf, block], dim=-1)
        self.received += block.shape[-1]
        if self.segment_length is None:
            return None
        return self._run(final=False)

    def finish(self, segment_length: int | None = None) -> torch.Tensor:
        """Run the chunks that wait for the end; returns the remaining output ``(S, C, m)``."""
        if self.segment_length is None:
            if segment_length is None:
                raise ValueError("a whole-track pass needs its segment length at the end of the stream")
            self._set_segment(segment_length, None)
        out = self._run(final=True)
        assert out is not None and self.emitted == self.received
        return out

    def _window(self, offset: int, n: int, target: int, total: int) -> torch.Tensor:
        """``cut_chunk`` on the buffered part of the stream (``total``: samples known to exist)."""
        assert self.buf is not None
        delta = target - n
        start = offset - delta // 2
        end = start + target
        lo, hi = max(0, start), min(total, end)
        if lo < self.buf_start:
            raise RuntimeError(f"stream buffer too short: chunk needs sample {lo}, buffer starts at {self.buf_start}")
        return F.pad(self.buf[..., lo - self.buf_start : hi - self.buf_start], (lo - start, end - hi))

    def _run(self, final: bool) -> torch.Tensor | None:
        grid, length = self.grid, self.received
        assert grid is not None
        ran = False
        while True:
            plan = [grid.chunk(k) for k in range(self.next_chunk, self.next_chunk + self.group_size)]
            if final:
                plan = [(o, n) for o, n in plan if o < max(length, 1)]
                if not plan:
                    break
                lengths = [min(length - o, n) for o, n in plan]
            else:
                # ready when the last chunk's full window (context included) has arrived
                last, n = plan[-1]
                target = model_valid_length(self.model, n)
                if last - (target - n) // 2 + target > length:
                    break
                lengths = [n for _, n in plan]
            group = [o for o, _ in plan]
            targets = [model_valid_length(self.model, n) for n in lengths]
            chunks = [self._window(o, n, t, length) for o, n, t in zip(group, lengths, targets)]
            result = run_chunks(self.model, chunks, self.device, self.workers)
            if self.acc is None:
                self.sources = result[0].shape[0]
                self.acc = torch.zeros(self.sources, chunks[0].shape[0], 0)
            for res, (o, nominal), n in zip(result, plan, lengths):
                self._grow(o + n)
                w = self.weights[nominal][:n]
                a, b = o - self.emitted, o - self.emitted + n
                self.acc[..., a:b] += w * center_trim(res, n)
                self.wsum[a:b] += w
            self.next_chunk += len(group)
            ran = True
            if self.on_chunks is not None:
                self.on_chunks(len(group))
        if not ran and self.acc is None:
            return None
        next_offset = grid.chunk(self.next_chunk)[0]
        ready = length if final else min(next_offset, length)
        out = self._emit(ready)
        keep_from = max(0, next_offset - self.keep_left)
        if self.buf is not None and keep_from > self.buf_start:
            self.buf = self.buf[..., keep_from - self.buf_start :].clone()
            self.buf_start = keep_from
        return out

    def _grow(self, end: int) -> None:
        assert self.acc is not None
        need = end - self.emitted - self.acc.shape[-1]
        if need > 0:
            self.acc = torch.cat([self.acc, torch.zeros(*self.acc.shape[:-1], need)], dim=-1)
            self.wsum = torch.cat([self.wsum, torch.zeros(need)])

    def _emit(self, ready: int) -> torch.Tensor:
        assert self.acc is not None
        k = max(0, ready - self.emitted)
        if k and float(self.wsum[:k].min()) <= 0:
            raise RuntimeError("stream output without any chunk weight (engine bug)")
        out = self.acc[..., :k].div(self.wsum[:k])
        self.acc = self.acc[..., k:].clone()
        self.wsum = self.wsum[k:].clone()
        self.emitted += k
        return out


class StreamEngine:
    """:func:`~stemwright.engine.run.separate_tensor` for a stream: ``push((C, n))`` / ``finish()`` return the
    final stems so far, ``(S, C, m)`` (the same arguments, and ``length_hint`` — the expected input length in
    samples, for progress only; ``first_segment`` — seconds of the short first chunk rule, chunked models only).
    Shifts run one :class:`StreamSplitter` per shift, each fed the zeros its random
    shift puts before the track (same draws as the in-memory path for the same ``seed``).
    """

    def __init__(self, model: nn.Module, *, segment: float | None = None, overlap: float = 0.25,
                 batch_size: int = 1, shifts: int = 0, device: torch.device | str = "cpu",
                 progress: ProgressCallback | None = None, seed: int = 0, transition_power: float = 1.0,
                 length_hint: int | None = None, long_segment: float | None = None, workers: int = 1,
                 first_segment: float | None = None) -> None:
        self.device = torch.device(device)
        if segment is None:
            segment = getattr(model, "segment", None)
        sr = int(model.samplerate)
        self.whole = not segment
        # whole-track models: chunked once the stream is longer than this (as separate_tensor's long_segment)
        self.long_length = int(round(long_segment * sr)) if self.whole and long_segment else None
        self.max_shift = int(0.5 * sr)
        self.shifts = shifts
        segment_length = None if self.whole else max(1, int(round(segment * sr)))
        first_length = None if self.whole else first_chunk_length(first_segment, sr)
        self.progress = progress
        self.done_chunks = 0
        chunked = self.long_length if self.long_length and (length_hint or 0) > self.long_length else segment_length
        self.total_chunks = self._estimate(length_hint, chunked, overlap,
                                           first_length if chunked == segment_length else None)
        self.length = 0
        if shifts > 0:
            rng = random.Random(seed)
            self.offsets = [rng.randint(0, self.max_shift) for _ in range(shifts)]
        else:
            self.offsets = [None]
        self.splitters = [StreamSplitter(model, segment_length, overlap, batch_size, self.device, transition_power,
                                         on_chunks=self._count, workers=workers, first_length=first_length)
                         for _ in self.offsets]
        self.skip = [self.max_shift - o if o is not None else 0 for o in self.offsets]  # leading zeros per pass
        self.pending: list[list[torch.Tensor]] = [[] for _ in self.offsets]
        self.started = False

    def _estimate(self, length_hint: int | None, segment_length: int | None, overlap: float,
                  first_length: int | None) -> int | None:
        if not length_hint:
            return None
        passes = max(1, self.shifts)
        if segment_length is None:
            return passes
        grid = ChunkGrid(segment_length, overlap, first_length)
        return passes * len(grid.chunks(length_hint + (self.max_shift if self.shifts else 0)))

    def _count(self, n: int) -> None:
        self.done_chunks += n
        if self.progress is not None:
            total = max(self.total_chunks or 0, self.done_chunks)
            frac = min(self.done_chunks / total, 0.999) if total else 0.0
            self.progress(ProgressEvent(frac, "separate", self.done_chunks, total))

    def push(self, block: torch.Tensor) -> torch.Tensor | None:
        """Shape: ``(C, n)`` at the model rate -> ``(S, C, m)`` final stems, or ``None`` while none are."""
        if block.dim() != 2:
            raise ValueError(f"block must be (channels, time), got shape {tuple(block.shape)}")
        if not self.started:
            self.started = True
            self.channels = block.shape[0]
            for i, (splitter, o) in enumerate(zip(self.splitters, self.offsets)):
                if o is not None and self.max_shift - o > 0:
                    self._collect(i, splitter.push(torch.zeros(block.shape[0], self.max_shift - o)))
        self.length += block.shape[-1]
        if self.whole and self.long_length is not None and self.length > self.long_length:
            self.whole = False
            for splitter in self.splitters:
                splitter.chunk_from_now(self.long_length)
        for i, splitter in enumerate(self.splitters):
            self._collect(i, splitter.push(block))
        return self._combine(final=False)

    def finish(self) -> torch.Tensor:
        """The remaining stems ``(S, C, m)``; raises if the stream had no samples."""
        if self.length == 0:
            raise ValueError("stream has no samples (time axis of length 0)")
        whole = self.length + (self.max_shift if self.shifts > 0 else 0)
        for i, splitter in enumerate(self.splitters):
            self._collect(i, splitter.finish(max(whole, 1) if self.whole else None))
        out = self._combine(final=True)
        if out is None:  # everything was handed out already
            sources = self.splitters[0].sources or 0
            return torch.zeros(sources, self.channels, 0)
        return out

    def _collect(self, i: int, out: torch.Tensor | None) -> None:
        if out is None or out.shape[-1] == 0:
            return
        drop = min(self.skip[i], out.shape[-1])
        self.skip[i] -= drop
        if out.shape[-1] > drop:
            self.pending[i].append(out[..., drop:])

    def _combine(self, final: bool) -> torch.Tensor | None:
        avail = [sum(t.shape[-1] for t in p) for p in self.pending]
        k = min(avail)
        if k == 0 and not final:
            return None
        parts = [self._take(i, k) for i in range(len(self.pending))]
        if not parts or parts[0] is None:
            return None
        out = parts[0]
        for p in parts[1:]:
            out = out.add_(p)
        return out.div_(self.shifts) if self.shifts > 0 else out

    def _take(self, i: int, k: int) -> torch.Tensor | None:
        if not self.pending[i]:
            return None
        cat = torch.cat(self.pending[i], dim=-1)
        head, rest = cat[..., :k].clone(), cat[..., k:]
        self.pending[i] = [rest] if rest.shape[-1] else []
        return head


def separate_blocks(model: nn.Module, blocks: Iterable[torch.Tensor], **kwargs) -> Iterator[torch.Tensor]:
    """Stems of a stream of ``(C, n)`` blocks at the model's rate, as ``(S, C, m)`` blocks in order (their
    lengths follow the chunk grid, not the input blocks); keyword arguments as :class:`StreamEngine`."""
    engine = StreamEngine(model, **kwargs)
    for block in blocks:
        out = engine.push(block)
        if out is not None and out.shape[-1]:
            yield out
    out = engine.finish()
    if out.shape[-1]:
        yield out
