"""Bags (ensembles) of separation models with a per-source weight matrix, run as one model.

As ``demucs.apply.BagOfModels``: the estimate of source ``k`` is ``sum_m w[m][k] * model_m(x)[k] / sum_m w[m][k]``
(``htdemucs_ft`` is a bag of four fine-tuned HTDemucs with one-hot weights: each member contributes one source).
A bag ``segment`` overrides each member's segment, except that an HTDemucs keeps its own when the bag's is longer
(it cannot run past its training length), exactly as demucs does.

Demucs applies its chunked overlap-add to each member separately and then mixes; stemwright's engine chunks the bag
once and mixes inside :meth:`BagOfModels.forward`. Because overlap-add is linear, both are equal when every member
sees the same chunks, which is why members must agree on segment and valid length (checked at construction).

Members are Demucs models (:data:`MEMBER_ARCHITECTURES`), as in demucs: this module builds them from their names
itself, so it needs no architecture table above it (:mod:`stemwright.models.architectures` imports this module).
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import nn

from stemwright.models.base import check_model, config_from_dict, config_to_dict
from stemwright.models.hdemucs import HDemucs
from stemwright.models.htdemucs import HTDemucs

log = logging.getLogger(__name__)

#: The architectures a bag may hold (their names as in :data:`stemwright.models.architectures.ARCHITECTURES`).
MEMBER_ARCHITECTURES: dict[str, type[nn.Module]] = {"htdemucs": HTDemucs, "hdemucs": HDemucs}


@dataclass(frozen=True, kw_only=True)
class BagConfig:
    """A bag: ``members`` are ``{"architecture": name, "config": {...}}`` dicts (configs as JSON data),
    ``weights`` one row per member with one weight per source (``None``: all ones), ``segment`` the optional
    override in seconds."""

    members: tuple[dict[str, Any], ...]
    weights: tuple[tuple[float, ...], ...] | None = None
    segment: float | None = None

    def __post_init__(self) -> None:
        if not self.members:
            raise ValueError("BagConfig.members is empty: a bag needs at least one model")
        for i, member in enumerate(self.members):
            if not isinstance(member, dict) or set(member) != {"architecture", "config"}:
                raise ValueError(f"BagConfig.members[{i}] must be {{'architecture': ..., 'config': {{...}}}}")
            if member["architecture"] not in MEMBER_ARCHITECTURES:
                raise ValueError(f"BagConfig.members[{i}]: architecture {member['architecture']!r} cannot be a bag member "
                                 f"(members: {', '.join(MEMBER_ARCHITECTURES)})")
        if self.weights is not None:
            if len(self.weights) != len(self.members):
                raise ValueError(f"BagConfig.weights has {len(self.weights)} rows for {len(self.members)} members")
            widths = {len(row) for row in self.weights}
            if len(widths) != 1:
                raise ValueError("BagConfig.weights rows must all have one weight per source")
            totals = [sum(col) for col in zip(*self.weights)]
            if any(t == 0 for t in totals):
                raise ValueError(f"BagConfig.weights: a source has total weight 0 (column totals {totals})")
        if self.segment is not None and self.segment <= 0:
            raise ValueError(f"BagConfig.segment must be positive seconds, got {self.segment}")


def _member_segment(model: nn.Module, segment: float | None) -> float | None:
    """Demucs' rule: the bag segment replaces a member's, unless the member is an HTDemucs and the bag's is longer."""
    own = getattr(model, "segment", None)
    if segment is None:
        return own
    if isinstance(model, HTDemucs) and own is not None and segment > own:
        return own
    return segment


def _build_member(architecture: str, config: dict[str, Any], segment: float | None) -> nn.Module:
    cls = MEMBER_ARCHITECTURES[architecture]
    cfg = config_from_dict(cls.config_class, dict(config))
    model = cls(cfg)
    new_segment = _member_segment(model, segment)
    if new_segment != getattr(model, "segment", None) and "segment" in {f.name for f in dataclasses.fields(cfg)}:
        model = cls(dataclasses.replace(cfg, segment=new_segment))
    return model


class BagOfModels(nn.Module):
    """Several models with the same sources, sample rate and channels, mixed per source.

    Shape: ``(B, C, T)`` -> ``(B, S, C, T)``. ``state_dict`` keys are ``models.<i>.<member key>`` as in demucs.
    """

    config_class = BagConfig

    def __init__(self, config: BagConfig) -> None:
        super().__init__()
        self.config = config
        self.models = nn.ModuleList(_build_member(m["architecture"], m["config"], config.segment) for m in config.members)
        first = self.models[0]
        check_model(first)
        for i, other in enumerate(self.models):
            if tuple(other.sources) != tuple(first.sources):
                raise ValueError(f"bag member {i} has sources {other.sources}, member 0 has {first.sources}")
            if other.samplerate != first.samplerate or other.audio_channels != first.audio_channels:
                raise ValueError(f"bag member {i}: sample rate/channels differ from member 0")
        self.sources = tuple(first.sources)
        self.samplerate = int(first.samplerate)
        self.audio_channels = int(first.audio_channels)
        segments = {getattr(m, "segment", None) for m in self.models}
        if len(segments) != 1:
            raise ValueError(f"bag members have different segments {sorted(map(str, segments))}; stemwright runs a bag "
                             "as one model, so its members must share one segment")
        self.segment = segments.pop()
        if self.segment is not None:
            n = int(round(self.segment * self.samplerate))
            valid = {int(m.valid_length(n)) if hasattr(m, "valid_length") else n for m in self.models}
            if len(valid) != 1:
                raise ValueError("bag members need different valid lengths for the same chunk; they cannot share chunks")
        weights = config.weights or tuple(tuple(1.0 for _ in self.sources) for _ in self.models)
        if len(weights[0]) != len(self.sources):
            raise ValueError(f"BagConfig.weights rows have {len(weights[0])} weights for {len(self.sources)} sources")
        self.weights = tuple(tuple(float(w) for w in row) for row in weights)

    @classmethod
    def from_models(
        cls, models: Sequence[nn.Module], weights: Sequence[Sequence[float]] | None = None, segment: float | None = None
    ) -> "BagOfModels":
        """A bag of existing stemwright models (their weights are copied)."""
        names = {cls: name for name, cls in MEMBER_ARCHITECTURES.items()}
        for i, m in enumerate(models):
            if type(m) not in names:
                raise ValueError(f"bag member {i} is a {type(m).__name__}; members: {', '.join(MEMBER_ARCHITECTURES)}")
        members = tuple({"architecture": names[type(m)], "config": config_to_dict(m.config)} for m in models)
        w = None if weights is None else tuple(tuple(float(x) for x in row) for row in weights)
        bag = cls(BagConfig(members=members, weights=w, segment=segment))
        for mine, theirs in zip(bag.models, models):
            mine.load_state_dict(theirs.state_dict(), strict=True)
        return bag

    def valid_length(self, length: int) -> int:
        """The members' common valid length."""
        first = self.models[0]
        return int(first.valid_length(length)) if hasattr(first, "valid_length") else length

    def forward(self, mix: torch.Tensor) -> torch.Tensor:
        """Weighted per-source average of the members. Shape: ``(B, C, T)`` -> ``(B, S, C, T)``."""
        out: torch.Tensor | None = None
        totals = [0.0] * len(self.sources)
        for model, row in zip(self.models, self.weights):
            est = model(mix)
            w = torch.tensor(row, dtype=est.dtype, device=est.device).view(1, -1, 1, 1)
            out = est * w if out is None else out + est * w
            totals = [t + x for t, x in zip(totals, row)]
        assert out is not None
        return out / torch.tensor(totals, dtype=out.dtype, device=out.device).view(1, -1, 1, 1)
