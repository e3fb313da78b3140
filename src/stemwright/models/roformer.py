"""BS-RoFormer and Mel-Band RoFormer: band-split rotary-transformer mask models.

- :class:`BSRoformer`: Lu et al. 2023, "Music Source Separation with Band-Split RoPE Transformer" (arXiv 2309.02612).
  The complex STFT (channels folded into the frequency axis) is cut into contiguous, non-overlapping bands; each
  band is normalised (RMSNorm) and projected to ``dim`` features; ``depth`` blocks alternate a transformer along time
  (per band) and one along the bands (per frame), both with rotary position embeddings; one MLP+GLU mask estimator
  per source and band predicts a complex mask that multiplies the mixture STFT.
- :class:`MelRoformer`: Wang et al. 2023, "Mel-Band RoFormer for Music Source Separation" (arXiv 2310.01809).
  Same body, but the bands are the (overlapping) supports of a mel filter bank; masks of bins that fall in several
  bands are averaged (paper §2).

Layer names and the order of every sub-module follow the reference implementation (``bs-roformer`` 0.3.x, which the
community training repositories forked), so that their state dicts load with ``strict=True``. Note the two
reference quirks kept on purpose: the mel variant's mask-estimator MLP has ``mask_estimator_depth + 1`` linear layers
(the band-split one has ``mask_estimator_depth``), and the mel variant normalises the output of every transformer
instead of using one final norm.
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from stemwright.dsp.stft import StftConfig, istft, make_window, stft

log = logging.getLogger(__name__)

# Band widths (in STFT bins, n_fft=2048 -> 1025 bins) of the band-split scheme of Lu et al. 2023 (experiments
# section): 2 bins per band up to 1 kHz, 4 up to 2 kHz, 12 up to 4 kHz, 24 up to 8 kHz, 48 up to 16 kHz, then 2 bands
# for the rest; 62 bands in all.
DEFAULT_FREQS_PER_BANDS: tuple[int, ...] = (
    (2,) * 24 + (4,) * 12 + (12,) * 8 + (24,) * 8 + (48,) * 8 + (128, 129)
)


# --------------------------------------------------------------------------------------------------------- configs
@dataclass(frozen=True, kw_only=True)
class _RoformerConfig:
    """Fields shared by both RoFormer variants (names follow the community YAML where it has one)."""

    sources: tuple[str, ...] = ("vocals",)
    samplerate: int = 44100
    audio_channels: int = 2
    segment: float | None = 8.0  # seconds; 352800 samples = the chunk_size of the published 44.1 kHz configs
    dim: int = 384
    depth: int = 6
    time_transformer_depth: int = 1
    freq_transformer_depth: int = 1
    dim_head: int = 64
    heads: int = 8
    ff_mult: int = 4
    attn_dropout: float = 0.0
    ff_dropout: float = 0.0
    mask_estimator_depth: int = 2
    mlp_expansion_factor: int = 4
    n_fft: int = 2048
    hop_length: int = 441  # 10 ms at 44.1 kHz (Lu et al. 2023, experiments section)
    win_length: int = 2048
    stft_normalized: bool = False

    def __post_init__(self) -> None:
        name = type(self).__name__
        if not self.sources or not all(isinstance(s, str) and s for s in self.sources):
            raise ValueError(f"{name}.sources must be a non-empty tuple of names, got {self.sources!r}")
        if len(set(self.sources)) != len(self.sources):
            raise ValueError(f"{name}.sources has duplicates: {self.sources!r}")
        if self.audio_channels not in (1, 2):
            raise ValueError(f"{name}.audio_channels must be 1 or 2, got {self.audio_channels}")
        if self.samplerate <= 0:
            raise ValueError(f"{name}.samplerate must be positive, got {self.samplerate}")
        if self.segment is not None and self.segment <= 0:
            raise ValueError(f"{name}.segment must be positive seconds or None, got {self.segment}")
        for field in ("dim", "depth", "time_transformer_depth", "freq_transformer_depth", "dim_head", "heads",
                      "ff_mult", "mask_estimator_depth", "mlp_expansion_factor", "n_fft", "hop_length", "win_length"):
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name}.{field} must be a positive integer, got {value!r}")
        for field in ("attn_dropout", "ff_dropout"):
            if not 0.0 <= getattr(self, field) < 1.0:
                raise ValueError(f"{name}.{field} must be in [0, 1), got {getattr(self, field)}")
        if self.win_length > self.n_fft:
            raise ValueError(f"{name}.win_length ({self.win_length}) must not exceed n_fft ({self.n_fft})")

    @property
    def n_bins(self) -> int:
        return self.n_fft // 2 + 1

    @property
    def stft_config(self) -> StftConfig:
        # torch.stft's defaults in the reference: centred, reflect padding, periodic Hann window of win_length.
        return StftConfig(n_fft=self.n_fft, hop_length=self.hop_length, win_length=self.win_length,
                          window="hann", center=True, normalized=self.stft_normalized, pad_mode="reflect")


@dataclass(frozen=True, kw_only=True)
class BSRoformerConfig(_RoformerConfig):
    """Config of :class:`BSRoformer`. ``freqs_per_bands`` must sum to ``n_fft // 2 + 1``."""

    dim: int = 512
    depth: int = 12
    freqs_per_bands: tuple[int, ...] = DEFAULT_FREQS_PER_BANDS

    def __post_init__(self) -> None:
        super().__post_init__()
        bands = self.freqs_per_bands
        if len(bands) < 2 or not all(isinstance(b, int) and b > 0 for b in bands):
            raise ValueError(f"BSRoformerConfig.freqs_per_bands must hold at least 2 positive integers, got {bands!r}")
        if sum(bands) != self.n_bins:
            raise ValueError(
                f"BSRoformerConfig.freqs_per_bands sums to {sum(bands)} bins, but n_fft={self.n_fft} gives "
                f"{self.n_bins} STFT bins: the band widths must cover every bin exactly once"
            )


@dataclass(frozen=True, kw_only=True)
class MelRoformerConfig(_RoformerConfig):
    """Config of :class:`MelRoformer`: ``num_bands`` mel bands (librosa's Slaney mel scale at ``samplerate``)."""

    num_bands: int = 60

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.num_bands, int) or self.num_bands < 2:
            raise ValueError(f"MelRoformerConfig.num_bands must be an integer >= 2, got {self.num_bands!r}")


# ------------------------------------------------------------------------------------------------------ layers
class RMSNorm(nn.Module):
    """``x / ||x|| * sqrt(dim) * gamma``. Shape: ``(..., dim)`` -> same."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.scale = dim**0.5
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, dim=-1) * self.scale * self.gamma


class RotaryEmbedding(nn.Module):
    """Rotary position embedding (Su et al. 2021) on interleaved feature pairs, base 10000.

    ``freqs`` is a non-trainable parameter so that it sits in the state dict under the same name as in the reference
    (one instance is shared by every time- or frequency-transformer layer, as there).
    """

    def __init__(self, dim: int, theta: float = 10000.0) -> None:
        super().__init__()
        freqs = 1.0 / (theta ** (torch.arange(0, dim, 2)[: dim // 2].float() / dim))
        self.freqs = nn.Parameter(freqs, requires_grad=False)

    def rotate(self, t: torch.Tensor) -> torch.Tensor:
        """Rotate queries or keys by their position along axis -2. Shape: ``(..., N, d)`` -> same."""
        n = t.shape[-2]
        pos = torch.arange(n, device=t.device, dtype=self.freqs.dtype)
        # Each frequency used for a pair of features; stack+reshape rather than repeat_interleave, which the ONNX
        # exporter mistranslates here.
        pair_freqs = torch.stack((self.freqs, self.freqs), dim=1).reshape(-1)
        angles = pos[:, None] * pair_freqs[None, :]  # (N, rot_dim), the same products as the reference
        rot = self.freqs.shape[0] * 2  # an odd head size leaves its last feature unrotated, as the reference does
        middle = t[..., :rot] if rot < t.shape[-1] else t
        pairs = middle.unflatten(-1, (-1, 2))
        half = torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(-2)
        rotated = middle * angles.cos() + half * angles.sin()
        if rot < t.shape[-1]:
            rotated = torch.cat((rotated, t[..., rot:]), dim=-1)
        return rotated.to(t.dtype)


class FeedForward(nn.Module):
    def __init__(self, dim: int, mult: int = 4, dropout: float = 0.0) -> None:
        super().__init__()
        inner = int(dim * mult)
        # Dropout modules kept so that the Linear layers sit at indices 1 and 4, as in the reference state dict.
        self.net = nn.Sequential(RMSNorm(dim), nn.Linear(dim, inner), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(inner, dim), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Attention(nn.Module):
    """Multi-head self-attention with rotary embeddings and a sigmoid gate per head. Shape: ``(B, N, dim)`` -> same."""

    def __init__(self, dim: int, heads: int, dim_head: int, dropout: float, rotary_embed: RotaryEmbedding) -> None:
        super().__init__()
        self.heads = heads
        self.dim_head = dim_head
        self.dropout = dropout
        self.rotary_embed = rotary_embed
        self.norm = RMSNorm(dim)
        self.to_qkv = nn.Linear(dim, heads * dim_head * 3, bias=False)
        self.to_gates = nn.Linear(dim, heads)
        self.to_out = nn.Sequential(nn.Linear(heads * dim_head, dim, bias=False), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(x)
        b, n, _ = x.shape
        q, k, v = self.to_qkv(x).view(b, n, 3, self.heads, self.dim_head).permute(2, 0, 3, 1, 4).unbind(0)
        q, k = self.rotary_embed.rotate(q), self.rotary_embed.rotate(k)
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        gates = self.to_gates(x).transpose(1, 2).unsqueeze(-1).sigmoid()  # (B, H, N, 1)
        out = (out * gates).transpose(1, 2).reshape(b, n, self.heads * self.dim_head)
        return self.to_out(out)


class Transformer(nn.Module):
    """Pre-norm residual transformer. Shape: ``(B, N, dim)`` -> same."""

    def __init__(self, *, dim: int, depth: int, heads: int, dim_head: int, ff_mult: int, attn_dropout: float,
                 ff_dropout: float, rotary_embed: RotaryEmbedding, norm_output: bool) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            nn.ModuleList([Attention(dim, heads, dim_head, attn_dropout, rotary_embed),
                           FeedForward(dim, ff_mult, ff_dropout)])
            for _ in range(depth)
        )
        self.norm = RMSNorm(dim) if norm_output else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for attn, ff in self.layers:
            x = attn(x) + x
            x = ff(x) + x
        return self.norm(x)


class BandSplit(nn.Module):
    """Per-band RMSNorm + Linear to ``dim``. Shape: ``(B, N, sum(dim_inputs))`` -> ``(B, N, K, dim)``."""

    def __init__(self, dim: int, dim_inputs: tuple[int, ...]) -> None:
        super().__init__()
        self.dim_inputs = dim_inputs
        self.to_features = nn.ModuleList(nn.Sequential(RMSNorm(d), nn.Linear(d, dim)) for d in dim_inputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = x.split(self.dim_inputs, dim=-1)
        return torch.stack([net(p) for p, net in zip(parts, self.to_features)], dim=-2)


def _mlp(dim_in: int, dim_out: int, dim_hidden: int, n_linear: int) -> nn.Sequential:
    dims = (dim_in, *((dim_hidden,) * (n_linear - 1)), dim_out)
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(dims) - 2:
            layers.append(nn.Tanh())
    return nn.Sequential(*layers)


class MaskEstimator(nn.Module):
    """Per-band MLP (tanh) + GLU back to the band's bins. Shape: ``(B, N, K, dim)`` -> ``(B, N, sum(dim_inputs))``."""

    def __init__(self, dim: int, dim_inputs: tuple[int, ...], n_linear: int, expansion: int) -> None:
        super().__init__()
        # Sequential(MLP) so the weights are named to_freqs.<band>.0.<layer> as in the reference, whose
        # Sequential(MLP, GLU) has a parameter-free GLU at index 1; the GLU is applied in forward (written out,
        # because the ONNX exporter gets nn.GLU's axis wrong here).
        self.to_freqs = nn.ModuleList(nn.Sequential(_mlp(dim, d * 2, dim * expansion, n_linear)) for d in dim_inputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = []
        for band, mlp in zip(x.unbind(dim=-2), self.to_freqs):
            value, gate = mlp(band).chunk(2, dim=-1)
            outs.append(value * gate.sigmoid())
        return torch.cat(outs, dim=-1)


# ------------------------------------------------------------------------------------------------------ models
class _RoformerBase(nn.Module):
    """Shared body; subclasses define the band layout (``_band_sizes``), band gathering and mask merging."""

    config_class: type = _RoformerConfig
    _norm_each_transformer = False  # mel variant: True (and no final norm)
    _extra_mlp_layer = 0  # mel variant: 1 (its MLP has depth + 1 linear layers)

    def __init__(self, config: _RoformerConfig) -> None:
        super().__init__()
        if not isinstance(config, self.config_class):
            raise TypeError(f"{type(self).__name__} needs a {self.config_class.__name__}, got {type(config).__name__}")
        self.config = config
        self.sources = tuple(config.sources)
        self.samplerate = int(config.samplerate)
        self.audio_channels = int(config.audio_channels)
        self.segment = config.segment
        self.stft_config = config.stft_config
        self.register_buffer("window", make_window(self.stft_config), persistent=False)

        time_rotary = RotaryEmbedding(config.dim_head)
        freq_rotary = RotaryEmbedding(config.dim_head)
        common = dict(dim=config.dim, heads=config.heads, dim_head=config.dim_head, ff_mult=config.ff_mult,
                      attn_dropout=config.attn_dropout, ff_dropout=config.ff_dropout,
                      norm_output=self._norm_each_transformer)
        self.layers = nn.ModuleList(
            nn.ModuleList([Transformer(depth=config.time_transformer_depth, rotary_embed=time_rotary, **common),
                           Transformer(depth=config.freq_transformer_depth, rotary_embed=freq_rotary, **common)])
            for _ in range(config.depth)
        )
        if not self._norm_each_transformer:
            self.final_norm = RMSNorm(config.dim)
        # real + imaginary part of every bin of every channel in the band
        dim_inputs = tuple(2 * f * self.audio_channels for f in self._band_sizes())
        self.band_split = BandSplit(config.dim, dim_inputs)
        self.mask_estimators = nn.ModuleList(
            MaskEstimator(config.dim, dim_inputs, config.mask_estimator_depth + self._extra_mlp_layer,
                          config.mlp_expansion_factor)
            for _ in config.sources
        )

    # -- subclass hooks
    def _band_sizes(self) -> tuple[int, ...]:
        raise NotImplementedError

    def _gather_bands(self, spec: torch.Tensor) -> torch.Tensor:
        """Shape: ``(B, F*C, N, 2)`` -> ``(B, F', N, 2)`` (bins in band order)."""
        return spec

    def _merge_masks(self, masks: torch.Tensor) -> torch.Tensor:
        """Shape: ``(B, S, F', N, 2)`` -> ``(B, S, F*C, N, 2)``."""
        return masks

    def valid_length(self, length: int) -> int:
        """Input length wanted for ``length`` samples (the engine pads with real context and trims back).

        A whole number of hops, so that the frames span the input exactly (the reference models return
        ``hop * (T // hop)`` samples: with this they return ``T``), and more than ``n_fft / 2`` samples, which the
        centred STFT's reflect padding needs.
        """
        hop = self.config.hop_length
        n = max(int(length), self.config.n_fft // 2 + 1)
        return -(-n // hop) * hop

    # -- the three stages (the ONNX export runs the middle one in the graph)
    def analysis(self, mix: torch.Tensor) -> torch.Tensor:
        """Mixture STFT, channels folded into frequency (bin-major, as the reference's ``(f s)``).

        Shape: ``(B, C, T)`` -> ``(B, F*C, N, 2)`` real.
        """
        if mix.dim() != 3 or mix.shape[1] != self.audio_channels:
            raise ValueError(f"{type(self).__name__} expects (batch, {self.audio_channels}, time), "
                             f"got {tuple(mix.shape)}")
        if mix.shape[-1] <= self.config.n_fft // 2:
            raise ValueError(f"{type(self).__name__} needs more than n_fft/2 = {self.config.n_fft // 2} samples, got "
                             f"{mix.shape[-1]} (pad to valid_length({mix.shape[-1]}))")
        spec = torch.view_as_real(stft(mix, self.stft_config, window=self.window.to(mix.dtype)))  # (B, C, F, N, 2)
        b, c, f, n, _ = spec.shape
        return spec.transpose(1, 2).reshape(b, f * c, n, 2)

    def estimate_masks(self, spec: torch.Tensor) -> torch.Tensor:
        """Complex masks (as real pairs) from the folded mixture STFT.

        Shape: ``(B, F*C, N, 2)`` -> ``(B, S, F*C, N, 2)``.
        """
        x = self._gather_bands(spec)
        b, fb, n, _ = x.shape
        x = self.band_split(x.transpose(1, 2).reshape(b, n, fb * 2))  # (B, N, K, D)
        k, d = x.shape[2], x.shape[3]
        for time_transformer, freq_transformer in self.layers:
            x = time_transformer(x.transpose(1, 2).reshape(b * k, n, d)).view(b, k, n, d).transpose(1, 2)
            x = freq_transformer(x.reshape(b * n, k, d)).view(b, n, k, d)
        if not self._norm_each_transformer:
            x = self.final_norm(x)
        masks = torch.stack([est(x) for est in self.mask_estimators], dim=1)  # (B, S, N, F'*2)
        masks = masks.view(b, len(self.mask_estimators), n, fb, 2).transpose(2, 3)
        return self._merge_masks(masks)

    def synthesis(self, spec: torch.Tensor, masks: torch.Tensor, length: int) -> torch.Tensor:
        """Apply the complex masks and invert the STFT.

        Shape: spec ``(B, F*C, N, 2)``, masks ``(B, S, F*C, N, 2)`` -> ``(B, S, C, length)``.
        """
        b, s = masks.shape[:2]
        c = self.audio_channels
        out = torch.view_as_complex(spec.contiguous()).unsqueeze(1) * torch.view_as_complex(masks.contiguous())
        n = out.shape[-1]
        out = out.view(b, s, -1, c, n).transpose(2, 3)  # (B, S, C, F, N)
        return istft(out, self.stft_config, length=length, window=self.window.to(spec.dtype))

    def forward(self, mix: torch.Tensor) -> torch.Tensor:
        """Separate a batch of mixtures. Shape: ``(B, C, T)`` -> ``(B, S, C, T)``."""
        spec = self.analysis(mix)
        return self.synthesis(spec, self.estimate_masks(spec), mix.shape[-1])

    # -- stages (stemwright.models.base): the STFT and iSTFT stay outside the core
    core_input_names = ("spec",)
    core_output_names = ("masks",)
    core_dynamic_axes = {"spec": {0: "batch", 2: "frames"}, "masks": {0: "batch", 3: "frames"}}

    def prepare(self, mix: torch.Tensor) -> tuple[tuple[torch.Tensor, ...], dict]:
        """Shape: ``(B, C, T)`` -> ``((spec (B, F*C, N, 2),), context)``."""
        spec = self.analysis(mix)
        return (spec,), {"spec": spec, "length": int(mix.shape[-1])}

    def core(self, spec: torch.Tensor) -> torch.Tensor:
        """The exported graph. Shape: ``(B, F*C, N, 2)`` -> masks ``(B, S, F*C, N, 2)``."""
        return self.estimate_masks(spec)

    def finish(self, masks: torch.Tensor, context: dict) -> torch.Tensor:
        """Shape: masks ``(B, S, F*C, N, 2)`` -> stems ``(B, S, C, T)``."""
        masks = torch.as_tensor(masks).to(context["spec"].dtype)
        return self.synthesis(context["spec"], masks, context["length"])


class BSRoformer(_RoformerBase):
    """Band-split RoFormer (Lu et al. 2023). Shape: ``(B, C, T)`` -> ``(B, S, C, T)``."""

    config_class = BSRoformerConfig

    def __init__(self, config: BSRoformerConfig | None = None) -> None:
        super().__init__(config if config is not None else BSRoformerConfig())

    def _band_sizes(self) -> tuple[int, ...]:
        return tuple(self.config.freqs_per_bands)


def mel_band_layout(num_bands: int, n_fft: int, samplerate: int) -> torch.Tensor:
    """Boolean ``(num_bands, n_fft // 2 + 1)`` membership of each bin in each mel band (Wang et al. 2023, §2).

    The supports of librosa's Slaney mel filter bank (fmin 0, fmax samplerate / 2), with the first bin forced into
    the first band and the last bin into the last (the filter bank leaves them at ~0), as the reference does.
    """
    from librosa.filters import mel  # runtime dependency; imported lazily because it is slow to import

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # librosa warns about empty filters; we raise a clearer error below
        bank = torch.from_numpy(mel(sr=samplerate, n_fft=n_fft, n_mels=num_bands))
    bank[0, 0] = 1.0
    bank[-1, -1] = 1.0
    layout = bank > 0
    where = f"MelRoformerConfig: num_bands={num_bands} at n_fft={n_fft}, samplerate={samplerate}"
    uncovered = (~layout.any(dim=0)).nonzero().flatten()
    if uncovered.numel():
        raise ValueError(f"{where} leaves {uncovered.numel()} STFT bin(s) in no band (first: {int(uncovered[0])}); "
                         "use fewer bands or a larger n_fft")
    empty = (~layout.any(dim=1)).nonzero().flatten()
    if empty.numel():
        raise ValueError(f"{where} gives {empty.numel()} mel band(s) with no STFT bin (first: {int(empty[0])}); "
                         "use fewer bands or a larger n_fft")
    return layout


class MelRoformer(_RoformerBase):
    """Mel-band RoFormer (Wang et al. 2023). Shape: ``(B, C, T)`` -> ``(B, S, C, T)``."""

    config_class = MelRoformerConfig
    _norm_each_transformer = True
    _extra_mlp_layer = 1

    def __init__(self, config: MelRoformerConfig | None = None) -> None:
        super().__init__(config if config is not None else MelRoformerConfig())
        config = self.config
        layout = self._layout
        channels = config.audio_channels
        cpu = torch.device("cpu")  # index tables are built on the CPU even under a meta-device context
        bins = torch.arange(config.n_bins, device=cpu).expand(config.num_bands, -1)[layout]  # band 0's bins, band 1's..
        # Folded index (bin-major, channel-minor, as in analysis()) of every (bin, channel) pair of every band.
        indices = (bins[:, None] * channels + torch.arange(channels, device=cpu)).flatten()
        counts = layout.sum(dim=0).repeat_interleave(channels)  # number of bands holding each folded bin
        # For the mask merge: for every folded bin, the positions (in band order) that hold it, padded with a
        # pointer to an extra all-zero slot. A gather + sum instead of a scatter-add because ONNX scatters do not
        # accumulate duplicate indices.
        holders: list[list[int]] = [[] for _ in range(counts.numel())]
        for position, folded in enumerate(indices.tolist()):
            holders[folded].append(position)
        width = max(len(h) for h in holders)
        slots = torch.tensor([h + [indices.numel()] * (width - len(h)) for h in holders], dtype=torch.long, device=cpu)
        self.register_buffer("freq_indices", indices, persistent=False)
        self.register_buffer("merge_slots", slots.flatten(), persistent=False)
        self.register_buffer("inverse_count", 1.0 / counts.float().clamp(min=1e-8), persistent=False)

    @property
    def _layout(self) -> torch.Tensor:
        c = self.config
        return mel_band_layout(c.num_bands, c.n_fft, c.samplerate)

    def _band_sizes(self) -> tuple[int, ...]:
        return tuple(int(v) for v in self._layout.sum(dim=1))

    def _gather_bands(self, spec: torch.Tensor) -> torch.Tensor:
        return spec.index_select(1, self.freq_indices)

    def _merge_masks(self, masks: torch.Tensor) -> torch.Tensor:
        # Bins shared by two bands get the mean of both bands' masks (Wang et al. 2023, §2).
        b, s, _, n, _ = masks.shape
        padded = torch.cat((masks, masks.new_zeros(b, s, 1, n, 2)), dim=2)
        gathered = padded.index_select(2, self.merge_slots).view(b, s, self.inverse_count.shape[0], -1, n, 2)
        return gathered.sum(dim=3) * self.inverse_count[:, None, None]


def parameter_count(model: nn.Module) -> int:
    """Number of learned parameters (the rotary frequencies are fixed and not counted)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


__all__ = [
    "BSRoformer", "BSRoformerConfig", "MelRoformer", "MelRoformerConfig", "DEFAULT_FREQS_PER_BANDS",
    "mel_band_layout", "parameter_count",
]
