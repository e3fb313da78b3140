"""Downloads rendered on request: a mix document as wav/flac/mp3, the song as an NI Stems file. Both render into
a temporary folder through the bounded exports queue and stream the file; an identical request made while one
renders (a second click) shares that render."""
from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from stemwright.server import media, renders
from stemwright.server.studio import ApiError, Studio, get_studio
from stemwright.server.web import body_schema, download_name, json_body, rendered_download

router = APIRouter(prefix="/api/songs/{song_id}")
StudioDep = Annotated[Studio, Depends(get_studio)]


class ExportRequest(BaseModel):
    format: Literal["wav", "flac", "mp3"] = "wav"
    document: Any = Field(None, description="a mix document (docs/ARCHITECTURE.md, 'Mix document')")


def _stems_key(paths: dict[str, Path]) -> str:
    return "|".join(f"{n}={p}" for n, p in sorted(paths.items()))


@router.post("/export", openapi_extra=body_schema(ExportRequest))
async def export(song_id: str, studio: StudioDep, body: ExportRequest = json_body(ExportRequest)):
    def prepare() -> tuple[dict[str, Any], dict[str, Path], dict[str, Any]]:
        song, paths = studio.song_stems(song_id)
        return song, paths, renders.validate_mix(body.document, paths, studio.layers_dir(song["id"]))

    song, paths, mix = await asyncio.to_thread(prepare)
    fmt = body.format
    digest = hashlib.sha256(json.dumps([mix, fmt, _stems_key(paths)], sort_keys=True).encode()).hexdigest()
    return await rendered_download(
        studio, f"export/{digest}",
        lambda folder: renders.render_export(mix, paths, folder / f"mix.{fmt}", fmt, studio.layers_dir(song["id"])),
        f"mix.{fmt}", download_name(song["title"], f"-mix.{fmt}"), media.MEDIA_FORMATS[fmt])


@router.get("/stems.stem.mp4")
async def ni_stems(song_id: str, studio: StudioDep, codec: str = "aac"):
    """The song as an NI Stems file (mixture + drums, bass, other, vocals) for Traktor, Mixxx and other DJ
    software."""
    if codec not in ("aac", "alac"):
        raise ApiError(400, "codec must be aac or alac")
    song, paths = await asyncio.to_thread(studio.song_stems, song_id)
    source = Path(song["source_path"])
    try:
        return await rendered_download(
            studio, f"nistems/{codec}/{_stems_key(paths)}",
            lambda folder: renders.render_ni_stems(paths, source, folder / "song.stem.mp4", codec),
            "song.stem.mp4", download_name(song["title"], ".stem.mp4"), "audio/mp4")
    except ValueError as e:  # e.g. a 2-stem separation: the message says what NI Stems needs
        raise ApiError(409, str(e)) from None
