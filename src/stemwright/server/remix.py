"""The studio's producer tools that are not HTTP (issue 27): a strip's "clean" knob (the ``debleed`` effect of the
mix document) rendered server-side so the page plays exactly what the export writes.

The page cannot run the Wiener-style re-mask in Web Audio sample for sample, so a strip with clean > 0 plays a
cleaned copy of its stem made here by :func:`stemwright.mixer.render.clean_stem` (the export's own path), from the
stems loaded as the export loads them. Strengths are steps of :data:`CLEAN_STEP`, so a stem has at most
``1 / CLEAN_STEP`` cleaned copies; each is cached beside the stem (as ``media.encoded``'s FLACs are) and made again
when a stem is newer. Heavy imports happen inside the render (it runs in the exports queue's thread).
"""
from __future__ import annotations

import asyncio
import math
from pathlib import Path

import numpy as np

from stemwright.server.studio import ApiError, Studio

CLEAN_STEP = 0.05  # the page's knob step; other strengths are refused, which bounds the cache to 20 files a stem
CLEAN_MAX_S = 1200.0  # the re-mask holds STFTs of every stem in memory: 20 minutes of song at most


def clean_steps(strength: float) -> int:
    """The strength as a whole number of :data:`CLEAN_STEP` (1..20); :class:`ApiError` 400 otherwise."""
    steps = round(strength / CLEAN_STEP) if math.isfinite(strength) else -1
    if not 1 <= steps <= round(1 / CLEAN_STEP) or abs(steps * CLEAN_STEP - strength) > 1e-9:
        raise ApiError(400, f"'strength': must be a multiple of {CLEAN_STEP:g} in ({CLEAN_STEP:g}, 1] "
                            f"(0 is no cleaning), got {strength:g}")
    return steps


def clean_target(stem_path: Path, steps: int) -> Path:
    return stem_path.with_name(f".{stem_path.stem}.clean{steps:02d}.flac")


def fresh(target: Path, stems: dict[str, Path]) -> bool:
    """Whether a cached file is newer than every stem (a re-separation replaces the stems)."""
    return target.exists() and all(p.stat().st_mtime <= target.stat().st_mtime for p in stems.values())


def render_clean(stems: dict[str, Path], stem: str, steps: int, target: Path) -> Path:
    """Write ``stem`` cleaned at ``steps * CLEAN_STEP`` to ``target`` (24-bit FLAC, clamped at full scale, as the
    page's other stem FLACs) from the stems folder loaded exactly as the export loads it."""
    from stemwright.audio.io import write_audio  # heavy imports: the server starts without them
    from stemwright.mixer.render import clean_stem
    from stemwright.mixer.stems import load_stems

    folders = {p.parent for p in stems.values()}
    if len(folders) != 1:
        raise ValueError("stems of one song must share a folder")
    stemset = load_stems(folders.pop())
    audio = clean_stem(stemset, stem, round(steps * CLEAN_STEP, 10))
    return write_audio(target, np.clip(audio, -1.0, 1.0), stemset.samplerate, fmt="flac", bit_depth=24,
                       overwrite=True)


async def cleaned_stem(studio: Studio, song_id: str, stem: str, strength: float) -> Path:
    """The FLAC of the song's ``stem`` cleaned at ``strength`` (made through the bounded exports queue)."""
    song, paths = await asyncio.to_thread(studio.song_stems, song_id)
    if stem not in paths:
        raise ApiError(404, f"unknown stem {stem[:40]!r}; this song has {', '.join(paths)}")
    steps = clean_steps(strength)
    if len(paths) < 2:
        raise ApiError(409, "cleaning needs the other stems to clean against; this separation has one stem")
    if float(song["duration"] or 0) > CLEAN_MAX_S:
        raise ApiError(413, f"cleaning works on songs of up to {CLEAN_MAX_S / 60:g} minutes; this one has "
                            f"{float(song['duration']) / 60:.1f}")
    target = clean_target(paths[stem], steps)
    if not await asyncio.to_thread(fresh, target, paths):
        await studio.exports.run(render_clean, paths, stem, steps, target)
    return target
