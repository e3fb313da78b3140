"""Hybrid Demucs (v3): parallel waveform and spectrogram U-Nets merged at the bottom.

Défossez, "Hybrid Spectrogram and Waveform Source Separation", ISMIR MDX workshop 2021. This is the architecture
of the published ``hdemucs_mmi`` model. Config fields carry the reference ``demucs`` package's keyword names, and
``state_dict`` keys are the same, so demucs checkpoints load directly (see :mod:`stemwright.pretrained.demucs_format`).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction

import torch
from torch import nn

from stemwright.models._demucs_layers import (
    FreqEmbedding,
    HDecLayer,
    HEncLayer,
    channels_as_complex,
    complex_as_channels,
    hybrid_ispec,
    hybrid_spec,
    plain_ispec,
    plain_spec,
    rescale_module,
)

log = logging.getLogger(__name__)

FOUR_STEMS = ("drums", "bass", "other", "vocals")


def check_common(cfg) -> None:
    """Validation shared by the HDemucs and HTDemucs configs (raises ``ValueError`` naming the field)."""
    name = type(cfg).__name__
    if not cfg.sources or len(set(cfg.sources)) != len(cfg.sources):
        raise ValueError(f"{name}.sources must be non-empty and unique, got {cfg.sources!r}")
    if cfg.audio_channels < 1:
        raise ValueError(f"{name}.audio_channels must be >= 1, got {cfg.audio_channels}")
    if cfg.nfft < 16 or cfg.nfft & (cfg.nfft - 1):
        raise ValueError(f"{name}.nfft must be a power of two >= 16, got {cfg.nfft}")
    if cfg.depth < 1:
        raise ValueError(f"{name}.depth must be >= 1, got {cfg.depth}")
    if cfg.channels < 1 or (cfg.channels_time is not None and cfg.channels_time < 1):
        raise ValueError(f"{name}.channels/channels_time must be positive")
    if not cfg.cac:
        raise ValueError(f"{name}.cac=False (magnitude masking / Wiener outputs) is not implemented; "
                         "every published hybrid Demucs uses cac=True")
    if cfg.multi_freqs:
        raise ValueError(f"{name}.multi_freqs (MultiWrap band splitting) is not implemented; published models use []")
    if cfg.wiener_iters != cfg.end_iters:
        raise ValueError(f"{name}: wiener_iters ({cfg.wiener_iters}) must equal end_iters ({cfg.end_iters})")
    if cfg.dconv_mode not in (0, 1, 2, 3):
        raise ValueError(f"{name}.dconv_mode must be 0..3 (1 encoder, 2 decoder, 3 both), got {cfg.dconv_mode}")
    if cfg.kernel_size < 4 or cfg.stride < 1 or cfg.time_stride < 1:
        raise ValueError(f"{name}: kernel_size must be >= 4 and strides >= 1")
    if cfg.segment is not None and cfg.segment <= 0:
        raise ValueError(f"{name}.segment must be positive seconds, got {cfg.segment}")
    if cfg.samplerate <= 0:
        raise ValueError(f"{name}.samplerate must be positive, got {cfg.samplerate}")
    if cfg.norm_groups < 1:
        raise ValueError(f"{name}.norm_groups must be >= 1, got {cfg.norm_groups}")


def segment_samples(segment: float, samplerate: int) -> int:
    """``int(segment * samplerate)`` computed on the exact fraction (7.8 s -> 343980 at 44.1 kHz), as Demucs
    does with its ``Fraction`` segments."""
    return int(Fraction(segment).limit_denominator(100_000) * samplerate)


@dataclass(frozen=True, kw_only=True)
class HDemucsConfig:
    """Hyper-parameters of Hybrid Demucs v3 (names and defaults of ``demucs.hdemucs.HDemucs``).

    The defaults reproduce the published ``hdemucs_mmi`` model except ``segment`` (its bag sets 44 s).
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
    depth: int = 6
    rewrite: bool = True
    hybrid: bool = True
    hybrid_old: bool = False
    multi_freqs: tuple[float, ...] = ()
    multi_freqs_depth: int = 2
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
    dconv_comp: float = 4
    dconv_attn: int = 4
    dconv_lstm: int = 4
    dconv_init: float = 1e-4
    rescale: float = 0.1
    samplerate: int = 44100
    segment: float = 40.0

    def __post_init__(self) -> None:
        check_common(self)
        if self.hybrid_old and not self.hybrid:
            raise ValueError("HDemucsConfig.hybrid_old requires hybrid=True")


class HybridUNet(nn.Module):
    """The encoder/decoder stacks shared by HDemucs and HTDemucs (Défossez 2021, fig. 1)."""

    config: HDemucsConfig
    hybrid: bool = True

    def _build_unet(self, c, hybrid: bool, local_dconv: bool) -> None:
        self.encoder = nn.ModuleList()
        self.decoder = nn.ModuleList()
        if hybrid:
            self.tencoder = nn.ModuleList()
            self.tdecoder = nn.ModuleList()
        self.freq_emb = None
        chin = c.audio_channels
        chin_z = chin * 2  # complex as channels
        chout = c.channels_time or c.channels
        chout_z = c.channels
        freqs = c.nfft // 2
        for index in range(c.depth):
            freq = freqs > 1
            ker, stri = (c.kernel_size, c.stride) if freq else (c.time_stride * 2, c.time_stride)
            pad, last_freq = True, False
            if freq and freqs <= c.kernel_size:
                ker, pad, last_freq = freqs, False, True  # the last frequency layer collapses all bins
            dconv_kw = {"depth": c.dconv_depth, "compress": c.dconv_comp, "init": c.dconv_init, "gelu": True}
            if local_dconv:
                dconv_kw.update(lstm=index >= c.dconv_lstm, attn=index >= c.dconv_attn)
            kw = dict(kernel_size=ker, stride=stri, freq=freq, pad=pad, norm=index >= c.norm_starts,
                      rewrite=c.rewrite, norm_groups=c.norm_groups, dconv_kw=dconv_kw)
            kwt = dict(kw, freq=False, kernel_size=c.kernel_size, stride=c.stride, pad=True)
            if last_freq:
                chout_z = max(chout, chout_z)
                chout = chout_z
            self.encoder.append(HEncLayer(chin_z, chout_z, dconv=bool(c.dconv_mode & 1), context=c.context_enc, **kw))
            if hybrid and freq:
                self.tencoder.append(HEncLayer(chin, chout, dconv=bool(c.dconv_mode & 1), context=c.context_enc,
                                               empty=last_freq, **kwt))
            if index == 0:
                chin = c.audio_channels * len(c.sources)
                chin_z = chin * 2
            self.decoder.insert(0, HDecLayer(chout_z, chin_z, dconv=bool(c.dconv_mode & 2), last=index == 0,
                                             context=c.context, **kw))
            if hybrid and freq:
                self.tdecoder.insert(0, HDecLayer(chout, chin, dconv=bool(c.dconv_mode & 2), empty=last_freq,
                                                  last=index == 0, context=c.context, **kwt))
            chin, chin_z = chout, chout_z
            chout, chout_z = int(c.growth * chout), int(c.growth * chout_z)
            if freq:
                freqs = 1 if freqs <= c.kernel_size else freqs // c.stride
            if index == 0 and c.freq_emb:
                self.freq_emb = FreqEmbedding(freqs, chin_z, smooth=c.emb_smooth, scale=c.emb_scale)
                self.freq_emb_scale = c.freq_emb

    # -------------------------------------------------------------------------------------------- forward parts

    def _encode(self, x: torch.Tensor, xt: torch.Tensor | None):
        """Run both encoders. Returns ``(x, xt, saved, saved_t, lengths, lengths_t)``."""
        saved, saved_t, lengths, lengths_t = [], [], [], []
        for idx, encode in enumerate(self.encoder):
            lengths.append(x.shape[-1])
            inject = None
            if xt is not None and idx < len(self.tencoder):
                lengths_t.append(xt.shape[-1])
                tenc = self.tencoder[idx]
                xt = tenc(xt)
                if not tenc.empty:
                    saved_t.append(xt)
                else:
                    inject = xt  # same stride as the frequency branch now: merge
            x = encode(x, inject)
            if idx == 0 and self.freq_emb is not None:
                # frequency embedding: lets the frequency convolutions depend on the absolute frequency.
                frs = torch.arange(x.shape[-2], device=x.device)
                emb = self.freq_emb(frs).t()[None, :, :, None].expand_as(x)
                x = x + self.freq_emb_scale * emb
            saved.append(x)
        return x, xt, saved, saved_t, lengths, lengths_t

    def _decode(self, x, xt, saved, saved_t, lengths, lengths_t):
        """Run both decoders from the bottleneck. Returns ``(x, xt)``."""
        depth = len(self.decoder)
        for idx, decode in enumerate(self.decoder):
            x, pre = decode(x, saved.pop(-1), lengths.pop(-1))
            if xt is None:
                continue
            offset = depth - len(self.tdecoder)
            if idx >= offset:
                tdec = self.tdecoder[idx - offset]
                length_t = lengths_t.pop(-1)
                if tdec.empty:
                    # the time branch leaves the frequency branch here: `pre` has a single frequency row.
                    xt, _ = tdec(pre[:, :, 0], None, length_t)
                else:
                    xt, _ = tdec(xt, saved_t.pop(-1), length_t)
        return x, xt

    @staticmethod
    def _normalise(x: torch.Tensor, dims: tuple[int, ...]):
        mean = x.mean(dim=dims, keepdim=True)
        std = x.std(dim=dims, keepdim=True)
        return (x - mean) / (1e-5 + std), mean, std


class HDemucs(HybridUNet):
    """Hybrid Demucs v3 (waveform U-Net + spectrogram U-Net with a shared bottom, no transformer).

    Shape: ``(B, C, T)`` -> ``(B, S, C, T)``.
    """

    config_class = HDemucsConfig

    def __init__(self, config: HDemucsConfig) -> None:
        super().__init__()
        self.config = config
        self.sources = tuple(config.sources)
        self.samplerate = config.samplerate
        self.audio_channels = config.audio_channels
        self.segment: float | None = float(config.segment)
        self.hybrid = config.hybrid
        self.hop_length = config.nfft // 4
        self._build_unet(config, hybrid=config.hybrid, local_dconv=True)
        if config.rescale:
            rescale_module(self, reference=config.rescale)

    def valid_length(self, length: int) -> int:
        """HDemucs accepts any length (the reference applies it to each chunk as is)."""
        return length

    def forward(self, mix: torch.Tensor) -> torch.Tensor:
        """Shape: ``(B, C, T)`` -> ``(B, S, C, T)``."""
        c = self.config
        length = mix.shape[-1]
        if self.hybrid:
            z = hybrid_spec(mix, c.nfft, pad_reflect=not c.hybrid_old)
        else:
            z = plain_spec(mix, c.nfft)
        x, mean, std = self._normalise(complex_as_channels(z).to(mix.device), (1, 2, 3))
        b, _, fq, t = x.shape
        xt = meant = stdt = None
        if self.hybrid:
            xt, meant, stdt = self._normalise(mix, (1, 2))
        x, xt, saved, saved_t, lengths, lengths_t = self._encode(x, xt)
        # the U-Net bottom carries no signal in HDemucs: everything goes through the skips.
        x = torch.zeros_like(x)
        if self.hybrid:
            xt = torch.zeros_like(x)
        x, xt = self._decode(x, xt, saved, saved_t, lengths, lengths_t)
        s = len(self.sources)
        x = x.view(b, s, -1, fq, t) * std[:, None] + mean[:, None]
        zout = channels_as_complex(x)
        if self.hybrid:
            out = hybrid_ispec(zout, self.hop_length, length, old_padding=c.hybrid_old)
            xt = xt.view(b, s, -1, length) * stdt[:, None] + meant[:, None]
            return xt + out
        return plain_ispec(zout, self.hop_length, length)
