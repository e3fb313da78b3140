"""Training losses: L1 on the waveform and the multi-resolution STFT loss (Yamamoto et al. 2020, Parallel WaveGAN,
Sec. 2.3: spectral convergence + log-magnitude L1, averaged over several STFT resolutions)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from stemwright.dsp.stft import StftConfig, stft


@dataclass(frozen=True, kw_only=True)
class LossConfig:
    l1: float = 1.0
    mrstft: float = 1.0
    resolutions: tuple[tuple[int, int], ...] = ((2048, 512), (1024, 256), (512, 128))  # (n_fft, hop), Yamamoto Table 1 style

    def __post_init__(self) -> None:
        if self.l1 < 0 or self.mrstft < 0 or self.l1 + self.mrstft <= 0:
            raise ValueError(f"loss weights must be >= 0 and not all zero, got l1={self.l1}, mrstft={self.mrstft}")
        for res in self.resolutions:
            if len(res) != 2 or res[0] <= 0 or res[1] <= 0:
                raise ValueError(f"loss.resolutions must be [n_fft, hop] pairs, got {res!r}")

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "LossConfig":
        data = dict(data or {})
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"loss: unknown field(s) {', '.join(unknown)} (l1, mrstft, resolutions)")
        if "resolutions" in data:
            data["resolutions"] = tuple(tuple(int(v) for v in r) for r in data["resolutions"])
        return cls(**data)


def l1_loss(est: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Mean absolute error. Shape: any, equal shapes."""
    return (est - ref).abs().mean()


def mrstft_loss(est: torch.Tensor, ref: torch.Tensor, resolutions: tuple[tuple[int, int], ...], eps: float = 1e-5) -> torch.Tensor:
    """Multi-resolution STFT loss. Shape: ``(..., T)`` both.

    Spectral convergence is taken over the whole batch (one Frobenius ratio), not per example: a silent reference
    (a dropped source, an instrumental passage) would otherwise divide by zero.
    """
    total = est.new_zeros(())
    for n_fft, hop in resolutions:
        cfg = StftConfig(n_fft=n_fft, hop_length=hop)
        e = stft(est.float(), cfg).abs()
        r = stft(ref.float(), cfg).abs()
        sc = torch.linalg.vector_norm(r - e) / (torch.linalg.vector_norm(r) + eps)
        mag = (torch.log(e + eps) - torch.log(r + eps)).abs().mean()
        total = total + sc + mag
    return total / len(resolutions)


def total_loss(est: torch.Tensor, ref: torch.Tensor, cfg: LossConfig) -> tuple[torch.Tensor, dict[str, float]]:
    """Weighted sum of the configured losses. Shape: ``(B, S, C, T)`` both. Returns the loss and its parts."""
    parts: dict[str, torch.Tensor] = {}
    if cfg.l1:
        parts["l1"] = l1_loss(est, ref) * cfg.l1
    if cfg.mrstft:
        parts["mrstft"] = mrstft_loss(est, ref, cfg.resolutions) * cfg.mrstft
    loss = sum(parts.values())
    return loss, {k: float(v.detach()) for k, v in parts.items()}
