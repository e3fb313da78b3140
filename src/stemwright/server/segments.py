"""A song's stems as time-ordered segments of raw float32, for the page to play while the rest is separated.

A running job hands each final block of its stems (``Separator.separate_file(on_block=...)``) to a
:class:`SegmentLog`, which writes it as a numbered file beside the job's folder (``jobs/JOB.segments/K.f32``,
written to a temporary name and renamed, then announced) and keeps the index (start frame and length of each).
Once the job's stems are recorded the segment files go, and the same segments are read from the stems
themselves on a fixed grid (:data:`FINISHED_SEGMENT_FRAMES`), which is also how a finished song's mixer loads:
nothing for the page to decode, just numbers to copy into its audio buffers.

Wire format of one segment: little-endian float32, planar: for each stem in the index's order, for each channel,
``frames`` samples.
"""
from __future__ import annotations

import os
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import soundfile as sf

SEGMENT_SUFFIX = ".segments"
MIN_SEGMENT_S = 2.0  # blocks are gathered to this length (the first goes out at once): bounds the count
FINISHED_SEGMENT_FRAMES = 1 << 19  # ~11.9 s at 44.1 kHz: 16 MiB a segment for 4 stereo stems
MAX_INDEX = 512  # index entries in one answer (the page pages through longer songs)


@dataclass(frozen=True)
class Segment:
    """Frames ``[start, start + frames)`` of every stem."""

    start: int
    frames: int


@dataclass(frozen=True)
class SegmentIndex:
    """What the page needs to place segments: the stems (their order in a segment), channels, rate, the song's
    expected length in frames and the segments so far; ``done`` once every segment is listed."""

    job_id: str
    stems: tuple[str, ...]
    channels: int
    samplerate: int
    frames: int
    segments: tuple[Segment, ...]
    done: bool

    def page(self, first: int) -> dict:
        """The index as JSON, listing at most :data:`MAX_INDEX` segments from number ``first``."""
        part = self.segments[first : first + MAX_INDEX]
        return {"job_id": self.job_id, "stems": list(self.stems), "channels": self.channels,
                "samplerate": self.samplerate, "frames": self.frames, "count": len(self.segments), "first": first,
                "segments": [[s.start, s.frames] for s in part], "done": self.done}


class SegmentLog:
    """The segments of one running job: ``add`` is its ``on_block`` callback (the job's worker thread), the
    readers are request threads."""

    def __init__(self, folder: Path, job_id: str, samplerate: int, expected_frames: int,
                 announce: Callable[[float], None] | None = None) -> None:
        """``announce`` is told the seconds separated so far after each segment (the job's live state)."""
        self.folder = folder
        self.announce = announce
        self.job_id = job_id
        self.samplerate = samplerate
        self.expected_frames = expected_frames
        self._lock = threading.Lock()
        self._segments: list[Segment] = []
        self._pending: list[dict[str, np.ndarray]] = []
        self._pending_frames = 0
        self._written = 0
        self.stems: tuple[str, ...] = ()
        self.channels = 0
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)

    def add(self, block: dict[str, np.ndarray]) -> None:
        """One final block of the stems, ``{stem: (C, m)}`` in time order."""
        if not self.stems:
            self.stems = tuple(block)
            self.channels = int(next(iter(block.values())).shape[0])
        self._pending.append(block)
        self._pending_frames += int(next(iter(block.values())).shape[-1])
        if not self._segments or self._pending_frames >= MIN_SEGMENT_S * self.samplerate:
            self.flush()

    def flush(self) -> None:
        """Write what is gathered as the next segment (the job calls it once more at the end)."""
        if not self._pending_frames:
            return
        data = np.concatenate([np.concatenate([b[name] for b in self._pending], axis=-1) for name in self.stems])
        k = len(self._segments)
        tmp = self.folder / f".{k}.part"
        data.astype("<f4", copy=False).tofile(tmp)
        os.replace(tmp, self.folder / f"{k}.f32")
        with self._lock:
            self._segments.append(Segment(self._written, self._pending_frames))
        self._written += self._pending_frames
        self._pending, self._pending_frames = [], 0
        if self.announce is not None:
            self.announce(self._written / self.samplerate)

    def index(self) -> SegmentIndex:
        with self._lock:
            segments = tuple(self._segments)
        return SegmentIndex(self.job_id, self.stems, self.channels, self.samplerate,
                            max(self.expected_frames, self._written), segments, done=False)

    def path(self, k: int) -> Path | None:
        """Segment ``k``'s file, or None when it is not (yet) written."""
        with self._lock:
            known = 0 <= k < len(self._segments)
        return self.folder / f"{k}.f32" if known else None

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def finished_index(job_id: str, paths: dict[str, Path]) -> SegmentIndex:
    """The segments of finished stems (all of one length and rate), on the fixed grid."""
    infos = {name: sf.info(str(p)) for name, p in paths.items()}
    first = next(iter(infos.values()))
    frames = min(i.frames for i in infos.values())
    segments = tuple(Segment(s, min(FINISHED_SEGMENT_FRAMES, frames - s))
                     for s in range(0, frames, FINISHED_SEGMENT_FRAMES))
    return SegmentIndex(job_id, tuple(paths), int(first.channels), int(first.samplerate), frames, segments, True)


def read_finished(index: SegmentIndex, paths: dict[str, Path], k: int) -> bytes:
    """Segment ``k`` of finished stems in the wire format. Raises IndexError for a segment not in the index."""
    if not 0 <= k < len(index.segments):
        raise IndexError(k)
    seg = index.segments[k]
    parts = []
    for name in index.stems:
        x, _ = sf.read(str(paths[name]), start=seg.start, frames=seg.frames, dtype="float32", always_2d=True)
        parts.append(np.ascontiguousarray(x.T))
    return np.concatenate(parts).astype("<f4", copy=False).tobytes()
