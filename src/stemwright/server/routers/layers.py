"""A song's layers (mix document v3 ``layers``): files dropped onto the mixer, the audio the page plays for each,
and the grid the export places them on. The work is in :mod:`stemwright.server.remix`."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse

from stemwright.server import layerfiles, media, remix
from stemwright.server.studio import Studio, get_studio
from stemwright.server.web import bounded_upload

router = APIRouter(prefix="/api/songs/{song_id}/layers")
StudioDep = Annotated[Studio, Depends(get_studio)]


@router.post("", status_code=201)
async def add_layer(song_id: str, request: Request, studio: StudioDep):
    """A multipart upload with a ``file`` field: an audio file (wav, flac, ogg; at most 50 MB and 10 minutes) or a
    MIDI file (at most 1 MB; rendered with FluidSynth). Answers the stored layer: ``file`` (the name the mix
    document uses), ``name``, ``kind``, ``duration``, ``href``."""
    up = await bounded_upload(request, studio.data_dir / "uploads", layerfiles.MAX_LAYER_MB,
                              f"file is larger than the layer limit of {layerfiles.MAX_LAYER_MB} MB")
    try:
        return await remix.add_layer(studio, song_id, up.path, up.size, up.filename)
    finally:
        up.path.unlink(missing_ok=True)  # moved into the song's layers when accepted


@router.get("")
def list_layers(song_id: str, studio: StudioDep):
    """The song's stored layers (``file``, ``name``, ``kind``, ``duration``, ``drums``: the settings of a replaced
    drums stem, ``href``)."""
    return {"layers": remix.list_layers(studio, song_id)}


@router.get("/grid")
async def layer_grid(song_id: str, studio: StudioDep):
    """``{"grid": {"tempo", "downbeat", "beats_per_bar", "beats"}}``: where the export puts ``at: "bar:N"`` (``beats``:
    null for a constant tempo, else the beat times from the first downbeat; or
    ``{"grid": null, "reason"}`` for a song without a beat)."""
    return await remix.layer_grid(studio, song_id)


@router.get("/{file}")
async def layer_audio(song_id: str, file: str, studio: StudioDep, at: str | None = None):
    """The audio the page plays for a stored layer, as float WAV (unclipped, the samples the export mixes); a MIDI
    layer placed ``at`` a bar ("bar:N[.B]") plays on the song's grid from there."""
    path = await remix.layer_audio(studio, song_id, file, at)
    return FileResponse(path, media_type=media.MEDIA_FORMATS["wav"], headers={"cache-control": "no-cache"})
