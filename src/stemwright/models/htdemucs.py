"""Hybrid Transformer Demucs (v4): waveform and spectrogram U-Nets joined by a cross-domain transformer.

Rouard, Massa & Défossez, "Hybrid Transformers for Music Source Separation", ICASSP 2023. Config fields carry the
reference ``demucs`` package's keyword names and ``state_dict`` keys are the same, so the published ``htdemucs``,
``htdemucs_ft`` (a bag of four, see :mod:`stemwright.models.bag`), ``htdemucs_6s`` weights load directly.

The spectrogram is stemwright's one STFT (:func:`stemwright.dsp.stft.stft` with ``normalized=True``), which is the
transform Demucs uses. Outputs equal ``demucs.apply.apply_model`` (demucs 4.1.0) within 1e-4 through stemwright's
engine (tests/models/test_htdemucs.py).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from stemwright.models._demucs_layers import (
    CrossTransformerEncoder,
    channels_as_complex,
    complex_as_channels,
    hybrid_ispec,
    hybrid_spec,
    rescale_module,
)
from stemwright.models.hdemucs import FOUR_STEMS, HybridUNet, check_common, segment_samples

SIX_STEMS = ("drums", "bass", "other", "vocals", "guitar", "piano")


@dataclass(frozen=True, kw_only=True)
class HTDemucsConfig:
    """Hyper-parameters of HT Demucs (names and defaults of ``demucs.htdemucs.HTDemucs``).

    Use :data:`PUBLISHED` for the configurations of the published models. ``segment`` is the training segment in
    seconds: with ``use_train_segment`` the model always runs on exactly that many samples (shorter input is
    padded, the engine feeds it real context), since the transformer was trained at that length.
    Training-only fields (``t_dropout``, ``t_weight_decay``, ``t_lr``, CAPE augmentation) are kept so that
    demucs checkpoints map one to one.
    """

    sources: tuple[str, ...] = FOUR_STEMS
    audio_channels: int = 2
    channels: int = 48
    channels_time: int | None = None
    growth: float = 2
    nfft: int = 4096
    wiener_iters: int = 0
    end_iters: int = 0
    wiener_residual: bool = False
    cac: bool = True
    depth: int = 4
    rewrite: bool = True
    multi_freqs: tuple[float, ...] = ()
    multi_freqs_depth: int = 3
    freq_emb: float = 0.2
    emb_scale: float = 10
    emb_smooth: bool = True
    kernel_size: int = 8
    time_stride: int = 2
    stride: int = 4
    context: int = 1
    context_enc: int = 0
    norm_starts: int = 4
    norm_groups: int = 4
    dconv_mode: int = 1
    dconv_depth: int = 2
    dconv_comp: float = 8
    dconv_init: float = 1e-3
    bottom_channels: int = 0
    t_layers: int = 5
    t_emb: str = "sin"
    t_hidden_scale: float = 4.0
    t_heads: int = 8
    t_dropout: float = 0.0
    t_max_positions: int = 10000
    t_norm_in: bool = True
    t_norm_in_group: bool = False
    t_group_norm: bool = False
    t_norm_first: bool = True
    t_norm_out: bool = True
    t_max_period: float = 10000.0
    t_weight_decay: float = 0.0
    t_lr: float | None = None
    t_layer_scale: bool = True
    t_gelu: bool = True
    t_weight_pos_embed: float = 1.0
    t_sin_random_shift: int = 0
    t_cape_mean_normalize: bool = True
    t_cape_augment: bool = True
    t_cape_glob_loc_scale: tuple[float, float, float] = (5000.0, 1.0, 1.4)
    t_sparse_self_attn: bool = False
    t_sparse_cross_attn: bool = False
    t_mask_type: str = "diag"
    t_mask_random_seed: int = 42
    t_sparse_attn_window: int = 500
    t_global_window: int = 100
    t_sparsity: float = 0.95
    t_auto_sparsity: bool = False
    t_cross_first: bool = False
    rescale: float = 0.1
    samplerate: int = 44100
    segment: float = 10.0
    use_train_segment: bool = True

    def __post_init__(self) -> None:
        check_common(self)
        if self.t_sparse_self_attn or self.t_sparse_cross_attn:
            raise ValueError("HTDemucsConfig: sparse attention (t_sparse_self_attn/t_sparse_cross_attn) needs "
                             "experimental kernels that were never released; it is not implemented")
        if self.t_emb not in ("sin", "cape", "scaled"):
            raise ValueError(f"HTDemucsConfig.t_emb must be 'sin', 'cape' or 'scaled', got {self.t_emb!r}")
        if self.t_layers < 0 or self.t_heads < 1:
            raise ValueError("HTDemucsConfig: t_layers must be >= 0 and t_heads >= 1")
        dim = self.transformer_channels
        if self.t_layers and (dim % self.t_heads or dim % 4):
            raise ValueError(f"HTDemucsConfig: transformer width {dim} must be divisible by t_heads "
                             f"({self.t_heads}) and by 4 (2-D sinusoidal embedding)")
        if len(self.t_cape_glob_loc_scale) != 3:
            raise ValueError("HTDemucsConfig.t_cape_glob_loc_scale must hold 3 numbers")
        # the frequency branch must reach the time branch's stride at the bottom (Rouard et al. 2023, fig. 1).
        if self.nfft // 2 // self.stride ** (self.depth - 1) < 1:
            raise ValueError(f"HTDemucsConfig: depth {self.depth} is too deep for nfft {self.nfft} and stride "
                             f"{self.stride} (the frequency axis would vanish before the transformer)")

    @property
    def transformer_channels(self) -> int:
        return self.bottom_channels or int(self.channels * self.growth ** (self.depth - 1))


def _published(**kw: Any) -> HTDemucsConfig:
    base = dict(segment=7.8, dconv_mode=3, bottom_channels=512, t_dropout=0.02)
    return HTDemucsConfig(**{**base, **kw})


#: Configurations of the published models (architecture only; weights come from the catalogue). The segment of
#: the released models is ``Fraction(39, 5)`` = 7.8 s (10 s training excerpts shortened by repitch/shift).
PUBLISHED: dict[str, HTDemucsConfig] = {
    "htdemucs": _published(),
    "htdemucs_ft": _published(),  # each of the four bag members
    "htdemucs_6s": _published(sources=SIX_STEMS, bottom_channels=0),
}


class HTDemucs(HybridUNet):
    """Hybrid Transformer Demucs.

    Shape: ``(B, C, T)`` -> ``(B, S, C, T)`` with ``T <= segment * samplerate`` in eval mode
    (the engine chunks longer tracks).
    """

    config_class = HTDemucsConfig

    def __init__(self, config: HTDemucsConfig) -> None:
        super().__init__()
        c = config
        self.config = config
        self.sources = tuple(c.sources)
        self.samplerate = c.samplerate
        self.audio_channels = c.audio_channels
        self.segment: float | None = float(c.segment)
        self.hop_length = c.nfft // 4
        self.bottom_channels = c.bottom_channels
        self._build_unet(c, hybrid=True, local_dconv=False)
        if c.rescale:
            rescale_module(self, reference=c.rescale)  # before the transformer is built, as in the reference
        dim = int(c.channels * c.growth ** (c.depth - 1))
        if c.bottom_channels:
            self.channel_upsampler = nn.Conv1d(dim, c.bottom_channels, 1)
            self.channel_downsampler = nn.Conv1d(c.bottom_channels, dim, 1)
            self.channel_upsampler_t = nn.Conv1d(dim, c.bottom_channels, 1)
            self.channel_downsampler_t = nn.Conv1d(c.bottom_channels, dim, 1)
            dim = c.bottom_channels
        self.crosstransformer = None
        if c.t_layers > 0:
            self.crosstransformer = CrossTransformerEncoder(
                dim, emb=c.t_emb, hidden_scale=c.t_hidden_scale, num_heads=c.t_heads, num_layers=c.t_layers,
                cross_first=c.t_cross_first, dropout=c.t_dropout, max_positions=c.t_max_positions,
                norm_in=c.t_norm_in, norm_in_group=c.t_norm_in_group, group_norm=c.t_group_norm,
                norm_first=c.t_norm_first, norm_out=c.t_norm_out, max_period=c.t_max_period,
                layer_scale=c.t_layer_scale, gelu=c.t_gelu, sin_random_shift=c.t_sin_random_shift,
                weight_pos_embed=c.t_weight_pos_embed, cape_mean_normalize=c.t_cape_mean_normalize,
                cape_augment=c.t_cape_augment, cape_glob_loc_scale=c.t_cape_glob_loc_scale,
            )

    @property
    def training_length(self) -> int:
        return segment_samples(self.config.segment, self.samplerate)

    def valid_length(self, length: int) -> int:
        """The training length (the model is always run at it), or ``length`` without ``use_train_segment``.

        Raises ``ValueError`` when ``length`` exceeds the training length.
        """
        if not self.config.use_train_segment:
            return length
        if length > self.training_length:
            raise ValueError(f"HTDemucs: input of {length} samples is longer than the training length "
                             f"{self.training_length} ({self.config.segment} s); use a shorter segment")
        return self.training_length

    def _bottleneck(self, x: torch.Tensor, xt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Cross-domain transformer between the encoders and the decoders. Shapes unchanged."""
        if self.crosstransformer is None:
            return x, xt
        b, c, f, t = x.shape
        if self.bottom_channels:
            x = self.channel_upsampler(x.reshape(b, c, f * t)).reshape(b, -1, f, t)
            xt = self.channel_upsampler_t(xt)
        x, xt = self.crosstransformer(x, xt)
        if self.bottom_channels:
            x = self.channel_downsampler(x.reshape(b, -1, f * t)).reshape(b, c, f, t)
            xt = self.channel_downsampler_t(xt)
        return x, xt

    # ------------------------------------------------------------------------------------------- stages
    # The learned U-Nets and transformer (``core``) work on real tensors only; the STFT, the normalisation and the
    # iSTFT around them (``prepare`` / ``finish``) have no parameters. So the core can be exported to ONNX, compiled
    # or run in reduced precision without the complex spectrogram (see stemwright.models.base).
    core_input_names = ("spec", "wave")
    core_output_names = ("spec_out", "wave_out")
    # In eval mode the core always sees the training length (``valid_length``): only the batch axis varies.
    core_dynamic_axes = {"spec": {0: "batch"}, "wave": {0: "batch"}, "spec_out": {0: "batch"}, "wave_out": {0: "batch"}}

    def prepare(self, mix: torch.Tensor) -> tuple[tuple[torch.Tensor, torch.Tensor], "HTDemucsContext"]:
        """Pad to the training length, spectrogram as channels and normalise both branches.

        Shape: ``(B, C, T)`` -> ``((B, 2C, nfft/2, frames), (B, C, L))`` with ``L`` the padded length, and the
        context :meth:`finish` needs.
        """
        length = mix.shape[-1]
        target = length
        if self.config.use_train_segment and not self.training:
            target = self.valid_length(length)
            if length < target:
                mix = F.pad(mix, (0, target - length))  # as the reference: zeros on the right
        z = hybrid_spec(mix, self.config.nfft)
        x, mean, std = self._normalise(complex_as_channels(z).to(mix.device), (1, 2, 3))
        xt, meant, stdt = self._normalise(mix, (1, 2))
        return (x, xt), HTDemucsContext(length=length, mean=mean, std=std, mean_t=meant, std_t=stdt)

    def core(self, x: torch.Tensor, xt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoders, cross-domain transformer, decoders.

        Shape: ``(B, 2C, F, N)``, ``(B, C, L)`` -> ``(B, S, 2C, F, N)``, ``(B, S, C, L)`` (normalised units).
        """
        b, _, fq, t = x.shape
        length = xt.shape[-1]
        x, xt, saved, saved_t, lengths, lengths_t = self._encode(x, xt)
        x, xt = self._bottleneck(x, xt)
        x, xt = self._decode(x, xt, saved, saved_t, lengths, lengths_t)
        s = len(self.sources)
        return x.view(b, s, -1, fq, t), xt.view(b, s, -1, length)

    def finish(self, core_out: tuple[torch.Tensor, torch.Tensor], context: "HTDemucsContext") -> torch.Tensor:
        """Undo the normalisation, iSTFT of the spectral branch, sum with the waveform branch, trim the padding.

        Shape: core outputs -> ``(B, S, C, T)``.
        """
        x, xt = core_out
        x = x * context.std[:, None] + context.mean[:, None]
        out = hybrid_ispec(channels_as_complex(x), self.hop_length, xt.shape[-1])
        xt = xt * context.std_t[:, None] + context.mean_t[:, None]
        return (xt + out)[..., : context.length]

    def forward(self, mix: torch.Tensor) -> torch.Tensor:
        """Shape: ``(B, C, T)`` -> ``(B, S, C, T)``."""
        inputs, context = self.prepare(mix)
        return self.finish(self.core(*inputs), context)


@dataclass(frozen=True)
class HTDemucsContext:
    """What :meth:`HTDemucs.finish` needs from :meth:`HTDemucs.prepare`: the input length and the normalisation
    statistics of the spectral (``mean``, ``std``: ``(B, 1, 1, 1)``) and waveform (``(B, 1, 1)``) branches."""

    length: int
    mean: torch.Tensor
    std: torch.Tensor
    mean_t: torch.Tensor
    std_t: torch.Tensor


def build_htdemucs(**options: Any) -> HTDemucs:
    """An HTDemucs with random weights: ``build_htdemucs(preset="htdemucs", segment=...)`` or any config field."""
    preset = options.pop("preset", None)
    base = PUBLISHED[preset] if preset else HTDemucsConfig()
    return HTDemucs(dataclasses.replace(base, **options))
