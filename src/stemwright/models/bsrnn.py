"""Band-split RNN (BSRNN), after Luo & Yu, "Music Source Separation with Band-split RNN", IEEE/ACM TASLP 2023
(arXiv 2209.15174).

Pipeline (paper Fig. 1):

1. **Band split** (Sec. III-A): the complex spectrogram of the mixture is cut into ``K`` sub-bands of the given
   widths; each band's real/imaginary parts (all channels) are normalised and projected to a ``D``-dim feature,
   giving a ``(K, N, D)`` tensor per example.
2. **Band and sequence modelling** (Sec. III-B): ``num_layers`` pairs of residual BiLSTMs, one across time for
   every band (sequence level) and one across the bands for every frame (band level).
3. **Mask estimation** (Sec. III-C): per source and band, a normalisation + MLP (``tanh`` hidden layer, GLU output)
   gives a complex mask for that band's bins; the masks are multiplied with the mixture spectrogram and inverted.

stemwright extension: ``band_widths`` may cover only the lowest ``sum(band_widths)`` bins; the bins above go entirely
to ``residual_source`` (a model trained on 16 kHz material, whose content stops at 8 kHz, then still returns the
mixture's high band in the accompaniment instead of dropping it). ``complement_source`` (also a stemwright extension)
has no mask of its own: it is the mixture minus the other estimates (mixture consistency, as Open-Unmix's and
Spleeter's "residual" stems), so the stems sum exactly to the input. The STFT is stemwright's (:mod:`stemwright.dsp.stft`).

The forward pass is staged (see :mod:`stemwright.models.base`): :meth:`BSRNN.prepare`
(STFT, outside the graph), :meth:`BSRNN.core` (real tensors in and out, exportable) and
:meth:`BSRNN.finish` (mask application + iSTFT, outside the graph).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from stemwright.dsp.stft import StftConfig, istft, make_window, pad_to_whole_hops, stft


def band_widths_from_edges(samplerate: int, n_fft: int, edges_hz: tuple[float, ...], max_hz: float | None = None) -> tuple[int, ...]:
    """Band widths (in bins) for bands starting at 0 Hz and split at ``edges_hz``; the last band ends at ``max_hz``
    (default: Nyquist, i.e. every bin). Empty bands are dropped.

    >>> sum(band_widths_from_edges(44100, 2048, (1000.0, 4000.0)))
    1025
    """
    n_bins = n_fft // 2 + 1
    hz_per_bin = samplerate / n_fft
    stop = n_bins if max_hz is None else min(n_bins, int(round(max_hz / hz_per_bin)))
    cuts = sorted({min(stop, max(1, int(round(e / hz_per_bin)))) for e in edges_hz} | {stop})
    widths, prev = [], 0
    for c in cuts:
        if c > prev:
            widths.append(c - prev)
            prev = c
    return tuple(widths)


def bsrnn_bands(samplerate: int, n_fft: int, max_hz: float | None = None, *, coarse: bool = True) -> tuple[int, ...]:
    """A band layout in the spirit of the paper's "v7" scheme (Sec. IV-B): narrow bands at low frequencies, wider ones
    higher up. ``coarse`` uses about half as many bands (stemwright's CPU-sized models).
    """
    nyq = samplerate / 2
    top = nyq if max_hz is None else min(max_hz, nyq)
    if coarse:
        steps = ((1000, 125), (2000, 250), (4000, 500), (8000, 1000), (16000, 2000), (nyq, 4000))
    else:
        steps = ((1000, 100), (4000, 250), (8000, 500), (16000, 1000), (20000, 2000), (nyq, 2050))
    edges, f = [], 0.0
    for stop, step in steps:
        while f + step < min(stop, top) - 1e-6:
            f += step
            edges.append(f)
        f = max(f, min(stop, top))
        if f < top:
            edges.append(f)
    return band_widths_from_edges(samplerate, n_fft, tuple(e for e in edges if e < top), max_hz=max_hz)


_DEFAULT_BANDS = bsrnn_bands(44100, 2048)


@dataclass(frozen=True, kw_only=True)
class BSRNNConfig:
    """Configuration of :class:`BSRNN`.

    - ``band_widths``: bins per band, from 0 Hz up; must sum to ``n_fft // 2 + 1`` unless ``residual_source`` is set,
      in which case they may sum to fewer (the bins above go to that source).
    - ``feature_dim`` (``D``), ``hidden_dim`` (LSTM units per direction), ``num_layers`` (band+sequence pairs),
      ``mlp_dim`` (hidden units of the mask MLPs, per band).
    """

    sources: tuple[str, ...] = ("vocals", "drums", "bass", "other")
    samplerate: int = 44100
    audio_channels: int = 2
    n_fft: int = 2048
    hop_length: int = 512
    band_widths: tuple[int, ...] = _DEFAULT_BANDS
    feature_dim: int = 64
    hidden_dim: int = 64
    num_layers: int = 4
    mlp_dim: int = 128
    residual_source: str | None = None
    complement_source: str | None = None
    segment: float | None = 6.0
    eps: float = 1e-5

    def __post_init__(self) -> None:
        name = type(self).__name__
        if not self.sources or len(set(self.sources)) != len(self.sources):
            raise ValueError(f"{name}.sources must be distinct stem names, got {self.sources!r}")
        if self.audio_channels not in (1, 2):
            raise ValueError(f"{name}.audio_channels must be 1 or 2, got {self.audio_channels}")
        if self.samplerate <= 0:
            raise ValueError(f"{name}.samplerate must be positive, got {self.samplerate}")
        StftConfig(n_fft=self.n_fft, hop_length=self.hop_length)  # validates n_fft/hop
        for field_ in ("feature_dim", "hidden_dim", "num_layers", "mlp_dim"):
            if getattr(self, field_) <= 0:
                raise ValueError(f"{name}.{field_} must be positive, got {getattr(self, field_)}")
        if not self.band_widths or any(w <= 0 for w in self.band_widths):
            raise ValueError(f"{name}.band_widths must be positive bin counts, got {self.band_widths!r}")
        n_bins = self.n_fft // 2 + 1
        total = sum(self.band_widths)
        if self.residual_source is None and self.complement_source is None and total != n_bins:
            raise ValueError(
                f"{name}.band_widths sum to {total} bins but n_fft={self.n_fft} gives {n_bins} bins; "
                f"they must cover every bin (or set residual_source/complement_source to send the bins above to one source)"
            )
        if total > n_bins:
            raise ValueError(f"{name}.band_widths sum to {total} bins, more than the {n_bins} bins of n_fft={self.n_fft}")
        if self.residual_source is not None and self.residual_source not in self.sources:
            raise ValueError(f"{name}.residual_source {self.residual_source!r} is not one of sources {self.sources!r}")
        if self.complement_source is not None:
            if self.complement_source not in self.sources:
                raise ValueError(f"{name}.complement_source {self.complement_source!r} is not one of sources {self.sources!r}")
            if len(self.sources) < 2:
                raise ValueError(f"{name}.complement_source needs at least two sources")
            if self.residual_source not in (None, self.complement_source):
                raise ValueError(f"{name}.residual_source must equal complement_source (or be null) when both are set")
        if self.segment is not None and self.segment <= 0:
            raise ValueError(f"{name}.segment must be positive seconds or null, got {self.segment}")

    @property
    def stft(self) -> StftConfig:
        return StftConfig(n_fft=self.n_fft, hop_length=self.hop_length)

    @property
    def masked_sources(self) -> tuple[str, ...]:
        """Sources with a mask head (all but ``complement_source``)."""
        return tuple(s for s in self.sources if s != self.complement_source)

    @property
    def modelled_bins(self) -> int:
        return sum(self.band_widths)


class _RMSNorm(nn.Module):
    """RMS normalisation over the last axis with a learned gain (band-split normalisation, Sec. III-A)."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.gain = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.gain


class _ResidualBiLSTM(nn.Module):
    """Norm -> BiLSTM -> linear projection, added to the input (Sec. III-B). Shape: ``(B, L, D) -> (B, L, D)``."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.rnn = nn.LSTM(dim, hidden, batch_first=True, bidirectional=True)
        self.proj = nn.Linear(2 * hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, _ = self.rnn(self.norm(x))
        return x + self.proj(y)


class _MaskHead(nn.Module):
    """Mask estimation of one source in one band (Sec. III-C): norm -> Linear -> tanh -> Linear -> GLU.

    Shape: ``(B, N, D) -> (B, N, width * C * 2)`` (real and imaginary mask per bin and channel).
    """

    def __init__(self, dim: int, hidden: int, out: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, 2 * out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.glu(self.fc2(torch.tanh(self.fc1(self.norm(x)))), dim=-1)


class BSRNN(nn.Module):
    """Band-split RNN separator. ``forward``: ``(B, C, T) -> (B, S, C, T)``."""

    config_class = BSRNNConfig

    def __init__(self, config: BSRNNConfig):
        super().__init__()
        self.config = config
        self.sources = tuple(config.sources)
        self.samplerate = int(config.samplerate)
        self.audio_channels = int(config.audio_channels)
        self.segment = config.segment
        c, d = config.audio_channels, config.feature_dim
        self.split_norms = nn.ModuleList(_RMSNorm(w * c * 2, config.eps) for w in config.band_widths)
        self.split_proj = nn.ModuleList(nn.Linear(w * c * 2, d) for w in config.band_widths)
        self.time_rnns = nn.ModuleList(_ResidualBiLSTM(d, config.hidden_dim) for _ in range(config.num_layers))
        self.band_rnns = nn.ModuleList(_ResidualBiLSTM(d, config.hidden_dim) for _ in range(config.num_layers))
        self.heads = nn.ModuleList(
            nn.ModuleList(_MaskHead(d, config.mlp_dim, w * c * 2) for w in config.band_widths)
            for _ in config.masked_sources
        )
        self._init_masks(1.0 / len(self.sources))
        self.register_buffer("window", make_window(config.stft), persistent=False)

    @torch.no_grad()
    def _init_masks(self, value: float) -> None:
        """Start every mask near ``value`` + 0j (an even split of the mixture): with GLU ``a * sigmoid(b)``, bias
        ``a`` = 2 * value on real parts and 0 elsewhere, ``b`` = 0 (sigmoid 0.5); weights of ``a`` scaled down."""
        for heads in self.heads:
            for head in heads:
                half = head.fc2.out_features // 2
                bias = torch.zeros(half)
                bias[0::2] = 2 * value  # real parts (layout: ... , 2) with the trailing axis real/imag
                head.fc2.bias[:half] = bias
                head.fc2.bias[half:] = 0.0
                head.fc2.weight[:half] *= 0.1

    # -- the three stages (stemwright.models.base): prepare / core / finish ---------------------------------------
    core_input_names = ("spec",)
    core_output_names = ("masks",)
    core_dynamic_axes = {"spec": {0: "batch", 3: "frames"}, "masks": {0: "batch", 4: "frames"}}

    def prepare(self, mix: torch.Tensor) -> tuple[tuple[torch.Tensor], dict]:
        """STFT of the mixture as real features (no learned parameters).

        Shape: ``(B, C, T)`` -> ``((B, C, F, N, 2),)`` real/imaginary parts, and the context for :meth:`finish`.
        """
        length = mix.shape[-1]
        mix = pad_to_whole_hops(mix, self.config.stft)  # the output is cut back to `length` in finish
        spec_ri = torch.view_as_real(stft(mix, self.config.stft, window=self.window))
        return (spec_ri,), {"spec": spec_ri, "length": length, "padded": mix.shape[-1]}

    def core(self, spec_ri: torch.Tensor) -> torch.Tensor:
        """Masks from the spectrogram (real tensors only: exportable to ONNX).

        Shape: ``(B, C, F, N, 2)`` -> masks ``(B, S', C, F', N, 2)`` for the ``S'`` masked sources (all but
        ``complement_source``) and the ``F' = sum(band_widths)`` modelled bins.
        """
        b, c, _, n, _ = spec_ri.shape
        x = spec_ri[:, :, : self.config.modelled_bins]
        bands, start = [], 0
        for w, norm, proj in zip(self.config.band_widths, self.split_norms, self.split_proj):
            part = x[:, :, start : start + w].permute(0, 3, 2, 1, 4).reshape(b, n, w * c * 2)  # (B, N, w*C*2)
            bands.append(proj(norm(part)))
            start += w
        return self._decode(self._trunk(torch.stack(bands, dim=1)), self.heads, b, c, n)

    def _trunk(self, z: torch.Tensor) -> torch.Tensor:
        """Band and sequence modelling (Sec. III-B). Shape: ``(B, K, N, D) -> (B, K, N, D)``."""
        b, k, n, d = z.shape
        for time_rnn, band_rnn in zip(self.time_rnns, self.band_rnns):
            z = time_rnn(z.reshape(b * k, n, d)).reshape(b, k, n, d)
            z = z.transpose(1, 2).reshape(b * n, k, d)
            z = band_rnn(z).reshape(b, n, k, d).transpose(1, 2)
        return z

    def _decode(self, z: torch.Tensor, heads_per_source: nn.ModuleList, b: int, c: int, n: int) -> torch.Tensor:
        """Per-source, per-band mask heads (Sec. III-C). Shape: ``(B, K, N, D) -> (B, S', C, F', N, 2)``."""
        widths = self.config.band_widths
        if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():  # exported graphs: no slice assignments
            return torch.stack([torch.cat([head(z[:, i]).reshape(b, n, w, c, 2) for i, (w, head) in
                                           enumerate(zip(widths, heads))], dim=2).permute(0, 3, 2, 1, 4)
                                for heads in heads_per_source], dim=1)
        # Each band's mask straight into the output: no per-source concatenation and stacked copy (memory per chunk).
        out = z.new_empty((b, len(heads_per_source), c, sum(widths), n, 2))
        for s, heads in enumerate(heads_per_source):
            start = 0
            for i, (w, head) in enumerate(zip(widths, heads)):
                out[:, s, :, start : start + w] = head(z[:, i]).reshape(b, n, w, c, 2).permute(0, 3, 2, 1, 4)
                start += w
        return out

    def finish(self, masks: torch.Tensor, context: dict) -> torch.Tensor:
        """Apply the complex masks, route the unmodelled high band to ``residual_source``/``complement_source``,
        form the complement source, and invert.

        Shape: masks ``(B, S', C, F', N, 2)`` (``S'`` masked sources) with context spectrogram ``(B, C, F, N, 2)``
        -> stems ``(B, S, C, T)``.
        """
        cfg = self.config
        spec = torch.view_as_complex(context["spec"].contiguous())
        # Masks may come out of an autocast region in bfloat16/float16: complex maths in the spectrogram's dtype.
        low = spec[:, None, :, : masks.shape[3]] * torch.view_as_complex(masks.to(context["spec"].dtype).contiguous())
        high = spec[:, None, :, masks.shape[3] :]
        masked = cfg.masked_sources
        if high.shape[-2]:
            keep = torch.zeros(len(masked), 1, 1, 1, dtype=high.real.dtype, device=high.device)
            if cfg.residual_source is not None and cfg.residual_source in masked:
                keep[masked.index(cfg.residual_source)] = 1.0
            low = torch.cat([low, high * keep], dim=3)
        if cfg.complement_source is not None:
            rest = spec[:, None] - low.sum(dim=1, keepdim=True)
            k = self.sources.index(cfg.complement_source)
            low = torch.cat([low[:, :k], rest, low[:, k:]], dim=1)
        return istft(low, cfg.stft, length=context["padded"], window=self.window)[..., : context["length"]]

    def forward(self, mix: torch.Tensor) -> torch.Tensor:
        """Shape: ``(B, C, T)`` -> ``(B, S, C, T)``."""
        if mix.dim() != 3 or mix.shape[1] != self.audio_channels:
            raise ValueError(f"BSRNN expects (batch, {self.audio_channels}, time), got {tuple(mix.shape)}")
        inputs, context = self.prepare(mix)
        core_out = self.core(*inputs)
        del inputs  # the features are not needed by finish (memory per chunk in flight)
        return self.finish(core_out, context)
