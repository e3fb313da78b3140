"""Helpers for tests that compare stemwright's Open-Unmix with openunmix 1.3.0 (a test-only reference package)."""
from __future__ import annotations

import importlib
import sys
import types

import torch

from tests.reference import require


def import_openunmix(module: str = "openunmix.model"):
    """An ``openunmix`` module (default ``openunmix.model``); openunmix imports torchaudio at package import (unused by
    the model and filtering code), so an empty stand-in module is put in ``sys.modules`` just for the import when
    torchaudio is not installed."""
    saved = sys.modules.get("torchaudio")
    if saved is None:
        sys.modules["torchaudio"] = types.ModuleType("torchaudio")
    try:
        require("openunmix")
        return importlib.import_module(module)
    finally:
        if saved is None:
            del sys.modules["torchaudio"]


def randomize_(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Non-trivial values for everything a fresh model leaves at 0/1: normalisation statistics, input/output
    affine parameters (so that a wrong key mapping or a skipped step cannot go unnoticed)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith(("input_mean", "output_mean")):
                p.copy_(0.5 * torch.randn(p.shape, generator=gen))
            elif name.endswith(("input_scale", "output_scale")):
                p.copy_(0.5 + torch.rand(p.shape, generator=gen))
            elif name.endswith(("bn1.weight", "bn2.weight", "bn3.weight", "bn1.bias", "bn2.bias", "bn3.bias")):
                p.copy_(torch.randn(p.shape, generator=gen) * 0.2 + (1.0 if name.endswith("weight") else 0.0))
        for name, b in module.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(0.1 * torch.randn(b.shape, generator=gen))
            elif name.endswith("running_var"):
                b.copy_(0.5 + 1.5 * torch.rand(b.shape, generator=gen))
    return module


def reference_separator(
    *, targets=("vocals", "drums", "bass", "other"), nb_channels=2, hidden_size=32, n_fft=4096, n_hop=1024,
    max_bin=1487, niter=1, residual=False, softmask=False, wiener_win_len=300, seed=0,
):
    """An ``openunmix.model.Separator`` with random (seeded) weights and statistics, in eval mode."""
    model = import_openunmix()
    torch.manual_seed(seed)
    target_models = {
        t: model.OpenUnmix(nb_bins=n_fft // 2 + 1, nb_channels=nb_channels, hidden_size=hidden_size, max_bin=max_bin)
        for t in targets
    }
    sep = model.Separator(
        target_models, niter=niter, residual=residual, softmask=softmask, n_fft=n_fft, n_hop=n_hop,
        nb_channels=nb_channels, wiener_win_len=wiener_win_len,
    )
    return randomize_(sep, seed).eval()
