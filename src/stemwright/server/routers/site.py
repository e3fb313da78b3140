"""The page, its icon, the health check and the model list."""
from __future__ import annotations

import struct
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse, HTMLResponse, Response

from stemwright.server.studio import STATIC_DIR, Studio, get_studio

router = APIRouter()
StudioDep = Annotated[Studio, Depends(get_studio)]


def _icon(size: int = 16) -> bytes:
    """A 16x16 ICO (a dark square with a light bar, the studio's colours) built in code, so browsers' automatic
    ``/favicon.ico`` request finds a file."""
    dark, light = b"\x2a\x1e\x1a\xff", b"\xd9\xc9\x7a\xff"  # BGRA
    rows = [b"".join(light if 3 <= x < 13 and 6 <= y < 10 else dark for x in range(size)) for y in range(size)]
    pixels = b"".join(rows)  # bottom-up in BMP order; the picture is symmetric
    mask = b"\0" * (size * 4)  # 1-bit AND mask, rows padded to 32 bits: nothing transparent
    header = struct.pack("<IiiHHIIiiII", 40, size, size * 2, 1, 32, 0, len(pixels) + len(mask), 0, 0, 0, 0)
    image = header + pixels + mask
    return struct.pack("<HHH", 0, 1, 1) + struct.pack("<BBBBHHII", size, size, 0, 0, 1, 32, len(image), 22) + image


FAVICON = _icon()


@router.get("/", response_class=HTMLResponse)
def index():
    return FileResponse(STATIC_DIR / "index.html", headers={"cache-control": "no-cache"})


@router.get("/favicon.ico", include_in_schema=False)
def favicon():
    return Response(FAVICON, media_type="image/x-icon", headers={"cache-control": "max-age=86400"})


@router.get("/api/health")
async def health(studio: StudioDep):
    return {"ok": True, "queue": studio.runner.pending(), "schema_version": studio.schema_version,
            "model_ready": studio.runner.model_ready.is_set()}


@router.get("/api/models")
def models(studio: StudioDep):
    return studio.models()
