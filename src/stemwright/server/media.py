"""Derived media for the studio: waveform peaks, browser-friendly encodings, zip archives. All cached on disk."""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from stemwright.atomic import atomic_write, atomic_write_text
from stemwright.audio.io import read_audio, write_audio

PEAK_BUCKETS = 1600
MEDIA_FORMATS = {"wav": "audio/wav", "flac": "audio/flac", "mp3": "audio/mpeg"}


def peaks(path: Path, buckets: int = PEAK_BUCKETS) -> dict:
    """Min/max envelope of a stem (channels averaged) in ``buckets`` columns, cached beside the file."""
    cache = path.with_name(f".{path.stem}.peaks{buckets}.json")
    if cache.exists() and cache.stat().st_mtime >= path.stat().st_mtime:
        return json.loads(cache.read_text())
    audio = read_audio(path)
    mono = audio.samples.mean(axis=0)
    n = mono.shape[0]
    edges = np.linspace(0, n, buckets + 1).astype(np.int64)
    mins, maxs = [], []
    for a, b in zip(edges[:-1], edges[1:]):
        seg = mono[a : max(b, a + 1)]
        mins.append(float(seg.min()) if seg.size else 0.0)
        maxs.append(float(seg.max()) if seg.size else 0.0)
    doc = {"buckets": buckets, "duration": audio.duration, "samplerate": audio.samplerate,
           "min": [round(v, 4) for v in mins], "max": [round(v, 4) for v in maxs]}
    atomic_write_text(cache, json.dumps(doc))
    return doc


def encoded(path: Path, fmt: str) -> Path:
    """The stem in ``fmt`` (wav is the stored file; flac/mp3 are made once and cached)."""
    if fmt not in MEDIA_FORMATS:
        raise ValueError(f"format must be one of {', '.join(MEDIA_FORMATS)}")
    if fmt == "wav":
        return path
    target = path.with_name(f".{path.stem}.browser.{fmt}")
    if target.exists() and target.stat().st_mtime >= path.stat().st_mtime:
        return target
    audio = read_audio(path)
    samples = np.clip(audio.samples, -1.0, 1.0)
    write_audio(target, samples, audio.samplerate, fmt=fmt, bit_depth=24,
                mp3_bitrate=256, overwrite=True)
    return target


def encoded_original(source: Path) -> Path:
    """The uploaded song as 24-bit FLAC beside it (made once): decoded by :func:`read_audio`, as the separation
    decoded it, so its samples line up with the stems'. Peaks over full scale are clamped, as in :func:`encoded`."""
    target = source.with_name(f".{source.name}.original.flac")
    if target.exists() and target.stat().st_mtime >= source.stat().st_mtime:
        return target
    audio = read_audio(source)
    write_audio(target, np.clip(audio.samples, -1.0, 1.0), audio.samplerate, fmt="flac", bit_depth=24, overwrite=True)
    return target


def stems_zip(stems: dict[str, Path], target: Path, fmt: str = "flac") -> Path:
    """Zip the stems to ``target`` atomically: ``flac`` (24-bit, lossless and about a third of the size of the
    stored 32-bit float WAVs) or ``wav`` (the stored files). Stored, not deflated: audio does not compress."""
    if fmt not in ("flac", "wav"):
        raise ValueError("format must be flac or wav")

    def write(tmp: Path) -> None:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as z:
            for name, p in stems.items():
                z.write(encoded(p, fmt), arcname=f"{name}.{fmt}")

    return atomic_write(target, write)
