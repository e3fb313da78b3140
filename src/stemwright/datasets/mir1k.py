"""MIR-1K: stereo clips with the accompaniment on the left channel and the singing voice on the right.

The mixture is their plain sum (the 0 dB mixture of the literature: upstream channels already have equal energy).
Layout: ``root/{train,dev,...}/<clip>.{wav,opus,...}`` (the shared copy) or any folder of such clips. libsndfile
decodes the shared Opus files at their 16 kHz input rate.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from stemwright.audio.io import is_audio_path, read_audio
from stemwright.datasets.base import DatasetError, Track, TrackList, pick_split_dir

MIR1K_SOURCES = ("vocals", "accompaniment")


def _clip(path: Path, subset: str) -> Track:
    try:
        info = sf.info(str(path))
        rate, channels = int(info.samplerate), int(info.channels)
    except Exception:  # noqa: BLE001 - e.g. not a libsndfile format: decode to learn
        a = read_audio(path)
        rate, channels = a.samplerate, a.channels
    if channels != 2:
        raise DatasetError(f"MIR-1K clip {path.name!r} ({path}): has {channels} channel(s); expected 2 "
                           "(left = accompaniment, right = voice)")

    def load() -> tuple[dict[str, np.ndarray], np.ndarray | None, int]:
        a = read_audio(path)
        acc, voice = a.samples[0:1], a.samples[1:2]
        return {"vocals": voice, "accompaniment": acc}, voice + acc, a.samplerate

    return Track(path.stem, path, rate, MIR1K_SOURCES, load, subset)


def open_mir1k(root: str | Path, split: str | None = "dev") -> TrackList:
    """MIR-1K clips of a split (mono sources ``(1, T)``: vocals = right channel, accompaniment = left)."""
    base, subset = pick_split_dir(Path(root).expanduser(), split, "mir1k")
    if split and not subset and (base / "Wavfile").is_dir():
        base = base / "Wavfile"  # upstream layout
    clips = [p for p in sorted(base.iterdir()) if p.is_file() and is_audio_path(p)]
    if not clips:
        raise DatasetError(f"{base}: no MIR-1K clips (stereo audio files) found")
    return TrackList([_clip(p, subset) for p in clips], Path(root), "mir1k", subset)
