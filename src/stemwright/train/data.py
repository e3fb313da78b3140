"""Training and validation data: stem sources, random remixing, chunk reading.

A *song* is a dict of stem name -> audio file (MUSDB18 layout ``DIR/<song>/<stem>.wav``, any folder of stems, or a
MIR-1K clip whose left channel is the accompaniment and right channel the voice). :class:`RemixSampler` draws
training examples: for each model source it picks a song that has that stem (another song per source with
probability ``remix_prob``: random remixing, as in Demucs' training), cuts a random excerpt, augments it and sums
the stems into the mixture, so the mixture is always the exact sum of the targets.
"""
from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import soxr

from stemwright.audio.io import is_audio_path, read_audio
from stemwright.errors import StemwrightError

log = logging.getLogger(__name__)

MUSDB_STEMS = ("vocals", "drums", "bass", "other")
_DECODED: dict[str, tuple[np.ndarray, int]] = {}  # decoded non-seekable files (opus, mp3...), by path
SEEKABLE = (".wav", ".wave", ".flac", ".aif", ".aiff")


class DataError(StemwrightError):
    """A dataset folder is missing, empty, or not in the expected layout."""


@dataclass
class StemFile:
    """One stem of a song: a file, optionally one channel of it (MIR-1K keeps two stems in one file)."""

    path: Path
    channel: int | None = None  # None: all channels
    gain: float = 1.0
    _cache: np.ndarray | None = field(default=None, repr=False)
    samplerate: int = 0
    frames: int = 0
    channels: int = 0

    def probe(self) -> None:
        if self.path.suffix.lower() in SEEKABLE:
            info = sf.info(str(self.path))
            self.samplerate, self.frames, self.channels = info.samplerate, info.frames, info.channels
        else:
            self._load()
        if self.channel is not None:
            self.channels = 1

    def _load(self) -> np.ndarray:
        if self._cache is None:
            # Shared per file: MIR-1K keeps two stems in one file, decode it once.
            key = str(self.path)
            if key not in _DECODED:
                audio = read_audio(self.path)
                _DECODED[key] = (audio.samples, audio.samplerate)
            self._cache, self.samplerate = _DECODED[key]
            self.frames, self.channels = self._cache.shape[1], self._cache.shape[0]
        return self._cache

    def read(self, start: int, length: int) -> np.ndarray:
        """Frames ``[start, start+length)`` (zeros past the end). Shape: ``(C, length)`` float32."""
        start = max(0, start)
        if self.path.suffix.lower() in SEEKABLE and self._cache is None:
            data, _ = sf.read(str(self.path), start=min(start, self.frames), frames=length, dtype="float32", always_2d=True)
            data = data.T
        else:
            data = self._load()[:, start : start + length]
        if self.channel is not None:
            data = data[self.channel : self.channel + 1]
        if data.shape[1] < length:
            data = np.pad(data, ((0, 0), (0, length - data.shape[1])))
        return data * self.gain if self.gain != 1.0 else data


@dataclass
class Song:
    name: str
    stems: dict[str, StemFile]

    @property
    def samplerate(self) -> int:
        return next(iter(self.stems.values())).samplerate

    @property
    def frames(self) -> int:
        return min(s.frames for s in self.stems.values())


def _check_dir(path: Path, kind: str) -> Path:
    path = Path(path).expanduser()
    if not path.is_dir():
        raise DataError(f"{path}: {kind} dataset folder not found")
    return path


def stem_folder_songs(root: str | Path, stems: tuple[str, ...] | None = None) -> list[Song]:
    """Songs of a MUSDB18-style folder (``ROOT/<song>/<stem>.<ext>``; also ``ROOT/train/<song>/...``), or any folder
    of stems laid out that way. ``mixture.*`` is ignored (training mixes are rebuilt from the stems).
    """
    root = _check_dir(Path(root), "stem")
    if (root / "train").is_dir() and not any(is_audio_path(p) for p in root.glob("*/*")):
        root = root / "train"
    songs = []
    for song_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        files = {p.stem: p for p in sorted(song_dir.iterdir()) if p.is_file() and is_audio_path(p)}
        files.pop("mixture", None)
        if stems is not None:
            files = {k: v for k, v in files.items() if k in stems}
        if files:
            songs.append(Song(song_dir.name, {k: StemFile(v) for k, v in files.items()}))
    if not songs:
        if any(p.name.lower().endswith(".stem.mp4") for p in root.iterdir()):
            # Random excerpts of AAC streams would mean decoding whole files per example; MUSDB18-HQ or wav is the
            # format training reads (the .stem.mp4 files are fine for `stemwright eval`).
            raise DataError(
                f"{root}: holds .stem.mp4 files; training reads stem folders (ROOT/<song>/<stem>.wav, as MUSDB18-HQ). "
                "Convert each file's streams 1-4 (drums, bass, other, vocals) to wav first, e.g. "
                "ffmpeg -i SONG.stem.mp4 -map 0:a:1 SONG/drums.wav -map 0:a:2 SONG/bass.wav "
                "-map 0:a:3 SONG/other.wav -map 0:a:4 SONG/vocals.wav"
            )
        raise DataError(f"{root}: no song folders with stem files (expected ROOT/<song>/<stem>.wav)")
    return songs


def mir1k_songs(root: str | Path, stems: tuple[str, ...] | None = None) -> list[Song]:
    """MIR-1K clips (``ROOT/*.opus`` or ``*.wav``): channel 0 = accompaniment, channel 1 = voice (the MIR-1K layout)."""
    root = _check_dir(Path(root), "MIR-1K")
    files = sorted(p for p in root.iterdir() if p.suffix.lower() in (".opus", ".wav", ".flac", ".ogg"))
    if not files:
        raise DataError(f"{root}: no MIR-1K clips (*.opus / *.wav)")
    wanted = stems or ("vocals", "accompaniment")
    songs = []
    for f in files:
        stem_map = {}
        if "vocals" in wanted:
            stem_map["vocals"] = StemFile(f, channel=1)
        if "accompaniment" in wanted:
            stem_map["accompaniment"] = StemFile(f, channel=0)
        songs.append(Song(f.stem, stem_map))
    return songs


def load_songs(spec: dict[str, Any]) -> list[Song]:
    """Songs of one dataset entry of a training config: ``{type: musdb|synth|stems|mir1k, path, stems?, max_songs?}``."""
    kind = spec.get("type", "stems")
    stems = tuple(spec["stems"]) if spec.get("stems") else None
    if kind in ("musdb", "synth", "stems"):
        songs = stem_folder_songs(spec["path"], stems)
    elif kind == "mir1k":
        songs = mir1k_songs(spec["path"], stems)
    else:
        raise DataError(f"dataset type {kind!r} unknown (musdb, synth, stems, mir1k)")
    if spec.get("max_songs"):
        songs = songs[: int(spec["max_songs"])]
    for song in songs:
        for s in song.stems.values():
            s.probe()
    return songs


def resample_chunk(x: np.ndarray, sr_in: float, sr_out: int, length: int) -> np.ndarray:
    """Resample ``(C, T)`` and crop/pad to exactly ``length`` frames (fast soxr quality: training only)."""
    if abs(sr_in - sr_out) > 1e-6:
        x = soxr.resample(np.ascontiguousarray(x.T), sr_in, sr_out, quality="HQ").T
    if x.shape[1] < length:
        x = np.pad(x, ((0, 0), (0, length - x.shape[1])))
    return np.ascontiguousarray(x[:, :length], dtype=np.float32)


def to_channels(x: np.ndarray, channels: int, rng: random.Random | None = None) -> np.ndarray:
    """Mono -> stereo with a random equal-power pan (centred without ``rng``); stereo -> mono by averaging."""
    if x.shape[0] == channels:
        return x
    if x.shape[0] == 1 and channels == 2:
        pan = rng.uniform(-0.3, 0.3) if rng else 0.0
        theta = (pan + 1) * np.pi / 4
        return np.concatenate([x * np.cos(theta), x * np.sin(theta)]) * np.sqrt(2)
    return x.mean(axis=0, keepdims=True) if channels == 1 else np.repeat(x[:1], channels, axis=0)


def stem_for(song: Song, source: str) -> list[StemFile] | None:
    """The stem files that make up ``source`` in ``song``: the stem itself, or, for ``accompaniment``, every
    non-vocal stem. ``None`` when the song cannot provide it."""
    if source in song.stems:
        return [song.stems[source]]
    if source == "accompaniment":
        others = [s for k, s in song.stems.items() if k != "vocals"]
        return others or None
    return None
