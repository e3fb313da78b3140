"""Dataset loaders: MUSDB18 (wav/flac folders, MUSDB18-HQ, ``.stem.mp4``), a generic folder of stems, MIR-1K.

``open_dataset(root, format, split) -> Sequence[Track]``; each :class:`Track` decodes its audio on first access.
"""
from __future__ import annotations

from pathlib import Path

from stemwright.datasets.base import DatasetError, Track, TrackList
from stemwright.datasets.folder import open_folder
from stemwright.datasets.mir1k import MIR1K_SOURCES, open_mir1k
from stemwright.datasets.musdb import MUSDB_SOURCES, decode_stem_mp4, open_musdb

FORMATS = ("musdb", "folder", "mir1k")


def open_dataset(root: str | Path, format: str = "musdb", split: str | None = "test") -> TrackList:  # noqa: A002
    """Open a dataset split as a lazy sequence of tracks.

    ``format``: ``musdb`` (MUSDB18/-HQ folders of wav/flac stems or ``.stem.mp4`` files), ``folder`` (any stem
    names), ``mir1k``. ``split``: sub-folder such as ``train``/``test``/``dev``; a root without that sub-folder that
    directly holds tracks is used as is.
    """
    if format == "musdb":
        return open_musdb(root, split)
    if format == "folder":
        return open_folder(root, split)
    if format == "mir1k":
        return open_mir1k(root, split)
    raise DatasetError(f"unknown dataset format {format!r}; choose one of {', '.join(FORMATS)}")


__all__ = [
    "open_dataset", "open_musdb", "open_folder", "open_mir1k", "decode_stem_mp4", "Track", "TrackList",
    "DatasetError", "FORMATS", "MUSDB_SOURCES", "MIR1K_SOURCES",
]
