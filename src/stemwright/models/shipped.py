"""Loaders of stemwright's own models, shipped inside the package (``stemwright/pretrained/weights/``).

Each shipped model is a stemwright checkpoint (``NAME.safetensors`` + ``NAME.json``) with a model card ``NAME.md``
beside it (architecture, parameters, training data and licences, steps, measured SDR). They load offline.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

from torch import nn

from stemwright.models.cascade import Cascade
from stemwright.models.checkpoint import CheckpointError, load_checkpoint
from stemwright.pretrained.catalogue import load_published

VOCALS = "stemwright_vocals"
DEFAULT4 = "stemwright_4stem"
#: The instrument splitter of the 4-stem default (drums/bass/other), a shipped checkpoint of its own.
DEFAULT4_SPLITTER = "stemwright_4stem_splitter"
#: Where the 4-stem default takes its vocals: Spleeter's published 2-stem model (MIT), loaded offline.
DEFAULT4_VOCALS = "spleeter_2stems"


def weights_dir() -> Path:
    """Folder of the shipped checkpoints."""
    return Path(str(resources.files("stemwright").joinpath("pretrained", "weights")))


def shipped_path(name: str) -> Path:
    """Path (without suffix) of a shipped checkpoint; clear error when the package was built without it."""
    base = weights_dir() / name
    if not base.with_name(name + ".json").exists() or not base.with_name(name + ".safetensors").exists():
        raise CheckpointError(f"{base}.json/.safetensors: shipped model {name!r} is missing from this installation")
    return base


def load_shipped(name: str) -> nn.Module:
    """Load a shipped checkpoint by its file name (``stemwright_vocals``, ``stemwright_4stem_splitter``)."""
    return load_checkpoint(shipped_path(name))


def build_vocals() -> nn.Module:
    """The 2-stem vocals/accompaniment model (karaoke / a cappella)."""
    return load_shipped(VOCALS)


def build_default4(vocals_model: str = DEFAULT4_VOCALS, **options: object) -> nn.Module:
    """The 4-stem default (vocals, drums, bass, other): a :class:`~stemwright.models.cascade.Cascade` of
    ``vocals_model`` (a published-catalogue name whose files ship in a package, loaded offline) and the shipped
    instrument splitter on the mixture minus the vocals. ``options``: other
    :class:`~stemwright.models.cascade.CascadeConfig` fields."""
    vocals = load_published(vocals_model, offline=True, progress=False)
    return Cascade.from_models(vocals, load_shipped(DEFAULT4_SPLITTER), copy=False, **options).eval()
