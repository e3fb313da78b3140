"""Reduced-precision inference, the ``fast`` option of :class:`stemwright.Separator` (``stemwright separate --fast``).

The fast path computes in bfloat16 with float32 accumulation:

- on the CPU, the linear layers and attention only (:func:`stemwright.engine.cpu_kernels.bfloat16_products`, through
  oneDNN); convolutions, normalisations, the STFT and the engine's overlap-add stay float32, because bfloat16
  convolutions move HT Demucs' stems too far from the exact ones once its residual branches carry weight (34-36 dB
  SNR with LayerScales at 0.5, against 60 dB for bfloat16 products alone);
- on CUDA, the whole model under ``torch.autocast`` (convolutions included).

It is only used where the hardware has native bfloat16 kernels, because emulated bfloat16 is slower than float32:

- CPU: oneDNN's bfloat16 kernels, which need AVX-512 BF16 (AMD Zen 4+, Intel Cooper Lake+) or AMX (Intel Sapphire
  Rapids+), as reported by ``torch.ops.mkldnn._is_mkldnn_bf16_supported()``;
- CUDA: ``torch.cuda.is_bf16_supported()`` (Ampere and later).

Not int8: ``Precision(torch.qint8)`` (:func:`stemwright.engine.cpu_kernels.int8_products`, linear layers as
``torch.ao`` dynamic int8) was measured as the fast path of CPUs without native bfloat16 (issue 25, docs/zoo.md) and
not chosen: on an AVX2 EPYC it saved 0-10 % of HT Demucs' time and put its stems 36.7-39.7 dB from the exact
ones with LayerScales at 1 (under the 40 dB bound), though the int8 products alone are 2x faster.

Elsewhere (older CPUs, Apple MPS, pre-Ampere GPUs) ``fast`` keeps float32 and logs why: the stems are then exactly
those of the exact path. bfloat16 rather than float16: it has float32's exponent range, so no overflow in the
un-normalised activations of the published models (float16 would need per-model scaling).
"""
from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import ContextManager

import torch

from stemwright.engine import cpu_kernels
from stemwright.engine.cpu_kernels import bfloat16_products, int8_products

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Precision:
    """What a separation computes in: ``dtype`` is ``torch.float32`` (exact path) or ``torch.bfloat16`` (autocast);
    ``reason`` says why, for logs and reports."""

    dtype: torch.dtype
    reason: str

    @property
    def name(self) -> str:
        return str(self.dtype).removeprefix("torch.")


EXACT = Precision(torch.float32, "exact path")


def native_bf16(device: torch.device) -> bool:
    """True when ``device`` has native bfloat16 matrix kernels (see the module docstring)."""
    if device.type == "cpu":
        return cpu_kernels.native_bf16()
    if device.type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    return False


def choose_precision(device: torch.device, fast: bool) -> Precision:
    """The precision a separation on ``device`` uses: float32 unless ``fast`` and the device runs bfloat16 natively."""
    if not fast:
        return EXACT
    if native_bf16(device):
        what = "linear layers and attention" if device.type == "cpu" else "autocast"
        return Precision(torch.bfloat16, f"bfloat16 {what} ({device.type} has native bfloat16 kernels)")
    reason = (f"float32: {device.type} has no native bfloat16 kernels "
              f"(CPU: AVX-512 BF16 or AMX needed), so the fast option changes nothing")
    log.warning("fast: %s", reason)
    return Precision(torch.float32, reason)


def precision_context(precision: Precision, device: torch.device) -> ContextManager:
    """A context manager that runs model calls in ``precision`` on ``device``: nothing for float32; on the CPU,
    bfloat16 operands for linear layers and attention only (:func:`stemwright.engine.cpu_kernels.bfloat16_products`),
    or int8 linear layers for ``torch.qint8`` (benchmarks; ``fast`` does not choose it); elsewhere autocast."""
    if precision.dtype == torch.float32:
        return contextlib.nullcontext()
    if device.type == "cpu" and precision.dtype == torch.bfloat16:
        return bfloat16_products()
    if device.type == "cpu" and precision.dtype == torch.qint8:
        return int8_products()
    return torch.autocast(device.type, dtype=precision.dtype)
