"""CPU matrix products for inference: PyTorch's own kernels or oneDNN, whichever this CPU runs faster.

Why two paths: PyTorch's x86 wheels compute float32 ``nn.Linear`` layers, attention's matrix products and 1x1
convolutions with MKL's GEMM, which on some AMD CPUs runs far below the hardware's peak, while oneDNN (also inside
every x86 wheel) dispatches on the instruction set, not the vendor. Which one wins depends on the CPU: one thread, a
(4032 x 512) @ (512 x 2048) product, AMD EPYC Zen 5 (AVX-512): MKL 104 GFLOP/s, oneDNN 246 GFLOP/s; AMD EPYC
Zen 3 (AVX2 only): MKL 65-82 GFLOP/s, oneDNN 63-74, and an 8-head 2688-token attention 231 ms fused against 363 ms
in oneDNN blocks (``benchmarks/bench_cpu_kernels.py``). So the routing is not
assumed, it is measured: on first use :func:`calibrated_routes` times both paths on one small shape of each operator
class (:class:`Routes`, well under a second in all) and routes a class to oneDNN only where oneDNN is at least
:data:`MARGIN` faster in every round, so it is never slower than PyTorch's own kernels by more than the timing
noise of that calibration (a disturbed round keeps PyTorch's). The choice is cached per CPU model, torch version, thread count, ISA environment and rule version
(``ATEN_CPU_CAPABILITY``, ``ONEDNN_MAX_CPU_ISA``, ``MKL_ENABLE_INSTRUCTIONS``) in ``cpu_kernels.json`` in stemwright's
cache folder (``$STEMWRIGHT_CACHE`` or the platform's user cache dir); a corrupt or unreadable cache is ignored.
``STEMWRIGHT_CPU_KERNELS`` = ``auto`` (default: measured), ``onednn`` (every class routed, the former default) or
``torch`` (PyTorch's own kernels everywhere). The rerouted results are float32 products like the BLAS's, summed in
another order: they differ from MKL's in the last bits (relative 1e-7 to 1e-6), not in precision.

:func:`onednn_kernels` is a :class:`torch.overrides.TorchFunctionMode` that sends, while it is active and
where the class is routed,

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

Inside :func:`int8_products` (``Precision(torch.qint8)``; measured, not chosen by ``fast``: see
:mod:`stemwright.engine.precision`) the linear layers run as ``torch.ao``'s dynamically quantised ``Linear`` does
(``quantized::linear_dynamic``: weights int8 per output channel, activations quantised per call with a 7-bit range,
int32 accumulation), packed once per weight and context; attention and convolutions stay float32.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import platform
import tempfile
import time
import warnings
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Callable, ContextManager, Iterator

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from stemwright.cache import cache_dir


log = logging.getLogger(__name__)

_LINEAR = getattr(getattr(torch.ops, "mkldnn", None), "_linear_pointwise", None)
#: ``auto`` (default): each operator class on the path measured faster here; ``onednn``: every class to oneDNN;
#: ``torch``: PyTorch's own kernels everywhere (e.g. to compare).
ENV = "STEMWRIGHT_CPU_KERNELS"
CHOICES = ("auto", "onednn", "torch")
#: The environment variables that cap the instruction set of ATen, oneDNN and MKL (``benchmarks/bench_zoo.py --isa``):
#: part of the calibration cache's key, since they change which path is faster.
ISA_ENV = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS")
#: oneDNN is chosen for a class only when it took at most this fraction of PyTorch's time.
MARGIN = 0.9
CACHE_NAME = "cpu_kernels.json"
#: Below this many (query x key) scores per head the fused kernel's one call beats a Python loop of oneDNN calls.
MIN_SCORES = 1 << 16
#: A batched 1x1 conv1d with at most this many input channels runs as a batched matrix product.
SMALL_CHANNELS = 16
#: Largest score block (floats) materialised at a time, 4 MB: a block of a few hundred queries stays in the caches
#: between the two products and the softmax (htdemucs' 2688-token attention, 1 thread: 100 ms whole, 85 ms in
#: 390-query blocks, 151 ms by the fused kernel).
MAX_BLOCK = 1 << 20


#: The operand type of linear layers and attention while the routing is active (``bfloat16_products``,
#: ``int8_products``).
_PRODUCTS: ContextVar[torch.dtype] = ContextVar("stemwright_cpu_products", default=torch.float32)
#: Packed int8 weights of the current ``int8_products`` context: ``id(weight) -> (weight, version, packed)``.
_PACKED: ContextVar[dict | None] = ContextVar("stemwright_int8_packed", default=None)


@dataclasses.dataclass(frozen=True)
class Routes:
    """Which float32 operator classes go to oneDNN (``True``) rather than PyTorch's own kernels."""

    linear: bool = False
    attention: bool = False
    pointwise_conv: bool = False
    small_conv1d: bool = False

    def any_float32(self) -> bool:
        return self.linear or self.attention or self.pointwise_conv or self.small_conv1d


ALL_ONEDNN = Routes(linear=True, attention=True, pointwise_conv=True, small_conv1d=True)
PYTORCH = Routes()
SHAPE_CLASSES = tuple(f.name for f in dataclasses.fields(Routes))


@contextlib.contextmanager
def int8_products() -> Iterator[None]:
    """Linear layers as dynamically quantised int8 products inside this context (in this thread), where the routing
    is active; weights are packed once per context."""
    token, packed = _PRODUCTS.set(torch.qint8), _PACKED.set({})
    try:
        yield
    finally:
        _PACKED.reset(packed)
        _PRODUCTS.reset(token)


def int8_available() -> bool:
    """True when this PyTorch has fbgemm's dynamic int8 linear (x86 builds)."""
    return "fbgemm" in torch.backends.quantized.supported_engines and hasattr(torch.ops.quantized, "linear_dynamic")


def _pack_int8(weight: torch.Tensor, bias: torch.Tensor | None) -> Any:
    """``weight`` ``(N, K)`` quantised symmetrically per output row to int8 and packed for fbgemm."""
    scale = (weight.detach().abs().amax(dim=1) / 127).clamp_min(1e-12).double()
    with warnings.catch_warnings():  # quantized tensor creation is marked deprecated; torch.ao itself still uses it
        warnings.simplefilter("ignore")
        q = torch.quantize_per_channel(weight.detach(), scale, torch.zeros_like(scale, dtype=torch.long), 0, torch.qint8)
    return torch.ops.quantized.linear_prepack(q, None if bias is None else bias.detach())


def _version(t: torch.Tensor) -> int:
    """The tensor's in-place write counter (a weight changed in place is packed again); inference tensors have none
    (they cannot be changed outside inference mode): -1."""
    try:
        return t._version
    except RuntimeError:
        return -1


def _int8_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``x @ weight.T + bias`` as ``torch.ao``'s dynamic int8 ``Linear``. Shape: ``(..., K)``, ``(N, K)`` -> ``(..., N)``."""
    cache = _PACKED.get()
    key = (id(weight), id(bias))
    version = _version(weight)
    hit = cache.get(key) if cache is not None else None
    if hit is None or hit[0] is not weight or hit[1] != version:
        hit = (weight, version, _pack_int8(weight, bias))
        if cache is not None:
            cache[key] = hit
    y = torch.ops.quantized.linear_dynamic(x.reshape(-1, x.shape[-1]), hit[2], True)  # reduce_range, as torch.ao
    return y.reshape(*x.shape[:-1], weight.shape[0])


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
    """oneDNN has bfloat16 kernels on this CPU (AVX-512 BF16 / AMX; older AVX-512 emulates them, AVX2 has none) and
    ``ONEDNN_MAX_CPU_ISA`` does not cap oneDNN below them (``bench_zoo.py --isa avx2`` on such a CPU)."""
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "").strip().upper()
    if cap and cap not in ("ALL", "DEFAULT") and "BF16" not in cap and "AMX" not in cap:
        return False
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def native_bf16() -> bool:
    """Public form of the check above, for :mod:`stemwright.engine.precision`."""
    return available() and _native_bf16()


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
    """See the module docstring. ``routes``: which float32 operator classes go to oneDNN (all by default); the
    operand type of products comes from :func:`bfloat16_products` / :func:`int8_products`' context variable."""

    def __init__(self, routes: Routes = ALL_ONEDNN) -> None:
        super().__init__()
        self.routes = routes

    def __torch_function__(self, func: Callable, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        products = _PRODUCTS.get()
        if func is F.linear:
            x, weight = args[0], args[1] if len(args) > 1 else kwargs["weight"]
            bias = args[2] if len(args) > 2 else kwargs.get("bias")
            if _plain_float_cpu(x, weight, bias) and x.dim() >= 1 and x.numel() > 0:
                if products == torch.qint8:
                    return _int8_linear(x, weight, bias)
                if products == torch.bfloat16 or self.routes.linear:
                    return _linear_in(products, x, weight, bias)
        elif func is F.scaled_dot_product_attention:
            q, k, v = args[:3]
            plain = (len(args) == 3 and kwargs.get("attn_mask") is None and not kwargs.get("is_causal", False)
                     and not kwargs.get("dropout_p", 0.0) and not kwargs.get("enable_gqa", False))
            low = products == torch.bfloat16
            if (plain and (low or self.routes.attention) and _attention_inputs(q, k, v)
                    and q.dim() == k.dim() == v.dim() == 4
                    and q.shape[:2] == k.shape[:2] == v.shape[:2] and q.shape[-2] * k.shape[-2] >= MIN_SCORES):
                if q.dtype == torch.float32 and low:
                    operands = (_bf16(q), _bf16(k), _bf16(v))
                    if not _native_bf16():  # as _linear_in
                        return F.scaled_dot_product_attention(*operands, scale=kwargs.get("scale")).float()
                    return _attention(*operands, kwargs.get("scale")).float()
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
                    if self.routes.small_conv1d:
                        return _pointwise_conv1d_bmm(x, weight, bias)
                elif self.routes.pointwise_conv:
                    return torch.mkldnn_convolution(x, weight, bias, [0] * n, [1] * n, [1] * n, groups)
        return func(*args, **kwargs)


def kernel_setting() -> str:
    """``STEMWRIGHT_CPU_KERNELS``: ``auto`` (default), ``onednn`` or ``torch``; anything else is a ValueError."""
    value = os.environ.get(ENV, "auto").strip().lower() or "auto"
    if value not in CHOICES:
        raise ValueError(f"{ENV}={value!r}: expected one of {', '.join(CHOICES)}")
    return value


def enabled() -> bool:
    """False when the environment asks for PyTorch's own kernels (``STEMWRIGHT_CPU_KERNELS=torch``)."""
    return kernel_setting() != "torch"


# --- calibration -------------------------------------------------------------------------------------------------

#: ``timer(shape_class, path, fn)`` -> seconds of one call of ``fn`` (``path`` is ``torch`` or ``onednn``).
Timer = Callable[[str, str, Callable[[], object]], float]
#: Timed calls per path and class, the paths interleaved (a busy spell of a shared machine hits both); oneDNN must win each.
ROUNDS = 3


def measure(shape_class: str, path: str, fn: Callable[[], object]) -> float:
    """Process CPU seconds of one call of ``fn`` (the default :data:`Timer`): the work done, which other processes
    on a busy machine disturb far less than wall time (a calibration at load 10 on 2 cores picked the slower path
    by wall time)."""
    start = time.process_time()
    fn()
    return time.process_time() - start


def _probes() -> dict[str, dict[str, Callable[[], object]]]:
    """Per operator class, one shape like the models' and a call per path (small: all of them take ~0.1-0.3 s on
    one thread, warm-ups included)."""
    gen = torch.Generator().manual_seed(0)

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=gen)

    x, w, b = randn(512, 512), randn(1024, 512), randn(1024)
    q, k, v = randn(1, 1, 512, 64), randn(1, 1, 512, 64), randn(1, 1, 512, 64)
    img, w2 = randn(1, 48, 32, 64), randn(48, 48, 1, 1)
    seq, w1, b1 = randn(4, 6, 1024), randn(96, 6, 1), randn(96)
    probes = {
        "linear": {"torch": lambda: F.linear(x, w, b), "onednn": lambda: _linear(x, w, b)},
        "attention": {"torch": lambda: F.scaled_dot_product_attention(q, k, v), "onednn": lambda: _attention(q, k, v, None)},
        "pointwise_conv": {"torch": lambda: F.conv2d(img, w2),
                           "onednn": lambda: torch.mkldnn_convolution(img, w2, None, [0, 0], [1, 1], [1, 1], 1)},
        "small_conv1d": {"torch": lambda: F.conv1d(seq, w1, b1), "onednn": lambda: _pointwise_conv1d_bmm(seq, w1, b1)},
    }
    return probes


def calibrate(timer: Timer = measure) -> Routes:
    """Time each class's paths with ``timer`` (one untimed warm-up each, then :data:`ROUNDS` interleaved rounds) and
    keep oneDNN only where it took at most :data:`MARGIN` of PyTorch's time in every round."""
    chosen: dict[str, bool] = {}
    start = time.perf_counter()
    with torch.inference_mode():
        for shape_class, paths in _probes().items():
            for fn in paths.values():
                fn()  # first calls pay one-off set-up (oneDNN primitives, packing)
            rounds = [{path: timer(shape_class, path, fn) for path, fn in paths.items()} for _ in range(ROUNDS)]
            # oneDNN only where it wins every round by the margin: a round disturbed by the rest of a busy machine
            # (with 2 threads, an idle thread's spin-wait counts as CPU time) leaves PyTorch's own kernels.
            chosen[shape_class] = all(r["onednn"] <= MARGIN * r["torch"] for r in rounds)
            log.debug("cpu kernels: %s %s", shape_class, rounds)
    routes = Routes(**chosen)
    log.info("cpu kernels calibrated in %.2f s: %s", time.perf_counter() - start, routes)
    return routes


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``; elsewhere Python's platform description)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "Hardware"):
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


#: The calibration rule's version, part of the cache key: choices cached by an older rule are measured again (2: oneDNN
#: must win every round, where 1 compared the best of the rounds).
RULE = 2


def cache_key() -> str:
    """What the measured choice depends on: CPU model, torch version, thread count, ISA environment, the rule."""
    isa = ",".join(f"{name}={os.environ.get(name, '')}" for name in ISA_ENV)
    return f"{cpu_model()} | torch {torch.__version__} | {torch.get_num_threads()} threads | {isa} | rule {RULE}"


def cache_file() -> Path | None:
    """``$STEMWRIGHT_CACHE/cpu_kernels.json``, else in the platform's user cache dir (as the model downloads);
    None where that cannot be known (no platformdirs: the choice is then measured once per process)."""
    try:
        return cache_dir() / CACHE_NAME
    except ImportError:
        return None


def _read_cache(path: Path) -> dict[str, Any]:
    """The cache file's entries; an absent, unreadable or corrupt file reads as empty (it is only a cache)."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        log.warning("cpu kernels: ignoring the calibration cache %s (%s)", path, e)
        return {}
    return data if isinstance(data, dict) else {}


def _routes_from(entry: Any) -> Routes | None:
    """A cache entry ``{class: bool}`` as :class:`Routes`, or None when it is not exactly that."""
    if not isinstance(entry, dict) or set(entry) != set(SHAPE_CLASSES):
        return None
    if not all(isinstance(v, bool) for v in entry.values()):
        return None
    return Routes(**entry)


def _write_cache(path: Path, key: str, routes: Routes) -> None:
    """Add ``key``'s entry, written to a temporary name and renamed; a cache that cannot be written is only logged."""
    data = _read_cache(path)
    data[key] = dataclasses.asdict(routes)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".cpu_kernels.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(data, f, indent=1)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as e:
        log.warning("cpu kernels: could not write the calibration cache %s (%s)", path, e)


#: This process's choices, by :func:`cache_key`.
_MEMO: dict[str, Routes] = {}


def calibrated_routes(timer: Timer | None = None) -> Routes:
    """The measured routes for this CPU and setting: from this process's memo, else the cache file, else a
    calibration by ``timer`` (default :func:`measure`), then written to the cache."""
    key = cache_key()
    if key in _MEMO:
        return _MEMO[key]
    path = cache_file()
    routes = _routes_from(_read_cache(path).get(key)) if path is not None else None
    if routes is None:
        routes = calibrate(timer or measure)
        if path is not None:
            _write_cache(path, key, routes)
    _MEMO[key] = routes
    return routes


def routes() -> Routes:
    """The float32 routes ``STEMWRIGHT_CPU_KERNELS`` asks for: measured (``auto``), all (``onednn``) or none."""
    setting = kernel_setting()
    if setting == "torch" or not available():
        return PYTORCH
    return ALL_ONEDNN if setting == "onednn" else calibrated_routes()


def onednn_kernels(device: torch.device | str) -> ContextManager:
    """The routing for inference on ``device``: a no-op context off the CPU, under ``STEMWRIGHT_CPU_KERNELS=torch``
    (the fast path's bfloat16/int8 products included), when no class is routed and the products are float32, or
    when this PyTorch lacks the operators."""
    if torch.device(device).type != "cpu" or not available() or not enabled():
        return contextlib.nullcontext()
    chosen = routes()
    if chosen.any_float32() or _PRODUCTS.get() != torch.float32:
        return OneDnnKernels(chosen)  # a fresh mode per use: modes are not re-entrant
    return contextlib.nullcontext()
