"""``classic``: a weight-free 4-stem separator built from signal processing alone.

It is the floor that trained models must beat and what users get with no weights. All decisions are soft
time-frequency masks on one STFT (:mod:`stemwright.dsp.stft`), combined hierarchically so that the four masks sum
to one in every bin and the stems therefore sum to the mixture (``other`` is computed as the mixture minus the
other stems, so they do exactly):

1. **drums vs. the rest** — median-filtering harmonic/percussive separation (FitzGerald, "Harmonic/percussive
   separation using median filtering", DAFx 2010): a median across time keeps steady partials (harmonic), a median
   across frequency keeps broadband onsets (percussive); the two filtered spectrograms give a ratio mask.
2. **bass vs. the rest of the harmonic part** — a smooth low-pass weight in log-frequency on the harmonic
   (non-drum) content: the bass guitar / synth bass lives below ~200 Hz, where little else is harmonic.
3. **vocals vs. other** in the remaining harmonic content above the bass — a second, much longer median pass
   across time (multi-pass median-filtering HPSS, FitzGerald & Gainza, "Single channel vocal separation using
   median filtering and factorisation techniques", ISAST Trans. 2010): over ~3 s, chords and sustained notes stay
   in the median while a voice's vibrato, glides and syllables do not, so the part above that median is voice;
   it is weighted by a centre-channel similarity (Avendano & Jot, "A frequency-domain approach to multichannel
   upmix", JAES 2004: lead vocals are mixed to the centre, so left and right agree in level and phase) and by the
   voice's frequency range. A REPET-SIM repetition model (Rafii & Pardo, ISMIR 2012) can be added on top
   (``repet_neighbours > 0``); it lowered SDR on our test excerpt, so it is off by default.

The model is a plain :class:`torch.nn.Module` with no parameters; the engine runs it chunk by chunk.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import bottleneck
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from stemwright.dsp.masks import ratio_mask
from stemwright.dsp.stft import StftConfig, istft, make_window, stft
from stemwright.dsp.wiener import wiener

EPS = 1e-8


@dataclass(frozen=True, kw_only=True)
class ClassicConfig:
    """Parameters of :class:`ClassicSeparator` (defaults tuned on a MUSDB18 excerpt; see docs/foundation.md)."""

    sources: tuple[str, ...] = ("vocals", "drums", "bass", "other")
    samplerate: int = 44100
    audio_channels: int = 2
    segment: float = 20.0  # seconds per chunk: several times the 3 s vocal median (and room for REPET's repeats)
    n_fft: int = 4096  # 93 ms at 44.1 kHz, the frame FitzGerald (2010) uses for median-filtering HPSS
    hop_length: int = 1024
    harmonic_kernel: int = 23  # frames (~0.5 s) of the time median (FitzGerald 2010: 17; 23 scored better here)
    percussive_kernel: int = 23  # bins (~250 Hz) of the frequency median (FitzGerald 2010: 17)
    low_percussive_kernel: int = 7  # bins (~75 Hz) of the frequency median in the bass range
    mask_power: float = 1.5  # between magnitude (1) and Wiener-like (2) ratio masks
    bass_cutoff_hz: float = 200.0  # centre of the low-pass weight of the bass stem
    bass_octaves: float = 0.35  # width of its transition (octaves for the weight to go from 73% to 27%)
    vocal_low_hz: float = 150.0  # voice band edges (the weight falls off smoothly outside)
    vocal_high_hz: float = 8000.0
    stable_kernel: int = 131  # frames (~3 s) of the second, long time median: what is steadier than this is
    # accompaniment, what fluctuates (vibrato, glides, syllables) is voice (FitzGerald & Gainza 2010, multi-pass HPSS)
    stable_decimation: int = 4  # that median runs on 4-frame means (memory; no measurable SDR change)
    repet_neighbours: int = 0  # REPET-SIM repeating model on top (frames in its median; 0: off, it lowered SDR)
    repet_min_distance_s: float = 0.8  # ignore frames closer than this (they are similar only because adjacent)
    centre_exponent: float = 1.0  # sharpness of the centre-channel weight of the vocals
    wiener_iterations: int = 0  # EM iterations of the multichannel Wiener post-step (0: plain soft masks)
    vocal_gain: float = 1.5  # bias of the vocal/other decision (scales the vocal estimate)

    def __post_init__(self) -> None:
        if not self.sources or len(set(self.sources)) != len(self.sources):
            raise ValueError(f"ClassicConfig.sources must be distinct names, got {self.sources}")
        if set(self.sources) - {"vocals", "drums", "bass", "other"}:
            raise ValueError(f"ClassicConfig.sources must be among vocals, drums, bass, other; got {self.sources}")
        if "other" not in self.sources:
            raise ValueError("ClassicConfig.sources must include 'other' (it receives what no other stem takes)")
        if not 8000 <= self.samplerate <= 192000:
            raise ValueError(f"ClassicConfig.samplerate must be 8000-192000 Hz, got {self.samplerate}")
        if self.audio_channels not in (1, 2):
            raise ValueError(f"ClassicConfig.audio_channels must be 1 or 2, got {self.audio_channels}")
        if self.segment <= 0:
            raise ValueError(f"ClassicConfig.segment must be positive seconds, got {self.segment}")
        if self.n_fft < 256 or self.hop_length <= 0 or self.hop_length > self.n_fft // 2:
            raise ValueError(f"ClassicConfig: need n_fft >= 256 and 0 < hop_length <= n_fft/2, got {self.n_fft}, {self.hop_length}")
        if self.repet_neighbours < 0:
            raise ValueError(f"ClassicConfig.repet_neighbours must be >= 0 (0: off), got {self.repet_neighbours}")
        for name in ("harmonic_kernel", "percussive_kernel", "low_percussive_kernel", "stable_kernel", "stable_decimation"):
            if getattr(self, name) < 1:
                raise ValueError(f"ClassicConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.mask_power <= 0 or self.bass_octaves <= 0 or self.vocal_gain <= 0:
            raise ValueError("ClassicConfig.mask_power, bass_octaves and vocal_gain must be positive")
        if not 0 < self.vocal_low_hz < self.vocal_high_hz:
            raise ValueError(f"ClassicConfig: need 0 < vocal_low_hz < vocal_high_hz, got {self.vocal_low_hz}, {self.vocal_high_hz}")


def _lower_median_last(x: torch.Tensor) -> torch.Tensor:
    """Lower median along the last axis (``torch.median``'s convention).

    On CPU ``np.partition`` (introselect, O(k)) is several times faster than ``torch.median`` (a sort).
    Shape: ``(..., k)`` -> ``(...)``.
    """
    k = x.shape[-1]
    if x.device.type != "cpu":
        return x.median(dim=-1).values
    arr = x.numpy()
    return torch.from_numpy(np.partition(arr, (k - 1) // 2, axis=-1)[..., (k - 1) // 2].copy())


def median_filter(x: torch.Tensor, kernel: int, dim: int) -> torch.Tensor:
    """Running median of odd width ``kernel`` along ``dim`` (edges replicated).

    Shape: any -> same.
    """
    if kernel <= 1:
        return x
    kernel = kernel | 1  # odd, so the window is centred
    if x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64):
        return _running_median_cpu(x, kernel, dim)
    moved = x.movedim(dim, -1).contiguous()
    flat = moved.reshape(-1, 1, moved.shape[-1])
    padded = F.pad(flat, (kernel // 2, kernel // 2), mode="replicate")[:, 0]
    # Rows in blocks of ~8M window elements: the windows are copied for the selection, so this bounds memory.
    rows = max(1, (8 << 20) // (moved.shape[-1] * kernel))
    med = torch.cat([_lower_median_last(padded[i : i + rows].unfold(-1, kernel, 1)) for i in range(0, padded.shape[0], rows)])
    return med.reshape(moved.shape).movedim(-1, dim)


def _running_median_cpu(x: torch.Tensor, kernel: int, dim: int) -> torch.Tensor:
    """:func:`median_filter` on the CPU by a running median (bottleneck's double heap, O(log k) per step), exactly
    the same values as the windowed selection (an odd window's median is one of its elements), 2-3x faster than
    ``np.partition`` of every window (docs/zoo.md). Shape: any -> same.
    """
    moved = x.movedim(dim, -1).contiguous().numpy()
    half = kernel // 2
    padded = np.pad(moved, [(0, 0)] * (moved.ndim - 1) + [(half, half)], mode="edge")
    # move_median's window ends at each index: output i of the padded row is the median centred on input i - half.
    med = bottleneck.move_median(padded, kernel, axis=-1)[..., kernel - 1 :]
    return torch.from_numpy(np.ascontiguousarray(med)).movedim(-1, dim)


def repeating_background(mag: torch.Tensor, neighbours: int, min_distance: int) -> torch.Tensor:
    """REPET-SIM repeating model: per frame, the median of the ``neighbours`` most similar frames (cosine
    similarity of magnitude spectra, frames closer than ``min_distance`` excluded), capped by the frame itself.

    Shape: ``(B, F, N)`` -> ``(B, F, N)``.
    """
    b, f, n = mag.shape
    k = min(neighbours, n - 1)
    if k < 2:
        return mag
    unit = mag / mag.norm(dim=1, keepdim=True).clamp_min(EPS)
    sim = unit.transpose(1, 2) @ unit  # (B, N, N)
    idx = torch.arange(n, device=mag.device)
    near = (idx[:, None] - idx[None, :]).abs() < min_distance
    near &= idx[:, None] != idx[None, :]  # the frame itself stays a candidate (Rafii & Pardo 2012)
    sim = sim.masked_fill(near, -2.0)
    top = sim.topk(k, dim=-1).indices  # (B, N, k)
    # Index the frame axis directly rather than materialising (B, F, N, N).
    gathered = torch.stack([mag[i][:, top[i]] for i in range(b)])  # (B, F, N, k)
    model = _lower_median_last(gathered)
    return torch.minimum(model, mag)


def long_median(x: torch.Tensor, kernel: int, decimation: int) -> torch.Tensor:
    """Running median over ``kernel`` frames of the last axis, computed on a ``decimation``-times mean-pooled copy
    and linearly interpolated back (a 3 s median at full frame rate would need ~1 GB of windows per 20 s chunk).

    Shape: ``(B, F, N)`` -> ``(B, F, N)``.
    """
    if decimation <= 1:
        return median_filter(x, kernel, dim=-1)
    b, f, n = x.shape
    pooled = F.avg_pool1d(x.reshape(b * f, 1, n), decimation, stride=decimation, ceil_mode=True)
    med = median_filter(pooled, max(1, kernel // decimation) | 1, dim=-1)
    return F.interpolate(med, size=n, mode="linear", align_corners=False).reshape(b, f, n)


def smooth_step(x: torch.Tensor) -> torch.Tensor:
    """Logistic step used for soft frequency weights."""
    return torch.sigmoid(x)


class ClassicSeparator(nn.Module):
    """Weight-free separator into vocals, drums, bass and other with masks that sum to one.

    Shape: ``forward((B, C, T)) -> (B, S, C, T)`` with ``S = len(config.sources)``.
    """

    config_class = ClassicConfig

    def __init__(self, config: ClassicConfig | None = None) -> None:
        super().__init__()
        self.config = config or ClassicConfig()
        self.sources = tuple(self.config.sources)
        self.samplerate = self.config.samplerate
        self.audio_channels = self.config.audio_channels
        self.segment = self.config.segment
        self.stft_config = StftConfig(n_fft=self.config.n_fft, hop_length=self.config.hop_length)
        self.register_buffer("window", make_window(self.stft_config), persistent=False)
        freqs = torch.linspace(0, self.samplerate / 2, self.stft_config.n_bins)
        self.register_buffer("freqs", freqs, persistent=False)

    # -- frequency weights -------------------------------------------------------------------------------
    def _log2f(self) -> torch.Tensor:
        return torch.log2(self.freqs.clamp_min(1.0))

    def bass_weight(self) -> torch.Tensor:
        """Soft low-pass in log-frequency. Shape: ``(F,)``."""
        c = self.config
        return smooth_step((math.log2(c.bass_cutoff_hz) - self._log2f()) / c.bass_octaves)

    def vocal_band(self) -> torch.Tensor:
        """Soft band-pass over the voice range (fundamentals to sibilance). Shape: ``(F,)``."""
        c = self.config
        lf = self._log2f()
        return smooth_step((lf - math.log2(c.vocal_low_hz)) / 0.25) * smooth_step((math.log2(c.vocal_high_hz) - lf) / 0.5)

    # -- masks -------------------------------------------------------------------------------------------
    def masks(self, spec: torch.Tensor) -> dict[str, torch.Tensor]:
        """Soft masks per source that sum to one.

        Shape: ``spec (B, C, F, N)`` complex -> dict of ``(B, 1, F, N)`` real (shared by the channels).
        """
        c = self.config
        mono = spec.abs().mean(dim=1)  # (B, F, N)
        p = c.mask_power
        # Each map is one spectrogram's size per chunk, and two workers each hold a chunk: maps are built in place
        # where the values stay the same, and freed as soon as they are used (the peak memory of a separation).

        # 1. HPSS (FitzGerald 2010): medians across time (harmonic) and across frequency (percussive).
        pair = mono.new_empty((mono.shape[0], 2, *mono.shape[1:]))  # (B, 2, F, N): percussive, harmonic
        pair[:, 1] = median_filter(mono, c.harmonic_kernel, dim=-1)
        perc = median_filter(mono, c.percussive_kernel, dim=-2)
        if c.low_percussive_kernel != c.percussive_kernel:
            # Bins are ~11 Hz apart, so a 180 Hz-wide median smears the sparse low partials of the bass into
            # "percussive"; in the bass range a narrower frequency median keeps them harmonic.
            low = self.bass_weight()[:, None]
            perc = low * median_filter(mono, c.low_percussive_kernel, dim=-2) + (1 - low) * perc
        pair[:, 0] = perc
        del perc
        drums = ratio_mask(pair, power=p, source_dim=1)[:, 0].clone()  # (B, F, N)
        del pair
        rest = 1.0 - drums

        # 2. Bass: the low harmonic part.
        bass = rest * self.bass_weight()[:, None]
        upper = rest - bass

        # 3. Vocals vs. other: fluctuating (second, long median pass) x centred (Avendano & Jot) x in the voice band.
        tonal = mono * rest
        del rest, mono
        stable = long_median(tonal, c.stable_kernel, c.stable_decimation)
        foreground = (tonal - stable).clamp_min_(0.0)
        if c.repet_neighbours > 0:
            hop_s = c.hop_length / c.samplerate
            repeating = repeating_background(tonal, c.repet_neighbours, max(1, round(c.repet_min_distance_s / hop_s)))
            foreground = torch.maximum(foreground, (tonal - repeating).clamp_min(0.0))
        background = (tonal - foreground).clamp_min_(0.0)
        del tonal, stable
        if spec.shape[1] >= 2:
            left, right = spec[:, 0], spec[:, 1]
            similarity = (left * right.conj()).abs().mul_(2)  # 2 |L R*| / (|L|^2 + |R|^2)
            similarity.div_(left.abs().square_().add_(right.abs().square_()).clamp_min_(EPS))
            centre = similarity.clamp_(0, 1).pow_(c.centre_exponent)
            del left, right, similarity
        else:
            centre = torch.ones_like(foreground)
        pair = foreground.new_empty((foreground.shape[0], 2, *foreground.shape[1:]))  # (B, 2, F, N): voice, accomp
        voice = torch.mul(foreground, c.vocal_gain, out=pair[:, 0]).mul_(centre).mul_(self.vocal_band()[:, None])
        accomp = torch.mul(foreground, 1 - centre, out=pair[:, 1]).add_(background)
        del voice, accomp, background, foreground, centre
        vocals = upper * ratio_mask(pair, power=p, source_dim=1)[:, 0]
        del pair
        other = upper - vocals

        out = {"vocals": vocals, "drums": drums, "bass": bass, "other": other}
        # Stems the config leaves out go to "other", so the masks still sum to one.
        for name in ("vocals", "drums", "bass"):
            if name not in self.sources:
                out["other"] = out["other"] + out.pop(name)
        return {k: v.unsqueeze(1) for k, v in out.items()}

    def forward(self, mix: torch.Tensor) -> torch.Tensor:
        """Shape: ``(B, C, T)`` -> ``(B, S, C, T)``."""
        if mix.dim() != 3:
            raise ValueError(f"classic expects (batch, channels, time), got shape {tuple(mix.shape)}")
        length = mix.shape[-1]
        # torch.stft's reflect padding needs more than n_fft/2 samples; pad short inputs with zeros.
        need = self.stft_config.n_fft // 2 + 1
        x = F.pad(mix, (0, max(0, need - length))).float()
        spec = stft(x, self.stft_config, window=self.window)  # (B, C, F, N)
        masks = self.masks(spec)
        named = [name for name in self.sources if name != "other"]
        if self.config.wiener_iterations > 0:
            # Multichannel Wiener filter post-step (Nugraha et al. 2016): the masked magnitudes as source PSDs,
            # EM re-estimates a spatial covariance per source, which the shared mono masks cannot express.
            mags = torch.stack([masks[name] * spec.abs() for name in self.sources], dim=1)  # (B, S, C, F, N)
            filtered = wiener(mags, spec, self.config.wiener_iterations)
            stems = filtered[:, [self.sources.index(name) for name in named]]
        else:
            stems = None
        out = x.new_empty((x.shape[0], len(self.sources), x.shape[1], length))  # (B, S, C, T)
        # The masks sum to one, so "other" is the mixture minus the rest: one iSTFT fewer, and the stems add up
        # to the input exactly rather than to within STFT round-off.
        other = out[:, self.sources.index("other")]
        other.copy_(x[..., :length])
        for i, name in enumerate(named):
            # One stem and one channel at a time, straight into the output: a (F, N) complex spectrogram and its
            # iSTFT buffers in flight, not S or C of them, and no stacked copy (memory per chunk in flight).
            wav = out[:, self.sources.index(name)]
            for ch in range(x.shape[1]):
                masked = stems[:, i, ch] if stems is not None else masks[name][:, 0] * spec[:, ch]
                wav[:, ch] = istft(masked, self.stft_config, length=x.shape[-1], window=self.window)[..., :length]
            other -= wav
        return out.to(mix.dtype)


def build_classic(**options: object) -> ClassicSeparator:
    """Registry loader for ``MODELS["classic"]``: options override :class:`ClassicConfig` fields."""
    return ClassicSeparator(ClassicConfig(**options))  # type: ignore[arg-type]
