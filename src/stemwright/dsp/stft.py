"""The one STFT/iSTFT implementation used by every spectrogram model in stemwright.

Each model family has its own convention (frame size, hop, centring, normalisation); they are all parameters of
:class:`StftConfig`, so there is a single code path (``torch.stft``/``torch.istft``) for all of them.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True, kw_only=True)
class StftConfig:
    """Parameters of a short-time Fourier transform.

    ``normalized=True`` scales by ``1/sqrt(n_fft)`` (torch's convention, used by Demucs).
    """

    n_fft: int = 4096
    hop_length: int = 1024
    win_length: int | None = None
    window: str = "hann"
    center: bool = True
    normalized: bool = False
    pad_mode: str = "reflect"

    def __post_init__(self) -> None:
        if self.n_fft <= 0 or self.hop_length <= 0:
            raise ValueError(f"n_fft and hop_length must be positive, got {self.n_fft}, {self.hop_length}")
        if self.win_length is not None and not 0 < self.win_length <= self.n_fft:
            raise ValueError(f"win_length must be in (0, n_fft], got {self.win_length}")
        if self.window not in ("hann", "hamming", "sqrt_hann"):
            raise ValueError(f"unknown window {self.window!r} (hann, hamming, sqrt_hann)")
        if self.pad_mode not in ("reflect", "constant", "replicate", "circular"):
            raise ValueError(f"unknown pad_mode {self.pad_mode!r}")

    @property
    def n_bins(self) -> int:
        return self.n_fft // 2 + 1

    @property
    def frame_length(self) -> int:
        return self.win_length or self.n_fft


def make_window(cfg: StftConfig, device: torch.device | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    n = cfg.frame_length
    if cfg.window == "hann":
        return torch.hann_window(n, periodic=True, device=device, dtype=dtype)
    if cfg.window == "hamming":
        return torch.hamming_window(n, periodic=True, device=device, dtype=dtype)
    return torch.hann_window(n, periodic=True, device=device, dtype=dtype).sqrt()


def stft(x: torch.Tensor, cfg: StftConfig, window: torch.Tensor | None = None) -> torch.Tensor:
    """Complex STFT of the last axis.

    Shape: ``(..., T)`` -> ``(..., F, N)`` complex, ``F = n_fft // 2 + 1``.
    """
    lead = x.shape[:-1]
    flat = x.reshape(-1, x.shape[-1])
    if window is None:
        window = make_window(cfg, flat.device, flat.dtype if flat.is_floating_point() else torch.float32)
    spec = torch.stft(
        flat,
        n_fft=cfg.n_fft,
        hop_length=cfg.hop_length,
        win_length=cfg.frame_length,
        window=window,
        center=cfg.center,
        normalized=cfg.normalized,
        onesided=True,
        pad_mode=cfg.pad_mode,
        return_complex=True,
    )
    return spec.reshape(*lead, *spec.shape[-2:])


def pad_to_whole_hops(x: torch.Tensor, cfg: StftConfig) -> torch.Tensor:
    """``x`` with zeros on the right up to a whole number of hops (a new tensor only when padding is needed).

    A model that changes a spectrogram and inverts it should transform this, then cut the output back: with
    ``center`` framing every sample of it then lies under two frames. Otherwise the last samples lie under the
    falling edge of one frame only, where the iSTFT divides by a window sum near zero, and a modified (no longer
    consistent) spectrogram blows up there (peaks of 10-700 from a 0.9 input, measured with the shipped models).

    Shape: ``(..., T)`` -> ``(..., T')`` with ``T'`` the next multiple of ``hop_length``.
    """
    pad = -x.shape[-1] % cfg.hop_length
    return torch.nn.functional.pad(x, (0, pad)) if pad else x


def istft(spec: torch.Tensor, cfg: StftConfig, length: int | None = None, window: torch.Tensor | None = None) -> torch.Tensor:
    """Inverse of :func:`stft` (perfect reconstruction for windows satisfying the COLA/NOLA condition).

    Shape: ``(..., F, N)`` complex -> ``(..., T)``.
    """
    lead = spec.shape[:-2]
    flat = spec.reshape(-1, *spec.shape[-2:])
    if window is None:
        window = make_window(cfg, flat.device, flat.real.dtype)
    wav = torch.istft(
        flat,
        n_fft=cfg.n_fft,
        hop_length=cfg.hop_length,
        win_length=cfg.frame_length,
        window=window,
        center=cfg.center,
        normalized=cfg.normalized,
        onesided=True,
        length=length,
    )
    return wav.reshape(*lead, wav.shape[-1])


def frequencies(cfg: StftConfig, samplerate: int) -> torch.Tensor:
    """Centre frequency in Hz of each bin. Shape: ``(F,)``."""
    return torch.linspace(0, samplerate / 2, cfg.n_bins)
