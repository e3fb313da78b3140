"""stemwright's own checkpoint format: ``NAME.safetensors`` (weights) + ``NAME.json`` (everything else).

The JSON holds: ``format`` (= "stemwright-checkpoint"), ``format_version``, ``architecture`` (a key of
:data:`~stemwright.models.architectures.ARCHITECTURES`), ``config`` (the model's config dataclass as a dict), ``sources``,
``samplerate``, ``audio_channels``, ``licence``, ``training`` (free-form summary of data and steps), ``metrics``,
and ``sha256`` of the weights file. Loading verifies the checksum and matches keys strictly; nothing is unpickled.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file
from torch import nn

from stemwright.atomic import atomic_write, atomic_write_text
from stemwright.errors import StemwrightError
from stemwright.models.architectures import architecture_class, architecture_name
from stemwright.models.base import check_model, config_from_dict, config_to_dict

FORMAT = "stemwright-checkpoint"
FORMAT_VERSION = 1


class CheckpointError(StemwrightError):
    """A checkpoint file is missing, corrupt, tampered with, or does not fit its architecture."""


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def checkpoint_paths(path: str | Path) -> tuple[Path, Path]:
    """``(weights, metadata)`` paths for ``x``, ``x.json`` or ``x.safetensors``."""
    p = Path(path)
    if p.suffix in (".json", ".safetensors"):
        p = p.with_suffix("")
    return p.with_name(p.name + ".safetensors"), p.with_name(p.name + ".json")


def save_checkpoint(
    model: nn.Module,
    path: str | Path,
    *,
    licence: str = "unspecified",
    training: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``path.safetensors`` and ``path.json``; returns the JSON path."""
    check_model(model)
    try:
        architecture = architecture_name(model)
    except ValueError as e:
        raise CheckpointError(str(e)) from None
    weights, meta = checkpoint_paths(path)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write(weights, lambda tmp: save_file(state, str(tmp)))
    doc = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "architecture": architecture,
        "config": config_to_dict(model.config),
        "sources": list(model.sources),
        "samplerate": int(model.samplerate),
        "audio_channels": int(model.audio_channels),
        "licence": licence,
        "training": training or {},
        "metrics": metrics or {},
        "sha256": sha256_file(weights),
        **(extra or {}),
    }
    atomic_write_text(meta, json.dumps(doc, indent=2) + "\n")
    return meta


def read_versioned_json(
    meta: Path, fmt: str, version: int, error: type[Exception], what: str, missing: str | None = None
) -> dict[str, Any]:
    """Read a stemwright JSON document whose ``format`` must be ``fmt`` and ``format_version`` at most ``version``;
    every problem raises ``error`` with a message naming the file."""
    if not meta.exists():
        raise error(missing or f"{meta}: {what} not found")
    try:
        doc = json.loads(meta.read_text())
    except json.JSONDecodeError as e:
        raise error(f"{meta}: not valid JSON ({e})") from None
    if not isinstance(doc, dict) or doc.get("format") != fmt:
        found = doc.get("format") if isinstance(doc, dict) else None
        raise error(f"{meta}: not a {what} (format={found!r})")
    if doc.get("format_version", 0) > version:
        raise error(f"{meta}: format version {doc['format_version']} is newer than this stemwright supports")
    return doc


def read_metadata(path: str | Path) -> dict[str, Any]:
    _, meta = checkpoint_paths(path)
    doc = read_versioned_json(meta, FORMAT, FORMAT_VERSION, CheckpointError, "stemwright checkpoint")
    return doc


def load_checkpoint(path: str | Path, *, verify: bool = True) -> nn.Module:
    """Build the model named in the metadata and load its weights strictly."""
    weights, meta = checkpoint_paths(path)
    doc = read_metadata(path)
    if not weights.exists():
        raise CheckpointError(f"{weights}: checkpoint weights not found")
    if verify:
        digest = sha256_file(weights)
        if digest != doc.get("sha256"):
            raise CheckpointError(f"{weights}: sha256 {digest[:12]}… does not match the metadata's {str(doc.get('sha256'))[:12]}…")
    try:
        cls = architecture_class(doc["architecture"])
    except ValueError as e:
        raise CheckpointError(f"{meta}: {e}") from None
    model = cls(config_from_dict(cls.config_class, doc["config"]))
    state = load_file(str(weights))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{weights}: weights do not fit architecture {doc['architecture']}: {e}") from None
    model.checkpoint_info = {k: v for k, v in doc.items() if k not in ("config",)}
    return model.eval()
