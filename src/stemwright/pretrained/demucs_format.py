"""Load the checkpoints published by the ``demucs`` project, without importing (or needing) that package.

Three layouts are understood:

- ``.th`` packages as written by ``demucs.states.serialize_model``/``save_with_checksum``: a ``torch.save``d dict
  ``{"klass": demucs.htdemucs.HTDemucs | demucs.hdemucs.HDemucs, "args": [...], "kwargs": {...}, "state": {...},
  "training_args": {...}}``. It is unpickled with a *restricted* unpickler: the two demucs classes are mapped to
  stemwright's architectures and only plain data (``Fraction``, ``OrderedDict``, tensors, numpy scalars) is
  accepted; any other global is refused with an error naming it. Nothing from the file is executed.
- the safetensors export of demucs (``demucs/hf.py``, ``tools/export_hf.py``): tensors = the state dict, metadata
  ``klass`` (dotted class name), ``args`` and ``kwargs`` (JSON, fractions as
  ``{"_type": "fraction", "numerator": n, "denominator": d}``) and, for quantized states only, ``structure``
  (refused: DiffQ-quantized models are not supported).
- bag YAML files (``htdemucs_ft.yaml``: ``models: [signatures]``, optional ``weights`` and ``segment``); member files
  are looked up beside the YAML as ``SIG.th``, ``SIG-<sha256 prefix>.th`` or ``SIG.safetensors``.

Entry points: :func:`is_demucs_file`, :func:`load_demucs` (used by :mod:`stemwright.pretrained.formats`) and
:func:`load_catalogue_entry` (used by :mod:`stemwright.pretrained.catalogue`).
"""
from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import logging
import pickle
import re
import types
import zipfile
from fractions import Fraction
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import yaml
from safetensors.torch import load_file
from torch import nn

from stemwright.errors import StemwrightError
from stemwright.models.architectures import architecture_class
from stemwright.models.bag import BagOfModels
from stemwright.models.base import config_from_dict

log = logging.getLogger(__name__)

#: demucs class (module, name) -> stemwright architecture name.
DEMUCS_CLASSES: dict[tuple[str, str], str] = {
    ("demucs.htdemucs", "HTDemucs"): "htdemucs",
    ("demucs.hdemucs", "HDemucs"): "hdemucs",
}
#: demucs classes recognised but not implemented, with the reason.
UNSUPPORTED_CLASSES: dict[tuple[str, str], str] = {
    ("demucs.demucs", "Demucs"): "the waveform-only Demucs v2 (mdx/demucs48_hq era) is not implemented",
    ("demucs.wdemucs", "WDemucs"): "the waveform-only Demucs v2 (wdemucs) is not implemented",
    ("demucs.tasnet", "ConvTasNet"): "Conv-TasNet is not implemented",
}


_SIGNED_NAME = re.compile(r"^([0-9a-f]{8})-([0-9a-f]{8,64})\.th$")


class DemucsFormatError(StemwrightError):
    """A demucs checkpoint is malformed, unsafe, or uses a feature stemwright does not implement."""


@dataclasses.dataclass(frozen=True)
class DemucsClass:
    """Stand-in for a demucs model class found in a pickle: only its name survives unpickling."""

    architecture: str
    qualname: str


def _rebuild_path(*parts: str) -> str:
    return "/".join(parts)


def _safe_globals() -> dict[tuple[str, str], Any]:
    allowed: dict[tuple[str, str], Any] = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("fractions", "Fraction"): Fraction,
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("builtins", "complex"): complex,
        ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
        ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
        ("torch", "Size"): torch.Size,
        # training_args may hold numpy scalars (encoded bytes) and paths: plain data, reconstructed inertly.
        ("_codecs", "encode"): _codecs_encode,
        ("numpy", "dtype"): np.dtype,
        ("pathlib", "PosixPath"): _rebuild_path,
        ("pathlib", "PurePosixPath"): _rebuild_path,
        ("pathlib", "WindowsPath"): _rebuild_path,
        ("pathlib", "PureWindowsPath"): _rebuild_path,
    }
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(mod, "scalar")] = _numpy_scalar
        allowed[(mod, "_reconstruct")] = _numpy_reconstruct
    allowed[("numpy", "ndarray")] = np.ndarray
    for dtype in (torch.float16, torch.float32, torch.float64, torch.bfloat16, torch.int64, torch.int32, torch.bool):
        allowed[("torch", str(dtype).split(".")[-1])] = dtype
    return allowed


def _codecs_encode(obj: str, encoding: str = "utf-8") -> bytes:
    if not isinstance(obj, str) or encoding not in ("latin1", "latin-1", "utf-8", "utf8"):
        raise pickle.UnpicklingError("unexpected _codecs.encode call")
    return obj.encode(encoding)


def _numpy_scalar(dtype: Any, data: bytes | None = None) -> Any:
    if data is None:
        raise pickle.UnpicklingError("numpy object scalars are refused")
    return np.frombuffer(data, dtype=dtype)[0].item()


def _numpy_reconstruct(*args: Any) -> Any:
    core = getattr(np, "_core", None) or np.core
    _reconstruct = core.multiarray._reconstruct
    if not args or args[0] is not np.ndarray:
        raise pickle.UnpicklingError("only numpy.ndarray may be reconstructed")
    return _reconstruct(*args)


def _restricted_pickle_module(path: Path) -> types.ModuleType:
    """A stand-in for the ``pickle`` module whose ``Unpickler`` refuses every global not explicitly allowed."""
    allowed = _safe_globals()

    class RestrictedUnpickler(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            key = (module, name)
            if key in DEMUCS_CLASSES:
                return DemucsClass(DEMUCS_CLASSES[key], f"{module}.{name}")
            if key in UNSUPPORTED_CLASSES:
                return DemucsClass("", f"{module}.{name}")
            if key in allowed:
                return allowed[key]
            raise DemucsFormatError(
                f"{path}: refusing to unpickle {module}.{name} (not a demucs model class nor plain data); "
                "stemwright never executes code from checkpoints"
            )

    module = types.ModuleType("stemwright_restricted_pickle")
    module.Unpickler = RestrictedUnpickler  # type: ignore[attr-defined]
    module.load = lambda f, **kw: RestrictedUnpickler(f, **kw).load()  # type: ignore[attr-defined]
    module.__name__ = "stemwright_restricted_pickle"
    return module


# ------------------------------------------------------------------------------------------------ detection


def _zip_pickle_bytes(path: Path) -> bytes | None:
    try:
        with zipfile.ZipFile(path) as zf:
            names = [n for n in zf.namelist() if n.endswith("data.pkl")]
            return zf.read(names[0]) if names else None
    except (zipfile.BadZipFile, OSError):
        return None


def _safetensors_metadata(path: Path) -> dict[str, str] | None:
    try:
        with open(path, "rb") as f:
            n = int.from_bytes(f.read(8), "little")
            if not 0 < n < 100_000_000:
                return None
            header = json.loads(f.read(n))
    except (OSError, ValueError):
        return None
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    return meta if isinstance(meta, dict) else None


def is_demucs_file(path: str | Path) -> bool:
    """True for a demucs ``.th`` package, a demucs safetensors export, or a demucs bag YAML."""
    p = Path(path)
    if not p.is_file():
        return False
    suffix = p.suffix.lower()
    if suffix == ".th":
        data = _zip_pickle_bytes(p)
        return data is not None and b"klass" in data and b"demucs" in data
    if suffix == ".safetensors":
        meta = _safetensors_metadata(p)
        return bool(meta) and str(meta.get("klass", "")).startswith("demucs.")
    if suffix in (".yaml", ".yml"):
        try:
            doc = yaml.safe_load(p.read_text())
        except (OSError, yaml.YAMLError):
            return False
        return isinstance(doc, dict) and isinstance(doc.get("models"), list) and "audio" not in doc
    return False


# ------------------------------------------------------------------------------------------------ conversion


def _plain(value: Any) -> Any:
    """Fractions to floats, lists to tuples (config data)."""
    if isinstance(value, Fraction):
        return float(value)
    if isinstance(value, (list, tuple)):
        return tuple(_plain(v) for v in value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def config_from_demucs(architecture: str, args: Sequence[Any], kwargs: dict[str, Any], where: str) -> Any:
    """The stemwright config of a demucs model from its constructor arguments (unknown keywords are dropped with a
    warning, as demucs' own non-strict loader does)."""
    cls = architecture_class(architecture).config_class
    data = dict(kwargs)
    if args:
        if len(args) > 1:
            raise DemucsFormatError(f"{where}: unexpected positional arguments {list(args)!r}")
        data.setdefault("sources", args[0])
    fields = {f.name for f in dataclasses.fields(cls)}
    for key in sorted(set(data) - fields):
        log.warning("%s: dropping unknown %s parameter %r", where, architecture, key)
        del data[key]
    try:
        return config_from_dict(cls, _plain(data))
    except (TypeError, ValueError) as e:
        raise DemucsFormatError(f"{where}: cannot build a {architecture} config: {e}") from None


def model_from_package(package: dict[str, Any], where: str, segment: float | None = None) -> nn.Module:
    """Build and load a stemwright model from an unpickled demucs package dict."""
    if not isinstance(package, dict) or not {"klass", "kwargs", "state"} <= set(package):
        raise DemucsFormatError(f"{where}: not a demucs model package (needs klass, args, kwargs, state)")
    klass = package["klass"]
    if not isinstance(klass, DemucsClass):
        raise DemucsFormatError(f"{where}: 'klass' is not a demucs model class")
    if not klass.architecture:
        reason = UNSUPPORTED_CLASSES[tuple(klass.qualname.rsplit(".", 1))]  # type: ignore[index]
        raise DemucsFormatError(f"{where}: {klass.qualname}: {reason}")
    state = package["state"]
    if isinstance(state, dict) and state.get("__quantized"):
        raise DemucsFormatError(f"{where}: DiffQ-quantized demucs models (e.g. mdx_q) are not supported")
    config = config_from_demucs(klass.architecture, package.get("args") or (), package["kwargs"], where)
    if segment is not None:
        config = _bag_segment(klass.architecture, config, segment)
    model = architecture_class(klass.architecture)(config)
    state = {k: v.float() if torch.is_tensor(v) and v.is_floating_point() else v for k, v in state.items()}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise DemucsFormatError(f"{where}: weights do not fit {klass.architecture}: {e}") from None
    model.checkpoint_info = {"format": "demucs", "path": where, "demucs_class": klass.qualname}
    return model.eval()


def _bag_segment(architecture: str, config: Any, segment: float) -> Any:
    """Demucs' bag rule: the bag segment overrides a member's unless it is an HTDemucs and the bag's is longer."""
    if architecture == "htdemucs" and segment > config.segment:
        return config
    return dataclasses.replace(config, segment=float(segment))


def load_th(path: str | Path, segment: float | None = None) -> nn.Module:
    """Load a demucs ``.th`` package (restricted unpickling). Returns the model in eval mode."""
    p = Path(path)
    verify_name_checksum(p)
    try:
        package = torch.load(p, map_location="cpu", weights_only=False, pickle_module=_restricted_pickle_module(p))
    except DemucsFormatError:
        raise
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, OSError, AttributeError) as e:
        raise DemucsFormatError(f"{p}: not a readable demucs .th package ({e})") from None
    return model_from_package(package, str(p), segment)


def verify_name_checksum(path: Path) -> None:
    """Demucs names its files ``SIG-<sha256 prefix>.th``; when a name has that form, check the file against it
    (as demucs' ``LocalRepo`` does) so that a corrupted or tampered file is refused."""
    match = _SIGNED_NAME.match(path.name)
    if not match:
        return
    expected = match.group(2)
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    actual = digest.hexdigest()[: len(expected)]
    if actual != expected:
        raise DemucsFormatError(f"{path}: sha256 starts with {actual}, but the file name says {expected} "
                                "(corrupted or tampered file)")


def _decode_json(value: Any) -> Any:
    if isinstance(value, dict):
        if value.get("_type") == "fraction":
            return Fraction(value["numerator"], value["denominator"])
        return {k: _decode_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode_json(v) for v in value]
    return value


def load_safetensors(path: str | Path, segment: float | None = None) -> nn.Module:
    """Load one model of demucs' safetensors export (class and arguments in the metadata)."""
    p = Path(path)
    meta = _safetensors_metadata(p)
    if not meta or "klass" not in meta:
        raise DemucsFormatError(f"{p}: safetensors file without demucs metadata ('klass', 'args', 'kwargs')")
    if "structure" in meta:
        raise DemucsFormatError(f"{p}: quantized (DiffQ) demucs exports are not supported")
    module, _, name = meta["klass"].rpartition(".")
    key = (module, name)
    if key in DEMUCS_CLASSES:
        klass = DemucsClass(DEMUCS_CLASSES[key], meta["klass"])
    elif key in UNSUPPORTED_CLASSES:
        klass = DemucsClass("", meta["klass"])
    else:
        raise DemucsFormatError(f"{p}: unknown model class {meta['klass']!r}")
    try:
        args = _decode_json(json.loads(meta.get("args", "[]")))
        kwargs = _decode_json(json.loads(meta.get("kwargs", "{}")))
    except json.JSONDecodeError as e:
        raise DemucsFormatError(f"{p}: metadata 'args'/'kwargs' is not valid JSON ({e})") from None
    package = {"klass": klass, "args": args, "kwargs": kwargs, "state": load_file(str(p))}
    return model_from_package(package, str(p), segment)


def _member_file(folder: Path, sig: str, where: str) -> Path:
    for candidate in [folder / f"{sig}.th", folder / f"{sig}.safetensors", *sorted(folder.glob(f"{sig}-*.th"))]:
        if candidate.is_file():
            return candidate
    raise DemucsFormatError(f"{where}: member {sig!r} not found beside it (looked for {sig}.th, {sig}-*.th, "
                            f"{sig}.safetensors in {folder})")


def build_bag(
    members: Sequence[nn.Module | Path], weights: Sequence[Sequence[float]] | None, segment: float | None, where: str
) -> nn.Module:
    """A stemwright model from demucs bag data: the single member itself when the bag is trivial, else a
    :class:`~stemwright.models.bag.BagOfModels`."""
    models = [load_demucs_member(m, segment) if isinstance(m, Path) else m for m in members]
    if len(models) == 1 and (weights is None or all(w == weights[0][0] for w in weights[0])):
        return models[0]  # demucs' one-model bags (htdemucs, hdemucs_mmi) are the model itself
    try:
        bag = BagOfModels.from_models(models, weights=weights, segment=segment)
    except ValueError as e:
        raise DemucsFormatError(f"{where}: {e}") from None
    bag.checkpoint_info = {"format": "demucs-bag", "path": where}
    return bag.eval()


def load_demucs_member(path: Path, segment: float | None = None) -> nn.Module:
    if path.suffix.lower() == ".safetensors":
        return load_safetensors(path, segment)
    return load_th(path, segment)


def load_bag_yaml(path: str | Path) -> nn.Module:
    """Load a demucs bag YAML and its member files (beside it)."""
    p = Path(path)
    try:
        doc = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        raise DemucsFormatError(f"{p}: not valid YAML ({e})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("models"), list) or not doc["models"]:
        raise DemucsFormatError(f"{p}: a demucs bag YAML needs a non-empty 'models' list")
    members = [_member_file(p.parent, str(sig), str(p)) for sig in doc["models"]]
    return build_bag(members, doc.get("weights"), doc.get("segment"), str(p))


def load_demucs(path: str | Path) -> nn.Module:
    """Load any demucs checkpoint (``.th``, safetensors export, or bag ``.yaml``) as a stemwright model (eval mode)."""
    p = Path(path)
    if not p.is_file():
        raise DemucsFormatError(f"{p}: file not found")
    suffix = p.suffix.lower()
    if suffix in (".yaml", ".yml"):
        return load_bag_yaml(p)
    if suffix == ".safetensors":
        return load_safetensors(p)
    return load_th(p)


def load_catalogue_entry(entry: dict[str, Any], paths: list[Path]) -> nn.Module:
    """Catalogue family loader: ``paths`` are the entry's downloaded files in order; ``entry["bag"]`` (optional)
    holds ``weights`` and ``segment`` as in demucs' remote YAML files."""
    bag = entry.get("bag") or {}
    return build_bag(list(paths), bag.get("weights"), bag.get("segment"), entry.get("name", "demucs"))
