"""Architecture name -> model class: the one table checkpoints, exports and catalogue entries are resolved with.

A leaf of the import graph: it imports the model families and nothing else from stemwright, so every loader
(:mod:`stemwright.models.checkpoint`, :mod:`stemwright.models.onnx`, :mod:`stemwright.pretrained`) can import it
at the top without a cycle. Adding a family = one import and one line in :data:`ARCHITECTURES`.
"""
from __future__ import annotations

from torch import nn

from stemwright.errors import ModelNotFound

from stemwright.models.bag import BagOfModels
from stemwright.models.bsrnn import BSRNN
from stemwright.models.cascade import Cascade
from stemwright.models.classic import ClassicSeparator
from stemwright.models.hdemucs import HDemucs
from stemwright.models.htdemucs import HTDemucs
from stemwright.models.refiner import ClassicRefiner
from stemwright.models.roformer import BSRoformer, MelRoformer
from stemwright.models.spleeter import Spleeter
from stemwright.models.umx import OpenUnmix

ARCHITECTURES: dict[str, type[nn.Module]] = {
    "classic": ClassicSeparator,
    "htdemucs": HTDemucs,
    "hdemucs": HDemucs,
    "umx": OpenUnmix,
    "bsrnn": BSRNN,
    "classic_refiner": ClassicRefiner,
    "bs_roformer": BSRoformer,
    "mel_roformer": MelRoformer,
    "bag": BagOfModels,
    "spleeter": Spleeter,
    "cascade": Cascade,
}


def architecture_class(name: str) -> type[nn.Module]:
    """The model class of an architecture name; ``ValueError`` listing the known names otherwise."""
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise ModelNotFound(f"unknown architecture {name!r}; known: {', '.join(sorted(ARCHITECTURES))}") from None


def architecture_name(model: nn.Module) -> str:
    """The architecture name of a model instance (its exact class, not a subclass); ``ValueError`` otherwise."""
    for name, cls in ARCHITECTURES.items():
        if type(model) is cls:
            return name
    raise ValueError(f"{type(model).__module__}.{type(model).__name__} is not a registered architecture")
