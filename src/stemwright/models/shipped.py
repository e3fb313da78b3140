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
SIX = "stemwright_6stem"
#: The instrument splitter of the 6-stem model (drums/bass/guitar/piano/other), a shipped checkpoint of its own.
SIX_SPLITTER = "stemwright_6stem_splitter"


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


def _spleeter_cascade(splitter: str, vocals_model: str, options: dict[str, object]) -> nn.Module:
    """``vocals_model`` (a published-catalogue name whose files ship in a package, loaded offline), then the shipped
    checkpoint ``splitter`` on the mixture minus the vocals."""
    vocals = load_published(vocals_model, offline=True, progress=False)
    return Cascade.from_models(vocals, load_shipped(splitter), copy=False, **options).eval()


def build_default4(vocals_model: str = DEFAULT4_VOCALS, **options: object) -> nn.Module:
    """The 4-stem default (vocals, drums, bass, other): a :class:`~stemwright.models.cascade.Cascade` of
    ``vocals_model`` and the shipped instrument splitter on the mixture minus the vocals. ``options``: other
    :class:`~stemwright.models.cascade.CascadeConfig` fields."""
    return _spleeter_cascade(DEFAULT4_SPLITTER, vocals_model, options)


def build_6stem(vocals_model: str = DEFAULT4_VOCALS, **options: object) -> nn.Module:
    """The 6-stem model (vocals, drums, bass, guitar, piano, other): as :func:`build_default4`, with the shipped
    6-stem splitter (``other`` takes what the five others leave)."""
    return _spleeter_cascade(SIX_SPLITTER, vocals_model, options)
