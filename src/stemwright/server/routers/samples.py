"""The studio's sample library: "save loop as sample", the list, one sample's file."""
from __future__ import annotations

import asyncio
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from stemwright.server import renders, studio as studio_module
from stemwright.server.studio import ApiError, Studio, get_studio
from stemwright.server.web import body_schema, content_disposition, json_body

router = APIRouter()
StudioDep = Annotated[Studio, Depends(get_studio)]


class LoopSampleRequest(BaseModel):
    document: Any = Field(None, description="a mix document (its time_pitch is not applied)")
    start: float = Field(allow_inf_nan=False, ge=0, description="seconds")
    end: float = Field(allow_inf_nan=False, description="seconds")


@router.post("/api/songs/{song_id}/samples", status_code=201, openapi_extra=body_schema(LoopSampleRequest))
async def save_loop_sample(song_id: str, studio: StudioDep, body: LoopSampleRequest = json_body(LoopSampleRequest)):
    """"Save loop as sample": the mix document over ``[start, end)`` seconds of the song, cut at zero crossings
    with short fades into the studio's sample library (``DATA_DIR/samples``, the layout and index of
    ``stemwright samples``), named with the song's BPM and key (at the song's own speed and key: a document's
    ``time_pitch`` is not applied). Needs the song's analysis."""
    root = studio.data_dir / "samples"

    def prepare() -> tuple[dict[str, Any], dict[str, Path], dict[str, Any], dict[str, Any]]:
        from stemwright.samples.library import MAX_LOOP_SAMPLE_S, read_index  # (loads the sample library on use)

        song, paths = studio.song_stems(song_id)
        if len(read_index(root)) >= studio_module.MAX_STUDIO_SAMPLES:
            raise ApiError(409, f"the studio's sample library holds {studio_module.MAX_STUDIO_SAMPLES} samples, "
                                "the most it keeps")
        mix = renders.validate_mix(body.document, paths, studio.layers_dir(song["id"]))
        mix.pop("time_pitch", None)
        mix["version"] = 3 if mix.get("layers") else 1
        if not body.start < body.end or body.end - body.start > MAX_LOOP_SAMPLE_S:
            raise ApiError(400, f"'start'/'end': need 0 <= start < end and at most {MAX_LOOP_SAMPLE_S:g} s")
        analysis = studio.library.analysis(studio.library.stems(song["id"])[0]["job_id"])
        if analysis is None:
            raise ApiError(409, "this song is not analysed yet (open it in the mixer and wait for its BPM and key)")
        return song, paths, mix, analysis

    song, paths, mix, analysis = await asyncio.to_thread(prepare)
    try:
        entry = await studio.exports.run(renders.render_loop_sample, mix, paths, root, song["title"], analysis,
                                         body.start, body.end, studio.layers_dir(song["id"]))
    except ValueError as e:
        raise ApiError(400, str(e)) from None
    return {**entry, "href": f"/api/samples/file?path={quote(entry['path'])}"}


@router.get("/api/samples")
def list_samples(studio: StudioDep):
    from stemwright.samples.library import read_index  # (loads the sample library on use)

    return {"samples": [asdict(e) for e in read_index(studio.data_dir / "samples")]}


@router.get("/api/samples/file")
def sample_file(path: str, studio: StudioDep):
    """A sample of the studio's library, only by a path its index lists (no other file is reachable)."""
    from stemwright.samples.library import read_index  # (loads the sample library on use)

    root = studio.data_dir / "samples"
    if path not in {e.path for e in read_index(root)}:
        raise ApiError(404, "no such sample in the studio's library")
    target = (root / path).resolve()
    if not target.is_relative_to(root.resolve()) or not target.is_file():
        raise ApiError(404, "no such sample in the studio's library")
    return FileResponse(target, media_type="audio/wav",
                        headers={"content-disposition": content_disposition(target.name)})
