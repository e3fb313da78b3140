"""Ready-to-use models by name (``-m NAME``): :data:`MODELS`, data plus the function that builds each.

Architecture names -> classes live in :mod:`stemwright.models.architectures`; published third-party checkpoints
(download URL, checksum, licence) in :mod:`stemwright.pretrained.catalogue`; resolving a name, a path or a catalogue
entry to a loaded model in :func:`stemwright.pretrained.loading.load_model`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from torch import nn

from stemwright.models.classic import build_classic
from stemwright.models.defaults import DEFAULT_MODEL  # re-exported; defined torch-free for the CLI
from stemwright.models.oracle import build_ibm, build_irm, build_mwf
from stemwright.models.shipped import build_6stem, build_default4, build_vocals

__all__ = ["DEFAULT_MODEL", "MODELS", "ModelEntry"]


@dataclass(frozen=True, kw_only=True)
class ModelEntry:
    """A model users can ask for by name (``-m NAME``)."""

    name: str
    architecture: str
    sources: tuple[str, ...]
    samplerate: int
    description: str
    licence: str
    loader: Callable[..., nn.Module]  # called as loader(**options)
    parameters: int | None = None  # learned parameter count (None: no learned weights)
    needs_references: bool = False  # oracle models: need the true stems
    options: dict[str, Any] = field(default_factory=dict)


MODELS: dict[str, ModelEntry] = {
    "classic": ModelEntry(
        name="classic",
        architecture="classic",
        sources=("vocals", "drums", "bass", "other"),
        samplerate=44100,
        description="Weight-free DSP baseline: HPSS drums, low-harmonic bass, centre/fluctuation vocals",
        licence="MIT (no weights)",
        loader=build_classic,
    ),
    "oracle_ibm": ModelEntry(
        name="oracle_ibm",
        architecture="oracle",
        sources=("vocals", "drums", "bass", "other"),
        samplerate=44100,
        description="Ideal binary mask (needs the true stems): the upper bound of binary masking",
        licence="MIT (no weights)",
        loader=build_ibm,
        needs_references=True,
    ),
    "oracle_irm": ModelEntry(
        name="oracle_irm",
        architecture="oracle",
        sources=("vocals", "drums", "bass", "other"),
        samplerate=44100,
        description="Ideal ratio mask (needs the true stems): the upper bound of soft masking",
        licence="MIT (no weights)",
        loader=build_irm,
        needs_references=True,
    ),
    "oracle_mwf": ModelEntry(
        name="oracle_mwf",
        architecture="oracle",
        sources=("vocals", "drums", "bass", "other"),
        samplerate=44100,
        description="Oracle multichannel Wiener filter (needs the true stems)",
        licence="MIT (no weights)",
        loader=build_mwf,
        needs_references=True,
    ),
    # stemwright's own trained models, shipped in the package (stemwright/pretrained/weights/<name>.{safetensors,json,md}).
    "stemwright_4stem": ModelEntry(
        name="stemwright_4stem",
        architecture="cascade",
        sources=("vocals", "drums", "bass", "other"),
        samplerate=44100,
        description="stemwright's 4-stem default: vocals from Spleeter's 2-stem model (spleeter_2stems), then drums / "
        "bass / other from the mixture minus the vocals by stemwright's instrument splitter (classic + a learned "
        "correction, 1.0 M parameters, trained on generated songs without vocals)",
        licence="MIT code; Spleeter weights MIT (Deezer); splitter weights trained only on generated instrumental "
        "songs (MIT/CC0 soundfonts, GPL-2/CC kits; no MIR-1K; see the model card)",
        loader=build_default4,
        parameters=20654814,
    ),
    "stemwright_6stem": ModelEntry(
        name="stemwright_6stem",
        architecture="cascade",
        sources=("vocals", "drums", "bass", "guitar", "piano", "other"),
        samplerate=44100,
        description="stemwright's 6-stem model: vocals from Spleeter's 2-stem model, then drums / bass / guitar / "
        "piano / other from the mixture minus the vocals by a 6-stem instrument splitter (classic + a learned "
        "correction, guitar and piano starting from shares of classic's other; trained on generated songs without "
        "vocals)",
        licence="MIT code; Spleeter weights MIT (Deezer); splitter weights trained only on generated instrumental "
        "songs (MIT/CC0 soundfonts, GPL-2/CC kits; no MIR-1K; see the model card)",
        loader=build_6stem,
        parameters=21254254,
    ),
    "stemwright_vocals": ModelEntry(
        name="stemwright_vocals",
        architecture="bsrnn",
        sources=("vocals", "accompaniment"),
        samplerate=44100,
        description="stemwright's own 2-stem vocals/accompaniment BSRNN for karaoke / a cappella (MIR-1K-trained)",
        licence="MIT code; weights research-use only (trained on MIR-1K)",
        loader=build_vocals,
        parameters=712848,
    ),
}
