"""Convolution helpers shared by model families: transposed convolutions as one ordinary convolution.

A transposed convolution of stride ``s`` and kernel ``K`` is, output phase by output phase (``n mod s``), an
ordinary convolution of the input with every ``s``-th kernel tap (polyphase decomposition). All phases run as one
ordinary convolution with ``s`` times the output channels, and the phases are interleaved afterwards. The products
are the same as the transposed convolution's (summed in another order), but ATen's CPU transposed convolution is 3-6x
slower than an ordinary convolution of the same size (AVX2 EPYC, docs/zoo.md), so this is the faster path on CPUs.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _polyphase_weight(weight: torch.Tensor, stride: tuple[int, int]) -> tuple[torch.Tensor, tuple[int, int]]:
    """Ordinary-convolution weight computing every output phase of a 2-D transposed convolution.

    Shape: ``(Cin, Cout, K1, K2)`` (``ConvTranspose2d``) -> ``(s1 * s2 * Cout, Cin, J1, J2)`` with ``J = ceil(K / s)``;
    output channel ``(r1 * s2 + r2) * Cout + c`` is phase ``(r1, r2)`` of channel ``c``. Also returns ``(J1, J2)``.
    """
    cin, cout, k1, k2 = weight.shape
    s1, s2 = stride
    j1, j2 = -(-k1 // s1), -(-k2 // s2)
    # Zero-pad the kernel to whole phases (J * s taps), then tap r + s * j of phase r sits at j.
    w = F.pad(weight, (0, j2 * s2 - k2, 0, j1 * s1 - k1)).view(cin, cout, j1, s1, j2, s2)
    # Correlation reads input q - j at kernel position J - 1 - j: flip the tap axes.
    w = w.flip(2, 4).permute(3, 5, 1, 0, 2, 4)  # (s1, s2, Cout, Cin, J1, J2)
    return w.reshape(s1 * s2 * cout, cin, j1, j2), (j1, j2)


def conv_transpose2d(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, stride: tuple[int, int]
) -> torch.Tensor:
    """``F.conv_transpose2d(x, weight, bias, stride)`` (no padding, dilation or groups) as one ordinary convolution.

    Shape: ``(B, Cin, H, W)`` -> ``(B, Cout, (H - 1) * s1 + K1, (W - 1) * s2 + K2)``; the memory format of ``x``
    (contiguous or channels-last) is kept.
    """
    s1, s2 = stride
    cout, k1, k2 = weight.shape[1:]
    w, (j1, j2) = _polyphase_weight(weight, stride)
    channels_last = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    if channels_last:
        w = w.contiguous(memory_format=torch.channels_last)
    y = F.conv2d(x, w, None if bias is None else bias.repeat(s1 * s2), padding=(j1 - 1, j2 - 1))
    b, _, m1, m2 = y.shape
    if channels_last:
        # Physical layout (B, M1, M2, s1, s2, Cout) -> (B, M1, s1, M2, s2, Cout): Cout-long runs copied.
        phases = y.permute(0, 2, 3, 1).view(b, m1, m2, s1, s2, cout).permute(0, 1, 3, 2, 4, 5)
        out = phases.reshape(b, m1 * s1, m2 * s2, cout).permute(0, 3, 1, 2)
    else:
        phases = y.view(b, s1, s2, cout, m1, m2).permute(0, 3, 4, 1, 5, 2)
        out = phases.reshape(b, cout, m1 * s1, m2 * s2)
    # Whole phases give up to s - 1 trailing outputs past the transposed convolution's end: zero taps only.
    return out[:, :, : (x.shape[2] - 1) * s1 + k1, : (x.shape[3] - 1) * s2 + k2]


def conv_transpose(module: nn.ConvTranspose1d | nn.ConvTranspose2d, x: torch.Tensor) -> torch.Tensor:
    """``module(x)`` for a plain transposed convolution (no padding, dilation, groups), computed by
    :func:`conv_transpose2d`. Shape: ``(B, Cin, L)`` or ``(B, Cin, H, W)`` as the module takes it.
    """
    # Exported graphs keep the transposed convolution: ONNX Runtime has its own kernel for it.
    exporting = torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()
    if exporting or any(p != 0 for p in module.padding) or module.groups != 1 \
            or any(d != 1 for d in module.dilation) or any(p != 0 for p in module.output_padding):
        return module(x)
    if isinstance(module, nn.ConvTranspose1d):
        # Length on the last axis: oneDNN runs a (1, K) kernel over one long row far faster than (K, 1) over a column.
        y = conv_transpose2d(x[:, :, None], module.weight[:, :, None], module.bias, (1, module.stride[0]))
        return y[:, :, 0]
    return conv_transpose2d(x, module.weight, module.bias, tuple(module.stride))

