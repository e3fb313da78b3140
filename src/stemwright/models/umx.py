"""Open-Unmix (UMX): one BiLSTM magnitude-mask model per target + a multichannel Wiener filter.

Stöter, Uhlich, Liutkus & Mitsufuji, "Open-Unmix - A Reference Implementation for Music Source Separation",
JOSS 4(41), 2019. A port of ``openunmix.model.OpenUnmix`` (per target) and ``openunmix.model.Separator`` (all
targets + STFT + Wiener EM) of openunmix 1.3.0, equal to it to float32 rounding (tests/models/test_umx.py).

Pipeline, for a mixture ``(B, C, T)``:
1. STFT (stemwright.dsp.stft; openunmix's Separator uses ``center=True``, periodic Hann, reflect padding),
   magnitude ``|X|`` (averaged over channels for a mono model);
2. per target: crop to ``max_bin`` bins (16 kHz bandwidth for the published models), normalise, fc + BN + tanh,
   3-layer BiLSTM with a skip connection, fc + BN + ReLU, fc + BN back to all bins, affine, ReLU, times ``|X|``;
3. multichannel Wiener filter with ``niter`` EM iterations over blocks of ``wiener_win_len`` frames
   (stemwright.dsp.wiener), inverse STFT.

State-dict keys are openunmix's: ``target_models.<source>.fc1.weight`` ... (a Separator's state dict minus its
STFT windows and ``sample_rate``), so a target's ``.pth`` loads into ``target_models[source]`` as is.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from stemwright.dsp.stft import StftConfig, istft, stft
from stemwright.dsp.wiener import wiener

UMX_SOURCES = ("vocals", "drums", "bass", "other")


@dataclass(frozen=True, kw_only=True)
class UmxConfig:
    """Configuration of an Open-Unmix separator (defaults: the published ``umxhq``).

    ``max_bin``: number of low STFT bins the network sees (1487 = 16 kHz at 44.1 kHz / n_fft 4096, as
    ``openunmix.utils.bandwidth_to_max_bin``); ``None`` = all bins. ``niter``: Wiener EM iterations (0 = magnitudes
    with the mixture phase). ``wiener_win_len``: frames per independently filtered block (``None``: whole track).
    ``residual``: add a ``residual`` source = mixture minus the targets (before EM). ``segment``: ``None`` runs the
    whole track at once, as openunmix does.
    """

    sources: tuple[str, ...] = UMX_SOURCES
    samplerate: int = 44100
    audio_channels: int = 2
    n_fft: int = 4096
    hop_length: int = 1024
    hidden_size: int = 512
    nb_layers: int = 3
    unidirectional: bool = False
    max_bin: int | None = 1487
    niter: int = 1
    softmask: bool = False
    residual: bool = False
    wiener_win_len: int | None = 300
    wiener_eps: float = 1e-10
    segment: float | None = None

    def __post_init__(self) -> None:
        if not self.sources or len(set(self.sources)) != len(self.sources):
            raise ValueError(f"UmxConfig.sources must be non-empty and unique, got {self.sources}")
        if self.residual and "residual" in self.sources:
            raise ValueError("UmxConfig: 'residual' is both a target and the residual source")
        if self.audio_channels not in (1, 2):
            raise ValueError(f"UmxConfig.audio_channels must be 1 or 2, got {self.audio_channels}")
        if self.n_fft <= 0 or self.hop_length <= 0 or self.samplerate <= 0:
            raise ValueError("UmxConfig: n_fft, hop_length and samplerate must be positive")
        n_bins = self.n_fft // 2 + 1
        if self.max_bin is not None and not 0 < self.max_bin <= n_bins:
            raise ValueError(f"UmxConfig.max_bin must be in 1..{n_bins} (n_fft // 2 + 1), got {self.max_bin}")
        if self.hidden_size <= 0 or (not self.unidirectional and self.hidden_size % 2):
            raise ValueError(f"UmxConfig.hidden_size must be positive (and even when bidirectional), got {self.hidden_size}")
        if self.nb_layers < 1:
            raise ValueError(f"UmxConfig.nb_layers must be >= 1, got {self.nb_layers}")
        if self.niter < 0:
            raise ValueError(f"UmxConfig.niter must be >= 0, got {self.niter}")
        if self.niter > 0 and len(self.sources) + int(self.residual) < 2:
            raise ValueError("UmxConfig: Wiener EM (niter > 0) needs two sources; add residual=True or set niter=0")
        if self.wiener_win_len is not None and self.wiener_win_len <= 0:
            raise ValueError(f"UmxConfig.wiener_win_len must be positive or None, got {self.wiener_win_len}")
        if self.segment is not None and self.segment <= 0:
            raise ValueError(f"UmxConfig.segment must be positive or None, got {self.segment}")

    @property
    def n_bins(self) -> int:
        return self.n_fft // 2 + 1

    @property
    def stft(self) -> StftConfig:
        return StftConfig(n_fft=self.n_fft, hop_length=self.hop_length, window="hann", center=True, pad_mode="reflect")


class UmxTarget(nn.Module):
    """One target's network (``openunmix.model.OpenUnmix``): magnitude in, magnitude estimate out.

    Shape: ``(B, C, F, N)`` -> ``(B, C, F, N)`` (non-negative).
    """

    def __init__(self, *, nb_bins: int, nb_channels: int, hidden_size: int, nb_layers: int, unidirectional: bool,
                 max_bin: int | None) -> None:
        super().__init__()
        self.nb_output_bins = nb_bins
        self.nb_bins = max_bin or nb_bins
        self.hidden_size = hidden_size
        self.fc1 = nn.Linear(self.nb_bins * nb_channels, hidden_size, bias=False)
        self.bn1 = nn.BatchNorm1d(hidden_size)
        self.lstm = nn.LSTM(
            input_size=hidden_size,
            hidden_size=hidden_size if unidirectional else hidden_size // 2,
            num_layers=nb_layers,
            bidirectional=not unidirectional,
            batch_first=False,
            dropout=0.4 if nb_layers > 1 else 0.0,  # openunmix's training dropout (inactive in eval)
        )
        self.fc2 = nn.Linear(hidden_size * 2, hidden_size, bias=False)
        self.bn2 = nn.BatchNorm1d(hidden_size)
        self.fc3 = nn.Linear(hidden_size, nb_bins * nb_channels, bias=False)
        self.bn3 = nn.BatchNorm1d(nb_bins * nb_channels)
        # Stored as openunmix does: input_mean = -mean, input_scale = 1/std (set from training statistics).
        self.input_mean = nn.Parameter(torch.zeros(self.nb_bins))
        self.input_scale = nn.Parameter(torch.ones(self.nb_bins))
        self.output_scale = nn.Parameter(torch.ones(nb_bins))
        self.output_mean = nn.Parameter(torch.ones(nb_bins))

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        x = spec.permute(3, 0, 1, 2)  # (N, B, C, F): frames first for the LSTM
        frames, batch, channels, _ = x.shape
        mix = x
        x = (x[..., : self.nb_bins] + self.input_mean) * self.input_scale
        x = self.bn1(self.fc1(x.reshape(-1, channels * self.nb_bins)))
        x = torch.tanh(x.reshape(frames, batch, self.hidden_size))
        x = torch.cat([x, self.lstm(x)[0]], dim=-1)  # skip connection around the LSTM
        x = F.relu(self.bn2(self.fc2(x.reshape(-1, x.shape[-1]))))
        x = self.bn3(self.fc3(x))
        x = x.reshape(frames, batch, channels, self.nb_output_bins) * self.output_scale + self.output_mean
        return (F.relu(x) * mix).permute(1, 2, 3, 0)


class OpenUnmix(nn.Module):
    """Open-Unmix separator: per-target BiLSTMs + multichannel Wiener filter (``openunmix.model.Separator``).

    Shape: ``(B, C, T)`` -> ``(B, S, C, T)``; ``S`` = len(sources) (+1 ``residual`` with ``config.residual``).
    A staged model (:mod:`stemwright.models.base`): STFT and Wiener filter outside the learned core.
    """

    config_class = UmxConfig
    core_input_names = ("magnitude",)
    core_output_names = ("estimates",)
    core_dynamic_axes = {"magnitude": {0: "batch", 3: "frames"}, "estimates": {0: "batch", 4: "frames"}}

    def __init__(self, config: UmxConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or UmxConfig()
        self.targets = config.sources
        self.sources = config.sources + (("residual",) if config.residual else ())
        self.samplerate = config.samplerate
        self.audio_channels = config.audio_channels
        self.segment = config.segment
        self.stft_config = config.stft
        self.target_models = nn.ModuleDict(
            {
                name: UmxTarget(
                    nb_bins=config.n_bins, nb_channels=config.audio_channels, hidden_size=config.hidden_size,
                    nb_layers=config.nb_layers, unidirectional=config.unidirectional, max_bin=config.max_bin,
                )
                for name in config.sources
            }
        )

    # Stages (stemwright.models.base): forward == finish(core(*prepare(mix)))
    def prepare(self, mix: torch.Tensor) -> tuple[tuple[torch.Tensor], tuple[torch.Tensor, int]]:
        """STFT and magnitude. Shape: ``(B, C, T)`` -> ``((B, C', F, N),)`` + context (complex STFT, T)."""
        if mix.dim() != 3 or mix.shape[1] != self.audio_channels:
            raise ValueError(f"expected mix (batch, {self.audio_channels}, time), got {tuple(mix.shape)}")
        spec = stft(mix, self.stft_config)
        mag = spec.abs()
        if self.audio_channels == 1:
            mag = mag.mean(dim=1, keepdim=True)  # energy-preserving downmix in the magnitude domain (openunmix)
        return (mag,), (spec, mix.shape[-1])

    def core(self, mag: torch.Tensor) -> torch.Tensor:
        """Target magnitudes. Shape: ``(B, C', F, N)`` -> ``(B, S_targets, C', F, N)``."""
        return torch.stack([model(mag) for model in self.target_models.values()], dim=1)

    def finish(self, estimates: torch.Tensor, context: tuple[torch.Tensor, int]) -> torch.Tensor:
        """Wiener filter + iSTFT. Shape: ``(B, S_targets, C', F, N)`` -> ``(B, S, C, T)``."""
        spec, length = context
        cfg = self.config
        stems = wiener(
            estimates.to(spec.real.dtype), spec, cfg.niter, softmask=cfg.softmask, residual=cfg.residual,
            eps=cfg.wiener_eps, frames_per_window=cfg.wiener_win_len,
        )
        return istft(stems, self.stft_config, length=length)

    def forward(self, mix: torch.Tensor) -> torch.Tensor:
        inputs, context = self.prepare(mix)
        return self.finish(self.core(*inputs), context)


def build_umx(**options: Any) -> OpenUnmix:
    """An untrained Open-Unmix (random weights) with ``UmxConfig(**options)``; published weights via the catalogue."""
    return OpenUnmix(UmxConfig(**options)).eval()
