"""``GET /api/events``: the server-sent event stream every open tab follows (see docs/studio.md, "Live updates").

- ``retry: 3000`` first: a browser whose connection drops (a server restart) reconnects after 3 s;
- ``event: hello`` with ``{"boot", "reset"}``: ``reset`` is true when the tab must reload the library (a first
  connection, a reconnect to a restarted server, or one that missed more changes than the log keeps);
- unnamed (``message``) events with ``{"jobs": [...]}``: the live state of jobs (progress, status, analysis);
- ``event: song`` with ``{"action": "added" | "removed" | "changed", "id": song_id}`` and an ``id:`` line
  (``<boot>.<seq>``): what changed in the library, whichever tab or job changed it.
"""
from __future__ import annotations

import asyncio
import json
import time
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from stemwright.server.studio import Studio, get_studio

router = APIRouter()
StudioDep = Annotated[Studio, Depends(get_studio)]
RETRY_MS = 3000
KEEP_ALIVE_S = 15.0


def _sse(data: dict, event: str | None = None, event_id: str | None = None) -> str:
    head = (f"event: {event}\n" if event else "") + (f"id: {event_id}\n" if event_id else "")
    return f"{head}data: {json.dumps(data)}\n\n"


@router.get("/api/events")
async def events(request: Request, studio: StudioDep, until_idle: bool = False):
    log = studio.events
    resume = log.resume_point(request.headers.get("last-event-id"))
    missed = None if resume is None else log.since(resume)  # replayed below; None: reload instead
    seen_song = log.seq if missed is None else resume

    async def stream():
        nonlocal seen_song
        yield f"retry: {RETRY_MS}\n\n"
        yield _sse({"boot": log.boot, "reset": missed is None}, "hello", log.event_id(seen_song))
        seen = -1
        last_beat = time.monotonic()
        # ends when the client goes or the server stops (else a shutdown waits for every open tab)
        while not studio.stopping.is_set():
            if await request.is_disconnected():
                break
            changes = log.since(seen_song)
            if changes is None:  # fell behind the log: the tab reloads
                seen_song = log.seq
                yield _sse({"boot": log.boot, "reset": True}, "hello", log.event_id(seen_song))
            for change in changes or ():
                seen_song = change.seq
                yield _sse({"action": change.action, "id": change.song_id}, "song", log.event_id(change.seq))
            version, jobs = studio.runner.live.snapshot()
            if version != seen:
                seen = version
                yield _sse({"jobs": jobs})
                last_beat = time.monotonic()
            elif time.monotonic() - last_beat > KEEP_ALIVE_S:
                yield ": keep-alive\n\n"
                last_beat = time.monotonic()
            if until_idle and not any(j.get("status") in ("queued", "running") or j.get("analysis") == "analysing"
                                      for j in jobs):
                break
            await asyncio.sleep(0.2)

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"cache-control": "no-cache"})
