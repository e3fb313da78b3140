"""Transposed convolutions computed as one ordinary convolution (models/_conv.py) equal PyTorch's."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from stemwright.models._conv import conv_transpose


@pytest.mark.parametrize(
    ("module", "shape"),
    [
        (nn.ConvTranspose2d(5, 3, 5, 2), (2, 5, 7, 9)),  # Spleeter's: K not a multiple of the stride
        (nn.ConvTranspose2d(6, 4, (8, 1), (4, 1)), (1, 6, 5, 3)),  # Demucs' frequency decoder
        (nn.ConvTranspose2d(3, 2, (3, 4), (2, 3)), (1, 3, 6, 5)),
        (nn.ConvTranspose2d(4, 2, 3, 1), (1, 4, 5, 5)),
        (nn.ConvTranspose1d(6, 4, 8, 4), (2, 6, 11)),  # Demucs' time decoder
        (nn.ConvTranspose1d(3, 5, 5, 3, bias=False), (1, 3, 4)),
    ],
)
@pytest.mark.parametrize("channels_last", [False, True])
def test_conv_transpose_equals_pytorchs(module: nn.Module, shape: tuple[int, ...], channels_last: bool) -> None:
    torch.manual_seed(0)
    x = torch.randn(shape)
    if channels_last and x.dim() == 4:
        module = module.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    before = x.clone()
    expected = module(x)
    got = conv_transpose(module, x)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    assert torch.equal(x, before)


def test_conv_transpose_with_padding_falls_back_to_the_module() -> None:
    module = nn.ConvTranspose1d(2, 3, 4, 2, padding=1, output_padding=1)
    x = torch.randn(1, 2, 6)
    assert torch.equal(conv_transpose(module, x), module(x))
