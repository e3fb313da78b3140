"""``cascade``: a vocals model, then an instrument splitter on the mixture minus the vocals.

The 4-stem default (``stemwright_4stem``) is this composite: vocals from Spleeter's published 2-stem model
(``spleeter_2stems``, trained by Deezer on real music, MIT), and drums / bass / other from an instrument splitter that
stemwright trains on generated songs *without* vocals (``classic_refiner`` restricted to drums/bass/other,
``configs/splitter3_novocals.yaml``). Why a cascade: models trained on generated songs with MIR-1K voices did not carry
over to real mixes (models/README.md), while Spleeter's vocals did; the splitter never has to find a voice.

Pipeline (``forward``: ``(B, C, T) -> (B, S, C, T)``, ``S`` = vocals + the splitter's stems):

1. ``v = vocals_model(mix)[vocals_source]``.
2. ``rest = mix - v`` (not the vocals model's accompaniment output: Spleeter's masks stop at 11 kHz with ``zeros``
   mask extension, so its accompaniment loses everything above; the difference keeps it).
3. ``splitter(rest)``; ``residual_source`` (``other``) becomes ``rest`` minus the splitter's other stems, so the
   stems always sum to the mixture (to float round-off), whatever the splitter does.
4. Optionally (``wiener_iterations > 0``) a joint multichannel Wiener filter (:mod:`stemwright.dsp.wiener`) refines
   all stems at once from their magnitudes, before step 3's residual rule is applied again.

Not a staged model (:func:`stemwright.models.base.has_stages`: one learned core between one ``prepare`` and one
``finish``): the splitter's input is the vocals model's *output*, so there are two cores. Its members are staged
models (``spleeter``, ``classic_refiner``): export them to ONNX separately and subtract in between.

Members are ``{"architecture": name, "config": {...}}`` dicts, as in :class:`~stemwright.models.bag.BagConfig`, so a
cascade is built from data; :meth:`Cascade.from_models` wraps existing models (their weights are copied).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from stemwright.dsp.stft import StftConfig, istft, make_window, stft
from stemwright.dsp.wiener import wiener
from stemwright.models.base import check_model, config_from_dict, config_to_dict
from stemwright.models.bsrnn import BSRNN
from stemwright.models.classic import ClassicSeparator
from stemwright.models.refiner import ClassicRefiner
from stemwright.models.spleeter import Spleeter
from stemwright.models.umx import OpenUnmix

#: The families a cascade member can be (a table of its own, as the bag's: models/architectures.py imports this
#: module, so it cannot import that table back). Names as in ARCHITECTURES.
MEMBER_ARCHITECTURES: dict[str, type[nn.Module]] = {
    "classic": ClassicSeparator,
    "classic_refiner": ClassicRefiner,
    "bsrnn": BSRNN,
    "spleeter": Spleeter,
    "umx": OpenUnmix,
}


@dataclass(frozen=True, kw_only=True)
class CascadeConfig:
    """A cascade of two models.

    - ``vocals`` / ``splitter``: ``{"architecture": name, "config": {...}}`` of the two members.
    - ``vocals_source``: the stem taken from the vocals model; ``residual_source``: the splitter's stem that absorbs
      whatever the other stems leave (the stems sum to the mixture).
    - ``segment``: engine chunk in seconds (``None``: the splitter's segment).
    - ``wiener_iterations``: EM iterations of a joint multichannel Wiener refinement of all stems (0: off), on an
      STFT of ``wiener_n_fft`` / ``wiener_hop`` (Spleeter's and classic's 4096 / 1024).
    """

    vocals: dict[str, Any]
    splitter: dict[str, Any]
    vocals_source: str = "vocals"
    residual_source: str = "other"
    segment: float | None = None
    wiener_iterations: int = 0
    wiener_n_fft: int = 4096
    wiener_hop: int = 1024

    def __post_init__(self) -> None:
        for field in ("vocals", "splitter"):
            member = getattr(self, field)
            if not isinstance(member, dict) or set(member) != {"architecture", "config"}:
                raise ValueError(f"CascadeConfig.{field} must be {{'architecture': ..., 'config': {{...}}}}")
            if member["architecture"] not in MEMBER_ARCHITECTURES:
                raise ValueError(
                    f"CascadeConfig.{field}: architecture {member['architecture']!r} cannot be a cascade member "
                    f"(one of {', '.join(sorted(MEMBER_ARCHITECTURES))})"
                )
        if self.segment is not None and self.segment <= 0:
            raise ValueError(f"CascadeConfig.segment must be positive seconds or null, got {self.segment}")
        if self.wiener_iterations < 0:
            raise ValueError(f"CascadeConfig.wiener_iterations must be >= 0 (0: off), got {self.wiener_iterations}")
        if self.wiener_n_fft < 256 or not 0 < self.wiener_hop <= self.wiener_n_fft // 2:
            raise ValueError("CascadeConfig: need wiener_n_fft >= 256 and 0 < wiener_hop <= wiener_n_fft / 2")


def _build(member: dict[str, Any]) -> nn.Module:
    cls = MEMBER_ARCHITECTURES[member["architecture"]]
    model = cls(config_from_dict(cls.config_class, dict(member["config"])))
    check_model(model)
    return model


def member_spec(model: nn.Module) -> dict[str, Any]:
    """``{"architecture", "config"}`` of a model that can be a member (what :class:`CascadeConfig` holds)."""
    for name, cls in MEMBER_ARCHITECTURES.items():
        if type(model) is cls:
            return {"architecture": name, "config": config_to_dict(model.config)}
    raise ValueError(f"{type(model).__name__} cannot be a cascade member (one of {', '.join(sorted(MEMBER_ARCHITECTURES))})")


class Cascade(nn.Module):
    """Vocals model, then instrument splitter on the rest. ``forward``: ``(B, C, T) -> (B, S, C, T)``.

    ``state_dict`` keys are ``vocals.<member key>`` and ``splitter.<member key>``.
    """

    config_class = CascadeConfig

    def __init__(self, config: CascadeConfig, *, members: tuple[nn.Module, nn.Module] | None = None) -> None:
        """``members``: already built ``(vocals, splitter)`` models matching the config, used as they are (no second
        construction and copy of the weights: the default model's load time)."""
        super().__init__()
        self.config = config
        if members is not None:
            if (member_spec(members[0]), member_spec(members[1])) != (config.vocals, config.splitter):
                raise ValueError("cascade: the given members do not match CascadeConfig.vocals / .splitter")
            self.vocals, self.splitter = members
        else:
            self.vocals = _build(config.vocals)
            self.splitter = _build(config.splitter)
        v, s = self.vocals, self.splitter
        if config.vocals_source not in v.sources:
            raise ValueError(f"cascade: the vocals model has no {config.vocals_source!r} stem (it has {v.sources})")
        if config.vocals_source in s.sources:
            raise ValueError(f"cascade: the splitter must not produce {config.vocals_source!r} (it has {s.sources})")
        if config.residual_source not in s.sources:
            raise ValueError(f"cascade: residual_source {config.residual_source!r} is not a splitter stem {s.sources}")
        if v.samplerate != s.samplerate or v.audio_channels != s.audio_channels:
            raise ValueError(
                f"cascade: vocals model ({v.samplerate} Hz, {v.audio_channels} ch) and splitter "
                f"({s.samplerate} Hz, {s.audio_channels} ch) differ in sample rate or channels"
            )
        self.sources = (config.vocals_source, *s.sources)
        self.samplerate = int(s.samplerate)
        self.audio_channels = int(s.audio_channels)
        self.segment = config.segment if config.segment is not None else getattr(s, "segment", None)
        self.default_overlap = getattr(s, "default_overlap", None)  # None: the engine's usual 25 %
        self._vocal_index = v.sources.index(config.vocals_source)
        self._residual_index = s.sources.index(config.residual_source)
        self.wiener_stft = StftConfig(n_fft=config.wiener_n_fft, hop_length=config.wiener_hop)
        self.register_buffer("wiener_window", make_window(self.wiener_stft), persistent=False)

    @classmethod
    def from_models(cls, vocals: nn.Module, splitter: nn.Module, *, copy: bool = True, **options: Any) -> "Cascade":
        """A cascade of two existing registered models; ``copy=False`` uses them as they are (the cascade then shares
        their parameters). ``options``: other :class:`CascadeConfig` fields."""
        config = CascadeConfig(vocals=member_spec(vocals), splitter=member_spec(splitter), **options)
        if not copy:
            return cls(config, members=(vocals, splitter))
        model = cls(config)
        model.vocals.load_state_dict(vocals.state_dict(), strict=True)
        model.splitter.load_state_dict(splitter.state_dict(), strict=True)
        return model

    def valid_length(self, length: int) -> int:
        """The smallest length at or above ``length`` that both members accept as it is."""
        fns = [m.valid_length for m in (self.vocals, self.splitter) if hasattr(m, "valid_length")]
        n = length
        for _ in range(16):  # members' valid lengths are monotone round-ups; a few passes reach a common one
            new = max([n, *(int(f(n)) for f in fns)])
            if new == n:
                return n
            n = new
        raise ValueError(f"cascade: the members' valid lengths do not agree near {length} samples")

    def forward(self, mix: torch.Tensor) -> torch.Tensor:
        """Shape: ``(B, C, T)`` -> ``(B, S, C, T)``; the stems sum to ``mix``."""
        if mix.dim() != 3:
            raise ValueError(f"cascade expects (batch, channels, time), got shape {tuple(mix.shape)}")
        vocals = self._vocals(mix)  # (B, C, T)
        parts = self.splitter(mix - vocals).to(mix.dtype)  # (B, S', C, T)
        if self.config.wiener_iterations > 0:
            joint = self._wiener(mix, torch.cat([vocals[:, None], parts], dim=1))
            vocals, parts = joint[:, 0], joint[:, 1:]
        k = self._residual_index
        # The residual stem takes what the others leave, so the stems sum to the mixture.
        residual = mix - vocals - parts.sum(dim=1) + parts[:, k]
        return torch.cat([vocals[:, None], parts[:, :k], residual[:, None], parts[:, k + 1 :]], dim=1)

    def _vocals(self, mix: torch.Tensor) -> torch.Tensor:
        """The vocals member's vocal stem. Shape: ``(B, C, T)`` -> ``(B, C, T)``. A member that can invert one stem
        alone (``forward_sources``: Spleeter) skips the others' iSTFTs, and no other stem stays alive through the
        splitter (memory per chunk in flight)."""
        only = getattr(self.vocals, "forward_sources", None)
        if only is not None:
            return only(mix, (self.config.vocals_source,))[:, 0].to(mix.dtype)
        return self.vocals(mix)[:, self._vocal_index].to(mix.dtype)

    def _wiener(self, mix: torch.Tensor, stems: torch.Tensor) -> torch.Tensor:
        """Joint multichannel Wiener refinement of all stems. Shape: ``(B, S, C, T)`` -> ``(B, S, C, T)``."""
        b, s, c, t = stems.shape
        cfg, win = self.wiener_stft, self.wiener_window
        x = stft(mix.float(), cfg, window=win)  # (B, C, F, N)
        mags = stft(stems.float().reshape(b * s, c, t), cfg, window=win).abs()
        mags = mags.reshape(b, s, c, *mags.shape[-2:])
        y = wiener(mags, x, self.config.wiener_iterations, frames_per_window=300)  # (B, S, C, F, N)
        out = istft(y.reshape(b * s, c, *y.shape[-2:]), cfg, length=t, window=win)
        return out.reshape(b, s, c, t).to(mix.dtype)
