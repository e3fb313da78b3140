"""Float32 matrix products on the CPU through oneDNN instead of the BLAS, for inference.

Why: PyTorch's x86 wheels compute float32 ``nn.Linear`` layers, attention's matrix products and 1x1 convolutions
with MKL's GEMM, which on AMD CPUs runs far below the hardware's peak, while oneDNN (also inside every x86 wheel,
already used for PyTorch's other convolutions) dispatches on the instruction set, not the vendor. Measured on an AMD
EPYC (Zen 5, AVX-512), one thread, a (4032 x 512) @ (512 x 2048) product: MKL 104 GFLOP/s, oneDNN 246 GFLOP/s
(``benchmarks/bench_cpu_kernels.py``, which also times the attention). The results are float32 products like the BLAS's, summed in another order:
they differ from MKL's in the last bits (relative 1e-7 to 1e-6), not in precision.

:func:`onednn_kernels` is a :class:`torch.overrides.TorchFunctionMode` that sends, while it is active,

- ``F.linear`` (so ``nn.Linear``, attention projections) to ``mkldnn::_linear_pointwise``;
- ``F.scaled_dot_product_attention`` without mask, causality or dropout, on long sequences, to two oneDNN products
  and a softmax per (batch, head), queries in blocks so that a score block stays under 4 MB; also for bfloat16
  operands (``bfloat16_products`` below, or a caller's own autocast), where PyTorch's fused CPU kernel is slower
  still (htdemucs under autocast, 10 s, 1 thread: 1.85 s of 4.25 s in it);
- ``F.conv1d`` / ``F.conv2d`` with a 1x1 kernel, stride 1 and no padding to ``torch.mkldnn_convolution`` (PyTorch
  sends those to its BLAS-based convolution on one thread), or, for a batched ``conv1d`` with at most 16 input
  channels (HT Demucs' DConv expansions, 6 -> 96 channels over 512 frequency rows), to one batched matrix product,
  which such a memory-bound shape runs faster (29 ms -> 22 ms per call in context);

and everything else, or anything under autocast, with gradients, off the CPU or not float32, to PyTorch unchanged.
The engine turns it on for CPU inference (:func:`stemwright.engine.run.run_batch`); it knows operators, not models.

Inside :func:`bfloat16_products` (the ``fast`` option on CPUs with native bfloat16, see
:mod:`stemwright.engine.precision`) the linear layers and attention take bfloat16 operands (float32 accumulation
in oneDNN, results back to float32), while convolutions, normalisations, the STFT and everything else stay float32.
Why not autocast, which also runs convolutions in bfloat16: on HT Demucs with its LayerScales raised to 0.5 (a
stand-in for trained weights, whose residual branches are not near zero like the random ones'), bfloat16 convolutions
put the stems 34-36 dB from the exact ones, bfloat16 products alone 60 dB (``benchmarks/bench_zoo.py --bf16``).
"""
from __future__ import annotations

import contextlib
import os
from contextvars import ContextVar
from typing import Any, Callable, ContextManager, Iterator

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

_LINEAR = getattr(getattr(torch.ops, "mkldnn", None), "_linear_pointwise", None)
#: ``STEMWRIGHT_CPU_KERNELS=torch`` turns the routing off (PyTorch's own kernels everywhere), e.g. to compare.
ENV = "STEMWRIGHT_CPU_KERNELS"
#: Below this many (query x key) scores per head the fused kernel's one call beats a Python loop of oneDNN calls.
MIN_SCORES = 1 << 16
#: A batched 1x1 conv1d with at most this many input channels runs as a batched matrix product.
SMALL_CHANNELS = 16
#: Largest score block (floats) materialised at a time, 4 MB: a block of a few hundred queries stays in the caches
#: between the two products and the softmax (htdemucs' 2688-token attention, 1 thread: 100 ms whole, 85 ms in
#: 390-query blocks, 151 ms by the fused kernel).
MAX_BLOCK = 1 << 20


#: The operand type of linear layers and attention while the routing is active (``bfloat16_products``).
_PRODUCTS: ContextVar[torch.dtype] = ContextVar("stemwright_cpu_products", default=torch.float32)


@contextlib.contextmanager
def bfloat16_products() -> Iterator[None]:
    """Linear layers and attention in bfloat16 inside this context (in this thread), where the routing is active."""
    token = _PRODUCTS.set(torch.bfloat16)
    try:
        yield
    finally:
        _PRODUCTS.reset(token)


def available() -> bool:
    """True when this PyTorch has the oneDNN operators used here (x86 builds with MKLDNN)."""
    return _LINEAR is not None and torch.backends.mkldnn.is_available() and hasattr(torch, "mkldnn_convolution")


def _plain_float_cpu(*tensors: Any) -> bool:
    """Only float32 CPU inference is rerouted: under autocast or autograd PyTorch's own path stays in charge."""
    if torch.is_grad_enabled() or torch.is_autocast_enabled("cpu"):
        return False
    return all(
        t is None or (isinstance(t, torch.Tensor) and t.dtype == torch.float32 and t.device.type == "cpu"
                      and t.layout == torch.strided)
        for t in tensors
    )


def _attention_inputs(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> bool:
    """float32 outside autocast, or bfloat16 (what autocast's projections give under ``fast``) where oneDNN has
    native bfloat16 kernels; CPU, strided, no gradients."""
    if torch.is_grad_enabled() or not all(isinstance(t, torch.Tensor) for t in (q, k, v)):
        return False
    if not all(t.device.type == "cpu" and t.layout == torch.strided and t.dtype == q.dtype for t in (k, v)):
        return False
    if q.dtype == torch.float32:
        return not torch.is_autocast_enabled("cpu")
    return q.dtype == torch.bfloat16 and _native_bf16()


def _linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``x @ weight.T + bias`` by oneDNN. Shape: ``(..., K)``, ``(N, K)`` -> ``(..., N)``."""
    return _LINEAR(x, weight, bias, "none", [], "")


def _bf16(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t.to(torch.bfloat16)


def _native_bf16() -> bool:
    """oneDNN has bfloat16 kernels on this CPU (AVX-512 BF16 / AMX; older AVX-512 emulates them, AVX2 has none)."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def _linear_in(dtype: torch.dtype, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """float32 ``x @ weight.T + bias`` with operands in ``dtype``; the result is float32. Without oneDNN bfloat16
    kernels (only when a caller forces bfloat16, e.g. a test: ``fast`` never picks it there) PyTorch's own."""
    if dtype == torch.bfloat16:
        if not _native_bf16():
            return F.linear(_bf16(x), _bf16(weight), _bf16(bias)).float()
        return _linear(_bf16(x), _bf16(weight), _bf16(bias)).float()
    return _linear(x, weight, bias)


def _attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float | None) -> torch.Tensor:
    """softmax(q k^T * scale) v per (batch, head), in query blocks. Shape: ``(B, H, T, D)``, ``(B, H, S, D)``,
    ``(B, H, S, Dv)`` -> ``(B, H, T, Dv)``."""
    b, h, t, d = q.shape
    s = k.shape[-2]
    scale = d ** -0.5 if scale is None else scale
    block = max(1, min(t, MAX_BLOCK // max(s, 1)))
    # (B, T, H, Dv) memory seen as (B, H, T, Dv): the caller's transpose(1, 2).flatten(2) back to (B, T, H * Dv),
    # the usual next step, is then a view instead of a copy.
    out = q.new_empty(b, t, h, v.shape[-1]).transpose(1, 2)
    for i in range(b):
        for j in range(h):
            keys, values_t = k[i, j].contiguous(), v[i, j].t().contiguous()
            for start in range(0, t, block):
                scores = _linear(q[i, j, start : start + block] * scale, keys, None)
                out[i, j, start : start + block] = _linear(torch.softmax(scores, dim=-1), values_t, None)
    return out


def _pointwise_conv1d_bmm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """A 1x1 ``conv1d`` as one batched product. Shape: ``(B, Cin, T)``, ``(Cout, Cin, 1)`` -> ``(B, Cout, T)``."""
    w = weight[:, :, 0].expand(x.shape[0], *weight.shape[:2])
    return torch.bmm(w, x) if bias is None else torch.baddbmm(bias[None, :, None], w, x)


def _is_pointwise(weight: torch.Tensor, stride: Any, padding: Any, dilation: Any) -> bool:
    def ones(v: Any) -> bool:
        return all(int(x) == 1 for x in (v if isinstance(v, (tuple, list)) else (v,)))

    def zeros(v: Any) -> bool:
        return not isinstance(v, str) and all(int(x) == 0 for x in (v if isinstance(v, (tuple, list)) else (v,)))

    return all(int(n) == 1 for n in weight.shape[2:]) and ones(stride) and ones(dilation) and zeros(padding)


class OneDnnKernels(TorchFunctionMode):
    """See the module docstring. Stateless; the operand type comes from :func:`bfloat16_products`' context variable."""

    def __torch_function__(self, func: Callable, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        if func is F.linear:
            x, weight = args[0], args[1] if len(args) > 1 else kwargs["weight"]
            bias = args[2] if len(args) > 2 else kwargs.get("bias")
            if _plain_float_cpu(x, weight, bias) and x.dim() >= 1 and x.numel() > 0:
                return _linear_in(_PRODUCTS.get(), x, weight, bias)
        elif func is F.scaled_dot_product_attention:
            q, k, v = args[:3]
            plain = (len(args) == 3 and kwargs.get("attn_mask") is None and not kwargs.get("is_causal", False)
                     and not kwargs.get("dropout_p", 0.0) and not kwargs.get("enable_gqa", False))
            if (plain and _attention_inputs(q, k, v) and q.dim() == k.dim() == v.dim() == 4
                    and q.shape[:2] == k.shape[:2] == v.shape[:2] and q.shape[-2] * k.shape[-2] >= MIN_SCORES):
                if q.dtype == torch.float32 and _PRODUCTS.get() == torch.bfloat16:
                    low = (_bf16(q), _bf16(k), _bf16(v))
                    if not _native_bf16():  # as _linear_in
                        return F.scaled_dot_product_attention(*low, scale=kwargs.get("scale")).float()
                    return _attention(*low, kwargs.get("scale")).float()
                return _attention(q, k, v, kwargs.get("scale"))
        elif func is F.conv1d or func is F.conv2d:
            params = dict(zip(("input", "weight", "bias", "stride", "padding", "dilation", "groups"), args))
            params.update(kwargs)
            x, weight, bias = params["input"], params["weight"], params.get("bias")
            stride, padding, dilation = params.get("stride", 1), params.get("padding", 0), params.get("dilation", 1)
            if (_plain_float_cpu(x, weight, bias) and x.dim() == weight.dim() and x.shape[0] > 0
                    and _is_pointwise(weight, stride, padding, dilation)):
                n = weight.dim() - 2
                groups = int(params.get("groups", 1))
                if n == 1 and groups == 1 and weight.shape[1] <= SMALL_CHANNELS and x.shape[0] > 1:
                    return _pointwise_conv1d_bmm(x, weight, bias)
                return torch.mkldnn_convolution(x, weight, bias, [0] * n, [1] * n, [1] * n, groups)
        return func(*args, **kwargs)


def enabled() -> bool:
    """False when the environment asks for PyTorch's own kernels (``STEMWRIGHT_CPU_KERNELS=torch``)."""
    value = os.environ.get(ENV, "onednn").strip().lower()
    if value not in ("onednn", "torch"):
        raise ValueError(f"{ENV}={value!r}: expected 'onednn' or 'torch'")
    return value == "onednn"


def onednn_kernels(device: torch.device | str) -> ContextManager:
    """The oneDNN routing for inference on ``device`` (a no-op context off the CPU, when turned off by the
    environment, or when this PyTorch lacks the operators)."""
    if torch.device(device).type == "cpu" and enabled() and available():
        return OneDnnKernels()  # a fresh mode per use: modes are not re-entrant
    return contextlib.nullcontext()
