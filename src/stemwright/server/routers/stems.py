"""A song's audio and what is derived from it: stems (any finished separation), the original, waveform peaks,
the stems zip, the analysis (tempo, beats, key) and the bleed between stems."""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse, Response

from stemwright.server import media, remix, renders
from stemwright.server.studio import BLEED_CACHE, ApiError, Studio, get_studio
from stemwright.server.web import content_disposition, download_name

router = APIRouter(prefix="/api/songs/{song_id}")
StudioDep = Annotated[Studio, Depends(get_studio)]
ANALYSIS_WAIT_S = 600.0  # the longest a request waits for the job's own analysis of the stems
MAX_SEGMENT_NUMBER = 100_000  # far above any song's segment count (2 h at >= 2 s a segment: 3600)


@router.get("/stems/{stem}")
def stem_audio(song_id: str, stem: str, studio: StudioDep, format: str = "wav", job: str | None = None):
    _song, paths = studio.song_stems(song_id, job)
    if stem not in paths:
        raise ApiError(404, f"unknown stem {stem[:40]!r}; this song has {', '.join(paths)}")
    if format not in media.MEDIA_FORMATS:
        raise ApiError(400, f"format must be one of {', '.join(media.MEDIA_FORMATS)}")
    path = media.encoded(paths[stem], format)
    return FileResponse(path, media_type=media.MEDIA_FORMATS[format], headers={"cache-control": "no-cache"})


@router.get("/stream")
def stream_index(song_id: str, studio: StudioDep, first: int = 0):
    """The song's stems as time-ordered segments (its latest separation's, else what its running job has
    separated so far): stems, channels, rate, expected frames and up to 512 ``[start, frames]`` from ``first``."""
    if not 0 <= first <= MAX_SEGMENT_NUMBER:
        raise ApiError(400, f"'first' must be in 0..{MAX_SEGMENT_NUMBER}")
    return studio.stream_index(song_id).page(first)


@router.get("/stream/{k}")
def stream_segment(song_id: str, k: int, job: str, studio: StudioDep):
    """Segment ``k`` of separation ``job``: raw little-endian float32, planar (each stem, each channel);
    ``x-start`` / ``x-frames`` say which frames it holds."""
    if not 0 <= k <= MAX_SEGMENT_NUMBER:
        raise ApiError(404, f"no segment {k}")
    data, start, frames = studio.stream_segment(song_id, job, k)
    return Response(data, media_type="application/octet-stream",
                    headers={"cache-control": "no-store", "x-start": str(start), "x-frames": str(frames)})


@router.get("/stems/{stem}/clean")
async def clean_stem_audio(song_id: str, stem: str, strength: float, studio: StudioDep):
    """The stem through the mix document's ``debleed(strength)`` (a strip's "clean" knob), rendered as the export
    renders it, as float WAV (unclipped): strength in steps of 0.05, cached per stem and strength (server/remix.py)."""
    path = await remix.cleaned_stem(studio, song_id, stem, strength)
    return FileResponse(path, media_type=media.MEDIA_FORMATS["wav"], headers={"cache-control": "no-cache"})


@router.get("/original")
def original_audio(song_id: str, studio: StudioDep):
    """The uploaded song decoded by the same reader as the separation (so it lines up with the stems sample
    for sample), as FLAC: the studio's A/B switch plays it against the mix."""
    source = Path(studio.song_or_404(song_id)["source_path"])
    if not source.is_file():
        raise ApiError(404, "this song's original file is not stored")
    path = media.encoded_original(source)
    return FileResponse(path, media_type=media.MEDIA_FORMATS["flac"], headers={"cache-control": "no-cache"})


@router.get("/peaks")
def stem_peaks(song_id: str, studio: StudioDep):
    _song, paths = studio.song_stems(song_id)
    return {"stems": {name: media.peaks(p) for name, p in paths.items()}}


@router.get("/stems.zip")
def stems_zip(song_id: str, studio: StudioDep, format: str = "flac"):
    song, paths = studio.song_stems(song_id)
    if format not in ("flac", "wav"):
        raise ApiError(400, "format must be flac or wav")
    target = studio.data_dir / "songs" / song["id"] / f"stems-{format}.zip"
    if not target.exists() or any(p.stat().st_mtime > target.stat().st_mtime for p in paths.values()):
        media.stems_zip(paths, target, format)
    name = download_name(song["title"], "-stems.zip")
    return FileResponse(target, media_type="application/zip",
                        headers={"content-disposition": content_disposition(name)})


@router.get("/analysis")
async def song_analysis(song_id: str, studio: StudioDep):
    """Tempo, beats, downbeats, meter and key of the song's current stems. The separation job computes them as
    its last step (the song's ``analysis`` is "analysing" meanwhile, and this waits for it); a song separated
    before that, or whose analysis failed, is analysed here through the bounded exports queue."""
    def lookup() -> tuple[str, dict[str, Path], dict[str, Any] | None]:
        _song, paths = studio.song_stems(song_id)
        job_id = studio.library.stems(song_id)[0]["job_id"]
        running = studio.runner.analysing(job_id)
        if running is not None:
            running.wait(ANALYSIS_WAIT_S)
        return job_id, paths, studio.library.analysis(job_id)

    job_id, paths, stored = await asyncio.to_thread(lookup)
    if stored is None:
        try:
            stored = await studio.exports.run(renders.analyse, paths)
        except ValueError as e:  # silent or beatless stems: the analysis says why
            raise ApiError(422, f"cannot analyse this song: {e}") from None
        await asyncio.to_thread(studio.library.save_analysis, song_id, job_id, stored)
    return {"job_id": job_id, **stored}


@router.get("/bleed")
async def song_bleed(song_id: str, job: str, studio: StudioDep):
    """``stemwright inspect``'s full-band bleed for one separation of the song: per stem, the mean share of its
    STFT-magnitude variance explained by each other stem (0 = none, 1 = the same signal), and the matrix.
    Computed through the bounded exports queue; kept in memory for the last few separations."""
    _song, paths = await asyncio.to_thread(studio.song_stems, song_id, job)
    key = f"{song_id}/{job}"
    cache = studio.bleed_cache
    if key not in cache:
        cache[key] = await studio.exports.run(renders.bleed, paths)
        while len(cache) > BLEED_CACHE:
            cache.pop(next(iter(cache)))
    return {"job_id": job, **cache[key]}
