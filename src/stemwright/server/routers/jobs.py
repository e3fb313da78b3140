"""Separation jobs: re-run a song, a job's state, cancelling, a song's finished separations."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from stemwright.server.studio import Studio, get_studio
from stemwright.server.web import body_schema, json_body

router = APIRouter()
StudioDep = Annotated[Studio, Depends(get_studio)]


class RerunRequest(BaseModel):
    model: str | None = Field(None, max_length=200, description="a model name (default: the studio's default)")


@router.post("/api/songs/{song_id}/jobs", status_code=201, openapi_extra=body_schema(RerunRequest))
def rerun(song_id: str, studio: StudioDep, body: RerunRequest = json_body(RerunRequest)):
    return studio.rerun(song_id, body.model)


@router.get("/api/jobs/{job_id}")
def get_job(job_id: str, studio: StudioDep):
    job = studio.job_or_404(job_id)
    live = dict(studio.runner.live.jobs.get(job_id, {}))
    if job["status"] in ("queued", "running") and live:
        job["progress"] = live.get("progress", job["progress"])
    return job


@router.post("/api/jobs/{job_id}/cancel")
def cancel_job(job_id: str, studio: StudioDep):
    """``{"cancelling": id, "song": view}``; a job that has already ended answers 409 with ``job`` and ``song``
    (the row as the server has it)."""
    return studio.cancel(job_id)


@router.get("/api/songs/{song_id}/separations")
def separations(song_id: str, studio: StudioDep):
    """The song's finished separations (one per model run), newest first: what the mixer can compare."""
    return {"separations": studio.library.separations(studio.song_or_404(song_id)["id"])}
