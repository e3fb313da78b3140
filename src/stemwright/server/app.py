"""The studio's HTTP API and page (FastAPI).

All identifiers in URLs are 32-hex-digit ids checked by a pattern, stem names must be ones the database knows, and
formats come from an allow-list, so no request parameter ever becomes part of a file path.
"""
from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from stemwright.audio.io import AudioError, read_audio
from stemwright.server import media
from stemwright.server.db import Library
from stemwright.server.jobs import JobRunner, QueueFullError, default_separator_factory
from stemwright.server.upload import UploadError, receive_upload

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
ID_RE = re.compile(r"^[0-9a-f]{32}$")
MAX_JSON_BYTES = 256 * 1024
SAFE_EXT = re.compile(r"^\.[a-z0-9]{1,8}$")


@dataclass
class ServerConfig:
    data_dir: Path
    workers: int = 1
    max_upload_mb: int = 500
    token: str | None = None
    max_queue: int = 16
    default_model: str | None = None
    separator_factory: Callable = default_separator_factory


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        self.status = status
        self.message = message


def _check_id(value: str, what: str) -> str:
    if not ID_RE.match(value or ""):
        raise ApiError(404, f"unknown {what} {value[:40]!r}")
    return value


def _found(lookup: Callable[[str], dict[str, Any] | None], value: str, what: str) -> dict[str, Any]:
    """``lookup(value)`` for a well-formed id, or a 404 naming the ``what`` (song, job, mix)."""
    row = lookup(_check_id(value, what))
    if row is None:
        raise ApiError(404, f"unknown {what} {value}")
    return row


def create_app(config: ServerConfig) -> FastAPI:
    data_dir = Path(config.data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    library = Library(data_dir / "library.sqlite3")
    interrupted = library.mark_interrupted()
    if interrupted:
        log.warning("%d job(s) were interrupted by the last shutdown and can be re-run", len(interrupted))
    runner = JobRunner(library, data_dir, workers=config.workers, max_queue=config.max_queue,
                       separator_factory=config.separator_factory)

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        runner.start()
        try:
            yield
        finally:
            runner.stop()

    app = FastAPI(title="stemwright studio", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url="/api/openapi.json")
    app.state.library = library
    app.state.runner = runner
    app.state.config = config
    max_upload = config.max_upload_mb * 1024 * 1024

    # -- errors: always JSON with a message, never a stack trace ------------------------------------------------
    @app.exception_handler(ApiError)
    async def _api_error(_r: Request, e: ApiError):
        return JSONResponse({"error": e.message}, status_code=e.status)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_r: Request, e: StarletteHTTPException):
        msg = e.detail if isinstance(e.detail, str) else "request failed"
        return JSONResponse({"error": msg}, status_code=e.status_code)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_r: Request, e: RequestValidationError):
        parts = [f"{'.'.join(str(x) for x in err.get('loc', ()))}: {err.get('msg')}" for err in e.errors()]
        return JSONResponse({"error": "invalid request: " + "; ".join(parts)}, status_code=422)

    @app.exception_handler(Exception)
    async def _unexpected(_r: Request, e: Exception):
        log.exception("unhandled error")
        return JSONResponse({"error": f"internal error ({type(e).__name__})"}, status_code=500)

    # -- token check ---------------------------------------------------------------------------------------------
    @app.middleware("http")
    async def _auth(request: Request, call_next):
        if config.token:
            given = (
                request.headers.get("x-stemwright-token")
                or request.headers.get("authorization", "").removeprefix("Bearer ").strip()
                or request.query_params.get("token")
                or request.cookies.get("stemwright_token")
            )
            if not given or not hmac.compare_digest(given, config.token):
                return JSONResponse({"error": "missing or wrong access token"}, status_code=401)
        length = request.headers.get("content-length")
        if request.url.path != "/api/songs" and length and length.isdigit() and int(length) > MAX_JSON_BYTES:
            return JSONResponse({"error": f"request body larger than {MAX_JSON_BYTES // 1024} KB"}, status_code=413)
        response = await call_next(request)
        if config.token and request.query_params.get("token"):
            response.set_cookie("stemwright_token", config.token, httponly=True, samesite="strict")
        return response

    # -- helpers ---------------------------------------------------------------------------------------------------
    def song_or_404(song_id: str) -> dict[str, Any]:
        return _found(library.song, song_id, "song")

    def live_jobs() -> dict[str, dict[str, Any]]:
        return {j["id"]: j for j in runner.live.snapshot()[1]}

    def song_view(song: dict[str, Any], live: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
        jobs = library.jobs_for(song["id"])
        stems = library.stems(song["id"])
        live = live_jobs() if live is None else live
        for j in jobs:
            if j["id"] in live and j["status"] in ("queued", "running"):
                j["progress"] = live[j["id"]].get("progress", j["progress"])
                j["stage"] = live[j["id"]].get("stage", j["stage"])
        latest = jobs[-1] if jobs else None
        return {
            "id": song["id"], "title": song["title"], "duration": song["duration"],
            "samplerate": song["samplerate"], "channels": song["channels"], "created": song["created"],
            "status": latest["status"] if latest else "new", "jobs": jobs,
            "stems": [s["name"] for s in stems],
        }

    def stem_paths(song_id: str) -> dict[str, Path]:
        rows = library.stems(song_id)
        if not rows:
            raise ApiError(409, "this song has no finished separation yet")
        return {r["name"]: Path(r["path"]) for r in rows}

    async def read_json(request: Request) -> dict[str, Any]:
        body = await request.body()
        if len(body) > MAX_JSON_BYTES:
            raise ApiError(413, "request body too large")
        try:
            doc = json.loads(body or b"{}")
        except json.JSONDecodeError as e:
            raise ApiError(400, f"body is not valid JSON ({e.msg})") from None
        if not isinstance(doc, dict):
            raise ApiError(400, "body must be a JSON object")
        return doc

    def check_model(name: str) -> str:
        from stemwright.models.registry import MODELS

        if name not in MODELS or MODELS[name].needs_references:
            usable = [n for n, e in MODELS.items() if not e.needs_references]
            raise ApiError(400, f"unknown model {name!r}; choose one of {', '.join(usable)}")
        return name

    def default_model() -> str:
        from stemwright.models.registry import DEFAULT_MODEL

        return config.default_model or DEFAULT_MODEL

    def start_job(song_id: str, model: str) -> str:
        job_id = library.add_job(song_id, model, {"model": model})
        try:
            runner.submit(job_id)
        except QueueFullError as e:
            library.update_job(job_id, status="failed", error=str(e), finished=time.time())
            raise ApiError(429, str(e)) from None
        return job_id

    # -- pages -----------------------------------------------------------------------------------------------------
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", response_class=HTMLResponse)
    async def index():
        return FileResponse(STATIC_DIR / "index.html", headers={"cache-control": "no-cache"})

    # -- API -------------------------------------------------------------------------------------------------------
    @app.get("/api/health")
    async def health():
        return {"ok": True, "queue": runner.pending(), "schema_version": library.schema_version}

    @app.get("/api/models")
    async def models():
        from stemwright.models.registry import MODELS

        return {
            "default": default_model(),
            "models": [
                {"name": e.name, "sources": list(e.sources), "description": e.description, "licence": e.licence}
                for e in MODELS.values() if not e.needs_references
            ],
        }

    @app.get("/api/songs")
    async def list_songs():
        live = live_jobs()  # one snapshot for the whole list, not one per song
        return {"songs": [song_view(s, live) for s in library.songs()]}

    @app.post("/api/songs", status_code=201)
    async def upload(request: Request):
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > max_upload + 64 * 1024:
            raise ApiError(413, f"file is larger than the upload limit of {config.max_upload_mb} MB")
        try:
            up = await receive_upload(request.headers.get("content-type", ""), request.stream(),
                                      data_dir / "uploads", max_upload)
        except UploadError as e:
            raise ApiError(e.status, str(e)) from None
        model = up.fields.get("model") or default_model()
        try:
            check_model(model)
            try:
                audio = await asyncio.to_thread(read_audio, up.path)
            except AudioError as e:
                raise ApiError(415, f"{Path(up.filename).name[:120]}: {e.reason}") from None
            song_id = library.add_song(
                title=(up.fields.get("title") or Path(up.filename).stem)[:200] or "untitled",
                original_name=Path(up.filename).name[:255], source_path="", samplerate=audio.samplerate,
                channels=audio.channels, duration=audio.duration, size_bytes=up.size,
            )
        except BaseException:
            up.path.unlink(missing_ok=True)
            raise
        ext = Path(up.filename).suffix.lower()
        ext = ext if SAFE_EXT.match(ext) else ".audio"
        song_dir = data_dir / "songs" / song_id
        song_dir.mkdir(parents=True, exist_ok=True)
        source = song_dir / f"source{ext}"
        up.path.replace(source)
        with library.tx() as c:
            c.execute("UPDATE songs SET source_path = ? WHERE id = ?", (str(source), song_id))
        try:
            start_job(song_id, model)
        except ApiError:
            library.delete_song(song_id)
            shutil.rmtree(song_dir, ignore_errors=True)
            raise
        return song_view(library.song(song_id))

    @app.get("/api/songs/{song_id}")
    async def get_song(song_id: str):
        return song_view(song_or_404(song_id))

    @app.delete("/api/songs/{song_id}")
    async def delete_song(song_id: str):
        song = song_or_404(song_id)
        for job in library.jobs_for(song["id"]):
            runner.cancel(job["id"])
        library.delete_song(song["id"])
        shutil.rmtree(data_dir / "songs" / song["id"], ignore_errors=True)
        return {"deleted": song["id"]}

    @app.post("/api/songs/{song_id}/jobs", status_code=201)
    async def rerun(song_id: str, request: Request):
        song = song_or_404(song_id)
        doc = await read_json(request)
        model = check_model(str(doc.get("model") or default_model()))
        if any(j["status"] in ("queued", "running") for j in library.jobs_for(song["id"])):
            raise ApiError(409, "this song already has a separation in progress")
        job_id = start_job(song["id"], model)
        return library.job(job_id)

    @app.get("/api/jobs/{job_id}")
    async def get_job(job_id: str):
        job = _found(library.job, job_id, "job")
        live = dict(runner.live.jobs.get(job_id, {}))
        if job["status"] in ("queued", "running") and live:
            job["progress"] = live.get("progress", job["progress"])
        return job

    @app.post("/api/jobs/{job_id}/cancel")
    async def cancel_job(job_id: str):
        job = _found(library.job, job_id, "job")
        if not runner.cancel(job_id):
            raise ApiError(409, f"job {job_id} is {job['status']}, not queued or running")
        return {"cancelling": job_id}

    @app.get("/api/events")
    async def events(request: Request, until_idle: bool = False):
        async def stream():
            seen = -1
            last_beat = time.monotonic()
            while True:
                if await request.is_disconnected():
                    break
                version, jobs = runner.live.snapshot()
                if version != seen:
                    seen = version
                    yield f"data: {json.dumps({'jobs': jobs})}\n\n"
                    last_beat = time.monotonic()
                elif time.monotonic() - last_beat > 15:
                    yield ": keep-alive\n\n"
                    last_beat = time.monotonic()
                if until_idle and not any(j.get("status") in ("queued", "running") for j in jobs):
                    break
                await asyncio.sleep(0.2)

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"cache-control": "no-cache"})

    @app.get("/api/songs/{song_id}/stems/{stem}")
    async def stem_audio(song_id: str, stem: str, format: str = "wav"):
        paths = stem_paths(song_or_404(song_id)["id"])
        if stem not in paths:
            raise ApiError(404, f"unknown stem {stem[:40]!r}; this song has {', '.join(paths)}")
        if format not in media.MEDIA_FORMATS:
            raise ApiError(400, f"format must be one of {', '.join(media.MEDIA_FORMATS)}")
        path = await asyncio.to_thread(media.encoded, paths[stem], format)
        return FileResponse(path, media_type=media.MEDIA_FORMATS[format], headers={"cache-control": "no-cache"})

    @app.get("/api/songs/{song_id}/peaks")
    async def stem_peaks(song_id: str):
        paths = stem_paths(song_or_404(song_id)["id"])
        out = {}
        for name, p in paths.items():
            out[name] = await asyncio.to_thread(media.peaks, p)
        return {"stems": out}

    @app.get("/api/songs/{song_id}/stems.zip")
    async def stems_zip(song_id: str):
        song = song_or_404(song_id)
        paths = stem_paths(song["id"])
        target = data_dir / "songs" / song["id"] / "stems.zip"
        if not target.exists() or any(p.stat().st_mtime > target.stat().st_mtime for p in paths.values()):
            await asyncio.to_thread(media.stems_zip, paths, target)
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", song["title"])[:80] or "stems"
        return FileResponse(target, media_type="application/zip", filename=f"{name}-stems.zip")

    @app.get("/api/songs/{song_id}/mixes")
    async def list_mixes(song_id: str):
        return {"mixes": library.mixes(song_or_404(song_id)["id"])}

    @app.post("/api/songs/{song_id}/mixes", status_code=201)
    async def save_mix(song_id: str, request: Request):
        song = song_or_404(song_id)
        doc = await read_json(request)
        document = doc.get("document")
        mix = _validate_mix(document, stem_paths(song["id"]))
        mix_id = doc.get("id")
        if mix_id is not None:
            _check_id(str(mix_id), "mix")
        saved = library.save_mix(song["id"], str(doc.get("name") or "mix")[:120], mix, mix_id)
        return library.mix(saved)

    @app.get("/api/mixes/{mix_id}")
    async def get_mix(mix_id: str):
        return _found(library.mix, mix_id, "mix")

    @app.post("/api/songs/{song_id}/export")
    async def export(song_id: str, request: Request):
        song = song_or_404(song_id)
        doc = await read_json(request)
        fmt = str(doc.get("format", "wav"))
        if fmt not in ("wav", "mp3", "flac"):
            raise ApiError(400, "format must be wav, flac or mp3")
        paths = stem_paths(song["id"])
        mix = _validate_mix(doc.get("document"), paths)
        exports = data_dir / "exports"
        exports.mkdir(exist_ok=True)
        target = Path(tempfile.mkdtemp(dir=exports)) / f"mix.{fmt}"
        await asyncio.to_thread(_render_export, mix, paths, target, fmt)
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", song["title"])[:80] or "mix"
        return FileResponse(target, media_type=media.MEDIA_FORMATS[fmt], filename=f"{name}-mix.{fmt}")

    return app


def _validate_mix(document: Any, stems: dict[str, Path]) -> dict[str, Any]:
    """Check a mix document with the mixer engine's own validation; returns it normalised."""
    if not isinstance(document, dict):
        raise ApiError(400, "'document' must be a mix document (JSON object)")
    from stemwright.mixer.document import Mix

    try:
        mix = Mix.from_dict(document)
        unknown = [c.stem for c in mix.channels if c.stem not in stems]
        if unknown:
            raise ValueError(f"unknown stem(s) {', '.join(unknown)}; this song has {', '.join(stems)}")
    except (ValueError, TypeError, KeyError) as e:
        raise ApiError(400, f"invalid mix document: {e}") from None
    return mix.to_dict()


def _render_export(document: dict[str, Any], stems: dict[str, Path], target: Path, fmt: str) -> None:
    from stemwright.server.render_bridge import render_to_file

    render_to_file(document, stems, target, fmt)
