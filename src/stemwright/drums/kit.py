"""Replacement samples per drum class: the user's files, a folder named by class, or a Hydrogen kit (Debian
``hydrogen-drumkits``, offered as the default where installed)."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from stemwright.audio.io import AudioError, is_audio_path, read_audio
from stemwright.audio.resample import resample
from stemwright.synth.resources import DEFAULT_DRUMKIT_DIRS
from stemwright.synth.sampler import load_kit, usable_kits
from stemwright.errors import StemwrightError

log = logging.getLogger(__name__)

REPLACEABLE = ("kick", "snare", "hat")  # "other" hits (toms, percussion) keep the original sound
GM_NOTES = {"kick": 36, "snare": 38, "hat": 42}  # General MIDI drum notes of the classes (channel 10)
MAX_SAMPLE_S = 10.0


class KitError(StemwrightError):
    """A sample or kit cannot be used; the message names the file or folder and the reason."""


@dataclass(frozen=True)
class Kit:
    """``samples[kind]``: ``(C, T)`` float32 at ``samplerate``; ``sources[kind]``: where each came from;
    ``licences[kind]``: the licence of a sample from a Hydrogen kit (a user's own file has none recorded)."""

    samples: dict[str, np.ndarray]
    sources: dict[str, str]
    samplerate: int
    licences: dict[str, str] = field(default_factory=dict)


def read_sample(path: str | Path, samplerate: int) -> np.ndarray:
    """A one-shot as ``(C, T)`` float32 at ``samplerate``. Raises :class:`KitError` naming the file."""
    p = Path(path)
    try:
        audio = read_audio(p)
    except (AudioError, OSError) as e:
        raise KitError(f"{p}: cannot read sample ({e})") from None
    x = audio.samples
    if x.shape[1] == 0 or not np.any(x):
        raise KitError(f"{p}: the sample is silent")
    if x.shape[1] > MAX_SAMPLE_S * audio.samplerate:
        raise KitError(f"{p}: {x.shape[1] / audio.samplerate:.1f} s is not a one-shot (at most {MAX_SAMPLE_S:g} s)")
    return resample(x, audio.samplerate, samplerate) if audio.samplerate != samplerate else x


def hydrogen_kits(dirs: tuple[str, ...] = DEFAULT_DRUMKIT_DIRS) -> dict[str, Path]:
    """Installed Hydrogen kits with a kick, a snare and a hi-hat: folder name -> folder (empty when none)."""
    folders = tuple(sorted(f for d in dirs if Path(d).is_dir() for f in Path(d).iterdir() if (f / "drumkit.xml").is_file()))
    return {k.folder.name: k.folder for k in usable_kits(folders) if 42 in k.notes}


def _hydrogen(folder: Path, samplerate: int) -> tuple[dict[str, tuple[np.ndarray, str]], str]:
    """The kit's kick / snare / hat samples and its licence line (samples mixed into a user's drums carry it)."""
    try:
        kit = load_kit(folder)
    except ValueError as e:
        raise KitError(str(e)) from None
    out = {}
    for kind, note in GM_NOTES.items():
        if note in kit.notes:
            layer = max(kit.notes[note][0].layers, key=lambda la: (la.vmax, la.gain))  # the loudest layer
            out[kind] = (read_sample(layer.path, samplerate), str(layer.path))
    by = f" by {kit.author}" if kit.author else ""
    return out, f"{kit.licence} (Hydrogen kit {kit.name!r}{by}; Debian: /usr/share/doc/hydrogen-drumkits/copyright)"


def _folder(folder: Path, samplerate: int) -> dict[str, tuple[np.ndarray, str]]:
    out = {}
    files = sorted(f for f in folder.iterdir() if f.is_file() and is_audio_path(f))
    for kind in REPLACEABLE:
        match = next((f for f in files if f.stem.lower().startswith(kind)), None)
        if match is not None:
            out[kind] = (read_sample(match, samplerate), str(match))
    if not out:
        raise KitError(f"{folder}: no sample named kick*, snare* or hat* (and no drumkit.xml)")
    return out


def load_drum_kit(samplerate: int, *, kit: str | Path | None = None, files: dict[str, str | Path] | None = None,
                  default_hydrogen: bool = True) -> Kit:
    """Samples per class: ``files`` (``{"kick": path, ...}``) over ``kit`` (a folder of ``kick*``/``snare*``/
    ``hat*`` files, a Hydrogen kit folder, or the name of an installed Hydrogen kit); with neither, the first
    installed Hydrogen kit when ``default_hydrogen``. Raises :class:`KitError`."""
    chosen: dict[str, tuple[np.ndarray, str]] = {}
    licence = ""  # a Hydrogen kit's, for the samples taken from it
    if kit is not None:
        installed = hydrogen_kits()
        folder = Path(kit)
        if not folder.exists() and str(kit) in installed:
            folder = installed[str(kit)]
        if not folder.is_dir():
            names = ", ".join(installed) or "none installed"
            raise KitError(f"{kit}: not a folder of samples nor an installed Hydrogen kit (Hydrogen kits: {names})")
        if (folder / "drumkit.xml").is_file():
            chosen, licence = _hydrogen(folder, samplerate)
        else:
            chosen = _folder(folder, samplerate)
    elif not files and default_hydrogen:
        installed = hydrogen_kits()
        if not installed:
            raise KitError("no samples given (--kick/--snare/--hat or --kit) and no Hydrogen kit installed "
                           "(apt install hydrogen-drumkits)")
        name = next(iter(installed))
        log.info("drum samples from the Hydrogen kit %r", name)
        chosen, licence = _hydrogen(installed[name], samplerate)
    from_kit = set(chosen) if licence else set()
    for kind, path in (files or {}).items():
        if kind not in REPLACEABLE:
            raise KitError(f"{kind}: not a drum class to replace (choose {', '.join(REPLACEABLE)})")
        chosen[kind] = (read_sample(path, samplerate), str(path))
        from_kit.discard(kind)
    if not chosen:
        raise KitError("no drum samples: give --kick, --snare, --hat or --kit")
    return Kit({k: v[0] for k, v in chosen.items()}, {k: v[1] for k, v in chosen.items()}, samplerate,
               licences={k: licence for k in sorted(from_kit)})


__all__ = ["Kit", "KitError", "GM_NOTES", "REPLACEABLE", "hydrogen_kits", "load_drum_kit", "read_sample"]
