"""Audio in blocks: a streaming reader (the decoder :func:`~stemwright.audio.io.read_audio` picks, read block by
block), a streaming resampler (soxr's, which gives exactly what its one-shot call gives), raw float spools and
block writers for wav/flac/mp3. Memory is a few blocks whatever the file's length.

The reader finds a truncated or corrupt file only when it gets there: it raises the same :class:`AudioError` as
``read_audio`` at that point, and the caller deletes what it wrote.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import av
import numpy as np
import soundfile as sf
import soxr

from stemwright.audio import io as _io
from stemwright.audio.io import MAX_SAMPLERATE, MIN_SAMPLERATE, AudioError

BLOCK_FRAMES = 1 << 16  # frames per block (1.5 s at 44.1 kHz): small next to a chunk, large enough to be cheap

__all__ = ["AudioStream", "open_audio_stream", "StreamResampler", "FloatSpool", "BlockWriter", "BLOCK_FRAMES"]


@dataclass
class AudioStream:
    """An open audio file read in blocks. ``frames`` is what the header declares (``None`` when unknown; a hint for
    progress, not a promise); ``frames_read`` counts what :meth:`blocks` has yielded."""

    path: Path
    samplerate: int
    channels: int
    codec: str
    frames: int | None
    _blocks: Callable[[int], Iterator[np.ndarray]]
    _close: Callable[[], None]
    frames_read: int = 0

    def blocks(self, size: int | None = None) -> Iterator[np.ndarray]:
        """Decoded ``(C, n)`` float32 blocks (``size`` frames, default :data:`BLOCK_FRAMES`); raises :class:`AudioError` (naming the file) at a truncation, a
        decoding error or non-finite samples, and after the last block if the file had no samples."""
        bad = 0
        for block in self._blocks(size or BLOCK_FRAMES):
            if not np.isfinite(block).all():
                bad += int((~np.isfinite(block)).sum())
            if bad:
                continue  # keep decoding to count them all, as read_audio reports
            self.frames_read += block.shape[1]
            yield block
        if bad:
            raise AudioError(self.path, f"contains {bad} non-finite (NaN/inf) samples")
        if self.frames_read == 0:
            raise AudioError(self.path, "contains no audio samples")

    @property
    def duration(self) -> float:
        return self.frames_read / self.samplerate

    def close(self) -> None:
        self._close()

    def __enter__(self) -> "AudioStream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def open_audio_stream(path: str | Path) -> AudioStream:
    """Open ``path`` for block reading with the decoder ``read_audio`` uses for it (libsndfile, else PyAV; PyAV
    first for mp4-family containers). Raises :class:`AudioError` as ``read_audio`` does for missing, empty,
    unreadable files and sample rates outside 8-192 kHz."""
    p = _io.checked_input(path)
    use_av_first = _io.prefers_av(p)
    errors: list[str] = []
    stream = None
    for opener in ((_open_av, _open_soundfile) if use_av_first else (_open_soundfile, _open_av)):
        try:
            stream = opener(p)
            break
        except AudioError as e:
            errors.append(e.reason)
        except Exception as e:  # noqa: BLE001 - any decoder failure means "try the other decoder"
            errors.append(_io._short_reason(e, p))
    if stream is None:
        raise AudioError(p, "not an audio file or corrupt (" + "; ".join(dict.fromkeys(errors))[:200] + ")")
    if not MIN_SAMPLERATE <= stream.samplerate <= MAX_SAMPLERATE:
        stream.close()
        raise AudioError(p, f"sample rate {stream.samplerate} Hz is outside the supported "
                            f"{MIN_SAMPLERATE}-{MAX_SAMPLERATE} Hz")
    return stream


def _open_soundfile(path: Path) -> AudioStream:
    with _io._native_stderr_hidden():
        f = sf.SoundFile(str(path))
        try:
            declared = f.frames
            if f.format == "WAV":
                shortfall = _io._wav_data_shortfall(path)
                if shortfall is not None:
                    declared = shortfall[0] // max(1, f.channels * _io._bytes_per_sample(f.subtype))
            # decode the first block now: a file libsndfile opens but cannot decode goes to PyAV, as in read_audio
            first = f.read(min(BLOCK_FRAMES, max(int(f.frames), 1)), dtype="float32", always_2d=True)
        except BaseException:
            f.close()
            raise

    def blocks(size: int) -> Iterator[np.ndarray]:
        got = first.shape[0]
        if got:
            yield np.ascontiguousarray(first.T)
        buf = np.empty((size, f.channels), dtype=np.float32)
        while True:
            with _io._native_stderr_hidden():
                try:
                    block = f.read(dtype="float32", always_2d=True, out=buf)
                except Exception as e:  # noqa: BLE001
                    raise AudioError(path, f"corrupt audio after {got} samples ({_io._short_reason(e, path)})") from None
            if block.shape[0] == 0:
                break
            got += block.shape[0]
            yield np.ascontiguousarray(block.T)
        if declared > 0 and got < 0.99 * declared:
            raise AudioError(path, f"truncated or corrupt: only {got} of the {declared} samples its header "
                                   "declares could be decoded")

    return AudioStream(path, int(f.samplerate), int(f.channels), f"{f.format}/{f.subtype}",
                       int(declared) if declared > 0 else None, blocks, f.close)


def _open_av(path: Path) -> AudioStream:
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as e:  # type: ignore[attr-defined]
        raise AudioError(path, _io._short_reason(e, path)) from None
    streams = [s for s in container.streams if s.type == "audio"]
    if not streams:
        container.close()
        raise AudioError(path, "contains no audio stream")
    stream = streams[0]  # NI stems: stream 0 is the mixture
    rate = int(stream.codec_context.sample_rate or stream.rate)
    channels = int(stream.codec_context.channels) if hasattr(stream.codec_context, "channels") else \
        len(stream.codec_context.layout.channels)
    declared = _io._declared_samples(stream, rate)
    hint = declared or (int(float(stream.duration * stream.time_base) * rate)
                        if stream.duration and stream.time_base is not None else None)

    def scale(data: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(_io._av_to_unit(data, stream), dtype=np.float32)  # as read_audio's decoder

    def blocks(size: int) -> Iterator[np.ndarray]:
        got = 0
        pending: list[np.ndarray] = []
        held = 0
        try:
            for frame in container.decode(stream):
                arr = frame.to_ndarray()
                if frame.format.is_planar:
                    arr = arr.astype(np.float32)
                else:
                    n = frame.layout.nb_channels if hasattr(frame.layout, "nb_channels") else len(frame.layout.channels)
                    arr = arr.reshape(-1, n).T.astype(np.float32)
                pending.append(arr)
                held += arr.shape[1]
                got += arr.shape[1]
                if held >= size:
                    yield scale(np.concatenate(pending, axis=1))
                    pending, held = [], 0
        except av.error.FFmpegError as e:  # type: ignore[attr-defined]
            if not got:
                raise AudioError(path, f"corrupt audio ({_io._short_reason(e, path)})") from None
            raise AudioError(path, f"truncated or corrupt: decoding stopped after {got} samples "
                                   f"({got / rate:.2f} s) with '{_io._short_reason(e, path)}'") from None
        if pending:
            yield scale(np.concatenate(pending, axis=1))
        if declared and got < 0.99 * declared:
            raise AudioError(path, f"truncated or corrupt: only {got} of the {declared} samples its header "
                                   "declares could be decoded")

    return AudioStream(path, rate, channels, f"{stream.codec_context.name}", hint, blocks, container.close)


class StreamResampler:
    """soxr's streaming resampler (VHQ, as :func:`~stemwright.audio.resample.resample`), giving the same samples
    as the one-shot call on the whole signal. Shape: ``(C, n)`` -> ``(C, m)``; ``last=True`` flushes."""

    def __init__(self, sr_in: int, sr_out: int, channels: int, quality: str = "VHQ") -> None:
        self.same = sr_in == sr_out
        self.channels = channels
        self._soxr = None if self.same else soxr.ResampleStream(sr_in, sr_out, channels, dtype="float32",
                                                                quality=quality)

    def __call__(self, block: np.ndarray, last: bool = False) -> np.ndarray:
        if self.same:  # callers never modify what they pass or get back: no copy
            return np.asarray(block, dtype=np.float32)
        out = self._soxr.resample_chunk(np.ascontiguousarray(np.asarray(block, dtype=np.float32).T), last=last)
        return np.ascontiguousarray(out.T, dtype=np.float32).reshape(self.channels, -1)


class FloatSpool:
    """A raw float32 file of ``(C, T)`` audio written in blocks and read back in blocks (for the passes that need
    the whole song first: one gain for all stems). Keeps the running peak of what was written."""

    def __init__(self, path: Path, channels: int) -> None:
        self.path = path
        self.channels = channels
        self.frames = 0
        self.peak = 0.0
        self._f = open(path, "wb")

    def write(self, block: np.ndarray) -> None:
        if block.shape[1]:
            self.peak = max(self.peak, float(np.max(np.abs(block))))
            np.ascontiguousarray(block.T, dtype=np.float32).tofile(self._f)
            self.frames += block.shape[1]

    def close(self) -> None:
        self._f.close()

    def blocks(self, size: int = BLOCK_FRAMES) -> Iterator[np.ndarray]:
        self._f.close()
        with open(self.path, "rb") as f:
            while True:
                data = np.fromfile(f, dtype=np.float32, count=size * self.channels)
                if data.size == 0:
                    return
                yield np.ascontiguousarray(data.reshape(-1, self.channels).T)


class BlockWriter:
    """Write ``(C, n)`` float blocks to ``path`` as wav/flac (libsndfile) or mp3 (PyAV + LAME), with what
    :func:`~stemwright.audio.io.write_audio` does to each sample (integer formats and mp3 clamp at full scale).
    ``path`` is written in place: callers give it a temporary name and rename it when complete."""

    def __init__(self, path: Path, samplerate: int, channels: int, fmt: str, bit_depth: int = 24,
                 mp3_bitrate: int = 320) -> None:
        _io.check_write_options(fmt, bit_depth, mp3_bitrate)
        self.fmt = fmt
        self.samplerate = samplerate
        self.frames = 0
        if fmt == "mp3":
            self._out = av.open(str(path), "w", format="mp3")
            self._stream = self._out.add_stream("libmp3lame", rate=samplerate)
            self._stream.bit_rate = mp3_bitrate * 1000
            self._stream.layout = "mono" if channels == 1 else "stereo"
            self.clip = True
        else:
            subtype = {16: "PCM_16", 24: "PCM_24", 32: "FLOAT"}[bit_depth]
            self.clip = subtype != "FLOAT"
            self._sf = sf.SoundFile(str(path), "w", samplerate, channels, subtype=subtype, format=fmt.upper())

    def write(self, block: np.ndarray) -> None:
        data = np.clip(block, -1.0, 1.0) if self.clip else block
        if self.fmt == "mp3":
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(data, dtype=np.float32), format="fltp",
                                               layout=self._stream.layout.name)
            frame.sample_rate = self.samplerate
            frame.pts = self.frames
            for packet in self._stream.encode(frame):
                self._out.mux(packet)
        else:
            self._sf.write(np.ascontiguousarray(data.T))
        self.frames += block.shape[1]

    def close(self, flush: bool = True) -> None:
        """Finish the file (``flush=False``: just release it, on the way out of a failure)."""
        if self.fmt == "mp3":
            try:
                if flush:
                    for packet in self._stream.encode(None):
                        self._out.mux(packet)
            finally:
                self._out.close()
        else:
            self._sf.close()


def remove_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
