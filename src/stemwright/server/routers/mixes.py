"""Saved mixes of a song (named mix documents)."""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from stemwright.server.studio import Studio, get_studio
from stemwright.server.web import body_schema, json_body

router = APIRouter()
StudioDep = Annotated[Studio, Depends(get_studio)]


class MixRequest(BaseModel):
    name: str = Field("", max_length=1000, description="shown in the page's menu (cut to 120 characters)")
    document: Any = Field(None, description="a mix document (docs/ARCHITECTURE.md, 'Mix document')")
    id: str | None = Field(None, description="the mix to replace (else a mix of the same name is replaced)")


@router.get("/api/songs/{song_id}/mixes")
def list_mixes(song_id: str, studio: StudioDep):
    return {"mixes": studio.library.mixes(studio.song_or_404(song_id)["id"])}


@router.post("/api/songs/{song_id}/mixes", status_code=201, openapi_extra=body_schema(MixRequest))
def save_mix(song_id: str, studio: StudioDep, body: MixRequest = json_body(MixRequest)):
    return studio.save_mix(song_id, body.name, body.document, body.id)


@router.get("/api/mixes/{mix_id}")
def get_mix(mix_id: str, studio: StudioDep):
    return studio.mix_or_404(mix_id)


@router.delete("/api/mixes/{mix_id}")
def delete_mix(mix_id: str, studio: StudioDep):
    return studio.delete_mix(mix_id)
