"""``classic_refiner``: a band-split RNN that learns corrections to the ``classic`` DSP separator.

Why: a network trained from scratch on stemwright's synthetic songs alone falls short of the hand-built ``classic``
separator on real recordings (models/README.md), because a 2-core CPU trains only a few thousand steps and synthetic
songs are not real mixes. Starting from ``classic`` instead of from nothing keeps what the signal processing already
gets right and spends the training on what it gets wrong — the residual-learning idea behind DSP-prior hybrids
(e.g. the "deep prior" refinements of NMF/HPSS estimates) and behind Demucs' own waveform+spectrogram branches.

Pipeline (``forward``: ``(B, C, T) -> (B, S, C, T)``):

1. ``classic`` (no gradient) gives prior stems ``P_s`` that sum to the mixture.
2. Both the mixture STFT ``X`` and the prior's ratio masks ``|P_s| / |X|`` go through the band split of
   :class:`~stemwright.models.bsrnn.BSRNN` (Luo & Yu 2023, Sec. III-A) and its band/sequence BiLSTMs (Sec. III-B).
3. Per source (all but ``complement_source``) and band, a mask head (Sec. III-C) predicts a complex correction
   ``D_s``; the estimate is ``P_s + D_s * X``. The heads' output layers start at zero, so an untrained refiner *is*
   ``classic`` (to STFT round-off), and training can only move away from it where the data says so.
4. ``complement_source`` (``other``) is the mixture minus the other estimates, so the stems sum to the input.

Stems that ``classic`` does not have (``guitar``, ``piano``: the 6-stem splitter of ``stemwright_6stem``) start from
an equal share of ``classic``'s ``other``: with ``k`` such stems, each of them and ``other`` get ``other / (k + 1)``
as their prior, so the untrained model gives ``classic``'s drums/bass and its ``other`` split evenly, and the prior
features (the ratio masks) are those of ``classic``'s own stems only. The trunk, the prior projection and the drums /
bass heads then have the shapes of the 4-stem splitter's, which can warm-start it (``train --init-from``).

The STFT is stemwright's (:mod:`stemwright.dsp.stft`); ``classic`` keeps its own (4096-point) resolution.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from stemwright.dsp.stft import istft, pad_to_whole_hops, stft
from stemwright.models.bsrnn import BSRNN, BSRNNConfig, _MaskHead
from stemwright.models.classic import ClassicConfig, ClassicSeparator

_CLASSIC_SOURCES = ("vocals", "drums", "bass", "other")
#: Stems a refiner may add to classic's: their prior is a share of classic's ``other`` (which holds them).
_SHARED_OTHER_SOURCES = ("guitar", "piano")


@dataclass(frozen=True, kw_only=True)
class ClassicRefinerConfig(BSRNNConfig):
    """:class:`~stemwright.models.bsrnn.BSRNNConfig` plus the prior's settings.

    - ``prior_mask_limit``: the prior ratio masks ``|P_s| / |X|`` are clipped to ``[0, prior_mask_limit]`` before
      they are features (they exceed 1 only where the prior's STFT and the model's disagree, near silence).
    - ``segment`` defaults to ``classic``'s 20 s: ``classic`` runs inside each chunk, and its 3 s vocal median needs
      several seconds of context.
    """

    segment: float | None = 20.0
    complement_source: str | None = "other"
    prior_mask_limit: float = 2.0

    def __post_init__(self) -> None:
        super().__post_init__()
        name = type(self).__name__
        allowed = (*_CLASSIC_SOURCES, *_SHARED_OTHER_SOURCES)
        if set(self.sources) - set(allowed) or "other" not in self.sources:
            # A subset works too (classic folds a left-out stem into "other"): drums/bass/other is the instrument
            # splitter of the cascade default (models/cascade.py), run on the mixture minus the vocals; guitar and
            # piano (the 6-stem splitter) take shares of classic's "other".
            raise ValueError(f"{name}.sources must be stems of {allowed} including 'other', got {self.sources!r}")
        if self.complement_source is None:
            raise ValueError(f"{name}.complement_source must be set (the refined stems must sum to the mixture)")
        if set(self.sources) & set(_SHARED_OTHER_SOURCES) and self.complement_source != "other":
            raise ValueError(f"{name}.complement_source must be 'other' when guitar/piano share classic's 'other'")
        if self.residual_source not in (None, self.complement_source):
            raise ValueError(f"{name}.residual_source must be null or equal complement_source")
        if self.prior_mask_limit <= 0:
            raise ValueError(f"{name}.prior_mask_limit must be positive, got {self.prior_mask_limit}")


class ClassicRefiner(BSRNN):
    """``classic`` + a learned complex correction per stem. ``forward``: ``(B, C, T) -> (B, S, C, T)``.

    Parameter names of the BSRNN trunk (``split_*``, ``time_rnns``, ``band_rnns``) match :class:`BSRNN`, so a trained
    BSRNN can warm-start it (``train --init-from``); the correction heads (``delta_heads``) and the prior projection
    (``prior_proj``) are new and start at zero.
    """

    config_class = ClassicRefinerConfig

    def __init__(self, config: ClassicRefinerConfig):
        super().__init__(config)
        del self.heads  # BSRNN's mask heads predict whole masks; the refiner predicts corrections
        c, d = config.audio_channels, config.feature_dim
        #: classic's stems among ours (model order): the prior features; the others share classic's "other".
        self.prior_sources = tuple(s for s in self.sources if s in _CLASSIC_SOURCES)
        self._shared = tuple(s for s in self.sources if s not in _CLASSIC_SOURCES)
        n_prior = len(self.prior_sources)
        self.prior = ClassicSeparator(
            ClassicConfig(sources=self.prior_sources, samplerate=config.samplerate, audio_channels=c)
        )
        self.prior_proj = nn.ModuleList(nn.Linear(w * c * n_prior, d) for w in config.band_widths)
        self.delta_heads = nn.ModuleList(
            nn.ModuleList(_MaskHead(d, config.mlp_dim, w * c * 2) for w in config.band_widths)
            for _ in config.masked_sources
        )
        self._zero_init()

    @torch.no_grad()
    def _zero_init(self) -> None:
        """Prior features enter with zero weight and every correction starts at exactly 0 (GLU ``a * sigmoid(b)``
        with ``a`` = 0): the untrained model reproduces ``classic``."""
        for proj in self.prior_proj:
            proj.weight.zero_()
            proj.bias.zero_()
        for heads in self.delta_heads:
            for head in heads:
                half = head.fc2.out_features // 2
                head.fc2.weight[:half] = 0.0
                head.fc2.bias[:half] = 0.0

    def _init_masks(self, value: float) -> None:  # BSRNN's even-split start does not apply to corrections
        return None

    # -- the three stages ----------------------------------------------------------------------------------------
    core_input_names = ("spec", "prior_masks")
    core_output_names = ("delta",)
    core_dynamic_axes = {"spec": {0: "batch", 3: "frames"}, "prior_masks": {0: "batch", 4: "frames"},
                         "delta": {0: "batch", 4: "frames"}}

    def prepare(self, mix: torch.Tensor) -> tuple[tuple[torch.Tensor, torch.Tensor], dict]:
        """STFT of the mixture and of classic's stems (no learned parameters).

        Shape: ``(B, C, T)`` -> ``((B, C, F, N, 2), (B, P, C, F, N))``: mixture real/imaginary parts and the prior's
        clipped ratio masks for classic's ``P`` stems (:attr:`prior_sources`); the context keeps the prior
        spectrograms of the masked sources for :meth:`finish`.
        """
        cfg = self.config
        length = mix.shape[-1]
        with torch.no_grad():
            prior_wave = self.prior(mix).to(mix.dtype)  # (B, P, C, T), in prior_sources order
        # classic runs on the input itself (untrained, the refiner is exactly classic); the rest on whole hops
        mix, prior_wave = pad_to_whole_hops(mix, cfg.stft), pad_to_whole_hops(prior_wave, cfg.stft)
        spec = stft(mix, cfg.stft, window=self.window)  # (B, C, F, N); the output is cut back in finish
        mag = spec.abs() + 1e-8
        masks = mag.new_empty((mag.shape[0], len(self.prior_sources), *mag.shape[1:]))  # (B, P, C, F, N)
        masked = cfg.masked_sources
        # The masked sources' prior spectrograms, written in place as they come (no stacked second copy).
        est = spec.new_empty((spec.shape[0], len(masked), *spec.shape[1:]))  # (B, S', C, F, N)
        other: torch.Tensor | None = None
        # One source at a time: a 3-minute song in 20 s chunks would otherwise hold S complex spectrograms and
        # their magnitudes at once (the peak memory target is 1.5 GB for the whole separation).
        for i, name in enumerate(self.prior_sources):
            prior = stft(prior_wave[:, i], cfg.stft, window=self.window)  # (B, C, F, N)
            torch.div(prior.abs(), mag, out=masks[:, i])
            if name in masked:
                est[:, masked.index(name)] = prior
            if name == "other" and self._shared:
                other = prior
            del prior
        del prior_wave, mag
        if other is not None:  # guitar/piano: equal shares of classic's "other" (the complement needs no prior)
            share = other / (len(self._shared) + 1)
            for name in (*self._shared, "other"):
                if name in masked:
                    est[:, masked.index(name)] = share
        masks.clamp_(0.0, cfg.prior_mask_limit)
        spec_ri = torch.view_as_real(spec)
        return (spec_ri, masks), {"spec": spec_ri, "prior": est, "length": length, "padded": mix.shape[-1]}

    def core(self, spec_ri: torch.Tensor, prior_masks: torch.Tensor) -> torch.Tensor:
        """Corrections from the mixture and the prior masks.

        Shape: ``(B, C, F, N, 2)``, ``(B, P, C, F, N)`` -> ``(B, S', C, F', N, 2)`` for the ``S'`` masked sources and the
        ``F' = sum(band_widths)`` modelled bins.
        """
        b, c, _, n, _ = spec_ri.shape
        return self._decode(self.features(spec_ri, prior_masks), self.delta_heads, b, c, n)

    def features(self, spec_ri: torch.Tensor, prior_masks: torch.Tensor) -> torch.Tensor:
        """The trunk's output that the correction heads read (band split of mixture and prior masks, BiLSTMs).

        Shape: ``(B, C, F, N, 2)``, ``(B, P, C, F, N)`` -> ``(B, K, N, D)`` (``K`` bands, ``D = feature_dim``).
        """
        b, c, _, n, _ = spec_ri.shape
        s = prior_masks.shape[1]
        x = spec_ri[:, :, : self.config.modelled_bins]
        p = prior_masks[:, :, :, : self.config.modelled_bins]
        bands, start = [], 0
        for w, norm, proj, pproj in zip(self.config.band_widths, self.split_norms, self.split_proj, self.prior_proj):
            part = x[:, :, start : start + w].permute(0, 3, 2, 1, 4).reshape(b, n, w * c * 2)
            ppart = p[:, :, :, start : start + w].permute(0, 4, 3, 2, 1).reshape(b, n, w * c * s)
            bands.append(proj(norm(part)) + pproj(ppart))
            start += w
        return self._trunk(torch.stack(bands, dim=1))

    def finish(self, delta: torch.Tensor, context: dict) -> torch.Tensor:
        """``P_s + D_s * X`` on the modelled bins (``P_s`` above them), complement source, iSTFT.

        Shape: delta ``(B, S', C, F', N, 2)`` -> stems ``(B, S, C, T)``.
        """
        cfg = self.config
        spec = torch.view_as_complex(context["spec"].contiguous())
        est = context["prior"]  # (B, S', C, F, N): built for this call (stacked copies), so updated in place
        f = delta.shape[3]
        est[..., :f, :].addcmul_(spec[:, None, :, :f], torch.view_as_complex(delta.to(context["spec"].dtype).contiguous()))
        rest = spec - est.sum(dim=1)  # the complement source: the stems sum to the mixture
        length, padded = context["length"], context["padded"]
        k = self.sources.index(cfg.complement_source)
        out = spec.real.new_empty((est.shape[0], est.shape[1] + 1, est.shape[2], length))  # (B, S, C, T)
        # One stem and channel at a time, straight into the output: the iSTFT's frame buffers of all S' stems at once, and a
        # concatenated copy, were the splitter's peak (memory per chunk in flight; same values).
        for c in range(est.shape[2]):
            out[:, k, c] = istft(rest[:, c], cfg.stft, length=padded, window=self.window)[..., :length]
        del rest
        for i in range(est.shape[1]):
            for c in range(est.shape[2]):
                wave = istft(est[:, i, c], cfg.stft, length=padded, window=self.window)
                out[:, i if i < k else i + 1, c] = wave[..., :length]
        return out
