"""The engine's oneDNN routing (stemwright.engine.cpu_kernels): what it reroutes gives PyTorch's results to float32
rounding, what it must not touch (gradients, masks, autocast, other devices) goes to PyTorch unchanged, the
``fast`` option's bfloat16 and int8 products stay close to float32, and which operator classes are routed is
measured (a fake timer picks each path), cached and overridable."""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

from stemwright.engine import cpu_kernels
from stemwright.engine.cpu_kernels import ALL_ONEDNN, ENV, PYTORCH, Routes, bfloat16_products, int8_products, onednn_kernels
from stemwright.engine.run import separate_tensor
from stemwright.models.architectures import architecture_class
from tests.models.tiny import TINY_CONFIGS

pytestmark = [
    pytest.mark.usefixtures("one_thread"),
    pytest.mark.skipif(not cpu_kernels.available(), reason="this PyTorch build has no oneDNN (MKLDNN) operators"),
]


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test: its own cache folder, no memo from another test, and the routing forced on (``onednn``) unless
    the test chooses; so the tests of what the routing computes do not depend on what this CPU measures."""
    monkeypatch.setenv("STEMWRIGHT_CACHE", str(tmp_path))
    monkeypatch.setenv(ENV, "onednn")
    monkeypatch.setattr(cpu_kernels, "_MEMO", {})
    return tmp_path / cpu_kernels.CACHE_NAME


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
    monkeypatch.setenv(ENV, "onednn")
    assert onednn_kernels("cpu").routes == ALL_ONEDNN
    assert not isinstance(onednn_kernels("meta"), cpu_kernels.OneDnnKernels)


class FakeTimer:
    """Seconds per (class, path) from a table; counts its calls. Never runs the probes (a loaded machine's timings
    would make the test flaky)."""

    def __init__(self, seconds: dict[tuple[str, str], float] | None = None, default: float = 1.0) -> None:
        self.seconds, self.default, self.calls = seconds or {}, default, 0

    def __call__(self, shape_class: str, path: str, fn) -> float:
        self.calls += 1
        return self.seconds.get((shape_class, path), self.default)


def test_calibration_picks_each_path_by_the_timer(private_cache: Path) -> None:
    timer = FakeTimer({("linear", "onednn"): 0.5, ("attention", "torch"): 0.4, ("pointwise_conv", "onednn"): 0.2,
                       ("small_conv1d", "onednn"): 0.95})  # 5 % faster: within MARGIN, PyTorch's kept
    routes = cpu_kernels.calibrated_routes(timer)
    expected = Routes(linear=True, attention=False, pointwise_conv=True, small_conv1d=False)
    assert routes == expected and timer.calls > 0
    assert json.loads(private_cache.read_text()) == {cpu_kernels.cache_key(): dataclasses.asdict(expected)}
    # a new process (memo cleared) reads the cache instead of timing again
    cpu_kernels._MEMO.clear()
    again = FakeTimer()
    assert cpu_kernels.calibrated_routes(again) == expected and again.calls == 0
    # the opposite timings give the opposite choice
    cpu_kernels._MEMO.clear()
    private_cache.unlink()
    flipped = FakeTimer({("attention", "onednn"): 0.1, ("small_conv1d", "onednn"): 0.1}, default=1.0)
    assert cpu_kernels.calibrated_routes(flipped) == Routes(attention=True, small_conv1d=True)


@pytest.mark.parametrize("content", [b"{not json", b"\xff\xfe\x00", b"[1, 2]", b'{"KEY": {"linear": "yes"}}'])
def test_a_corrupt_cache_is_ignored_and_rewritten(private_cache: Path, content: bytes) -> None:
    private_cache.write_bytes(content.replace(b"KEY", cpu_kernels.cache_key().encode()))
    timer = FakeTimer({("linear", "onednn"): 0.1})
    assert cpu_kernels.calibrated_routes(timer).linear and timer.calls > 0
    entry = json.loads(private_cache.read_text())[cpu_kernels.cache_key()]
    assert entry["linear"] is True and set(entry) == set(cpu_kernels.SHAPE_CLASSES)
    assert not list(private_cache.parent.glob(".cpu_kernels.*"))  # no temporary file left


def test_an_unwritable_cache_only_logs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("STEMWRIGHT_CACHE", str(blocker / "sub"))  # a folder below a file: cannot be created
    assert cpu_kernels.calibrated_routes(FakeTimer({("attention", "onednn"): 0.1})).attention


def test_the_cache_key_follows_the_isa_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "auto")
    assert cpu_kernels.calibrated_routes(FakeTimer({("linear", "onednn"): 0.1})).linear
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")  # another ISA level: measured again, kept apart
    timer = FakeTimer()
    assert not cpu_kernels.calibrated_routes(timer).linear and timer.calls > 0
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    assert cpu_kernels.calibrated_routes(FakeTimer()).linear


def test_environment_override_of_the_measured_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpu_kernels, "measure", FakeTimer({("linear", "onednn"): 0.1}))
    monkeypatch.setenv(ENV, "torch")
    assert cpu_kernels.routes() == PYTORCH and not cpu_kernels._MEMO  # nothing measured
    monkeypatch.setenv(ENV, "onednn")
    assert cpu_kernels.routes() == ALL_ONEDNN and not cpu_kernels._MEMO
    monkeypatch.setenv(ENV, "auto")
    assert cpu_kernels.routes().linear and not cpu_kernels.routes().attention
    monkeypatch.delenv(ENV)  # auto is the default
    assert onednn_kernels("cpu").routes == cpu_kernels.routes()


def test_unrouted_classes_stay_pytorchs() -> None:
    torch.manual_seed(8)
    layer = torch.nn.Linear(32, 48)
    x = torch.randn(4, 32)
    q = k = v = torch.randn(1, 1, 300, 16)
    with torch.inference_mode():
        with cpu_kernels.OneDnnKernels(Routes(attention=True)):
            ops = _ops(lambda: (layer(x), F.scaled_dot_product_attention(q, k, v)))
        with cpu_kernels.OneDnnKernels(Routes(linear=True)):
            only_linear = _ops(lambda: (layer(x), F.scaled_dot_product_attention(q, k, v)))
    assert "aten::addmm" in ops and "mkldnn::_linear_pointwise" in ops  # the attention's products only
    assert "aten::addmm" not in only_linear and "aten::scaled_dot_product_attention" in only_linear


def test_calibration_really_times_both_paths_quickly() -> None:
    """The real probes on this CPU: every class measured, in well under a second of one thread."""
    calls: list[tuple[str, str]] = []

    def timer(shape_class: str, path: str, fn) -> float:
        calls.append((shape_class, path))
        return cpu_kernels.measure(shape_class, path, fn)

    start = time.process_time()
    cpu_kernels.calibrate(timer)
    assert time.process_time() - start < 1.0
    assert {c for c, _ in calls} >= {"linear", "attention", "pointwise_conv", "small_conv1d"}
    assert {p for _, p in calls} >= {"torch", "onednn"}


@pytest.mark.skipif(not cpu_kernels.int8_available(), reason="this PyTorch build has no fbgemm")
def test_int8_products_are_close_packed_once_and_scoped() -> None:
    torch.manual_seed(9)
    layer = torch.nn.Linear(256, 128)
    x = torch.randn(2, 40, 256)
    with torch.inference_mode(), cpu_kernels.OneDnnKernels(PYTORCH):
        exact = layer(x)
        with int8_products():
            low = layer(x)
            ops = _ops(lambda: layer(x))
            packed = cpu_kernels._PACKED.get()
        after = layer(x)
    assert "quantized::linear_dynamic" in ops and len(packed) == 1  # packed on the first call, reused after
    assert low.shape == exact.shape and low.dtype == torch.float32
    snr = 10 * torch.log10(exact.pow(2).sum() / (exact - low).pow(2).sum())
    assert 25 < snr < 60, snr  # int8 really ran (7-bit activations, 8-bit weights per row)
    assert torch.equal(after, exact)


def test_isa_cap_below_bfloat16_means_no_native_bfloat16(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert not cpu_kernels._native_bf16()
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_AMX")
    assert cpu_kernels._native_bf16() == bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


@pytest.mark.parametrize("arch", ["htdemucs", "bs_roformer", "umx"])
def test_engine_stems_equal_with_and_without_the_routing(arch: str, monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(6)
    model = architecture_class(arch)(TINY_CONFIGS[arch]()).eval()
    mix = 0.1 * torch.randn(2, 44100 * 2)
    routed = separate_tensor(model, mix)  # every class routed (the fixture's onednn)
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


@pytest.mark.skipif(not cpu_kernels.int8_available(), reason="this PyTorch build has no fbgemm")
def test_int8_products_repack_a_weight_changed_in_place_and_take_inference_tensors() -> None:
    torch.manual_seed(10)
    layer = torch.nn.Linear(64, 32)
    x = torch.randn(5, 64)
    with torch.inference_mode():
        frozen = torch.randn(32, 64)  # an inference tensor: no version counter
    with cpu_kernels.OneDnnKernels(PYTORCH), int8_products():
        with torch.inference_mode():
            before = layer(x)
            assert F.linear(x, frozen).shape == (5, 32)
        with torch.no_grad():
            layer.weight.mul_(2)
        with torch.inference_mode():
            after = layer(x)
    bias = layer.bias.detach()
    assert torch.allclose(after - bias, 2 * (before - bias), rtol=0.05, atol=0.05)


class RoundTimer(FakeTimer):
    """oneDNN's linear twice as fast in the first round, twice as slow in the others (a disturbed calibration)."""

    def __init__(self) -> None:
        super().__init__()
        self.linear_calls = 0

    def __call__(self, shape_class: str, path: str, fn) -> float:
        self.calls += 1
        if (shape_class, path) != ("linear", "onednn"):
            return 1.0
        self.linear_calls += 1
        return 0.5 if self.linear_calls == 1 else 2.0


def test_calibration_keeps_pytorch_unless_onednn_wins_every_round(private_cache: Path) -> None:
    assert cpu_kernels.calibrated_routes(RoundTimer()) == Routes()  # best-of would have picked oneDNN
    assert cpu_kernels.cache_key().endswith(" | rule 2")  # choices cached by the best-of rule are measured again
