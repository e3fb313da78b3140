"""Reading and writing audio files.

Reading: soundfile (libsndfile: wav, flac, ogg/vorbis, opus, mp3, aiff) first, PyAV (FFmpeg: m4a/aac, mp4, NI
``.stem.mp4`` — whose first audio stream is the mixture — and anything else) as fallback.
Writing: wav (16/24-bit int, 32-bit float), flac (16/24), mp3 (PyAV + LAME at a chosen bitrate); always to a
temporary name in the destination folder, renamed when complete.
"""
from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import av
import soundfile as sf

from stemwright.atomic import atomic_write
from stemwright.errors import AudioError, OutputExists

log = logging.getLogger(__name__)

AUDIO_EXTENSIONS = (
    ".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc",
    ".m4a", ".aac", ".mp4", ".m4v", ".mov", ".webm", ".mka", ".wma",
)
WRITE_FORMATS = ("wav", "flac", "mp3")
CLIP_MODES = ("rescale", "clamp", "none")
BIT_DEPTHS = {"wav": (16, 24, 32), "flac": (16, 24)}
MP3_BITRATES = (32, 320)
MIN_SAMPLERATE, MAX_SAMPLERATE = 8000, 192000


@dataclass(frozen=True)
class AudioFile:
    """Decoded audio. ``samples`` has shape ``(C, T)``, float32 in [-1, 1] for integer sources."""

    samples: np.ndarray
    samplerate: int
    path: str
    codec: str

    @property
    def channels(self) -> int:
        return self.samples.shape[0]

    @property
    def duration(self) -> float:
        return self.samples.shape[1] / self.samplerate


def is_audio_path(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith(".stem.mp4") or path.suffix.lower() in AUDIO_EXTENSIONS


def _wav_data_shortfall(path: Path) -> tuple[int, int] | None:
    """``(declared, present)`` byte counts of a RIFF/WAVE file's ``data`` chunk when the file ends before the
    chunk does, else ``None``. libsndfile silently shortens such a file to what is there (its ``frames`` already
    count only the bytes present), so the header has to be read here. Sizes 0 and 0xFFFFFFFF mean "unknown" (a
    writer that could not seek back), and RF64 keeps its sizes elsewhere: those are not checked.
    """
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        pos = 12
        while pos + 8 <= size:
            f.seek(pos)
            chunk = f.read(8)
            if len(chunk) < 8:
                return None
            cid, length = chunk[:4], int.from_bytes(chunk[4:], "little")
            if cid == b"data":
                if length in (0, 0xFFFFFFFF):
                    return None
                present = size - (pos + 8)
                return (length, present) if present < length else None
            pos += 8 + length + (length & 1)  # chunks are padded to an even length (RIFF spec)
    return None


_NATIVE = {"quiet": False, "depth": 0, "saved": -1}
_NATIVE_LOCK = threading.Lock()


def set_native_decoder_messages(show: bool) -> None:
    """Show or hide what native decoders print straight to the process's stderr (libmpg123 inside libsndfile:
    "Note: Illegal Audio-MPEG-Header ..."); the CLI hides them unless ``-v``. Shown by default."""
    _NATIVE["quiet"] = not show


@contextlib.contextmanager
def _native_stderr_hidden() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null while a native decoder runs (reference-counted: threads may overlap;
    the real stderr is restored when the last one leaves). Python's own stderr writes in that window are lost too,
    which is why it only wraps the decode call."""
    if not _NATIVE["quiet"]:
        yield
        return
    with _NATIVE_LOCK:
        if _NATIVE["depth"] == 0:
            sys.stderr.flush()
            _NATIVE["saved"] = os.dup(2)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
        _NATIVE["depth"] += 1
    try:
        yield
    finally:
        with _NATIVE_LOCK:
            _NATIVE["depth"] -= 1
            if _NATIVE["depth"] == 0:
                os.dup2(_NATIVE["saved"], 2)
                os.close(_NATIVE["saved"])


def _read_soundfile(path: Path) -> tuple[np.ndarray, int, str]:
    with _native_stderr_hidden():
        return _read_soundfile_unguarded(path)


def _read_soundfile_unguarded(path: Path) -> tuple[np.ndarray, int, str]:
    with sf.SoundFile(str(path)) as f:
        declared = f.frames
        shortfall = _wav_data_shortfall(path) if f.format == "WAV" else None
        if shortfall is not None:
            declared = shortfall[0] // max(1, f.channels * _bytes_per_sample(f.subtype))
        data = _read_planar(f)
        if declared > 0 and data.shape[1] < 0.99 * declared:
            # libsndfile stops quietly at a cut; the header (a WAV data chunk's size, an MP3's Xing frame count)
            # says how long it was.
            raise AudioError(path, f"truncated or corrupt: only {data.shape[1]} of the {declared} samples its header "
                                   "declares could be decoded")
        return data, f.samplerate, f"{f.format}/{f.subtype}"


_READ_BLOCK = 1 << 16  # frames per read: a small reused interleaved buffer


def _read_planar(f: sf.SoundFile) -> np.ndarray:
    """The whole file as ``(C, T)`` float32, de-interleaved block by block into one array: reading it interleaved
    and transposing after would touch twice the memory (hundreds of MB for a long multitrack)."""
    expected = max(int(f.frames), 0)
    out = np.empty((f.channels, expected), dtype=np.float32)
    extra: list[np.ndarray] = []  # a decoder may yield more frames than the header says (rare)
    pos = 0
    buf = np.empty((_READ_BLOCK, f.channels), dtype=np.float32)
    while True:
        block = f.read(dtype="float32", always_2d=True, out=buf)  # a view of the frames actually decoded
        n = block.shape[0]
        if n == 0:
            break
        fit = max(0, min(n, expected - pos))
        out[:, pos : pos + fit] = block[:fit].T
        if fit < n:
            extra.append(block[fit:].T.copy())
        pos += fit
    if extra:
        return np.concatenate([out[:, :pos], *extra], axis=1)
    return out if pos == expected else np.ascontiguousarray(out[:, :pos])


def _bytes_per_sample(subtype: str) -> int:
    return {"PCM_U8": 1, "PCM_S8": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8,
            "ULAW": 1, "ALAW": 1}.get(subtype, 2)


def _read_av(path: Path, stream_index: int = 0) -> tuple[np.ndarray, int, str]:
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as e:  # type: ignore[attr-defined]
        raise AudioError(path, _short_reason(e, path)) from None
    with container:
        streams = [s for s in container.streams if s.type == "audio"]
        if not streams:
            raise AudioError(path, "contains no audio stream")
        if stream_index >= len(streams):
            raise AudioError(path, f"has {len(streams)} audio stream(s), no stream {stream_index}")
        stream = streams[stream_index]  # NI stems: stream 0 is the mixture, 1-4 the stems
        rate = stream.codec_context.sample_rate or stream.rate
        blocks = []
        try:
            for frame in container.decode(stream):
                arr = frame.to_ndarray()
                if frame.format.is_planar:
                    blocks.append(arr.astype(np.float32))
                else:
                    blocks.append(arr.reshape(-1, frame.layout.nb_channels if hasattr(frame.layout, "nb_channels") else len(frame.layout.channels)).T.astype(np.float32))
        except av.error.FFmpegError as e:  # type: ignore[attr-defined]
            if not blocks:
                raise AudioError(path, f"corrupt audio ({_short_reason(e, path)})") from None
            # A cut file decodes up to the cut and then fails: refuse it rather than separate half a song.
            got = sum(b.shape[1] for b in blocks)
            raise AudioError(path, f"truncated or corrupt: decoding stopped after {got} samples "
                                   f"({got / rate:.2f} s) with '{_short_reason(e, path)}'") from None
        if not blocks:
            raise AudioError(path, "contains no audio samples")
        data = np.concatenate(blocks, axis=1)
        declared = _declared_samples(stream, int(rate))
        if declared and data.shape[1] < 0.99 * declared:
            raise AudioError(path, f"truncated or corrupt: only {data.shape[1]} of the {declared} samples its header "
                                   "declares could be decoded")
        return _av_to_unit(data, stream).astype(np.float32), int(rate), f"{stream.codec_context.name}"


def _av_to_unit(data: np.ndarray, stream) -> np.ndarray:
    """Decoded samples of a PyAV ``stream`` in [-1, 1): its integer sample formats scaled, floats as they are."""
    fmt = stream.codec_context.format.name if stream.codec_context.format else ""
    if fmt.startswith(("s16",)):
        return data / 32768.0
    if fmt.startswith(("s32",)):
        return data / 2147483648.0
    if fmt.startswith("u8"):
        return (data - 128.0) / 128.0
    return data


def _declared_samples(stream, rate: int) -> int | None:
    """Length a lossless stream's header declares (FLAC's STREAMINFO total, via FFmpeg), else ``None``: lossy
    containers' durations are estimates (encoder delay, bitrate guesses) and are not held against the decoder."""
    if stream.codec_context.name not in ("flac", "alac", "wavpack") or not stream.duration or stream.time_base is None:
        return None
    return int(round(float(stream.duration * stream.time_base) * rate))


def _short_reason(error: Exception, path: Path) -> str:
    """A decoder's error without the file name it repeats (the caller names the file once)."""
    text = str(error).replace("File does not exist or is not a regular file (possibly a pipe?)", "format not recognised")
    for noise in (f"Error opening {str(path)!r}: ", f": {str(path)!r}", str(path)):
        text = text.replace(noise, "")
    text = text.split("] ", 1)[-1] if text.startswith("[Errno") else text
    return text.strip(" :.") or type(error).__name__


# Containers libsndfile cannot open (or opens wrongly): PyAV decodes them first.
_AV_FIRST_SUFFIXES = (".stem.mp4", ".mp4", ".m4a", ".aac", ".mov", ".webm", ".mka", ".wma", ".m4v")


def checked_input(path: str | Path) -> Path:
    """``path`` as a Path, or :class:`AudioError` when it is missing, not a file or empty (0 bytes)."""
    p = Path(path)
    if not p.exists():
        raise AudioError(p, "file not found")
    if not p.is_file():
        raise AudioError(p, "not a file")
    if p.stat().st_size == 0:
        raise AudioError(p, "file is empty (0 bytes)")
    return p


def prefers_av(path: Path) -> bool:
    """Whether ``path`` is decoded with PyAV first (mp4-family containers), else libsndfile first."""
    return path.name.lower().endswith(_AV_FIRST_SUFFIXES)


def read_audio(path: str | Path, stream: int = 0) -> AudioFile:
    """Decode an audio file to float32 ``(C, T)``; ``stream``: which audio stream of a multi-stream file (an NI
    ``.stem.mp4`` has the mixture at 0 and four stems at 1-4; see :func:`audio_stream_count`).

    Raises :class:`AudioError` naming the file for: not found, not a file, empty, not audio/corrupt, no samples,
    non-finite samples, or a sample rate outside 8–192 kHz.
    """
    p = checked_input(path)
    use_av_first = prefers_av(p)
    data = None
    errors = []
    readers = ((_read_av, _read_soundfile) if use_av_first else (_read_soundfile, _read_av)) if stream == 0 else (_read_av,)
    for reader in readers:
        try:
            data, sr, codec = reader(p, stream) if reader is _read_av else reader(p)
            break
        except AudioError as e:
            if e.reason.startswith("truncated"):
                raise
            errors.append(e.reason)
        except Exception as e:  # noqa: BLE001 - any decoder failure means "try the other decoder"
            errors.append(_short_reason(e, p))
    if data is None:
        raise AudioError(p, "not an audio file or corrupt (" + "; ".join(dict.fromkeys(errors))[:200] + ")")
    if data.shape[1] == 0:
        raise AudioError(p, "contains no audio samples")
    if not np.isfinite(data).all():
        bad = int((~np.isfinite(data)).sum())
        raise AudioError(p, f"contains {bad} non-finite (NaN/inf) samples")
    if not MIN_SAMPLERATE <= sr <= MAX_SAMPLERATE:
        raise AudioError(p, f"sample rate {sr} Hz is outside the supported {MIN_SAMPLERATE}-{MAX_SAMPLERATE} Hz")
    return AudioFile(np.ascontiguousarray(data, dtype=np.float32), int(sr), str(p), codec)


def audio_stream_count(path: str | Path) -> int:
    """Number of audio streams in a file (5 in an NI ``.stem.mp4``; 1 in a wav)."""
    p = Path(path)
    try:
        with av.open(str(p)) as container:
            return sum(1 for s in container.streams if s.type == "audio")
    except (av.error.FFmpegError, OSError) as e:  # type: ignore[attr-defined]
        raise AudioError(p, _short_reason(e, p)) from None


def prepare_peaks(samples: np.ndarray, clip_mode: str) -> tuple[np.ndarray, dict]:
    """Apply the clip policy to float samples; returns the new array and a report for the manifest."""
    out, report = prepare_peaks_many([samples], clip_mode)
    return out[0], report


def prepare_peaks_many(arrays: list[np.ndarray], clip_mode: str) -> tuple[list[np.ndarray], dict]:
    """The clip policy over several arrays (e.g. all stems of a song) at once, without stacking them: ``rescale``
    uses one gain for all (so stems keep summing to a scaled mixture), ``clamp`` clips each sample, ``none`` keeps
    them. Returns the arrays (the same objects where nothing changes) and a report for the manifest.
    """
    peak = max((float(np.max(np.abs(a))) for a in arrays if a.size), default=0.0)
    report = clip_report(peak, clip_mode)
    return [apply_clip(a, peak, clip_mode) for a in arrays], report


def clip_report(peak: float, clip_mode: str) -> dict:
    """The manifest's report of the clip policy for stems whose largest absolute sample is ``peak``."""
    if clip_mode not in CLIP_MODES:
        raise ValueError(f"clip mode must be one of {', '.join(CLIP_MODES)}, got {clip_mode!r}")
    report = {"clip_mode": clip_mode, "peak": peak, "peak_dbfs": float(20 * np.log10(peak)) if peak > 0 else None}
    if peak <= 1.0 or clip_mode == "none":
        report["action"] = "none" if peak <= 1.0 else "left over full scale"
    elif clip_mode == "rescale":
        report["action"] = f"scaled by {1 / peak:.6f}"
    else:
        report["action"] = "clamped to [-1, 1]"
    return report


def apply_clip(samples: np.ndarray, peak: float, clip_mode: str) -> np.ndarray:
    """The clip policy on (a block of) stems whose common peak is ``peak``: the same array when nothing changes.
    ``clamp`` needs no peak (pass the block's own), so it works block by block."""
    if peak <= 1.0 or clip_mode == "none":
        return samples
    if clip_mode == "rescale":
        return samples / np.float32(peak)
    return np.clip(samples, -1.0, 1.0)


def _atomic_target(path: Path, overwrite: bool) -> Path:
    if path.exists() and not overwrite:
        raise OutputExists(path, "already exists")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise AudioError(path, f"cannot create output folder ({e.strerror})") from None
    if not os.access(path.parent, os.W_OK):
        raise AudioError(path, "output folder is not writable")
    return path


def _write_mp3(tmp: Path, samples: np.ndarray, samplerate: int, bitrate_k: int) -> None:
    with av.open(str(tmp), "w", format="mp3") as out:
        stream = out.add_stream("libmp3lame", rate=samplerate)
        stream.bit_rate = bitrate_k * 1000
        stream.layout = "mono" if samples.shape[0] == 1 else "stereo"
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(samples.astype(np.float32)), format="fltp", layout=stream.layout.name
        )
        frame.sample_rate = samplerate
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def write_audio(
    path: str | Path,
    samples: np.ndarray,
    samplerate: int,
    *,
    fmt: str | None = None,
    bit_depth: int = 24,
    mp3_bitrate: int = 320,
    overwrite: bool = False,
) -> Path:
    """Write ``(C, T)`` float samples atomically (temporary name + rename). Peaks are the caller's business
    (:func:`prepare_peaks`); integer formats clamp at full scale.
    """
    p = Path(path)
    fmt = (fmt or p.suffix.lstrip(".")).lower()
    try:
        check_write_options(fmt, bit_depth, mp3_bitrate)
    except ValueError as e:
        raise AudioError(p, str(e)) from None
    _atomic_target(p, overwrite)
    data = np.asarray(samples, dtype=np.float32)
    if data.ndim == 1:
        data = data[None]

    def write(tmp: Path) -> None:
        if fmt == "mp3":
            _write_mp3(tmp, np.clip(data, -1, 1), samplerate, mp3_bitrate)
        else:
            subtype = {16: "PCM_16", 24: "PCM_24", 32: "FLOAT"}[bit_depth]
            clipped = data if subtype == "FLOAT" else np.clip(data, -1.0, 1.0)
            sf.write(str(tmp), clipped.T, samplerate, subtype=subtype, format=fmt.upper())

    try:
        return atomic_write(p, write, suffix=f".part.{fmt}")
    except AudioError:
        raise
    except Exception as e:
        if _out_of_space(e, p.parent, data.nbytes):
            raise AudioError(p, "could not write: no space left on device") from None
        raise AudioError(p, f"could not write ({type(e).__name__}: {e})") from None


def _out_of_space(error: Exception, folder: Path, nbytes: int) -> bool:
    """Whether a failed write ran out of disk: ENOSPC/EDQUOT from the OS, or (libsndfile reports only "System
    error.") less free space left in the folder than the samples would need uncompressed."""
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    try:
        return shutil.disk_usage(folder).free < nbytes
    except OSError:
        return False


def check_write_options(fmt: str, bit_depth: int, mp3_bitrate: int) -> None:
    """Raise ``ValueError`` unless ``fmt`` is writable with that bit depth (wav 16/24/32, flac 16/24) and mp3
    bitrate (32-320 kbit/s, LAME's range); callers check before any expensive work."""
    if fmt not in WRITE_FORMATS:
        raise ValueError(f"unsupported output format {fmt!r} (choose {', '.join(WRITE_FORMATS)})")
    if fmt == "wav" and bit_depth not in BIT_DEPTHS["wav"]:
        raise ValueError(f"wav bit depth must be 16, 24 or 32, got {bit_depth}")
    if fmt == "flac" and bit_depth not in BIT_DEPTHS["flac"]:
        raise ValueError(f"flac bit depth must be 16 or 24, got {bit_depth}")
    if fmt == "mp3" and not MP3_BITRATES[0] <= mp3_bitrate <= MP3_BITRATES[1]:
        raise ValueError(f"mp3 bitrate must be {MP3_BITRATES[0]}-{MP3_BITRATES[1]} kbit/s, got {mp3_bitrate}")
