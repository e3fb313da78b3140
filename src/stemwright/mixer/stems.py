"""Loading a folder of stems for mixing, mashups and diagnostics.

Two kinds of folder are accepted:

- one written by ``stemwright separate``: its ``stemwright.json`` manifest lists ``"stems": {name: relative path}``
  and ``"samplerate"``;
- any folder of audio files, one per stem (the stem name is the file name without extension). Without a manifest
  the stems are the files named after a known stem (:data:`KNOWN_STEMS` and their ``no_*`` complements), or the
  names given (``--stems``); anything else (an earlier ``mix`` output such as ``acapella.wav``, a
  ``backup.mp3``, an NI ``.stem.mp4`` export) is listed in a warning, never mixed in. A file called
  ``mixture.*`` is not a stem: it is kept aside as :attr:`StemSet.mixture_path` (MUSDB folders have one).

Stems whose rate differs from the folder's are resampled (soxr), shorter stems are zero-padded at the end; both are
reported as warnings (logged and kept in :attr:`StemSet.warnings`), never done silently.
"""
from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from stemwright.audio.io import AudioError, is_audio_path, read_audio
from stemwright.audio.resample import resample
from stemwright.manifest import MANIFEST_NAME
from stemwright.mixer.effects import MixError

log = logging.getLogger(__name__)

MANIFEST = MANIFEST_NAME  # defined once, in stemwright.manifest
MIXTURE_NAMES = ("mixture",)
# Every stem name a published model writes (the catalogue's sources), plus their no_* complements (--two-stems).
KNOWN_STEMS = ("vocals", "drums", "bass", "other", "guitar", "piano", "accompaniment")


def is_known_stem(name: str) -> bool:
    """Whether a file named ``name`` (without extension) is taken as a stem in a folder without a manifest."""
    return name in KNOWN_STEMS or (name.startswith("no_") and name[3:] in KNOWN_STEMS)


@dataclass
class StemSet:
    """Stems of one song. ``audio[name]`` has shape ``(C, T)`` float32; all stems share ``samplerate`` and ``T``."""

    audio: dict[str, np.ndarray]
    samplerate: int
    path: Path | None = None
    mixture_path: Path | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return list(self.audio)

    @property
    def length(self) -> int:
        return next(iter(self.audio.values())).shape[1] if self.audio else 0

    @property
    def duration(self) -> float:
        return self.length / self.samplerate

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            return self.audio[name]
        except KeyError:
            raise MixError(f"unknown stem {name!r} (stems: {', '.join(self.names)})") from None


def _warn(warnings: list[str], message: str) -> None:
    log.warning(message)
    warnings.append(message)


def align_stems(
    audio: dict[str, np.ndarray], rates: dict[str, int], target_rate: int | None = None, origin: str = "stems"
) -> tuple[dict[str, np.ndarray], int, list[str]]:
    """Bring stems to one sample rate (the most common, or ``target_rate``) and one length (the longest).

    Shape: each ``(C, T_i)`` -> ``(C, T)``. Returns the new dict (inputs untouched), the rate and the warnings.
    """
    if not audio:
        raise MixError(f"{origin}: no stems")
    warnings: list[str] = []
    out: dict[str, np.ndarray] = {}
    for name, x in audio.items():
        x = np.asarray(x, dtype=np.float32)
        if x.ndim == 1:
            x = x[None]
        if x.ndim != 2 or x.shape[0] > 2 or x.shape[0] < 1:
            raise MixError(f"{origin}: stem {name!r} must have shape (channels, time) with 1 or 2 channels, got {x.shape}")
        if not np.isfinite(x).all():  # as a file with NaN/inf samples is refused (read_audio)
            raise MixError(f"{origin}: stem {name!r} contains {int((~np.isfinite(x)).sum())} non-finite (NaN/inf) "
                           "samples")
        out[name] = x
    rate = target_rate or Counter(rates.values()).most_common(1)[0][0]
    for name in out:
        if rates[name] != rate:
            _warn(warnings, f"{origin}: stem {name!r} is at {rates[name]} Hz; resampled to {rate} Hz")
            out[name] = resample(out[name], rates[name], rate)
    length = max(x.shape[1] for x in out.values())
    for name, x in out.items():
        if x.shape[1] < length:
            _warn(warnings, f"{origin}: stem {name!r} is {(length - x.shape[1]) / rate:.3f} s shorter than the longest "
                            f"stem; padded with silence")
            out[name] = np.pad(x, ((0, 0), (0, length - x.shape[1])))
    channels = {x.shape[0] for x in out.values()}
    if len(channels) > 1:
        mono = [n for n, x in out.items() if x.shape[0] == 1]
        _warn(warnings, f"{origin}: stems {', '.join(mono)} are mono while others are stereo; mono stems are panned "
                        f"with the mono pan law (centre = -3 dB per side)")
    return out, rate, warnings


def _manifest_files(folder: Path) -> tuple[dict[str, Path], int | None]:
    path = folder / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise MixError(f"{path}: cannot read manifest ({e})") from None
    except (UnicodeDecodeError, RecursionError) as e:
        raise MixError(f"{path}: cannot read manifest (not a JSON text: {type(e).__name__})") from None
    stems = data.get("stems") if isinstance(data, dict) else None
    if not isinstance(stems, dict) or not stems:
        raise MixError(f"{path}: field 'stems' must be a non-empty object {{name: relative path}}")
    rate = data.get("samplerate")
    if rate is not None and (isinstance(rate, bool) or not isinstance(rate, int) or rate <= 0):
        raise MixError(f"{path}: field 'samplerate' must be a positive integer, got {rate!r}")
    files = {}
    for name, rel in stems.items():
        if not isinstance(rel, str):
            raise MixError(f"{path}: stems.{name} must be a relative path, got {rel!r}")
        files[name] = (folder / rel).resolve()
    return files, rate


def _stem_name(path: Path) -> str:
    name = path.name
    return name[: -len(".stem.mp4")] if name.lower().endswith(".stem.mp4") else path.stem


def _folder_files(folder: Path, names: Sequence[str] | None,
                  exclude: set[Path]) -> tuple[dict[str, Path], Path | None, list[str]]:
    """Stems of a folder without a manifest (see the module docstring), its mixture, and the audio files left out."""
    files: dict[str, Path] = {}
    mixture = None
    other: list[str] = []
    for p in sorted(folder.iterdir()):
        if not p.is_file() or p.name.startswith(".") or not is_audio_path(p) or p.resolve() in exclude:
            continue
        name = _stem_name(p)
        if name.lower() in MIXTURE_NAMES:
            mixture = p
            continue
        if p.name.lower().endswith(".stem.mp4") or not (name in names if names else is_known_stem(name)):
            other.append(p.name)
            continue
        if name in files:
            raise MixError(f"{folder}: two files for stem {name!r} ({files[name].name}, {p.name})")
        files[name] = p
    if not files:
        if other:
            raise MixError(f"{folder}: no stem files found (found {', '.join(other)}: not known stem names; name the "
                           "stems to use with --stems)")
        raise MixError(f"{folder}: no audio files found (expected one file per stem or a {MANIFEST} manifest)")
    return files, mixture, other


def _chosen(files: dict[str, Path], names: Sequence[str] | None, folder: Path) -> dict[str, Path]:
    """The named stems of ``files`` (all when ``names`` is empty); :class:`MixError` naming a missing one."""
    if not names:
        return files
    missing = [n for n in names if n not in files]
    if missing:
        raise MixError(f"{folder}: no stem {missing[0]!r} (stems: {', '.join(files)})")
    return {n: files[n] for n in dict.fromkeys(names)}


def load_stems(path: str | Path, names: Sequence[str] | None = None, exclude: Iterable[str | Path] = ()) -> StemSet:
    """Read the stems of a folder (see module docstring): ``names`` picks them (default: the manifest's, else the
    files named after known stems); files in ``exclude`` (the command's own output) are never stems. Errors name
    the folder or file and the reason."""
    folder = Path(path)
    if not folder.exists():
        raise MixError(f"{folder}: stems folder not found")
    if not folder.is_dir():
        raise MixError(f"{folder}: not a folder (expected a folder of stems, e.g. one written by 'stemwright separate')")
    mixture = None
    left_out: list[str] = []
    if (folder / MANIFEST).is_file():
        files, rate = _manifest_files(folder)
        candidates = [p for p in folder.iterdir() if p.is_file() and _stem_name(p).lower() in MIXTURE_NAMES and is_audio_path(p)]
        mixture = candidates[0] if candidates else None
    else:
        (files, mixture, left_out), rate = _folder_files(folder, names, {Path(p).resolve() for p in exclude}), None
    files = _chosen(files, names, folder)
    audio, rates = {}, {}
    for name, f in files.items():
        try:
            a = read_audio(f)
        except AudioError as e:
            raise MixError(f"stem {name!r}: {e}") from None
        audio[name], rates[name] = a.samples, a.samplerate
    if rate is not None and rate not in rates.values():
        log.info("%s: manifest rate %d Hz differs from every stem file; using it as the mixing rate", folder, rate)
    aligned, sr, warnings = align_stems(audio, rates, rate, origin=str(folder))
    if left_out:
        _warn(warnings, f"{folder}: not taken as stems (not known stem names; name the stems with --stems): "
                        f"{', '.join(left_out)}")
    return StemSet(aligned, sr, folder, mixture, warnings)


def as_stemset(stems: object, samplerate: int | None = None) -> StemSet:
    """Accept a :class:`StemSet`, a folder path, or a dict ``{name: (C, T) array}`` plus ``samplerate``."""
    if isinstance(stems, StemSet):
        return stems
    if isinstance(stems, (str, Path)):
        return load_stems(stems)
    if isinstance(stems, dict):
        if samplerate is None:
            raise MixError("samplerate: required when stems are given as a dict of arrays")
        if not isinstance(samplerate, int) or samplerate <= 0:
            raise MixError(f"samplerate: must be a positive integer, got {samplerate!r}")
        aligned, sr, warnings = align_stems(dict(stems), {k: samplerate for k in stems}, samplerate)
        return StemSet(aligned, sr, None, None, warnings)
    raise MixError(f"stems: expected a folder path, a StemSet or a dict of arrays, got {type(stems).__name__}")
