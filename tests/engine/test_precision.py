"""The ``fast`` option: bfloat16 autocast where the device runs it natively, stems close to the exact path's.

With random weights no SDR against reference stems can judge the fast path (the stems mean nothing), so the test
judges the difference itself: the SNR of the fast stems against the exact stems, >= 40 dB (the issue's bound).
Random HT Demucs weights under-weight its LayerScale'd residual branches (initialised at 1e-3/1e-4), so this bound
is shown for the models as initialised, not for trained weights (docs/zoo.md, caveat).
"""
from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import torch

from stemwright import Separator
from stemwright.engine.precision import EXACT, Precision, choose_precision, native_bf16
from stemwright.models.architectures import architecture_class
from tests.models.tiny import TINY_CONFIGS

pytestmark = pytest.mark.usefixtures("one_thread")
CPU = torch.device("cpu")


def snr_db(reference: np.ndarray, estimate: np.ndarray) -> float:
    noise = float(np.sum((reference.astype(np.float64) - estimate) ** 2))
    return math.inf if noise == 0 else 10 * math.log10(float(np.sum(reference.astype(np.float64) ** 2)) / noise)


def _song(seconds: float = 2.5, sr: int = 44100) -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * sr)) / sr
    tone = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 2 * t)) / 2
    return (tone + 0.05 * rng.standard_normal((2, t.size))).astype(np.float32)


def test_choose_precision_follows_the_hardware(caplog: pytest.LogCaptureFixture) -> None:
    """bfloat16 with native kernels, else float32 with a warning; never int8 (measured too slow and too far from the
    exact stems on HT Demucs, docs/zoo.md)."""
    assert choose_precision(CPU, fast=False) == EXACT
    with caplog.at_level(logging.WARNING, logger="stemwright.engine.precision"):
        chosen = choose_precision(CPU, fast=True)
    if native_bf16(CPU):
        assert chosen.dtype == torch.bfloat16 and not caplog.records
    else:
        assert chosen.dtype == torch.float32 and "no native bfloat16" in caplog.text
    assert choose_precision(torch.device("meta"), fast=True).dtype == torch.float32  # no bf16 kernels known there


@pytest.mark.parametrize("arch", ["htdemucs", "bs_roformer"])
def test_fast_stems_within_40_db_of_exact(arch: str) -> None:
    torch.manual_seed(0)
    model = architecture_class(arch)(TINY_CONFIGS[arch]()).eval()
    audio = _song()
    original = audio.copy()
    exact = Separator(model, device="cpu").separate(audio, 44100)
    fast = Separator(model, device="cpu", fast=True)
    # bfloat16 whatever this CPU has (emulated where it has no native kernels), so the bound is checked everywhere
    fast.precision = Precision(torch.bfloat16, "forced by the test")
    low = fast.separate(audio, 44100)
    np.testing.assert_array_equal(audio, original)
    for name in exact:
        assert low[name].dtype == np.float32 and low[name].shape == exact[name].shape
        assert np.abs(exact[name]).max() > 1e-3, "a silent stem would make the SNR meaningless"
        snr = snr_db(exact[name], low[name])
        # not bit-equal: the reduced precision really ran (with random weights the tiny HT Demucs' transformer,
        # the only part in bfloat16 on the CPU, hardly reaches the stems: over 100 dB there)
        assert 40.0 <= snr < math.inf, f"{arch} {name}: SNR {snr:.1f} dB"


def test_separator_fast_uses_bfloat16_only_with_native_kernels() -> None:
    model = architecture_class("htdemucs")(TINY_CONFIGS["htdemucs"]()).eval()
    sep = Separator(model, device="cpu", fast=True)
    assert sep.precision.dtype == (torch.bfloat16 if native_bf16(CPU) else torch.float32)
    assert Separator(model, device="cpu").precision == EXACT


def test_fast_stays_within_40_db_with_trained_like_residual_weights() -> None:
    """Random HT Demucs weights leave its LayerScale'd residual branches (DConv, transformer) at 1e-4..1e-3 of the
    output; raised to 0.5 and 1 (a stand-in for trained weights, not available offline) the fast path must still keep
    the stems within 40 dB SNR of the exact path. bfloat16 convolutions did not (34-36 dB at 0.5 on the published
    size): the CPU fast path keeps them float32 (stemwright.engine.cpu_kernels)."""
    from stemwright.models._demucs_layers import LayerScale

    torch.manual_seed(0)
    model = architecture_class("htdemucs")(TINY_CONFIGS["htdemucs"]()).eval()
    audio = _song()
    for value in (0.5, 1.0):
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, LayerScale):
                    m.scale.fill_(value)
        exact = Separator(model, device="cpu").separate(audio, 44100)
        fast = Separator(model, device="cpu", fast=True)
        fast.precision = Precision(torch.bfloat16, "forced by the test")
        low = fast.separate(audio, 44100)
        for name in exact:
            snr = snr_db(exact[name], low[name])
            assert 40.0 <= snr < math.inf, f"LayerScale {value}, {name}: SNR {snr:.1f} dB"
