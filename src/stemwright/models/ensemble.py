"""Ensembles across models: several separators of any families run on the same song, their stems combined by name.

Users of audio-separator and Music-Source-Separation-Training (MSST) combine the outputs of different models
(python-audio-separator #12, MSST #25). The methods are MSST's ``ensemble.py`` definitions, per stem, over the
members that have that stem:

- ``avg_wave``: weighted mean of the waveforms, ``sum_m w_m x_m / sum_m w_m``;
- ``median_wave``: sample-wise median (unweighted);
- ``min_wave`` / ``max_wave``: sample-wise, the member value of smallest / largest magnitude (unweighted);
- ``avg_fft``: weighted mean of the complex spectra, then inverse STFT;
- ``median_fft``: bin-wise median of the complex spectra (numpy's order: by real part, then imaginary), inverse STFT;
- ``min_fft`` / ``max_fft``: bin-wise, the member spectrum value of smallest / largest magnitude, inverse STFT.

The spectral methods use MSST's STFT (2048-point Hann window, hop 1024) through stemwright's one STFT
(:mod:`stemwright.dsp.stft`), on each channel.

Members need not share a family, a segment or a valid length (unlike :class:`~stemwright.models.bag.BagOfModels`,
which mixes inside one chunk loop): each member runs its own chunked overlap-add (the engine's
:func:`~stemwright.engine.run.separate_tensor`, at its own segment and overlap) over each chunk the engine gives the
ensemble. The ensemble's chunks are long (``segment``, 60 s) with a small overlap (``default_overlap``, 5 %), so the
engine still streams a whole song in bounded memory (one chunk of every member's stems at a time) and the extra work
is the 5 % overlap. They must share the sample rate and channel count. The output stems are the first member's
sources; a member's stem that the first member does not have is left out (logged).

An ensemble is assembled from loaded models (:meth:`Ensemble.from_models`; ``stemwright.pretrained.loading.load_model``
does it for a name like ``htdemucs+stemwright_4stem``); it is not a checkpoint family and cannot be saved as one.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import nn

from stemwright.dsp.stft import StftConfig, istft, make_window, stft
from stemwright.engine.run import separate_tensor
from stemwright.models.base import check_model
from stemwright.errors import UsageError

log = logging.getLogger(__name__)

WAVE_METHODS = ("avg_wave", "median_wave", "min_wave", "max_wave")
FFT_METHODS = ("avg_fft", "median_fft", "min_fft", "max_fft")
METHODS = WAVE_METHODS + FFT_METHODS
#: MSST ensemble.py's STFT: n_fft 2048, hop 1024 (librosa's default Hann window, centred).
ENSEMBLE_STFT = StftConfig(n_fft=2048, hop_length=1024)


class EnsembleError(UsageError):
    """An ensemble that cannot be built: unknown method, bad weights, members that do not fit together."""


@dataclass(frozen=True, kw_only=True)
class EnsembleConfig:
    """How the members' stems are combined.

    - ``members``: the members' names (what the user asked for; informative, the members are built by the loader);
    - ``method``: one of :data:`METHODS`;
    - ``weights``: ``{stem: (w_member0, w_member1, ...)}``; a stem not named has weight 1 for every member. Weights
      only act in ``avg_wave`` / ``avg_fft`` (as in MSST); a member without the stem is skipped whatever its weight;
    - ``segment``: the engine's chunk for the ensemble in seconds; ``default_overlap`` its overlap.
    """

    members: tuple[str, ...]
    method: str = "avg_wave"
    weights: tuple[tuple[str, tuple[float, ...]], ...] = ()
    segment: float = 60.0
    default_overlap: float = 0.05

    def __post_init__(self) -> None:
        if len(self.members) < 2:
            raise EnsembleError(f"an ensemble needs at least two models, got {len(self.members)}")
        if self.method not in METHODS:
            raise EnsembleError(f"unknown ensemble method {self.method!r} (one of {', '.join(METHODS)})")
        for stem, row in self.weights:
            if len(row) != len(self.members):
                raise EnsembleError(f"ensemble weights for {stem!r}: {len(row)} values for {len(self.members)} models")
            if any(not np.isfinite(w) or w < 0 for w in row) or sum(row) <= 0:
                raise EnsembleError(f"ensemble weights for {stem!r} must be finite, >= 0 and not all 0, got {row}")
        if not self.segment > 0:
            raise EnsembleError(f"EnsembleConfig.segment must be positive seconds, got {self.segment}")
        if not 0 <= self.default_overlap < 1:
            raise EnsembleError(f"EnsembleConfig.default_overlap must be in [0, 1), got {self.default_overlap}")


def parse_weights(spec: str, members: int) -> tuple[tuple[str, tuple[float, ...]], ...]:
    """``"vocals=2,1;drums=1,3"`` -> ``(("vocals", (2.0, 1.0)), ("drums", (1.0, 3.0)))``; ``"2,1"`` (no stem) applies
    to every stem and is returned as ``(("*", (2.0, 1.0)),)``."""
    out = []
    for part in filter(None, (p.strip() for p in spec.split(";"))):
        stem, _, values = part.rpartition("=")
        try:
            row = tuple(float(v) for v in values.split(","))
        except ValueError:
            raise EnsembleError(f"ensemble weights {part!r}: expected numbers separated by commas") from None
        if len(row) != members:
            raise EnsembleError(f"ensemble weights {part!r}: {len(row)} values for {members} models")
        if stem and not re.fullmatch(r"[\w.-]+", stem):
            raise EnsembleError(f"ensemble weights {part!r}: {stem!r} is not a stem name")
        out.append((stem or "*", row))
    return tuple(out)


def combine(estimates: Sequence[torch.Tensor], method: str, weights: Sequence[float] | None = None) -> torch.Tensor:
    """Combine one stem's estimates by ``method`` (see the module docstring). The inputs are not modified.

    Shape: ``M x (..., T)`` -> ``(..., T)``.
    """
    if method not in METHODS:
        raise EnsembleError(f"unknown ensemble method {method!r} (one of {', '.join(METHODS)})")
    if not estimates:
        raise EnsembleError("nothing to combine: no estimates")
    x = torch.stack([e.to(torch.float32) for e in estimates])  # (M, ..., T)
    w = torch.tensor(weights if weights is not None else [1.0] * len(estimates), dtype=torch.float32)
    w = w.reshape(-1, *([1] * (x.dim() - 1)))
    if method == "avg_wave":
        return (x * w).sum(0) / w.sum()
    if method == "median_wave":
        return torch.from_numpy(np.median(x.numpy(), axis=0).astype(np.float32))
    if method in ("min_wave", "max_wave"):
        return _pick_by_magnitude(x, largest=method == "max_wave")
    length = x.shape[-1]
    window = make_window(ENSEMBLE_STFT)
    spec = stft(x, ENSEMBLE_STFT, window)  # (M, ..., F, N) complex
    if method == "avg_fft":
        out = (spec * w[..., None]).sum(0) / w.sum()
    elif method == "median_fft":
        out = torch.from_numpy(np.median(spec.numpy(), axis=0))  # numpy orders complex numbers lexicographically
    else:
        out = _pick_by_magnitude(spec, largest=method == "max_fft")
    return istft(out, ENSEMBLE_STFT, length=length, window=window).to(torch.float32)


def _pick_by_magnitude(x: torch.Tensor, largest: bool) -> torch.Tensor:
    """Element-wise, the entry along axis 0 of largest (or smallest) magnitude. ``(M, ...)`` -> ``(...)``."""
    mag = x.abs()
    index = (mag.argmax(0) if largest else mag.argmin(0))[None]
    return torch.take_along_dim(x, index, dim=0)[0]


class Ensemble(nn.Module):
    """Several loaded separators combined per stem. ``forward``: ``(B, C, T) -> (B, S, C, T)``.

    ``state_dict`` keys are ``members.<i>.<member key>``.
    """

    config_class = EnsembleConfig

    def __init__(self, config: EnsembleConfig, members: Sequence[nn.Module]) -> None:
        super().__init__()
        if len(members) != len(config.members):
            raise EnsembleError(f"ensemble: {len(members)} models given for {len(config.members)} names")
        for m in members:
            check_model(m)
        first = members[0]
        for name, m in zip(config.members[1:], members[1:]):
            if int(m.samplerate) != int(first.samplerate) or int(m.audio_channels) != int(first.audio_channels):
                raise EnsembleError(
                    f"ensemble: {name!r} works at {m.samplerate} Hz, {m.audio_channels} channel(s); "
                    f"{config.members[0]!r} at {first.samplerate} Hz, {first.audio_channels}: they cannot be combined")
            dropped = [s for s in m.sources if s not in first.sources]
            if dropped:
                log.info("ensemble: %s's stems %s are not stems of %s and are left out", name, dropped, config.members[0])
        table = dict(config.weights)
        unknown = [stem for stem in table if stem != "*" and stem not in first.sources]
        if unknown:
            raise EnsembleError(f"ensemble weights name {unknown}, which are not stems of the ensemble {first.sources}")
        self.config = config
        self.members = nn.ModuleList(members)
        self.sources = tuple(first.sources)
        self.samplerate = int(first.samplerate)
        self.audio_channels = int(first.audio_channels)
        self.segment = config.segment
        self.default_overlap = config.default_overlap
        # stem -> [(member index, that member's stem index, weight)]: where each output stem comes from
        everywhere = table.get("*", (1.0,) * len(members))
        self._plan = {}
        for stem in self.sources:
            row = table.get(stem, everywhere)
            self._plan[stem] = [(i, m.sources.index(stem), row[i]) for i, m in enumerate(members) if stem in m.sources]

    @classmethod
    def from_models(cls, models: Sequence[nn.Module], names: Sequence[str], *, method: str = "avg_wave",
                    weights: str | None = None, segment: float = 60.0) -> "Ensemble":
        """An ensemble of loaded models; ``weights`` in :func:`parse_weights`' syntax."""
        config = EnsembleConfig(members=tuple(names), method=method, segment=segment,
                                weights=parse_weights(weights, len(models)) if weights else ())
        return cls(config, models)

    def forward(self, mix: torch.Tensor) -> torch.Tensor:
        """Shape: ``(B, C, T)`` -> ``(B, S, C, T)``."""
        if mix.dim() != 3:
            raise ValueError(f"ensemble expects (batch, channels, time), got shape {tuple(mix.shape)}")
        out = []
        for track in mix:
            # each member's own chunked overlap-add over this chunk, at its own segment and overlap
            runs = [separate_tensor(m, track, overlap=getattr(m, "default_overlap", None) or 0.25, device=mix.device)
                    for m in self.members]
            stems = [combine([runs[i][k] for i, k, _ in self._plan[s]], self.config.method,
                             [w for _, _, w in self._plan[s]]) for s in self.sources]
            out.append(torch.stack(stems))
        return torch.stack(out).to(mix.dtype)
