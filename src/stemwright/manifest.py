"""The separation manifest: ``stemwright.json`` beside the stems of one track.

Written last (atomically) by :meth:`stemwright.Separator.separate_file`, so its presence means the run finished;
read by the CLI (``--skip-existing``), the mixer and the studio. One frozen, versioned dataclass with
:meth:`Manifest.read` / :meth:`Manifest.write`; the file name is :data:`MANIFEST_NAME`, defined only here.

Version history: 1 = the first typed manifest (fields below). A file without ``"version"`` predates it and is
read as version 1 when its fields fit.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

from stemwright.atomic import atomic_write_text
from stemwright.errors import OutputExists, StemwrightError

MANIFEST_NAME = "stemwright.json"
MANIFEST_VERSION = 1
MAX_MANIFEST_BYTES = 1 << 20  # a manifest is a few kB; anything larger is not one of ours


class ManifestError(StemwrightError):
    """A manifest cannot be read: the message names the file and the field."""


@dataclass(frozen=True, kw_only=True)
class SeparationOptions:
    """Everything that decides which files a separation writes and what is in them (compared by
    ``--skip-existing``), plus the run's device (recorded, not compared: it does not change the result's meaning)."""

    segment: float | None
    overlap: float
    shifts: int
    batch_size: int
    residual: str | None
    device: str
    format: str
    bit_depth: int | None
    mp3_bitrate: int | None
    clip_mode: str
    stems: tuple[str, ...] | None
    two_stems: str | None
    filename: str
    first_segment: float | None = None  # the short first chunk rule (engine/chunking.ChunkGrid); None: off

    # Fields that change the audio written; batch size and device change only speed.
    COMPARED = ("segment", "overlap", "shifts", "residual", "format", "bit_depth", "mp3_bitrate", "clip_mode",
                "stems", "two_stems", "filename", "first_segment")

    def same_output(self, other: SeparationOptions) -> bool:
        """Whether a run with ``other`` would write the same stems (up to speed and device)."""
        return all(getattr(self, k) == getattr(other, k) for k in self.COMPARED)


@dataclass(frozen=True, kw_only=True)
class InputInfo:
    """The input a track was separated from. ``size``, ``mtime`` and ``fingerprint`` (see
    :func:`input_fingerprint`) tell ``--skip-existing`` whether the file is still the same one; manifests written
    before they were recorded read them as ``None``."""

    path: str
    samplerate: int
    channels: int
    duration: float
    codec: str
    size: int | None = None
    mtime: float | None = None
    fingerprint: str | None = None


FINGERPRINT_BYTES = 1 << 20  # hash the first and last MiB: cheap on a long file, and catches a replaced song


def input_fingerprint(path: str | Path) -> str:
    """sha256 of a file's size, first MiB and last MiB (hex): a cheap guard that it is the same file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        h.update(str(size).encode())
        h.update(f.read(FINGERPRINT_BYTES))
        if size > FINGERPRINT_BYTES:
            f.seek(max(FINGERPRINT_BYTES, size - FINGERPRINT_BYTES))
            h.update(f.read(FINGERPRINT_BYTES))
    return h.hexdigest()


@dataclass(frozen=True, kw_only=True)
class Manifest:
    """One separated track. ``stems`` maps stem name to its path relative to the manifest's folder."""

    stemwright_version: str
    model: str
    model_samplerate: int
    sources: tuple[str, ...]
    parameters: SeparationOptions
    input: InputInfo
    samplerate: int
    channels: int
    duration: float
    stems: Mapping[str, str]
    clip: Mapping[str, Any]
    seconds: float
    rtf: float | None
    peaks: Mapping[str, float | None]
    created: str
    version: int = MANIFEST_VERSION
    notes: tuple[str, ...] = field(default=())
    # bytes of each stem file as written: a stem emptied or cut short since is seen by --skip-existing
    stem_bytes: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.stems:
            raise ManifestError("manifest: field 'stems' must name at least one stem")
        for name, rel in self.stems.items():
            if not isinstance(rel, str) or Path(rel).is_absolute() or ".." in Path(rel).parts:
                raise ManifestError(f"manifest: stems.{name} must be a path inside the track folder, got {rel!r}")

    def stem_paths(self, folder: str | Path) -> dict[str, Path]:
        """Absolute paths of the stems, for a manifest that sits in ``folder``."""
        return {name: Path(folder) / rel for name, rel in self.stems.items()}

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("sources", "notes"):
            data[key] = list(data[key])
        params = data["parameters"]
        params["stems"] = list(params["stems"]) if params["stems"] is not None else None
        data["stems"], data["clip"], data["peaks"] = dict(self.stems), dict(self.clip), dict(self.peaks)
        data["stem_bytes"] = dict(self.stem_bytes)
        return data

    @classmethod
    def from_dict(cls, data: Any, where: str = "manifest") -> Manifest:
        """Build from parsed JSON; every field is checked and named in the error."""
        if not isinstance(data, dict):
            raise ManifestError(f"{where}: expected a JSON object")
        version = data.get("version", MANIFEST_VERSION)
        if version != MANIFEST_VERSION:
            raise ManifestError(f"{where}: manifest version {version!r} is not supported (this stemwright writes "
                                f"version {MANIFEST_VERSION})")
        try:
            params = _section(data, "parameters", where)
            stems = params.get("stems")
            options = SeparationOptions(**{f.name: params.get(f.name) for f in fields(SeparationOptions)
                                           if f.name != "stems"}, stems=tuple(stems) if stems is not None else None)
            info = InputInfo(**{f.name: _section(data, "input", where).get(f.name) for f in fields(InputInfo)})
            values = {f.name: data[f.name] for f in fields(cls) if f.name in data}
            values.update(parameters=options, input=info, sources=tuple(data.get("sources", ())),
                          notes=tuple(data.get("notes", ())), version=MANIFEST_VERSION)
            if not isinstance(values.setdefault("stem_bytes", {}), dict):
                raise ManifestError(f"{where}: field 'stem_bytes' must be an object")
            for key in ("stems", "clip", "peaks"):
                if not isinstance(values.get(key), dict):
                    raise ManifestError(f"{where}: field {key!r} must be an object")
            manifest = cls(**values)
        except TypeError as e:  # a missing or unexpected field
            raise ManifestError(f"{where}: {e}") from None
        for name in ("samplerate", "model_samplerate", "channels"):
            value = getattr(manifest, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ManifestError(f"{where}: field {name!r} must be a positive integer, got {value!r}")
        if not isinstance(manifest.duration, (int, float)) or not math.isfinite(manifest.duration):
            raise ManifestError(f"{where}: field 'duration' must be a number of seconds")
        return manifest

    @classmethod
    def read(cls, path: str | Path) -> Manifest:
        """Read and check ``path`` (a manifest file, or a track folder holding one)."""
        p = Path(path)
        if p.is_dir():
            p = p / MANIFEST_NAME
        try:
            if p.stat().st_size > MAX_MANIFEST_BYTES:
                raise ManifestError(f"{p}: too large for a manifest ({p.stat().st_size} bytes)")
            data = json.loads(p.read_text(encoding="utf-8"))
        except OSError as e:
            raise ManifestError(f"{p}: cannot read manifest ({e.strerror or e})") from None
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
            raise ManifestError(f"{p}: not a JSON manifest ({type(e).__name__})") from None
        return cls.from_dict(data, where=str(p))

    def write(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write atomically (temporary name + rename); refuses to replace an existing file unless ``overwrite``."""
        p = Path(path)
        if p.exists() and not overwrite:
            raise OutputExists(p, "already exists")
        return atomic_write_text(p, json.dumps(self.to_dict(), indent=2) + "\n")


def _section(data: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = data.get(key)
    if not isinstance(value, dict):
        raise ManifestError(f"{where}: field {key!r} must be an object")
    return value
