"""Building blocks of the hybrid Demucs models (v3 ``hdemucs`` and v4 ``htdemucs``).

A native re-implementation of the layers of Défossez, "Hybrid Spectrogram and Waveform Source Separation" (2021)
and Rouard, Massa & Défossez, "Hybrid Transformers for Music Source Separation" (ICASSP 2023), written so that
the parameter names (``state_dict`` keys) and the arithmetic are those of the reference ``demucs`` package 4.1.0
(MIT licence): published weights load directly and give the same outputs (tested against the package).

Only what inference and training of the published configurations need is here: the experimental sparse
attention kernels, ``MultiWrap`` frequency-band splitting and Wiener-filter outputs are not (their configs are
refused with a clear error by the model configs).
"""
from __future__ import annotations

import math
import random
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from stemwright.dsp.stft import StftConfig, istft, stft
from stemwright.models._conv import conv_transpose

# --------------------------------------------------------------------------------------------- padding and STFT


def pad1d(x: torch.Tensor, paddings: tuple[int, int], mode: str = "constant", value: float = 0.0) -> torch.Tensor:
    """``F.pad`` on the last axis that also allows reflect padding wider than the signal (zeros are inserted
    first, as Demucs does, so short inputs do not fail).

    Shape: ``(..., T)`` -> ``(..., left + T + right)``.
    """
    length = x.shape[-1]
    left, right = paddings
    if mode == "reflect":
        max_pad = max(left, right)
        if length <= max_pad:
            extra = max_pad - length + 1
            extra_right = min(right, extra)
            extra_left = extra - extra_right
            paddings = (left - extra_left, right - extra_right)
            x = F.pad(x, (extra_left, extra_right))
    return F.pad(x, paddings, mode, value)


def hybrid_spec(x: torch.Tensor, nfft: int, pad_reflect: bool = True) -> torch.Tensor:
    """Spectrogram aligned with the waveform branch: ``ceil(T / hop)`` frames, the Nyquist bin dropped.

    The signal is padded by 3/2 hop on each side (reflect) so that frame ``i`` is centred on sample
    ``i * hop + hop / 2``, which keeps the frequency branch aligned with the strided time convolutions
    (Défossez 2021, section 3). Normalised STFT (``1/sqrt(n_fft)``), periodic Hann window, hop ``nfft // 4``.

    Shape: ``(B, C, T)`` -> ``(B, C, nfft // 2, ceil(T / hop))`` complex.
    """
    hop = nfft // 4
    frames = int(math.ceil(x.shape[-1] / hop))
    pad = hop // 2 * 3
    x = pad1d(x, (pad, pad + frames * hop - x.shape[-1]), mode="reflect" if pad_reflect else "constant")
    z = stft(x, StftConfig(n_fft=nfft, hop_length=hop, normalized=True))[..., :-1, :]
    if z.shape[-1] != frames + 4:
        raise RuntimeError(f"internal error: expected {frames + 4} STFT frames, got {z.shape[-1]}")
    return z[..., 2 : 2 + frames]


def hybrid_ispec(z: torch.Tensor, hop: int, length: int, old_padding: bool = False) -> torch.Tensor:
    """Inverse of :func:`hybrid_spec` (restores the Nyquist bin as zeros and the two trimmed frames each side).

    ``old_padding`` reproduces the padding bug of the MDX 2021 hybrid models (``hybrid_old``).

    Shape: ``(..., nfft // 2, N)`` complex -> ``(..., length)``.
    """
    z = F.pad(z, (0, 0, 0, 1))
    z = F.pad(z, (2, 2))
    nfft = 2 * z.shape[-2] - 2
    cfg = StftConfig(n_fft=nfft, hop_length=hop, normalized=True)
    pad = hop // 2 * 3
    if old_padding:
        x = istft(z, cfg, length=hop * int(math.ceil(length / hop)))
        return x[..., :length]
    x = istft(z, cfg, length=hop * int(math.ceil(length / hop)) + 2 * pad)
    return x[..., pad : pad + length]


def plain_spec(x: torch.Tensor, nfft: int) -> torch.Tensor:
    """Spectrogram of a non-hybrid (frequency-only) HDemucs. Shape: ``(..., T)`` -> ``(..., nfft//2, N)``."""
    return stft(x, StftConfig(n_fft=nfft, hop_length=nfft // 4, normalized=True))[..., :-1, :]


def plain_ispec(z: torch.Tensor, hop: int, length: int) -> torch.Tensor:
    """Inverse of :func:`plain_spec`. Shape: ``(..., F, N)`` -> ``(..., length)``."""
    z = F.pad(z, (0, 0, 0, 1))
    nfft = 2 * z.shape[-2] - 2
    return istft(z, StftConfig(n_fft=nfft, hop_length=hop, normalized=True), length=length)


def complex_as_channels(z: torch.Tensor) -> torch.Tensor:
    """Real and imaginary parts as channels (CaC, Choi et al. 2020). Shape: ``(B, C, F, N)`` -> ``(B, 2C, F, N)``."""
    b, c, fr, t = z.shape
    return torch.view_as_real(z).permute(0, 1, 4, 2, 3).reshape(b, c * 2, fr, t)


def channels_as_complex(m: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`complex_as_channels` per source. Shape: ``(B, S, 2C, F, N)`` -> ``(B, S, C, F, N)``."""
    b, s, c, fr, t = m.shape
    out = m.view(b, s, -1, 2, fr, t).permute(0, 1, 2, 4, 5, 3)
    return torch.view_as_complex(out.contiguous())


# --------------------------------------------------------------------------------------------- initialisation


def rescale_module(module: nn.Module, reference: float) -> None:
    """Demucs' weight-rescaling trick: divide each conv's weights and bias by ``sqrt(std / reference)``."""
    for sub in module.modules():
        if isinstance(sub, (nn.Conv1d, nn.ConvTranspose1d, nn.Conv2d, nn.ConvTranspose2d)):
            std = sub.weight.std().detach()
            scale = (std / reference) ** 0.5
            sub.weight.data /= scale
            if sub.bias is not None:
                sub.bias.data /= scale


# --------------------------------------------------------------------------------------------- small modules


class LayerScale(nn.Module):
    """Per-channel learnt residual scale (Touvron et al. 2021), initialised small.

    Shape: ``(B, C, T)`` (``channel_last=False``) or ``(..., C)`` (``channel_last=True``), unchanged.
    """

    def __init__(self, channels: int, init: float = 0.0, channel_last: bool = False) -> None:
        super().__init__()
        self.channel_last = channel_last
        self.scale = nn.Parameter(torch.full((channels,), float(init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * x if self.channel_last else self.scale[:, None] * x


class FreqEmbedding(nn.Module):
    """Frequency embedding of the first frequency layer (Isik et al. 2020), with a boosted learning rate
    (``scale``) and an optional smooth initialisation. Key names as Demucs' ``ScaledEmbedding``.

    Shape: ``(F,)`` int -> ``(F, dim)``.
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, scale: float = 10.0, smooth: bool = False) -> None:
        super().__init__()
        self.embedding = nn.Embedding(num_embeddings, embedding_dim)
        if smooth:
            weight = torch.cumsum(self.embedding.weight.data, dim=0)
            # a cumulative sum of Gaussians grows as sqrt(n): normalise by it.
            weight = weight / torch.arange(1, num_embeddings + 1).to(weight).sqrt()[:, None]
            self.embedding.weight.data[:] = weight
        self.embedding.weight.data /= scale
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embedding(x) * self.scale


class PositionEmbedding(nn.Module):
    """Learnt positions for ``t_emb="scaled"`` (Demucs' transformer ``ScaledEmbedding``). Shape: ``(T,)`` -> ``(T, C)``."""

    def __init__(self, num_embeddings: int, embedding_dim: int, scale: float = 1.0, boost: float = 3.0) -> None:
        super().__init__()
        self.embedding = nn.Embedding(num_embeddings, embedding_dim)
        self.embedding.weight.data *= scale / boost
        self.boost = boost

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embedding(x) * self.boost


class BLSTM(nn.Module):
    """Bidirectional LSTM over time with a linear projection back to ``dim``; long inputs are processed in
    half-overlapping windows of ``max_steps`` frames (Demucs v3's DConv LSTM).

    Shape: ``(B, C, T)`` -> ``(B, C, T)``.
    """

    def __init__(self, dim: int, layers: int = 1, max_steps: int | None = None, skip: bool = False) -> None:
        super().__init__()
        if max_steps is not None and max_steps % 4:
            raise ValueError(f"BLSTM max_steps must be a multiple of 4, got {max_steps}")
        self.max_steps = max_steps
        self.lstm = nn.LSTM(bidirectional=True, num_layers=layers, hidden_size=dim, input_size=dim)
        self.linear = nn.Linear(2 * dim, dim)
        self.skip = skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t = x.shape
        y = x
        framed = self.max_steps is not None and t > self.max_steps
        if framed:
            width = self.max_steps
            stride = width // 2
            frames = _unfold(x, width, stride)
            nframes = frames.shape[2]
            x = frames.permute(0, 2, 1, 3).reshape(-1, c, width)
        x = self.linear(self.lstm(x.permute(2, 0, 1))[0]).permute(1, 2, 0)
        if framed:
            frames = x.reshape(b, -1, c, width)
            limit = stride // 2
            parts = []
            for k in range(nframes):
                if k == 0:
                    parts.append(frames[:, k, :, :-limit])
                elif k == nframes - 1:
                    parts.append(frames[:, k, :, limit:])
                else:
                    parts.append(frames[:, k, :, limit:-limit])
            x = torch.cat(parts, -1)[..., :t]
        return x + y if self.skip else x


def _unfold(a: torch.Tensor, kernel_size: int, stride: int) -> torch.Tensor:
    """Overlapping frames of the last axis, zero-padded at the end. Shape: ``(..., T)`` -> ``(..., N, kernel)``."""
    *shape, length = a.shape
    n_frames = math.ceil(length / stride)
    tgt_length = (n_frames - 1) * stride + kernel_size
    a = F.pad(a, (0, tgt_length - length))
    strides = list(a.stride())
    if strides[-1] != 1:
        raise RuntimeError("data should be contiguous")
    strides = strides[:-1] + [stride, 1]
    return a.as_strided([*shape, n_frames, kernel_size], strides)


class LocalState(nn.Module):
    """Content-based local attention with learnt per-head exponential decay over the time distance
    (Demucs v3's DConv attention). Shape: ``(B, C, T)`` -> ``(B, C, T)``.
    """

    def __init__(self, channels: int, heads: int = 4, ndecay: int = 4) -> None:
        super().__init__()
        if channels % heads:
            raise ValueError(f"LocalState: channels {channels} not divisible by heads {heads}")
        self.heads = heads
        self.ndecay = ndecay
        self.content = nn.Conv1d(channels, channels, 1)
        self.query = nn.Conv1d(channels, channels, 1)
        self.key = nn.Conv1d(channels, channels, 1)
        if ndecay:
            self.query_decay = nn.Conv1d(channels, heads * ndecay, 1)
            # decays start close to zero (after the sigmoid): the widest window at initialisation.
            self.query_decay.weight.data *= 0.01
            self.query_decay.bias.data[:] = -2
        self.proj = nn.Conv1d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t = x.shape
        heads = self.heads
        indexes = torch.arange(t, device=x.device, dtype=x.dtype)
        delta = indexes[:, None] - indexes[None, :]  # keys on the left index, queries on the right
        queries = self.query(x).view(b, heads, -1, t)
        keys = self.key(x).view(b, heads, -1, t)
        dots = torch.einsum("bhct,bhcs->bhts", keys, queries)
        dots /= keys.shape[2] ** 0.5
        if self.ndecay:
            decays = torch.arange(1, self.ndecay + 1, device=x.device, dtype=x.dtype)
            decay_q = torch.sigmoid(self.query_decay(x)) / 2
            decay_kernel = -decays.view(-1, 1, 1) * delta.abs() / self.ndecay**0.5
            dots += torch.einsum("fts,bhfs->bhts", decay_kernel, decay_q.view(b, heads, -1, t))
        dots.masked_fill_(torch.eye(t, device=dots.device, dtype=torch.bool), -100)
        weights = torch.softmax(dots, dim=2)
        content = self.content(x).view(b, heads, -1, t)
        result = torch.einsum("bhts,bhct->bhcs", weights, content).reshape(b, -1, t)
        return x + self.proj(result)


class DConv(nn.Module):
    """Residual branch of dilated convolutions in a compressed space, optionally with BiLSTM and local attention
    (Défossez 2021, fig. 2). Shape: ``(B, C, T)`` -> ``(B, C, T)``.
    """

    def __init__(
        self, channels: int, compress: float = 4, depth: int = 2, init: float = 1e-4, attn: bool = False,
        lstm: bool = False, gelu: bool = True, kernel: int = 3,
    ) -> None:
        super().__init__()
        dilate = depth > 0
        hidden = int(channels / compress)
        act: type[nn.Module] = nn.GELU if gelu else nn.ReLU
        self.layers = nn.ModuleList()
        for d in range(abs(depth)):
            dilation = 2**d if dilate else 1
            mods: list[nn.Module] = [
                nn.Conv1d(channels, hidden, kernel, dilation=dilation, padding=dilation * (kernel // 2)),
                nn.GroupNorm(1, hidden), act(),
                nn.Conv1d(hidden, 2 * channels, 1),
                nn.GroupNorm(1, 2 * channels), nn.GLU(1),
                LayerScale(channels, init),
            ]
            if attn:
                mods.insert(3, LocalState(hidden, heads=4, ndecay=4))
            if lstm:
                mods.insert(3, BLSTM(hidden, layers=2, max_steps=200, skip=True))
            self.layers.append(nn.Sequential(*mods))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = x + layer(x)
        return x


# --------------------------------------------------------------------------------------------- encoder/decoder


def _norm(norm: bool, groups: int) -> Callable[[int], nn.Module]:
    return (lambda d: nn.GroupNorm(groups, d)) if norm else (lambda d: nn.Identity())


class HEncLayer(nn.Module):
    """Encoder layer of either branch: strided conv (over frequency when ``freq``), GroupNorm, GELU, DConv
    residual, 1x1 "rewrite" conv + GLU. ``empty`` keeps only the first conv (the time layer that merges into
    the frequency branch).

    Shape: freq ``(B, C, F, T)`` -> ``(B, C', F/stride, T)``; time ``(B, C, T)`` -> ``(B, C', ceil(T/stride))``.
    """

    def __init__(
        self, chin: int, chout: int, kernel_size: int = 8, stride: int = 4, norm_groups: int = 1,
        empty: bool = False, freq: bool = True, dconv: bool = True, norm: bool = True, context: int = 0,
        dconv_kw: dict | None = None, pad: bool = True, rewrite: bool = True,
    ) -> None:
        super().__init__()
        norm_fn = _norm(norm, norm_groups)
        padding = kernel_size // 4 if pad else 0
        self.freq = freq
        self.kernel_size = kernel_size
        self.stride = stride
        self.empty = empty
        self.norm = norm
        self.pad = padding
        if freq:
            self.conv = nn.Conv2d(chin, chout, (kernel_size, 1), (stride, 1), (padding, 0))
        else:
            self.conv = nn.Conv1d(chin, chout, kernel_size, stride, padding)
        if empty:
            return
        klass = nn.Conv2d if freq else nn.Conv1d
        self.norm1 = norm_fn(chout)
        self.rewrite = None
        if rewrite:
            self.rewrite = klass(chout, 2 * chout, 1 + 2 * context, 1, context)
            self.norm2 = norm_fn(2 * chout)
        self.dconv = DConv(chout, **(dconv_kw or {})) if dconv else None

    def forward(self, x: torch.Tensor, inject: torch.Tensor | None = None) -> torch.Tensor:
        if not self.freq and x.dim() == 4:
            b, c, fr, t = x.shape
            x = x.view(b, -1, t)
        if not self.freq and x.shape[-1] % self.stride:
            x = F.pad(x, (0, self.stride - x.shape[-1] % self.stride))
        y = self.conv(x)
        if self.empty:
            return y
        if inject is not None:
            if inject.shape[-1] != y.shape[-1]:
                raise RuntimeError(f"time/frequency branch mismatch: {tuple(inject.shape)} vs {tuple(y.shape)}")
            if inject.dim() == 3 and y.dim() == 4:
                inject = inject[:, :, None]
            y = y + inject
        y = F.gelu(self.norm1(y))
        if self.dconv is not None:
            y = _dconv_over_freq(self.dconv, y) if self.freq else self.dconv(y)
        if self.rewrite is not None:
            return F.glu(self.norm2(self.rewrite(y)), dim=1)
        return y


def _dconv_over_freq(dconv: DConv, y: torch.Tensor) -> torch.Tensor:
    """Apply a time DConv to each frequency row independently. Shape: ``(B, C, F, T)`` unchanged."""
    b, c, fr, t = y.shape
    y = dconv(y.permute(0, 2, 1, 3).reshape(-1, c, t))
    return y.view(b, fr, c, t).permute(0, 2, 1, 3)


class HDecLayer(nn.Module):
    """Decoder layer, mirror of :class:`HEncLayer`: skip addition, rewrite + GLU, DConv, transposed conv.

    ``forward`` returns ``(output, pre)`` where ``pre`` is the input of the transposed conv (used where the
    frequency branch hands over to the time branch).
    """

    def __init__(
        self, chin: int, chout: int, last: bool = False, kernel_size: int = 8, stride: int = 4,
        norm_groups: int = 1, empty: bool = False, freq: bool = True, dconv: bool = True, norm: bool = True,
        context: int = 1, dconv_kw: dict | None = None, pad: bool = True, context_freq: bool = True,
        rewrite: bool = True,
    ) -> None:
        super().__init__()
        norm_fn = _norm(norm, norm_groups)
        self.pad = kernel_size // 4 if pad else 0
        self.last = last
        self.freq = freq
        self.chin = chin
        self.empty = empty
        self.stride = stride
        self.kernel_size = kernel_size
        self.norm = norm
        self.context_freq = context_freq
        if freq:
            self.conv_tr = nn.ConvTranspose2d(chin, chout, (kernel_size, 1), (stride, 1))
        else:
            self.conv_tr = nn.ConvTranspose1d(chin, chout, kernel_size, stride)
        self.norm2 = norm_fn(chout)
        if empty:
            return
        klass = nn.Conv2d if freq else nn.Conv1d
        self.rewrite = None
        if rewrite:
            if context_freq:
                self.rewrite = klass(chin, 2 * chin, 1 + 2 * context, 1, context)
            else:
                self.rewrite = klass(chin, 2 * chin, [1, 1 + 2 * context], 1, [0, context])
            self.norm1 = norm_fn(2 * chin)
        self.dconv = DConv(chin, **(dconv_kw or {})) if dconv else None

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.freq and x.dim() == 3:
            b, c, t = x.shape
            x = x.view(b, self.chin, -1, t)
        if not self.empty:
            x = x + skip
            y = F.glu(self.norm1(self.rewrite(x)), dim=1) if self.rewrite is not None else x
            if self.dconv is not None:
                y = _dconv_over_freq(self.dconv, y) if self.freq else self.dconv(y)
        else:
            y = x
        z = self.norm2(conv_transpose(self.conv_tr, y))
        if self.freq:
            if self.pad:
                z = z[..., self.pad : -self.pad, :]
        else:
            z = z[..., self.pad : self.pad + length]
        if not self.last:
            z = F.gelu(z)
        return z, y


# --------------------------------------------------------------------------------------------- transformer


def sin_embedding(length: int, dim: int, shift: int = 0, device=None, max_period: float = 10000.0) -> torch.Tensor:
    """1-D sinusoidal positions (cos then sin halves). Shape: ``(length, 1, dim)``."""
    pos = shift + torch.arange(length, device=device).view(-1, 1, 1)
    half = dim // 2
    adim = torch.arange(half, device=device).view(1, 1, -1)
    phase = pos / (max_period ** (adim / (half - 1)))
    return torch.cat([torch.cos(phase), torch.sin(phase)], dim=-1)


def sin_embedding_2d(d_model: int, height: int, width: int, device=None, max_period: float = 10000.0) -> torch.Tensor:
    """2-D sinusoidal positions over (frequency, time), half the channels each. Shape: ``(1, d_model, H, W)``."""
    pe = torch.zeros(d_model, height, width)
    half = d_model // 2
    div_term = torch.exp(torch.arange(0.0, half, 2) * -(math.log(max_period) / half))
    pos_w = torch.arange(0.0, width).unsqueeze(1)
    pos_h = torch.arange(0.0, height).unsqueeze(1)
    pe[0:half:2] = torch.sin(pos_w * div_term).transpose(0, 1).unsqueeze(1).repeat(1, height, 1)
    pe[1:half:2] = torch.cos(pos_w * div_term).transpose(0, 1).unsqueeze(1).repeat(1, height, 1)
    pe[half::2] = torch.sin(pos_h * div_term).transpose(0, 1).unsqueeze(2).repeat(1, 1, width)
    pe[half + 1 :: 2] = torch.cos(pos_h * div_term).transpose(0, 1).unsqueeze(2).repeat(1, 1, width)
    return pe[None].to(device)


def cape_embedding(
    length: int, dim: int, batch_size: int, mean_normalize: bool, augment: bool, max_global_shift: float = 0.0,
    max_local_shift: float = 0.0, max_scale: float = 1.0, device=None, max_period: float = 10000.0,
) -> torch.Tensor:
    """Continuous augmented positional embedding (CAPE, Likhomanenko et al. 2021). Shape: ``(length, B, dim)``."""
    pos = 1.0 * torch.arange(length).view(-1, 1, 1)
    pos = pos.repeat(1, batch_size, 1)
    if mean_normalize:
        pos -= torch.nanmean(pos, dim=0, keepdim=True)
    if augment:
        delta = np.random.uniform(-max_global_shift, +max_global_shift, size=[1, batch_size, 1])
        delta_local = np.random.uniform(-max_local_shift, +max_local_shift, size=[length, batch_size, 1])
        log_lambdas = np.random.uniform(-np.log(max_scale), +np.log(max_scale), size=[1, batch_size, 1])
        pos = (pos + delta + delta_local) * np.exp(log_lambdas)
    pos = pos.to(device)
    half = dim // 2
    adim = torch.arange(half, device=device).view(1, 1, -1)
    phase = pos / (max_period ** (adim / (half - 1)))
    return torch.cat([torch.cos(phase), torch.sin(phase)], dim=-1).float()


class ChannelGroupNorm(nn.GroupNorm):
    """GroupNorm over ``(B, T, C)`` tensors (Demucs' ``MyGroupNorm``). Shape unchanged."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


class _FeedForwardMixin:
    linear1: nn.Linear
    linear2: nn.Linear
    dropout: nn.Dropout
    dropout2: nn.Dropout
    activation: Callable[[torch.Tensor], torch.Tensor]

    def _ff_block(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))


def _norms(group_norm: int, d_model: int, eps: float, count: int) -> list[nn.Module]:
    if group_norm:
        return [ChannelGroupNorm(int(group_norm), d_model, eps=eps) for _ in range(count)]
    return [nn.LayerNorm(d_model, eps=eps) for _ in range(count)]


def attention(mha: nn.MultiheadAttention, q: torch.Tensor, kv: torch.Tensor, training: bool) -> torch.Tensor:
    """``mha(q, kv, kv, need_weights=False)[0]`` with the same parameters (so the same ``state_dict``), computed with
    :func:`torch.nn.functional.scaled_dot_product_attention`.

    Why: in inference, ``nn.MultiheadAttention`` takes the native fast path for self-attention, whose CPU kernel
    materialises the (heads, T, T) score matrix with bmm + softmax; the fused SDPA kernel does not (measured on
    htdemucs, one 7.8 s chunk, 1 thread: 4.6 s -> 4.0 s of CPU time, outputs within 3e-8).

    Shape: ``q (B, T, C)``, ``kv (B, S, C)`` -> ``(B, T, C)`` (batch first).
    """
    heads = mha.num_heads
    if q is kv:
        qq, kk, vv = F.linear(q, mha.in_proj_weight, mha.in_proj_bias).chunk(3, dim=-1)
    else:
        wq, wk, wv = mha.in_proj_weight.chunk(3)
        bq, bk, bv = mha.in_proj_bias.chunk(3)
        qq, kk, vv = F.linear(q, wq, bq), F.linear(kv, wk, bk), F.linear(kv, wv, bv)

    def split(x: torch.Tensor) -> torch.Tensor:  # (B, T, C) -> (B, heads, T, C / heads)
        return x.unflatten(-1, (heads, x.shape[-1] // heads)).transpose(1, 2)

    out = F.scaled_dot_product_attention(split(qq), split(kk), split(vv), dropout_p=mha.dropout if training else 0.0)
    return mha.out_proj(out.transpose(1, 2).flatten(2))


class SelfAttentionLayer(_FeedForwardMixin, nn.Module):
    """Transformer encoder layer (Demucs' ``MyTransformerEncoderLayer``: torch's layer + LayerScale + optional
    output GroupNorm), batch first. Shape: ``(B, T, C)`` -> ``(B, T, C)``.
    """

    def __init__(
        self, d_model: int, nhead: int, dim_feedforward: int, dropout: float, activation: Callable,
        group_norm: int = 0, norm_first: bool = False, norm_out: bool = False, layer_norm_eps: float = 1e-5,
        layer_scale: bool = False, init_values: float = 1e-4,
    ) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout, batch_first=True)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm_first = norm_first
        self.norm1, self.norm2 = _norms(group_norm, d_model, layer_norm_eps, 2)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.activation = activation
        self.norm_out = ChannelGroupNorm(int(norm_out), d_model) if norm_first and norm_out else None
        self.gamma_1 = LayerScale(d_model, init_values, True) if layer_scale else nn.Identity()
        self.gamma_2 = LayerScale(d_model, init_values, True) if layer_scale else nn.Identity()

    def _sa_block(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout1(attention(self.self_attn, x, x, self.training))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.norm_first:
            x = x + self.gamma_1(self._sa_block(self.norm1(x)))
            x = x + self.gamma_2(self._ff_block(self.norm2(x)))
            if self.norm_out is not None:
                x = self.norm_out(x)
            return x
        x = self.norm1(x + self.gamma_1(self._sa_block(x)))
        return self.norm2(x + self.gamma_2(self._ff_block(x)))


class CrossAttentionLayer(_FeedForwardMixin, nn.Module):
    """Cross-attention layer: queries from one branch, keys/values from the other (Rouard et al. 2023, fig. 1).

    Shape: ``q (B, T, C)``, ``k (B, S, C)`` -> ``(B, T, C)``.
    """

    def __init__(
        self, d_model: int, nhead: int, dim_feedforward: int, dropout: float, activation: Callable,
        layer_norm_eps: float = 1e-5, layer_scale: bool = False, init_values: float = 1e-4,
        norm_first: bool = False, group_norm: int = 0, norm_out: bool = False,
    ) -> None:
        super().__init__()
        self.cross_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout, batch_first=True)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm_first = norm_first
        self.norm1, self.norm2, self.norm3 = _norms(group_norm, d_model, layer_norm_eps, 3)
        self.norm_out = ChannelGroupNorm(int(norm_out), d_model) if norm_first and norm_out else None
        self.gamma_1 = LayerScale(d_model, init_values, True) if layer_scale else nn.Identity()
        self.gamma_2 = LayerScale(d_model, init_values, True) if layer_scale else nn.Identity()
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.activation = activation

    def _ca_block(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        return self.dropout1(attention(self.cross_attn, q, k, self.training))

    def forward(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        if self.norm_first:
            x = q + self.gamma_1(self._ca_block(self.norm1(q), self.norm2(k)))
            x = x + self.gamma_2(self._ff_block(self.norm3(x)))
            if self.norm_out is not None:
                x = self.norm_out(x)
            return x
        x = self.norm1(q + self.gamma_1(self._ca_block(q, k)))
        return self.norm2(x + self.gamma_2(self._ff_block(x)))


class CrossTransformerEncoder(nn.Module):
    """The cross-domain transformer of HT Demucs: alternating self-attention layers in each branch and
    cross-attention layers between the spectral and the temporal branch (Rouard et al. 2023, section 3).

    Shape: ``x (B, C, F, T1)``, ``xt (B, C, T2)`` -> same shapes.
    """

    def __init__(
        self, dim: int, *, emb: str = "sin", hidden_scale: float = 4.0, num_heads: int = 8, num_layers: int = 6,
        cross_first: bool = False, dropout: float = 0.0, max_positions: int = 1000, norm_in: bool = True,
        norm_in_group: bool = False, group_norm: int = 0, norm_first: bool = False, norm_out: bool = False,
        max_period: float = 10000.0, layer_scale: bool = False, gelu: bool = True, sin_random_shift: int = 0,
        weight_pos_embed: float = 1.0, cape_mean_normalize: bool = True, cape_augment: bool = True,
        cape_glob_loc_scale: tuple[float, float, float] = (5000.0, 1.0, 1.4),
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"transformer dim {dim} is not divisible by t_heads {num_heads}")
        hidden_dim = int(dim * hidden_scale)
        self.num_layers = num_layers
        # cross_first=False: even layers are self-attention, odd layers cross-attention.
        self.classic_parity = 1 if cross_first else 0
        self.emb = emb
        self.max_period = max_period
        self.weight_pos_embed = weight_pos_embed
        self.sin_random_shift = sin_random_shift
        self.cape_mean_normalize = cape_mean_normalize
        self.cape_augment = cape_augment
        self.cape_glob_loc_scale = tuple(cape_glob_loc_scale)
        if emb == "scaled":
            self.position_embeddings = PositionEmbedding(max_positions, dim, scale=0.2)
        activation = F.gelu if gelu else F.relu
        if norm_in:
            self.norm_in: nn.Module = nn.LayerNorm(dim)
            self.norm_in_t: nn.Module = nn.LayerNorm(dim)
        elif norm_in_group:
            self.norm_in = ChannelGroupNorm(int(norm_in_group), dim)
            self.norm_in_t = ChannelGroupNorm(int(norm_in_group), dim)
        else:
            self.norm_in = nn.Identity()
            self.norm_in_t = nn.Identity()
        common = dict(
            d_model=dim, nhead=num_heads, dim_feedforward=hidden_dim, dropout=dropout, activation=activation,
            group_norm=group_norm, norm_first=norm_first, norm_out=norm_out, layer_scale=layer_scale,
        )
        self.layers = nn.ModuleList()
        self.layers_t = nn.ModuleList()
        for idx in range(num_layers):
            klass = SelfAttentionLayer if idx % 2 == self.classic_parity else CrossAttentionLayer
            self.layers.append(klass(**common))
            self.layers_t.append(klass(**common))

    def forward(self, x: torch.Tensor, xt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, c, fr, t1 = x.shape
        pos_2d = sin_embedding_2d(c, fr, t1, x.device, self.max_period)
        pos_2d = pos_2d.permute(0, 3, 2, 1).reshape(1, t1 * fr, c)  # b c fr t1 -> b (t1 fr) c
        x = x.permute(0, 3, 2, 1).reshape(b, t1 * fr, c)
        x = self.norm_in(x) + self.weight_pos_embed * pos_2d
        _, ct, t2 = xt.shape
        xt = xt.permute(0, 2, 1)
        pos = self._pos_embedding(t2, b, ct, x.device).permute(1, 0, 2)  # t2 b c -> b t2 c
        xt = self.norm_in_t(xt) + self.weight_pos_embed * pos
        for idx in range(self.num_layers):
            if idx % 2 == self.classic_parity:
                x = self.layers[idx](x)
                xt = self.layers_t[idx](xt)
            else:
                old_x = x
                x = self.layers[idx](x, xt)
                xt = self.layers_t[idx](xt, old_x)
        x = x.reshape(b, t1, fr, c).permute(0, 3, 2, 1)
        return x, xt.permute(0, 2, 1)

    def _pos_embedding(self, t: int, b: int, c: int, device) -> torch.Tensor:
        if self.emb == "sin":
            shift = random.randrange(self.sin_random_shift + 1)
            return sin_embedding(t, c, shift=shift, device=device, max_period=self.max_period)
        if self.emb == "cape":
            glob, loc, scale = self.cape_glob_loc_scale
            augment = self.training and self.cape_augment
            return cape_embedding(
                t, c, b, device=device, max_period=self.max_period, mean_normalize=self.cape_mean_normalize,
                augment=augment, max_global_shift=glob, max_local_shift=loc, max_scale=scale,
            )
        pos = torch.arange(t, device=device)
        return self.position_embeddings(pos)[:, None]
