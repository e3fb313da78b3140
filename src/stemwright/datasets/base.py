"""A track of a multitrack dataset, loaded lazily, and the sequence of tracks a loader returns."""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import overload

import numpy as np

from stemwright.errors import StemwrightError

log = logging.getLogger(__name__)


class DatasetError(StemwrightError):
    """A dataset or one of its tracks cannot be used; the message names the folder/track and the reason."""


Loader = Callable[[], tuple[dict[str, np.ndarray], np.ndarray | None, int]]


@dataclass(eq=False)
class Track:
    """One song: ``sources`` (name -> ``(C, T)`` float32) and ``mixture`` ``(C, T)``, decoded on first access.

    ``mixture`` is the dataset's own mixture file when it has one (MUSDB18: its ``mixture`` stream, which for the
    AAC ``.stem.mp4`` is not exactly the sum of the stems), otherwise the sum of the sources.
    ``samplerate`` is known without decoding. Call :meth:`unload` to free the decoded audio.
    """

    name: str
    path: Path
    samplerate: int
    source_names: tuple[str, ...]
    loader: Loader = field(repr=False)
    subset: str = ""
    _cache: tuple[dict[str, np.ndarray], np.ndarray | None] | None = field(default=None, repr=False)

    def _load(self) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
        if self._cache is None:
            sources, mixture, rate = self.loader()
            if rate != self.samplerate:
                raise DatasetError(f"track {self.name!r} ({self.path}): decoded at {rate} Hz, header says {self.samplerate} Hz")
            lengths = {k: v.shape for k, v in sources.items()}
            if len({s for s in lengths.values()}) > 1:
                desc = ", ".join(f"{k} {v[0]}ch x {v[1]}" for k, v in lengths.items())
                raise DatasetError(f"track {self.name!r} ({self.path}): stems differ in shape ({desc})")
            first = next(iter(sources.values()))
            if mixture is not None and mixture.shape != first.shape:
                raise DatasetError(
                    f"track {self.name!r} ({self.path}): mixture is {mixture.shape[0]}ch x {mixture.shape[1]} "
                    f"but stems are {first.shape[0]}ch x {first.shape[1]}"
                )
            # The mixture of a track without one is summed only when asked for (scoring estimates never needs
            # it, and on a long track the sum is hundreds of MB of fresh memory).
            self._cache = ({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in sources.items()},
                           None if mixture is None else np.ascontiguousarray(mixture, dtype=np.float32))
        return self._cache

    @property
    def sources(self) -> dict[str, np.ndarray]:
        """Stem name -> ``(C, T)`` float32 (the track's stems, in the dataset's order)."""
        return self._load()[0]

    @property
    def mixture(self) -> np.ndarray:
        """Shape: ``(C, T)`` float32 (the sum of the stems when the dataset has no mixture file)."""
        sources, mixture = self._load()
        if mixture is None:
            stems = iter(sources.values())
            mixture = next(stems).copy()
            for x in stems:  # in place: no (S, C, T) temporary
                mixture += x
            self._cache = (sources, mixture)
        return mixture

    @property
    def duration(self) -> float:
        return next(iter(self.sources.values())).shape[-1] / self.samplerate

    def unload(self) -> None:
        self._cache = None


class TrackList(Sequence[Track]):
    """The tracks of a dataset split, sorted by name; indexing does not decode anything."""

    def __init__(self, tracks: list[Track], root: Path, fmt: str, split: str):
        self.tracks = sorted(tracks, key=lambda t: t.name)
        self.root, self.format, self.split = root, fmt, split

    @overload
    def __getitem__(self, i: int) -> Track: ...
    @overload
    def __getitem__(self, i: slice) -> list[Track]: ...
    def __getitem__(self, i):  # type: ignore[no-untyped-def]
        return self.tracks[i]

    def __len__(self) -> int:
        return len(self.tracks)

    def by_name(self, name: str) -> Track:
        for t in self.tracks:
            if t.name == name:
                return t
        raise DatasetError(f"{self.root}: no track named {name!r}")

    def __repr__(self) -> str:
        return f"TrackList({self.format}, {self.root}, split={self.split!r}, {len(self)} tracks)"


def pick_split_dir(root: Path, split: str | None, fmt: str) -> tuple[Path, str]:
    """``root/split`` if it exists; else ``root`` itself (a folder that directly holds tracks)."""
    if not root.exists():
        raise DatasetError(f"{root}: dataset folder not found")
    if not root.is_dir():
        raise DatasetError(f"{root}: not a folder")
    if split and (root / split).is_dir():
        return root / split, split
    if split:
        log.info("%s has no %r subfolder; using the tracks directly under it", root, split)
    return root, ""
