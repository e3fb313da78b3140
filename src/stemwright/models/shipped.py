"""Loaders of stemwright's own models, shipped inside the package (``stemwright/pretrained/weights/``).

Each shipped model is a stemwright checkpoint (``NAME.safetensors`` + ``NAME.json``) with a model card ``NAME.md``
beside it (architecture, parameters, training data and licences, steps, measured SDR). They load offline.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

from torch import nn

from stemwright.models.checkpoint import CheckpointError, load_checkpoint

VOCALS = "stemwright_vocals"
DEFAULT4 = "stemwright_4stem"


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
    """Load a shipped model by its file name (``stemwright_vocals``, ``stemwright_4stem``)."""
    return load_checkpoint(shipped_path(name))


def build_vocals() -> nn.Module:
    """The 2-stem vocals/accompaniment model (karaoke / a cappella)."""
    return load_shipped(VOCALS)


def build_default4() -> nn.Module:
    """The 4-stem model (vocals, drums, bass, other)."""
    return load_shipped(DEFAULT4)
