"""Songs: the library list, uploads, one song, deleting it."""
from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Request

from stemwright.server.studio import Studio, get_studio
from stemwright.server.web import bounded_upload

router = APIRouter(prefix="/api/songs")
StudioDep = Annotated[Studio, Depends(get_studio)]


@router.get("")
def list_songs(studio: StudioDep):
    return {"songs": studio.songs()}


@router.post("", status_code=201)
async def upload(request: Request, studio: StudioDep):
    """A multipart upload with a ``file`` field (and optional ``model``, ``title``): checked while streaming
    (size), then by a bounded decode of its start and end; errors name the user's file, never a server path."""
    limit_mb = studio.config.max_upload_mb
    up = await bounded_upload(request, studio.data_dir / "uploads", limit_mb,
                              f"file is larger than the upload limit of {limit_mb} MB")
    try:
        return await asyncio.to_thread(studio.accept_upload, up.path, up.size, up.filename, up.fields)
    finally:
        up.path.unlink(missing_ok=True)  # moved into the song's folder when accepted


@router.get("/{song_id}")
def get_song(song_id: str, studio: StudioDep):
    return studio.song_view(studio.song_or_404(song_id))


@router.delete("/{song_id}")
def delete_song(song_id: str, studio: StudioDep):
    return studio.delete_song(song_id)
