"""A generic folder of stems: ``root/[split/]<track>/<stem>.<audio ext>`` with any stem names.

A file named ``mixture.*`` (or ``mix.*``) is the track's mixture; otherwise the mixture is the sum of the stems.
Every track must have the same stem names (the first track defines them).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from stemwright.audio.io import is_audio_path, read_audio
from stemwright.datasets.base import DatasetError, Track, TrackList, pick_split_dir

MIXTURE_NAMES = ("mixture", "mix")


def _stem_name(p: Path) -> str:
    return p.name[: -len(".stem.mp4")] if p.name.lower().endswith(".stem.mp4") else p.stem


def _rate(p: Path) -> int:
    try:
        return int(sf.info(str(p)).samplerate)
    except Exception:  # noqa: BLE001 - not a libsndfile format: decode to learn the rate
        return read_audio(p).samplerate


def folder_track(folder: Path, subset: str = "", expected: tuple[str, ...] | None = None) -> Track:
    """One folder of stems as a lazy :class:`Track`; ``expected`` stem names, if given, must all be present."""
    files = {_stem_name(p): p for p in sorted(folder.iterdir()) if p.is_file() and is_audio_path(p)}
    mix_key = next((k for k in MIXTURE_NAMES if k in files), None)
    stems = tuple(k for k in files if k != mix_key)
    if not stems:
        raise DatasetError(f"track {folder.name!r} ({folder}): no stem audio files")
    if expected is not None:
        missing = [s for s in expected if s not in stems]
        if missing:
            raise DatasetError(f"track {folder.name!r} ({folder}): missing stem(s) {', '.join(missing)}")
        stems = expected
    rate = _rate(files[stems[0]])

    def load() -> tuple[dict[str, np.ndarray], np.ndarray | None, int]:
        audio = {s: read_audio(files[s]) for s in stems}
        rates = {s: a.samplerate for s, a in audio.items()}
        if len(set(rates.values())) > 1:
            raise DatasetError(f"track {folder.name!r} ({folder}): stems have different sample rates {rates}")
        mix = read_audio(files[mix_key]).samples if mix_key else None
        return {s: a.samples for s, a in audio.items()}, mix, next(iter(rates.values()))

    return Track(folder.name, folder, rate, stems, load, subset)


def open_folder(root: str | Path, split: str | None = None, stems: tuple[str, ...] | None = None) -> TrackList:
    """Every sub-folder holding audio files is a track."""
    base, subset = pick_split_dir(Path(root).expanduser(), split, "folder")
    folders = [d for d in sorted(base.iterdir()) if d.is_dir() and any(is_audio_path(p) for p in d.iterdir())]
    if not folders:
        raise DatasetError(f"{base}: no track folders with audio files")
    first = folder_track(folders[0], subset, stems)
    tracks = [first] + [folder_track(f, subset, first.source_names) for f in folders[1:]]
    return TrackList(tracks, Path(root), "folder", subset)
