"""The chunk engine: exact overlap-add reconstruction, batching, shifts, valid lengths, progress, devices."""
from __future__ import annotations

import itertools
import threading

import pytest
import torch
from torch import nn

from stemwright.engine.chunking import batched, center_trim, cut_chunk, plan_offsets, triangle_weight
from stemwright.engine.device import resolve_device
from stemwright.engine.progress import ProgressEvent, scaled
from stemwright.engine.run import separate_tensor
from tests.engine.identity import Identity, Mixing


def _reconstructs(model: nn.Module, length: int, **kw) -> None:
    x = torch.randn(2, length, generator=torch.Generator().manual_seed(length))
    before = x.clone()
    out = separate_tensor(model, x, **kw)
    assert out.shape == (2, 2, length)
    assert torch.equal(x, before)  # input untouched
    err = max(float((out[0] - x).abs().max()), float((out[1] - 2 * x).abs().max()) / 2)
    assert err < 1e-6, (length, kw, err)


@pytest.mark.parametrize("length", [1, 7, 99, 100, 101, 457, 1000])
@pytest.mark.parametrize("segment", [0.05, 0.5, 1.0, 3.0])
@pytest.mark.parametrize("overlap", [0.0, 0.1, 0.25, 0.5, 0.9])
def test_identity_reconstruction_grid(length: int, segment: float, overlap: float) -> None:
    _reconstructs(Identity(), length, segment=segment, overlap=overlap)


@pytest.mark.parametrize("batch_size, shifts, multiple", list(itertools.product([1, 2, 5], [0, 1, 3], [1, 16])))
def test_identity_reconstruction_batches_shifts_valid_length(batch_size: int, shifts: int, multiple: int) -> None:
    for length in (13, 250, 777):
        _reconstructs(Identity(multiple=multiple), length, segment=0.7, overlap=0.3, batch_size=batch_size, shifts=shifts, seed=3)


def test_whole_track_when_no_segment() -> None:
    model = Identity(segment=None)
    _reconstructs(model, 345)
    assert model.seen == [345]
    model.seen.clear()
    _reconstructs(model, 345, shifts=2)
    assert len(model.seen) == 2


def test_chunks_stay_bounded_for_long_input() -> None:
    """Memory: the model never sees more than one segment (plus its valid-length padding) at a time."""
    model = Identity(segment=0.5, multiple=16)
    separate_tensor(model, torch.zeros(2, 100 * 60), batch_size=1)
    assert max(model.seen) <= model.valid_length(50)


def test_chunk_seams_do_not_dip() -> None:
    """A constant signal stays constant across seams (no level dips from the crossfade)."""
    out = separate_tensor(Identity(), torch.ones(2, 1234), segment=0.37, overlap=0.25)
    assert torch.allclose(out[0], torch.ones(2, 1234), atol=1e-6)


def test_progress_events_count_every_chunk() -> None:
    events: list[ProgressEvent] = []
    separate_tensor(Identity(), torch.randn(2, 1000), segment=1.0, overlap=0.5, batch_size=2, progress=events.append)
    fractions = [e.fraction for e in events]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    assert events[-1].chunk_index == events[-1].num_chunks == len(plan_offsets(1000, 100, 0.5))
    assert all(e.stage == "separate" for e in events)
    shifted: list[ProgressEvent] = []
    separate_tensor(Identity(), torch.randn(2, 1000), shifts=2, progress=shifted.append)
    assert shifted[-1].fraction == pytest.approx(1.0)


def test_raising_callback_aborts() -> None:
    model = Identity()

    def cancel(ev: ProgressEvent) -> None:
        raise KeyboardInterrupt("cancelled")

    with pytest.raises(KeyboardInterrupt):
        separate_tensor(model, torch.randn(2, 1000), progress=cancel)
    assert len(model.seen) == 1


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="channels, time"):
        separate_tensor(Identity(), torch.zeros(1, 2, 10))
    with pytest.raises(ValueError, match="no samples"):
        separate_tensor(Identity(), torch.zeros(2, 0))
    with pytest.raises(ValueError, match="overlap"):
        separate_tensor(Identity(), torch.zeros(2, 10), overlap=1.0)


def test_chunking_helpers() -> None:
    assert plan_offsets(10, 4, 0.5) == [0, 2, 4, 6, 8]
    assert plan_offsets(0, 4, 0.0) == [0]
    w = triangle_weight(6)
    assert w.shape == (6,) and float(w.max()) == 1.0 and float(w.min()) > 0
    assert torch.equal(w, w.flip(0))
    x = torch.arange(10.0)[None]
    assert cut_chunk(x, 0, 4, 8).tolist() == [[0, 0, 0, 1, 2, 3, 4, 5]]  # zeros before the start, real context after
    assert cut_chunk(x, 8, 2, 6).tolist() == [[6, 7, 8, 9, 0, 0]]
    assert center_trim(torch.arange(7.0), 4).tolist() == [1, 2, 3, 4]
    assert batched([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]]
    with pytest.raises(ValueError):
        center_trim(torch.zeros(3), 4)
    with pytest.raises(ValueError):
        batched([1], 0)


def test_scaled_progress() -> None:
    got: list[ProgressEvent] = []
    cb = scaled(got.append, 0.2, 0.6)
    cb(ProgressEvent(0.5, "separate", 1, 2))
    assert got[0].fraction == pytest.approx(0.4) and got[0].chunk_index == 1
    assert scaled(None, 0, 1) is None


def test_device_resolution() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")


class _ThreadRecorder(Mixing):
    """Mixing, recording the thread and its intra-op thread count of every call."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[int, int]] = []

    def forward(self, mix: torch.Tensor) -> torch.Tensor:
        self.calls.append((threading.get_ident(), torch.get_num_threads()))
        return super().forward(mix)


@pytest.mark.parametrize("batch_size, shifts", [(1, 0), (2, 0), (1, 2)])
def test_workers_give_the_serial_stems(batch_size: int, shifts: int) -> None:
    x = torch.randn(2, 1234, generator=torch.Generator().manual_seed(5))
    model = _ThreadRecorder()
    ref = separate_tensor(model, x, overlap=0.3, batch_size=batch_size, shifts=shifts, seed=1, workers=1)
    assert {ident for ident, _ in model.calls} == {threading.get_ident()}
    before = torch.get_num_threads()
    model.calls.clear()
    out = separate_tensor(model, x, overlap=0.3, batch_size=batch_size, shifts=shifts, seed=1, workers=2)
    assert torch.equal(out, ref)  # every chunk computed as alone in its part: same numbers, same sums
    main = threading.get_ident()
    assert any(ident != main for ident, _ in model.calls)  # the chunks ran in worker threads
    assert all(n == max(1, before // 2) for ident, n in model.calls if ident != main)
    assert torch.get_num_threads() == before  # the caller's setting is back


def test_workers_are_checked() -> None:
    with pytest.raises(ValueError, match="workers"):
        separate_tensor(Identity(), torch.zeros(2, 100), workers=0)


def test_batched_chunks_equal_unbatched_on_a_tiny_htdemucs() -> None:
    from stemwright.models.architectures import architecture_class
    from tests.models.tiny import TINY_CONFIGS

    torch.manual_seed(0)
    model = architecture_class("htdemucs")(TINY_CONFIGS["htdemucs"]()).eval()
    x = 0.1 * torch.randn(2, int(3.2 * model.samplerate), generator=torch.Generator().manual_seed(2))
    ref = separate_tensor(model, x, segment=1.0, workers=1)
    for batch_size, workers in ((2, 1), (4, 1), (2, 2)):
        out = separate_tensor(model, x, segment=1.0, batch_size=batch_size, workers=workers)
        # batched products are summed in another order: float32 round-off, not another result
        assert float((out - ref).abs().max()) < 1e-5, (batch_size, workers)


def test_default_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    from stemwright.engine import run

    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    assert run.default_workers("cpu") == 2 and run.default_workers("cuda") == 1
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    assert run.default_workers("cpu") == 1  # one core: no second thread to run a chunk on


class _Linear(Mixing):
    """Mixing with a linear layer over the channels: a product that the precision context changes."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, mix: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.conv(mix)).transpose(1, 2)  # (B, T, 4)
        return self.lin(h).transpose(1, 2).reshape(mix.shape[0], 2, 2, -1)


def test_workers_keep_the_callers_precision() -> None:
    from stemwright.engine import cpu_kernels

    if not (cpu_kernels.available() and cpu_kernels.int8_available()):
        pytest.skip("no oneDNN / fbgemm int8 in this PyTorch")
    model = _Linear().eval()
    x = torch.randn(2, 1234, generator=torch.Generator().manual_seed(6))
    exact = separate_tensor(model, x, overlap=0.3, workers=1)
    with cpu_kernels.int8_products():
        serial = separate_tensor(model, x, overlap=0.3, workers=1)
        parallel = separate_tensor(model, x, overlap=0.3, workers=2)
    assert float((serial - exact).abs().max()) > 1e-5  # int8 products really ran
    assert torch.equal(parallel, serial)  # ... in the workers too
