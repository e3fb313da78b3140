"""The one place that maps a model name to how it is built and loaded.

Two explicit dicts, as data:

- :data:`ARCHITECTURES`: architecture name -> ``"module:Class"`` (the class has a ``config_class`` attribute).
  Checkpoints name their architecture; this is how they find the code.
- :data:`MODELS`: ready-to-use model name -> :class:`ModelEntry` (built-in, shipped with the package, or oracle).

Published third-party checkpoints (download URL, checksum, licence) live in :mod:`stemwright.pretrained` as data.
Imports are lazy (strings), so ``stemwright models`` does not import every architecture.
"""
from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from stemwright.models.defaults import DEFAULT_MODEL  # re-exported; defined torch-free for the CLI

log = logging.getLogger(__name__)

ARCHITECTURES: dict[str, str] = {
    "classic": "stemwright.models.classic:ClassicSeparator",
    "htdemucs": "stemwright.models.htdemucs:HTDemucs",
    "hdemucs": "stemwright.models.hdemucs:HDemucs",
    "umx": "stemwright.models.umx:OpenUnmix",
    "bsrnn": "stemwright.models.bsrnn:BSRNN",
    "classic_refiner": "stemwright.models.refiner:ClassicRefiner",
    "bs_roformer": "stemwright.models.roformer:BSRoformer",
    "mel_roformer": "stemwright.models.roformer:MelRoformer",
    "bag": "stemwright.models.bag:BagOfModels",
    "cascade": "stemwright.models.cascade:Cascade",
    "spleeter": "stemwright.models.spleeter:Spleeter",
}


@dataclass(frozen=True, kw_only=True)
class ModelEntry:
    """A model users can ask for by name (``-m NAME``)."""

    name: str
    architecture: str
    sources: tuple[str, ...]
    samplerate: int
    description: str
    licence: str
    loader: str  # "module:function", called as fn(**options) -> nn.Module
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
        loader="stemwright.models.classic:build_classic",
    ),
    "oracle_ibm": ModelEntry(
        name="oracle_ibm",
        architecture="oracle",
        sources=("vocals", "drums", "bass", "other"),
        samplerate=44100,
        description="Ideal binary mask (needs the true stems): the upper bound of binary masking",
        licence="MIT (no weights)",
        loader="stemwright.models.oracle:build_ibm",
        needs_references=True,
    ),
    "oracle_irm": ModelEntry(
        name="oracle_irm",
        architecture="oracle",
        sources=("vocals", "drums", "bass", "other"),
        samplerate=44100,
        description="Ideal ratio mask (needs the true stems): the upper bound of soft masking",
        licence="MIT (no weights)",
        loader="stemwright.models.oracle:build_irm",
        needs_references=True,
    ),
    "oracle_mwf": ModelEntry(
        name="oracle_mwf",
        architecture="oracle",
        sources=("vocals", "drums", "bass", "other"),
        samplerate=44100,
        description="Oracle multichannel Wiener filter (needs the true stems)",
        licence="MIT (no weights)",
        loader="stemwright.models.oracle:build_mwf",
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
        loader="stemwright.models.shipped:build_default4",
        parameters=20654814,
    ),
    "stemwright_vocals": ModelEntry(
        name="stemwright_vocals",
        architecture="bsrnn",
        sources=("vocals", "accompaniment"),
        samplerate=44100,
        description="stemwright's own 2-stem vocals/accompaniment BSRNN for karaoke / a cappella (MIR-1K-trained)",
        licence="MIT code; weights research-use only (trained on MIR-1K)",
        loader="stemwright.models.shipped:build_vocals",
        parameters=712848,
    ),
}


def import_string(target: str) -> Any:
    """Import ``"package.module:attr"``."""
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def architecture_class(name: str) -> type[nn.Module]:
    """The model class of an architecture name, with a clear error listing the known names."""
    try:
        target = ARCHITECTURES[name]
    except KeyError:
        raise ValueError(f"unknown architecture {name!r}; known: {', '.join(sorted(ARCHITECTURES))}") from None
    return import_string(target)


def get_entry(name: str) -> ModelEntry:
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; run 'stemwright models' for the list") from None


def load_model(
    name_or_path: str | Path,
    *,
    device: torch.device | str = "cpu",
    offline: bool = False,
    progress: bool = True,
    **options: Any,
) -> nn.Module:
    """Load a model by registry name, published-catalogue name, or checkpoint path, in eval mode on ``device``.

    Resolution order: a registered name, then an existing file/folder path (any supported checkpoint format),
    then a published-catalogue name (downloaded to the cache unless ``offline``).
    """
    key = str(name_or_path)
    if key in MODELS:
        entry = MODELS[key]
        model = import_string(entry.loader)(**{**entry.options, **options})
    elif Path(key).expanduser().exists():
        model = _load_path(Path(key).expanduser())
    else:
        model = _load_published(key, offline=offline, progress=progress)
    return model.to(torch.device(device)).eval()


def _load_path(path: Path) -> nn.Module:
    try:
        loader: Callable[[Path], nn.Module] = import_string("stemwright.pretrained.formats:load_any")
    except (ImportError, AttributeError):
        from stemwright.models.checkpoint import load_checkpoint

        return load_checkpoint(path)
    return loader(path)


def _load_published(name: str, *, offline: bool, progress: bool) -> nn.Module:
    try:
        fn = import_string("stemwright.pretrained.catalogue:load_published")
    except (ImportError, AttributeError):
        fn = None
    if fn is None:
        raise ValueError(f"unknown model {name!r}: not a registered name nor an existing checkpoint path")
    return fn(name, offline=offline, progress=progress)
