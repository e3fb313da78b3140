"""The streaming chunk loop: equal to the in-memory one for any length, block size, batch, shift and valid length."""
from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from stemwright.engine.run import separate_tensor
from stemwright.engine.stream import StreamEngine, separate_blocks
from tests.engine.identity import Identity, Mixing


def _blocks(x: torch.Tensor, size: int):
    for i in range(0, x.shape[-1], size):
        yield x[..., i : i + size]


def _stream(model: nn.Module, x: torch.Tensor, block: int, **kw) -> torch.Tensor:
    return torch.cat(list(separate_blocks(model, _blocks(x, block), **kw)), dim=-1)


@pytest.mark.parametrize("length", [1, 7, 99, 100, 101, 457, 1000])
@pytest.mark.parametrize("segment", [0.05, 0.5, 1.0, 3.0])
@pytest.mark.parametrize("overlap", [0.0, 0.25, 0.9])
@pytest.mark.parametrize("block", [1, 33, 250])
def test_identity_reconstruction_grid(length: int, segment: float, overlap: float, block: int) -> None:
    x = torch.randn(2, length, generator=torch.Generator().manual_seed(length))
    out = _stream(Identity(), x, block, segment=segment, overlap=overlap)
    assert out.shape == (2, 2, length)
    assert float((out[0] - x).abs().max()) < 1e-6 and float((out[1] - 2 * x).abs().max()) < 2e-6


@pytest.mark.parametrize("batch_size, shifts, multiple", list(itertools.product([1, 3], [0, 1, 3], [1, 16])))
@pytest.mark.parametrize("block", [17, 160])
def test_equals_in_memory(batch_size: int, shifts: int, multiple: int, block: int) -> None:
    for length in (13, 250, 777):
        x = torch.randn(2, length, generator=torch.Generator().manual_seed(length))
        for model in (Identity(segment=0.7, multiple=multiple), Mixing()):
            kw = dict(overlap=0.3, batch_size=batch_size, shifts=shifts, seed=3)
            ref = separate_tensor(model, x, **kw)
            out = _stream(model, x, block, **kw)
            assert out.shape == ref.shape
            assert float((out - ref).abs().max()) <= 1e-6, (type(model).__name__, length)


def test_whole_track_model_buffers_and_matches() -> None:
    model = Identity(segment=None)
    x = torch.randn(2, 345, generator=torch.Generator().manual_seed(1))
    for shifts in (0, 2):
        model.seen.clear()
        ref = separate_tensor(model, x, shifts=shifts)
        model.seen.clear()
        out = _stream(model, x, 50, shifts=shifts)
        assert torch.allclose(out, ref, atol=1e-6) and len(model.seen) == max(1, shifts)


@pytest.mark.parametrize("length", [299, 300, 301, 1000])
@pytest.mark.parametrize("shifts", [0, 2])
def test_whole_track_model_is_chunked_past_the_long_segment(length: int, shifts: int) -> None:
    """A model without a segment runs whole-track up to ``long_segment`` seconds and in chunks of that beyond,
    in both paths alike."""
    model = Mixing()
    model.segment = None
    x = torch.randn(2, length, generator=torch.Generator().manual_seed(length))
    kw = dict(shifts=shifts, long_segment=3.0, overlap=0.25)
    ref = separate_tensor(model, x, **kw)
    out = _stream(model, x, 70, **kw)
    assert float((out - ref).abs().max()) <= 1e-6
    ident = Identity(segment=None)
    _stream(ident, x, 70, long_segment=3.0)
    assert max(ident.seen) == (length if length <= 300 else 300)


def test_memory_is_bounded_by_segments() -> None:
    """The engine's buffers stay a few segments long however long the stream is."""
    model = Identity(segment=0.5, multiple=16)
    engine = StreamEngine(model)
    longest = 0
    emitted = 0
    for _ in range(600):  # 600 s at 100 Hz
        out = engine.push(torch.zeros(2, 100))
        emitted += 0 if out is None else out.shape[-1]
        s = engine.splitters[0]
        longest = max(longest, s.buf.shape[-1], s.acc.shape[-1] if s.acc is not None else 0)
    emitted += engine.finish().shape[-1]
    assert emitted == 60000
    assert longest <= 4 * 50 + 100 + 32  # a few segments plus one block, never the track
    assert max(model.seen) <= model.valid_length(50)


def test_progress_counts_chunks() -> None:
    events = []
    x = torch.zeros(2, 1000)
    list(separate_blocks(Identity(segment=1.0), _blocks(x, 100), progress=events.append, length_hint=1000))
    assert [e.chunk_index for e in events] == list(range(1, 15))
    assert all(e.num_chunks == 14 for e in events) and all(0 < e.fraction < 1 for e in events)


def test_empty_stream_is_refused() -> None:
    with pytest.raises(ValueError, match="no samples"):
        list(separate_blocks(Identity(), iter([])))


@pytest.mark.parametrize("batch_size, shifts, multiple", [(1, 0, 1), (3, 0, 16), (2, 1, 16)])
@pytest.mark.parametrize("first", [0.05, 0.13, 2.0])
def test_short_first_chunk_equals_in_memory(batch_size: int, shifts: int, multiple: int, first: float) -> None:
    """The short first chunk rule: the stream and the array path run the same grid, and an identity model still
    reconstructs its input (each chunk weighted by the triangle of its own length)."""
    for length in (13, 250, 777):
        x = torch.randn(2, length, generator=torch.Generator().manual_seed(length))
        for model in (Identity(segment=0.7, multiple=multiple), Mixing()):
            kw = dict(overlap=0.3, batch_size=batch_size, shifts=shifts, seed=3, first_segment=first)
            ref = separate_tensor(model, x, **kw)
            out = _stream(model, x, 17, **kw)
            assert out.shape == ref.shape
            assert float((out - ref).abs().max()) <= 1e-6, (type(model).__name__, length)
            if isinstance(model, Identity):
                assert float((out[0] - x).abs().max()) < 1e-6


def test_short_first_chunk_hands_out_the_start_early() -> None:
    """With a first chunk of 0.1 s (10 samples, growing by 1.5 and stretched onto the usual grid: 11, 17, 25, 37,
    55, then 70), the first output comes after the first chunk's window has arrived, not after a full segment's;
    without the rule it waits for 70 samples."""
    x = torch.randn(2, 300, generator=torch.Generator().manual_seed(0))
    for first, expect_at in ((0.1, 11), (None, 70)):
        model = Identity(segment=0.7)
        engine = StreamEngine(model, overlap=0.3, first_segment=first)
        got_at = None
        for i in range(300):
            out = engine.push(x[:, i : i + 1])
            if out is not None and out.shape[-1] and got_at is None:
                got_at = i + 1
        assert got_at == expect_at
        if first:
            assert model.seen[:6] == [11, 17, 25, 37, 55, 70]


def test_chunk_grid_ramp() -> None:
    from stemwright.engine.chunking import ChunkGrid, plan_offsets

    grid = ChunkGrid(100, 0.25, 10)
    # 10, 15, 22, 33, 49, 73 grown by 1.5, then stretched so that the first full chunk starts at 150 = 2 x 75
    assert grid.ramp == (10, 15, 22, 33, 50, 74)
    assert grid.chunks(400)[:8] == [(0, 10), (7, 15), (18, 22), (34, 33), (58, 50), (95, 74), (150, 100), (225, 100)]
    assert grid.chunks(40) == [(0, 10), (7, 15), (18, 22), (34, 6)]
    for segment, overlap, first in ((60, 0.25, 10), (70, 0.3, 10), (70, 0.9, 5), (50, 0.0, 3), (882000, 0.25, 176400)):
        g = ChunkGrid(segment, overlap, first)
        assert g.chunk(len(g.ramp))[0] % g.stride_after(segment) == 0 and max(g.ramp) <= segment
    assert [o for o, _ in ChunkGrid(100, 0.25).chunks(1000)] == plan_offsets(1000, 100, 0.25)
    with pytest.raises(ValueError):
        ChunkGrid(100, 0.25, 0)


def test_short_first_chunk_changes_only_the_ramp() -> None:
    """Past the ramp's last overlap the chunks are the usual ones, so the stems equal those without the rule
    exactly (a model that mixes neighbouring samples shows any other chunking); within the ramp they differ."""
    x = torch.randn(2, 600, generator=torch.Generator().manual_seed(5))
    model = Mixing()  # 60-sample segment, stride 45 at 25 % overlap
    ref = separate_tensor(model, x, overlap=0.25)
    out = _stream(model, x, 50, overlap=0.25, first_segment=0.1)
    # the ramp ends where the first full chunk starts (135) plus that last ramp chunk's overlap (<= 15 samples)
    assert torch.equal(out[..., 150:], ref[..., 150:])
    assert float((out[..., :135] - ref[..., :135]).abs().max()) > 1e-3


@pytest.mark.parametrize("batch_size", [1, 2])
def test_workers_equal_in_memory(batch_size: int) -> None:
    x = torch.randn(2, 777, generator=torch.Generator().manual_seed(4))
    kw = dict(overlap=0.3, batch_size=batch_size, seed=3)
    model = Mixing()
    ref = separate_tensor(model, x, **kw)
    out = _stream(model, x, 160, workers=2, **kw)
    assert float((out - ref).abs().max()) <= 1e-6
