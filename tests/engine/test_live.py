"""The fixed-delay live processor: its output is the offline separation with the same chunking, delayed by exactly
``latency_samples``, whatever the block sizes; the plan fits the requested latency; bad requests are refused."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from stemwright.engine.live import LatencyError, LivePlan, LiveProcessor, min_delay, plan_fallback, plan_live
from stemwright.engine.run import separate_tensor
from tests.engine.identity import Identity, Mixing


def _feed(processor: LiveProcessor, x: torch.Tensor, sizes: list[int]) -> torch.Tensor:
    """Shape: (C, T) in blocks of the sizes (cycled) -> (S, C, T)."""
    out, pos, i = [], 0, 0
    while pos < x.shape[-1]:
        n = sizes[i % len(sizes)]
        out.append(processor.process_tensor(x[:, pos : pos + n]))
        pos += n
        i += 1
    return torch.cat(out, dim=-1)


@pytest.mark.parametrize("model", [Mixing(), Identity(segment=0.7, multiple=16)], ids=["mixing", "padded"])
@pytest.mark.parametrize("sizes", [[7], [32], [1, 50, 13]])
@pytest.mark.parametrize("latency", [2.5, 4.0])
def test_equals_offline_delayed_exactly(model, sizes: list[int], latency: float) -> None:
    plan = plan_live(model, latency, block_size=max(sizes))
    processor = LiveProcessor(model, plan)
    assert processor.latency_samples == round(latency * 100)
    x = torch.randn(2, 1200, generator=torch.Generator().manual_seed(1))
    y = _feed(processor, x, sizes)
    offline = separate_tensor(model, x, segment=plan.segment, overlap=plan.overlap)
    L, n = processor.latency_samples, x.shape[-1] - processor.latency_samples - 2 * plan.segment_length
    assert y.shape == (2, 2, x.shape[-1])
    assert y[..., :L].abs().max() == 0.0
    assert torch.equal(y[..., L : L + n], offline[..., :n])


def test_impulse_comes_out_after_exactly_the_latency() -> None:
    model = Identity(segment=0.7)
    processor = LiveProcessor(model, plan_live(model, 1.5, block_size=10))
    x = torch.zeros(2, 600)
    x[:, 123] = 1.0
    y = _feed(processor, x, [10])
    hits = torch.nonzero(y[0, 0]).flatten().tolist()
    assert hits == [123 + processor.latency_samples]


def test_the_minimum_delay_is_tight() -> None:
    """A host that runs the model inside process() never runs short at min_delay, fed one sample at a time (the
    worst phase of every chunk); a delay below it is refused."""
    model = Identity(segment=0.7, multiple=16)
    plan = plan_live(model, 2.0, block_size=1)
    x = torch.randn(2, 800, generator=torch.Generator().manual_seed(2))
    _feed(LiveProcessor(model, plan, delay=min_delay(model, plan.segment_length)), x, [1])
    with pytest.raises(LatencyError):
        LiveProcessor(model, plan, delay=min_delay(model, plan.segment_length) - 1)


def test_process_returns_named_numpy_stems_and_keeps_the_input() -> None:
    model = Mixing()
    processor = LiveProcessor(model, plan_live(model, 2.0, block_size=32))
    block = np.random.default_rng(0).standard_normal((2, 32)).astype(np.float32)
    before = block.copy()
    stems = processor.process(block)
    assert list(stems) == ["a", "b"] and all(v.shape == (2, 32) and v.dtype == np.float32 for v in stems.values())
    np.testing.assert_array_equal(block, before)


def test_mono_input_through_a_stereo_model_is_dual_mono() -> None:
    model = Mixing()
    plan = plan_live(model, 2.0, block_size=25)
    x = torch.randn(1, 900, generator=torch.Generator().manual_seed(3))
    y = _feed(LiveProcessor(model, plan, channels=1), x, [25])
    stereo = _feed(LiveProcessor(model, plan), x.expand(2, -1), [25])
    assert torch.allclose(y, stereo.mean(dim=1, keepdim=True))


def test_the_plan_fits_the_latency_and_prefers_long_chunks() -> None:
    model = Identity(segment=10.0, multiple=16)
    short, long = plan_live(model, 1.5, block_size=10), plan_live(model, 4.0, block_size=10)
    for plan in (short, long):
        assert min_delay(model, plan.segment_length) + plan.reserve_samples <= plan.latency_samples
        assert plan.reserve_samples % plan.block_size == 0 and plan.reserve_samples >= plan.block_size + plan.stride
    assert long.segment_length > short.segment_length
    assert plan_live(Identity(segment=0.7), 30.0).segment_length == 70  # never longer than the model's segment


@pytest.mark.parametrize("latency", [0.0, -1.0, float("nan"), 0.6])
def test_impossible_latencies_are_refused(latency: float) -> None:
    with pytest.raises(LatencyError, match="latency"):
        plan_live(Identity(segment=1.0), latency, block_size=10)


def test_reset_starts_over_with_silence() -> None:
    model = Identity(segment=0.7)
    processor = LiveProcessor(model, plan_live(model, 1.5, block_size=10))
    _feed(processor, torch.ones(2, 400), [10])
    processor.reset()
    assert _feed(processor, torch.ones(2, processor.latency_samples), [10]).abs().max() == 0.0


def test_a_plan_is_a_frozen_value() -> None:
    plan = LivePlan(segment_length=100, overlap=0.25, latency_samples=300, block_size=10, samplerate=100)
    assert (plan.stride, plan.segment, plan.latency) == (75, 1.0, 3.0)
    with pytest.raises(AttributeError):
        plan.latency_samples = 1  # type: ignore[misc]


def test_a_fallback_is_planned_to_the_same_delay() -> None:
    """The fallback keeps the main plan's delay, overlap and block; its processor, given the main processor's share
    of the delay, equals its offline separation with its own chunking; a model that needs more context is refused."""
    main_model = Mixing()
    main = plan_live(main_model, 2.5, block_size=10)
    assert plan_fallback(main_model, main) == main  # the same model: the same plan
    short = Identity(segment=0.55)  # its own segment is shorter than the main chunk
    spare = plan_fallback(short, main)
    assert (spare.latency_samples, spare.overlap, spare.block_size, spare.segment_length) == (250, 0.25, 10, 55)
    share = main.latency_samples - main.reserve_samples
    x = torch.randn(2, 900, generator=torch.Generator().manual_seed(3))
    y = _feed(LiveProcessor(short, spare, delay=share), x, [10])
    offline = separate_tensor(short, x, segment=spare.segment, overlap=spare.overlap)
    n = x.shape[-1] - share - 2 * spare.segment_length
    assert torch.equal(y[..., share : share + n], offline[..., :n])
    with pytest.raises(LatencyError, match="cannot run at the same 2.5 s latency"):
        plan_fallback(Identity(segment=None, multiple=400), main)  # pads every chunk to 408 samples
