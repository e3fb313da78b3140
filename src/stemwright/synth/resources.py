"""Where the synthesiser's instruments live: the FluidSynth binary, the GM soundfonts and the Hydrogen drum kits.

All of them come from Debian packages (installed by ``scripts/setup.sh``). When one is missing the generator stops
with :class:`MissingPackageError`, whose message names the Debian package(s) to install.

Search paths can be overridden with parameters or the environment variables ``STEMWRIGHT_SOUNDFONT_DIRS``,
``STEMWRIGHT_DRUMKIT_DIRS`` (``os.pathsep``-separated folders) and ``STEMWRIGHT_FLUIDSYNTH_LIB`` (the FluidSynth
shared library, a path or soname).
"""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass
from pathlib import Path

from stemwright.errors import StemwrightError
from stemwright.synth.fluid import find_library

DEFAULT_SOUNDFONT_DIRS = ("/usr/share/sounds/sf2", "/usr/share/sounds/sf3", "/usr/share/soundfonts")
DEFAULT_DRUMKIT_DIRS = ("/usr/share/hydrogen/data/drumkits",)


@dataclass(frozen=True)
class SoundfontInfo:
    """A GM soundfont shipped by a Debian package, with the licence recorded in the package's copyright file."""

    key: str
    filenames: tuple[str, ...]
    package: str
    licence: str
    weight: float  # relative probability of being picked for a part


SOUNDFONTS: tuple[SoundfontInfo, ...] = (
    SoundfontInfo("fluidr3", ("FluidR3_GM.sf2",), "fluid-soundfont-gm", "MIT (Frank Wen)", 0.45),
    SoundfontInfo(
        "musescore",
        ("MuseScore_General_Full.sf3", "MuseScore_General.sf3", "MuseScore_General.sf2"),
        "musescore-general-soundfont",
        "MIT (parts public domain / CC0; S. Christian Collins)",
        0.35,
    ),
    SoundfontInfo("timgm6mb", ("TimGM6mb.sf2",), "timgm6mb-soundfont", "GPL-2 (Tim Brechbill)", 0.20),
)


class MissingPackageError(StemwrightError):
    """A system package the synthesiser needs is not installed; the message names the Debian package(s)."""

    def __init__(self, what: list[str], packages: list[str]):
        self.packages = sorted(set(packages))
        super().__init__(
            "stemwright synth cannot run: "
            + "; ".join(what)
            + f". Install the Debian package(s): sudo apt-get install {' '.join(self.packages)}"
            + " (or run scripts/setup.sh --dev)"
        )


@dataclass(frozen=True)
class Resources:
    """Resolved paths of everything the renderer uses."""

    fluidsynth: str  # the libfluidsynth shared library (path or soname)
    soundfonts: dict[str, Path]  # key -> file
    drumkits: tuple[Path, ...]  # folders holding drumkit.xml

    def soundfont_info(self, key: str) -> SoundfontInfo:
        return next(s for s in SOUNDFONTS if s.key == key)


def _dirs(param: list[str | Path] | tuple[str | Path, ...] | None, env: str, default: tuple[str, ...]) -> list[Path]:
    if param is not None:
        return [Path(p) for p in param]
    value = os.environ.get(env)
    if value:
        return [Path(p) for p in value.split(os.pathsep) if p]
    return [Path(p) for p in default]


def find_resources(
    soundfont_dirs: list[str | Path] | None = None,
    drumkit_dirs: list[str | Path] | None = None,
    fluidsynth: str | None = None,
) -> Resources:
    """Locate the FluidSynth library, the three GM soundfonts and the Hydrogen drum kits.

    Raises :class:`MissingPackageError` listing every missing piece and its Debian package.
    """
    missing: list[str] = []
    packages: list[str] = []
    library = fluidsynth or os.environ.get("STEMWRIGHT_FLUIDSYNTH_LIB")
    if library:
        try:
            ctypes.CDLL(library)
        except OSError:
            library = None
    else:
        library = find_library()
    if not library:
        missing.append("the FluidSynth library (libfluidsynth.so.3, Debian libfluidsynth3) was not found")
        packages.append("fluidsynth")
    sf_dirs = _dirs(soundfont_dirs, "STEMWRIGHT_SOUNDFONT_DIRS", DEFAULT_SOUNDFONT_DIRS)
    fonts: dict[str, Path] = {}
    for info in SOUNDFONTS:
        found = next((d / n for n in info.filenames for d in sf_dirs if (d / n).is_file()), None)
        if found is None:
            missing.append(f"soundfont {info.filenames[0]} not found in {', '.join(map(str, sf_dirs))}")
            packages.append(info.package)
        else:
            fonts[info.key] = found
    kit_dirs = _dirs(drumkit_dirs, "STEMWRIGHT_DRUMKIT_DIRS", DEFAULT_DRUMKIT_DIRS)
    kits = tuple(sorted(p.parent for d in kit_dirs if d.is_dir() for p in d.glob("*/drumkit.xml")))
    if not kits:
        missing.append(f"no Hydrogen drum kits (*/drumkit.xml) in {', '.join(map(str, kit_dirs))}")
        packages.append("hydrogen-drumkits")
    if missing:
        raise MissingPackageError(missing, packages)
    return Resources(fluidsynth=str(library), soundfonts=fonts, drumkits=kits)
