"""The engine's oneDNN routing (stemwright.engine.cpu_kernels): what it reroutes gives PyTorch's results to float32
rounding, what it must not touch (gradients, masks, autocast, other devices) goes to PyTorch unchanged, and the
``fast`` option's bfloat16 products stay close to float32."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

from stemwright.engine import cpu_kernels
from stemwright.engine.cpu_kernels import ENV, bfloat16_products, onednn_kernels
from stemwright.engine.run import separate_tensor
from stemwright.models.architectures import architecture_class
from tests.models.tiny import TINY_CONFIGS

pytestmark = [
    pytest.mark.usefixtures("one_thread"),
    pytest.mark.skipif(not cpu_kernels.available(), reason="this PyTorch build has no oneDNN (MKLDNN) operators"),
]


def _ops(fn) -> set[str]:
    """Names of the operators ``fn`` runs (PyTorch's profiler)."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    return {e.key for e in prof.key_averages()}


def _close(a: torch.Tensor, b: torch.Tensor, rel: float = 1e-5) -> None:
    assert a.shape == b.shape and a.dtype == b.dtype
    assert float((a - b).abs().max()) <= rel * float(b.abs().max()), float((a - b).abs().max())


def test_linear_goes_to_onednn_with_pytorchs_result() -> None:
    torch.manual_seed(0)
    layer = torch.nn.Linear(64, 96)
    x = torch.randn(3, 50, 64)
    with torch.inference_mode():
        expected = layer(x)
        with onednn_kernels("cpu"):
            got = layer(x)
            also = F.linear(x, weight=layer.weight)  # keyword form, no bias
            ops = _ops(lambda: layer(x))
    assert "mkldnn::_linear_pointwise" in ops and "aten::addmm" not in ops
    _close(got, expected)
    _close(also, F.linear(x, layer.weight).detach())


def test_attention_in_query_blocks_equals_sdpa(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(1)
    q, k = torch.randn(2, 3, 300, 16), torch.randn(2, 3, 260, 16)
    v = torch.randn(2, 3, 260, 24)  # value size != key size
    monkeypatch.setattr(cpu_kernels, "MAX_BLOCK", 70 * 260)  # 300 queries in blocks of 70: 5 blocks, the last short
    with torch.inference_mode():
        expected = F.scaled_dot_product_attention(q, k, v)
        scaled = F.scaled_dot_product_attention(q, k, v, scale=0.3)
        with onednn_kernels("cpu"):
            got = F.scaled_dot_product_attention(q, k, v)
            got_scaled = F.scaled_dot_product_attention(q, k, v, scale=0.3)
            ops = _ops(lambda: F.scaled_dot_product_attention(q, k, v))
    assert "mkldnn::_linear_pointwise" in ops
    _close(got, expected)
    _close(got_scaled, scaled)
    # laid out as (B, T, H, D) memory: the usual transpose(1, 2) back to (B, T, H * D) is free
    assert got.transpose(1, 2).is_contiguous()


@pytest.mark.parametrize("kwargs", [{"is_causal": True}, {"attn_mask": "mask"}, {"dropout_p": 0.0, "scale": None}])
def test_masked_causal_or_short_attention_is_pytorchs(kwargs: dict) -> None:
    torch.manual_seed(2)
    q = k = v = torch.randn(1, 2, 300, 8)
    if kwargs.get("attn_mask") == "mask":
        kwargs = {"attn_mask": torch.rand(300, 300) > 0.3}
    with torch.inference_mode():
        expected = F.scaled_dot_product_attention(q, k, v, **kwargs)
        with onednn_kernels("cpu"):
            got = F.scaled_dot_product_attention(q, k, v, **kwargs)
            short = F.scaled_dot_product_attention(q[..., :10, :], k[..., :10, :], v[..., :10, :])  # < MIN_SCORES
    if "dropout_p" in kwargs:  # plain attention: rerouted, equal to rounding
        _close(got, expected)
    else:
        assert torch.equal(got, expected)
    assert torch.equal(short, F.scaled_dot_product_attention(q[..., :10, :], k[..., :10, :], v[..., :10, :]))


def test_pointwise_convolutions_equal_pytorchs() -> None:
    torch.manual_seed(3)
    x1, w1, b1 = torch.randn(2, 32, 100), torch.randn(48, 32, 1), torch.randn(48)
    small = (torch.randn(5, 6, 100), torch.randn(40, 6, 1), torch.randn(40))  # <= 16 input channels: batched product
    x2, w2 = torch.randn(2, 8, 20, 30), torch.randn(12, 8, 1, 1)
    wide = torch.randn(12, 8, 3, 3)
    with torch.inference_mode():
        expected = [F.conv1d(x1, w1, b1), F.conv1d(*small), F.conv1d(small[0], small[1]), F.conv2d(x2, w2),
                    F.conv2d(x2, wide, padding=1), F.conv1d(x1[0], w1, b1), F.conv1d(x1, w1, b1, padding="same")]
        with onednn_kernels("cpu"):
            got = [F.conv1d(x1, w1, b1), F.conv1d(*small), F.conv1d(small[0], small[1]), F.conv2d(x2, w2),
                   F.conv2d(x2, wide, padding=1), F.conv1d(x1[0], w1, b1), F.conv1d(x1, w1, b1, padding="same")]
            ops = _ops(lambda: F.conv1d(*small))
    assert "aten::baddbmm" in ops
    for g, e in zip(got, expected):
        _close(g, e)


def test_gradients_autocast_and_other_dtypes_are_left_to_pytorch() -> None:
    torch.manual_seed(4)
    layer = torch.nn.Linear(16, 8)
    x = torch.randn(4, 16)
    with onednn_kernels("cpu"):
        out = layer(x)  # gradients on: PyTorch's own linear, so backward works
        out.sum().backward()
        with torch.inference_mode():
            double = F.linear(x.double(), layer.weight.double())
            with torch.autocast("cpu", dtype=torch.bfloat16):
                auto = layer(x)
    assert out.grad_fn is not None and layer.weight.grad is not None
    assert double.dtype == torch.float64 and auto.dtype == torch.bfloat16


def test_bfloat16_products_are_close_not_equal_and_scoped() -> None:
    torch.manual_seed(5)
    layer = torch.nn.Linear(256, 256)
    x = torch.randn(64, 256)
    q = k = v = torch.randn(1, 2, 300, 32)
    with torch.inference_mode(), onednn_kernels("cpu"):
        exact, exact_att = layer(x), F.scaled_dot_product_attention(q, k, v)
        with bfloat16_products():
            low, low_att = layer(x), F.scaled_dot_product_attention(q, k, v)
        after = layer(x)
    assert low.dtype == low_att.dtype == torch.float32  # results back in float32 for the float32 layers around
    for e, lo in ((exact, low), (exact_att, low_att)):
        err = float((e - lo).abs().max() / e.abs().max())
        assert 1e-5 < err < 2e-2, err  # bfloat16 operands really ran: 8 mantissa bits
    assert torch.equal(after, exact)


def test_environment_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "torch")
    with onednn_kernels("cpu") as mode:
        assert mode is None  # contextlib.nullcontext
    monkeypatch.setenv(ENV, "fast")
    with pytest.raises(ValueError, match=ENV):
        onednn_kernels("cpu")
    monkeypatch.delenv(ENV)
    assert isinstance(onednn_kernels("cpu"), cpu_kernels.OneDnnKernels)
    assert not isinstance(onednn_kernels("meta"), cpu_kernels.OneDnnKernels)


@pytest.mark.parametrize("arch", ["htdemucs", "bs_roformer", "umx"])
def test_engine_stems_equal_with_and_without_the_routing(arch: str, monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(6)
    model = architecture_class(arch)(TINY_CONFIGS[arch]()).eval()
    mix = 0.1 * torch.randn(2, 44100 * 2)
    routed = separate_tensor(model, mix)
    monkeypatch.setenv(ENV, "torch")
    plain = separate_tensor(model, mix)
    np.testing.assert_allclose(routed.numpy(), plain.numpy(), rtol=0, atol=1e-5 * float(plain.abs().max()))


def test_bfloat16_products_without_onednn_bfloat16_kernels(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a CPU whose oneDNN has no bfloat16 kernels (AVX2 only) a forced bfloat16 run uses PyTorch's own."""
    monkeypatch.setattr(cpu_kernels, "_native_bf16", lambda: False)
    torch.manual_seed(7)
    layer = torch.nn.Linear(64, 64)
    x = torch.randn(8, 64)
    q = k = v = torch.randn(1, 2, 300, 16)
    with torch.inference_mode(), onednn_kernels("cpu"), bfloat16_products():
        ops = _ops(lambda: (layer(x), F.scaled_dot_product_attention(q, k, v)))
        low = layer(x)
    assert "mkldnn::_linear_pointwise" not in ops and low.dtype == torch.float32
