"""Checking an upload without decoding all of it: a small file can hold hours of audio (one hour of FLAC silence
is ~600 KB), so the content check decodes a bounded prefix and takes the duration from the header, or from a
bounded, block-wise scan where the header has none. Memory stays a few blocks whatever the file says.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from stemwright.audio.io import MAX_SAMPLERATE, MIN_SAMPLERATE
from stemwright.errors import StemwrightError

PREFIX_SECONDS = 5.0
TAIL_SECONDS = 2.0  # decoded at the end too: a file cut off in transfer is refused at upload, not by its job
BLOCK_FRAMES = 65536
# Extensions libsndfile does not read; PyAV (FFmpeg) goes first for them, as in stemwright.audio.io.read_audio.
AV_FIRST = (".stem.mp4", ".mp4", ".m4a", ".aac", ".mov", ".webm", ".mka", ".wma", ".m4v")


class ProbeError(StemwrightError):
    """The upload is not usable audio; ``status`` is the HTTP status to answer (415 not audio, 413 too long)."""

    def __init__(self, status: int, reason: str, specific: bool = True):
        self.status = status
        self.reason = reason
        self.specific = specific  # False: a decoder's own words (may name the server's file), never shown
        super().__init__(reason)


class TruncatedError(ProbeError):
    """The file's end is missing: final, whichever decoder found it (another may not look at the end)."""

    def __init__(self, duration: float):
        super().__init__(415, f"the file is cut off: its header promises {_clock(duration)} of audio, but its end "
                              "is missing (an incomplete download or copy?)")


@dataclass(frozen=True)
class Probe:
    samplerate: int
    channels: int
    duration: float
    codec: str


def probe_audio(path: Path, max_duration: float, name: str = "") -> Probe:
    """Samplerate, channels and duration of ``path``; decodes at most ``PREFIX_SECONDS`` plus, for formats whose
    header has no length, a block-wise scan that stops past ``max_duration``. Raises :class:`ProbeError`."""
    name = (name or path.name).lower()
    readers = (_probe_av, _probe_soundfile) if name.endswith(AV_FIRST) else (_probe_soundfile, _probe_av)
    errors: list[ProbeError] = []
    for reader in readers:
        try:
            result = reader(path, max_duration)
            break
        except ProbeError as e:
            if e.status == 413 or isinstance(e, TruncatedError):
                raise
            errors.append(e)
        except Exception:  # noqa: BLE001 - any decoder failure means "try the other decoder"
            continue  # (its message names the server's temporary file: never shown)
    else:
        # the reasons this module words itself (truncated, no samples, NaN...) beat "not an audio file"
        specific = [e.reason for e in errors if e.specific]
        raise ProbeError(415, specific[0] if specific else "not an audio file this studio can read (the format "
                                                             "is not recognised, or the file is damaged)")
    if not MIN_SAMPLERATE <= result.samplerate <= MAX_SAMPLERATE:
        raise ProbeError(415, f"sample rate {result.samplerate} Hz is outside the supported "
                              f"{MIN_SAMPLERATE}-{MAX_SAMPLERATE} Hz")
    if result.duration <= 0:
        raise ProbeError(415, "contains no audio samples")
    if result.duration > max_duration:
        raise ProbeError(413, f"{_clock(result.duration)} long; the studio accepts at most {_clock(max_duration)}")
    return result


def _check_block(block: np.ndarray) -> None:
    if block.size and not np.isfinite(block).all():
        raise ProbeError(415, "contains non-finite (NaN/inf) samples")


def _probe_soundfile(path: Path, max_duration: float) -> Probe:
    with sf.SoundFile(str(path)) as f:
        sr, frames = int(f.samplerate), int(f.frames)
        if sr <= 0:
            raise ProbeError(415, "no sample rate in the header")
        prefix = f.read(min(int(PREFIX_SECONDS * sr), BLOCK_FRAMES * 8), dtype="float32", always_2d=True)
        _check_block(prefix)
        if prefix.shape[0] == 0:
            raise ProbeError(415, "contains no audio samples")
        # libsndfile reports the header's length; 0 or the "unknown" sentinel (SF_COUNT_MAX) means: scan.
        if 0 < frames < 2**62 and f.seekable() and frames > prefix.shape[0]:
            _check_tail(f, frames, sr)
        if frames <= 0 or frames >= 2**62:
            limit = int(max_duration * sr) + 1
            frames = prefix.shape[0]
            while frames <= limit:
                block = f.read(BLOCK_FRAMES, dtype="float32", always_2d=True)
                if block.shape[0] == 0:
                    break
                frames += block.shape[0]
        return Probe(sr, int(f.channels), frames / sr, f"{f.format}/{f.subtype}")


def _check_tail(f: sf.SoundFile, frames: int, samplerate: int) -> None:
    """Decode the last :data:`TAIL_SECONDS` the header promises; no samples there means the file is cut off."""
    want = min(frames, int(TAIL_SECONDS * samplerate))
    try:
        f.seek(frames - want)
        got = f.read(want, dtype="float32", always_2d=True).shape[0]
    except (RuntimeError, sf.LibsndfileError):  # type: ignore[attr-defined]
        got = 0
    if got == 0:  # (a short read alone is no proof: libsndfile estimates the length of some mp3s)
        raise TruncatedError(frames / samplerate)


def _probe_av(path: Path, max_duration: float) -> Probe:
    import av

    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as e:  # type: ignore[attr-defined]
        raise ProbeError(415, str(e).split(": '")[0][:120], specific=False) from None
    with container:
        streams = [s for s in container.streams if s.type == "audio"]
        if not streams:
            raise ProbeError(415, "contains no audio stream")
        stream = streams[0]  # NI stems: stream 0 is the mixture
        sr = int(stream.codec_context.sample_rate or stream.rate or 0)
        if sr <= 0:
            raise ProbeError(415, "no sample rate in the header")
        channels = int(stream.codec_context.channels or 0)
        declared = None
        if stream.duration and stream.time_base:
            declared = float(stream.duration * stream.time_base)
        elif container.duration:
            declared = container.duration / av.time_base
        decoded = 0
        scan_to = PREFIX_SECONDS if declared else max_duration + 1.0
        for frame in container.decode(stream):
            block = frame.to_ndarray()
            if block.dtype.kind == "f":
                _check_block(block)
            channels = channels or len(frame.layout.channels)
            decoded += frame.samples
            if decoded / sr > scan_to:
                break
        if decoded == 0:
            raise ProbeError(415, "contains no audio samples")
        if declared and declared > PREFIX_SECONDS + TAIL_SECONDS:
            _check_av_tail(container, stream, declared)
        duration = declared if declared else decoded / sr
        return Probe(sr, channels or 1, duration, stream.codec_context.name)


def _check_av_tail(container: Any, stream: Any, declared: float) -> None:
    """Decode from :data:`TAIL_SECONDS` before the declared end; nothing there means the file is cut off."""
    try:
        container.seek(int((declared - TAIL_SECONDS) / stream.time_base), stream=stream)
        for _frame in container.decode(stream):
            return
    except Exception:  # noqa: BLE001 - a decoder error near the end: as cut off as no frames
        pass
    raise TruncatedError(declared)


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
