"""The drums panel: installed Hydrogen kits, one-shots uploaded to a song, and "apply" (a replaced drums stem,
answered as a new layer of the song). The work is in :mod:`stemwright.server.drumpanel`."""
from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from stemwright.server import drumpanel
from stemwright.server.studio import Studio, get_studio
from stemwright.server.web import body_schema, bounded_upload, json_body

router = APIRouter()
StudioDep = Annotated[Studio, Depends(get_studio)]


class DrumRequest(BaseModel):
    kit: str | None = Field(None, max_length=200, description="an installed Hydrogen kit (GET /api/drums/kits)")
    kick: str | None = Field(None, max_length=64, description='"kit", a one-shot of the song, or null (keep)')
    snare: str | None = Field(None, max_length=64)
    hat: str | None = Field(None, max_length=64)
    blend: float = Field(1.0, ge=0.0, le=1.0, allow_inf_nan=False, description="1 replaces; less keeps the original")


@router.get("/api/drums/kits")
async def drum_kits():
    return {"kits": await asyncio.to_thread(drumpanel.kit_names)}


@router.get("/api/songs/{song_id}/drums/samples")
def list_samples(song_id: str, studio: StudioDep):
    song = studio.song_or_404(song_id)
    return {"samples": drumpanel.list_samples(drumpanel.samples_dir(studio, song["id"]))}


@router.post("/api/songs/{song_id}/drums/samples", status_code=201)
async def add_sample(song_id: str, request: Request, studio: StudioDep):
    """A one-shot (wav, flac or ogg; at most 5 MB and 10 s) for the song's drums panel."""
    up = await bounded_upload(request, studio.data_dir / "uploads", drumpanel.MAX_SAMPLE_MB,
                              f"a one-shot is at most {drumpanel.MAX_SAMPLE_MB} MB")
    try:
        return await drumpanel.add_sample(studio, song_id, up.path, up.filename)
    finally:
        up.path.unlink(missing_ok=True)


@router.post("/api/songs/{song_id}/drums", status_code=201, openapi_extra=body_schema(DrumRequest))
async def apply_drums(song_id: str, studio: StudioDep, body: DrumRequest = json_body(DrumRequest)):
    """Replace (blend 1) or reinforce the song's drums stem with the chosen samples; answers the new layer."""
    settings = drumpanel.DrumSettings(kit=body.kit, kick=body.kick, snare=body.snare, hat=body.hat, blend=body.blend)
    return await drumpanel.apply(studio, song_id, settings)
