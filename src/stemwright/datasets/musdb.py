"""MUSDB18 / MUSDB18-HQ: ``{train,test}/<track>/{mixture,drums,bass,other,vocals}.wav`` (also ``.flac``), and the
original ``{train,test}/<track>.stem.mp4`` (NI stems: audio streams 0..4 = mixture, drums, bass, other, vocals).
A root that directly holds track folders/files (no split subfolders) is accepted too.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import av
import soundfile as sf

from stemwright.audio.io import AudioError, read_audio
from stemwright.datasets.base import DatasetError, Track, TrackList, pick_split_dir

log = logging.getLogger(__name__)

MUSDB_SOURCES = ("drums", "bass", "other", "vocals")  # musdb's target order (mus.yaml stem_ids 1..4)
STEM_MP4_ORDER = ("mixture", "drums", "bass", "other", "vocals")
STEM_EXTENSIONS = (".wav", ".flac")


def _find_stem(folder: Path, stem: str) -> Path | None:
    for ext in STEM_EXTENSIONS:
        p = folder / f"{stem}{ext}"
        if p.is_file():
            return p
    return None


def _folder_track(folder: Path, subset: str) -> Track:
    files = {s: _find_stem(folder, s) for s in ("mixture", *MUSDB_SOURCES)}
    missing = [s for s, p in files.items() if p is None and s != "mixture"]
    if missing:
        raise DatasetError(f"track {folder.name!r} ({folder}): missing stem(s) {', '.join(missing)} (.wav or .flac)")
    info = {s: sf.info(str(p)) for s, p in files.items() if p is not None}
    rates = {s: i.samplerate for s, i in info.items()}
    frames = {s: i.frames for s, i in info.items()}
    if len(set(rates.values())) > 1:
        raise DatasetError(f"track {folder.name!r} ({folder}): stems have different sample rates {rates}")
    if len(set(frames.values())) > 1:
        raise DatasetError(f"track {folder.name!r} ({folder}): stems have different lengths (frames) {frames}")

    def load() -> tuple[dict[str, np.ndarray], np.ndarray | None, int]:
        audio = {s: read_audio(p) for s, p in files.items() if p is not None}
        mix = audio.pop("mixture", None)
        return {s: a.samples for s, a in audio.items()}, (mix.samples if mix else None), next(iter(rates.values()))

    return Track(folder.name, folder, next(iter(rates.values())), MUSDB_SOURCES, load, subset)


def decode_stem_mp4(path: Path) -> tuple[list[np.ndarray], int]:
    """Decode every audio stream of an NI ``.stem.mp4`` in one pass. -> list of ``(C, T)`` float32, samplerate."""
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as e:  # type: ignore[attr-defined]
        raise DatasetError(f"{path}: not a readable stem file ({e})") from None
    with container:
        streams = [s for s in container.streams if s.type == "audio"]
        if len(streams) < 5:
            raise DatasetError(f"{path}: has {len(streams)} audio stream(s); a MUSDB .stem.mp4 has 5 "
                               "(mixture, drums, bass, other, vocals)")
        blocks: dict[int, list[np.ndarray]] = {s.index: [] for s in streams}
        for packet in container.demux(streams):
            for frame in packet.decode():
                arr = frame.to_ndarray()
                if not frame.format.is_planar:
                    arr = arr.reshape(-1, len(frame.layout.channels)).T
                if frame.format.name.startswith("s16"):
                    arr = arr / 32768.0
                elif frame.format.name.startswith("s32"):
                    arr = arr / 2147483648.0
                blocks[packet.stream.index].append(arr.astype(np.float32))
        rate = streams[0].codec_context.sample_rate
        out = [np.concatenate(blocks[s.index], axis=1) for s in streams]
    n = min(o.shape[1] for o in out)
    if max(o.shape[1] for o in out) - n > 2048:
        raise DatasetError(f"{path}: streams differ in length ({[o.shape[1] for o in out]} samples)")
    return [o[:, :n] for o in out], int(rate)


def _stem_mp4_rate(path: Path) -> int:
    try:
        with av.open(str(path)) as c:
            audio = [s for s in c.streams if s.type == "audio"]
            if len(audio) < 5:
                raise DatasetError(f"{path}: has {len(audio)} audio stream(s); a MUSDB .stem.mp4 has 5 "
                                   "(mixture, drums, bass, other, vocals)")
            return int(audio[0].codec_context.sample_rate)
    except av.error.FFmpegError as e:  # type: ignore[attr-defined]
        raise DatasetError(f"{path}: not a readable stem file ({e})") from None


def _mp4_track(path: Path, subset: str) -> Track:
    rate = _stem_mp4_rate(path)

    def load() -> tuple[dict[str, np.ndarray], np.ndarray | None, int]:
        streams, sr = decode_stem_mp4(path)
        named = dict(zip(STEM_MP4_ORDER, streams))
        mix = named.pop("mixture")
        return named, mix, sr

    return Track(path.name[: -len(".stem.mp4")], path, rate, MUSDB_SOURCES, load, subset)


def open_musdb(root: str | Path, split: str | None = "test") -> TrackList:
    """MUSDB18(-HQ) split as lazy tracks (folders of wav/flac stems, or ``.stem.mp4`` files)."""
    base, subset = pick_split_dir(Path(root).expanduser(), split, "musdb")
    tracks = []
    for entry in sorted(base.iterdir()):
        if entry.is_dir() and any(_find_stem(entry, s) for s in ("mixture", *MUSDB_SOURCES)):
            tracks.append(_folder_track(entry, subset))
        elif entry.is_file() and entry.name.lower().endswith(".stem.mp4"):
            tracks.append(_mp4_track(entry, subset))
    if not tracks:
        raise DatasetError(f"{base}: no MUSDB18 tracks (expected <track>/{{mixture,drums,bass,other,vocals}}.wav "
                           "folders or <track>.stem.mp4 files)")
    return TrackList(tracks, Path(root), "musdb", subset)


__all__ = ["open_musdb", "decode_stem_mp4", "MUSDB_SOURCES", "AudioError"]
