"""The studio's HTTP API and page (FastAPI).

All identifiers in URLs are 32-hex-digit ids checked by a pattern, stem names must be ones the database knows, and
formats come from an allow-list, so no request parameter ever becomes part of a file path.

Every request passes the checks of :mod:`stemwright.server.guard` (Host allow-list, origin check, token) first.
Handlers that touch the database, files or the model registry are plain functions, which FastAPI runs in its
thread pool, so the event loop (and with it the event streams and health checks) never waits on them.
"""
from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import shutil
import threading
import time
import unicodedata
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from python_multipart.multipart import parse_options_header
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from stemwright.server import guard, media
from stemwright.server.db import Library
from stemwright.server.exports import ExportBusyError, ExportQueue, check_mix_limits
from stemwright.server.jobs import JobRunner, QueueFullError, default_separator_factory
from stemwright.server.probe import ProbeError, probe_audio
from stemwright.server.upload import UploadError, receive_upload

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
ID_RE = re.compile(r"^[0-9a-f]{32}$")
MAX_JSON_BYTES = 256 * 1024
MAX_STUDIO_SAMPLES = 1000  # "save loop as sample" files (each at most 60 s): bounds the disk one client can fill
BLEED_CACHE = 32  # separations whose bleed figures the studio keeps in memory (a few kB each)
SAFE_EXT = re.compile(r"^\.[a-z0-9]{1,8}$")
MIX_NAME_MAX = 120
MAX_MIXES_PER_SONG = 100  # named mixes are typed by hand; a bound keeps one song's list (and the page's menu) sane
# The page loads only its own script, style sheet and API; no inline script or style attribute is needed.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
       "media-src 'self' blob:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "content-security-policy": CSP,
    "x-frame-options": "DENY",  # frame-ancestors for browsers that predate CSP 2
    "referrer-policy": "no-referrer",
    "cross-origin-resource-policy": "same-origin",
}
TOKEN_COOKIE = "stemwright_token"


@dataclass(frozen=True, kw_only=True)
class ServerConfig:
    """Everything ``create_app`` needs. ``host`` is the bound address (it joins the Host allow-list)."""

    data_dir: Path
    host: str = "127.0.0.1"
    allow_hosts: tuple[str, ...] = ()
    workers: int = 1
    max_upload_mb: int = 500
    max_duration: float = 7200.0
    token: str | None = None
    max_queue: int = 16
    max_exports: int = 4
    export_ttl_s: float = 600.0
    default_model: str | None = None
    separator_factory: Callable = field(default=default_separator_factory)

    def __post_init__(self) -> None:
        if self.token is not None:
            guard.check_token(self.token)
        if not self.max_duration > 0:
            raise ValueError(f"max_duration must be positive, got {self.max_duration}")
        for name in ("workers", "max_upload_mb", "max_queue", "max_exports"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")


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


@dataclass(frozen=True, kw_only=True)
class StudioModel:
    """A model the studio offers: a registry model, or a published one whose files are already on disk."""

    name: str
    sources: tuple[str, ...]
    description: str
    licence: str


def _model_entries() -> list[StudioModel]:
    """The registry's usable models, then the published models usable offline (e.g. ``spleeter_2stems``, whose
    weights ship in a package): the studio never downloads. Importing the registry loads torch: call from a worker
    thread, never the event loop."""
    from stemwright.models.registry import MODELS
    from stemwright.pretrained.catalogue import list_published

    models = [StudioModel(name=e.name, sources=tuple(e.sources), description=e.description, licence=e.licence)
              for e in MODELS.values() if not e.needs_references]
    models += [StudioModel(name=e["name"], sources=tuple(e["sources"]), description=e["description"],
                           licence=e["licence"]) for e in list_published() if e["on_disk"]]
    return models


def _default_model_name() -> str:
    from stemwright.models.registry import DEFAULT_MODEL

    return DEFAULT_MODEL


def download_name(title: str, suffix: str) -> str:
    """A file name from a song title: Unicode kept, path separators and control characters removed."""
    text = "".join(ch for ch in unicodedata.normalize("NFC", title) if unicodedata.category(ch)[0] != "C")
    text = re.sub(r'[\\/:*?"<>|]+', "_", text).strip(" .")[:80] or "stemwright"
    return f"{text}{suffix}"


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII fallback and the exact name as RFC 5987 ``filename*``."""
    ascii_name = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode()
    ascii_name = re.sub(r"[^A-Za-z0-9._ -]+", "_", ascii_name).strip() or "download"
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


class TextGzip:
    """gzip for the page, its assets and the peaks JSON only: audio does not compress, and compressing it would
    break range requests."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.gzip = GZipMiddleware(app, minimum_size=1024)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path == "/" or path.startswith("/static/") or path.endswith("/peaks"):
            await self.gzip(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def remove_upload_leftovers(upload_dir: Path) -> int:
    """Remove partial uploads a killed server left behind (at start-up)."""
    removed = 0
    for part in upload_dir.glob(".upload.*.part"):
        part.unlink(missing_ok=True)
        removed += 1
    return removed


def _refuse(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=SECURITY_HEADERS)


def create_app(config: ServerConfig) -> FastAPI:
    data_dir = Path(config.data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    library = Library(data_dir / "library.sqlite3")
    interrupted = library.mark_interrupted()
    if interrupted:
        log.warning("%d job(s) were interrupted by the last shutdown and can be re-run", len(interrupted))
    runner = JobRunner(library, data_dir, workers=config.workers, max_queue=config.max_queue,
                       separator_factory=config.separator_factory)
    leftovers = runner.remove_leftovers() + remove_upload_leftovers(data_dir / "uploads")
    if leftovers:
        log.warning("removed %d partial file(s) left by a server that was killed", leftovers)
    exports = ExportQueue(data_dir / "exports", max_pending=config.max_exports, ttl_s=config.export_ttl_s)
    exports.clear()
    hosts = guard.HostPolicy.for_bind(config.host, config.allow_hosts, token=bool(config.token))
    stopping = threading.Event()

    def begin_shutdown() -> None:
        """First step of a shutdown (called from the signal handler): end event streams, stop jobs."""
        stopping.set()
        runner.request_stop()

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        runner.start()
        # load the model registry (it imports torch) in the background now, not on the page's first request
        threading.Thread(target=_model_entries, name="stemwright-warm-registry", daemon=True).start()
        try:
            yield
        finally:
            begin_shutdown()
            await asyncio.to_thread(runner.stop)

    app = FastAPI(title="stemwright studio", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url="/api/openapi.json")
    app.state.library = library
    app.state.runner = runner
    app.state.config = config
    app.state.exports = exports
    app.state.begin_shutdown = begin_shutdown
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

    # -- Host, origin and token checks, security headers ---------------------------------------------------------
    @app.middleware("http")
    async def _guard(request: Request, call_next):
        host = request.headers.get("host")
        if not hosts.allows(host):
            return _refuse(403, f"Host {str(host)[:80]!r} is not one of the studio's allowed hosts")
        reason = guard.cross_origin_reason(request.method, host, request.headers.get("origin"),
                                           request.headers.get("sec-fetch-site"))
        if reason:
            return _refuse(403, reason)
        if config.token:
            query_token = request.query_params.get("token")
            given = guard.given_token(request.headers, query_token, request.cookies.get(TOKEN_COOKIE))
            if not guard.token_matches(given, config.token):
                return _refuse(401, "missing or wrong access token")
            if query_token is not None and request.method in ("GET", "HEAD"):
                # exchange the token for a cookie and drop it from the address bar and the history
                clean = request.url.remove_query_params("token")
                target = clean.path + (f"?{clean.query}" if clean.query else "")
                response = RedirectResponse(target, status_code=303, headers=SECURITY_HEADERS)
                response.set_cookie(TOKEN_COOKIE, config.token, httponly=True, samesite="strict", path="/")
                return response
        length = request.headers.get("content-length")
        if request.url.path != "/api/songs" and length and length.isdigit() and int(length) > MAX_JSON_BYTES:
            return _refuse(413, f"request body larger than {MAX_JSON_BYTES // 1024} KB")
        response = await call_next(request)
        for k, v in SECURITY_HEADERS.items():
            response.headers.setdefault(k, v)
        return response

    app.add_middleware(TextGzip)

    # -- helpers ---------------------------------------------------------------------------------------------------
    bleed_cache: dict[str, dict[str, Any]] = {}
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
            "stems": [s["name"] for s in stems], "stems_job": stems[0]["job_id"] if stems else None,
        }

    def stem_paths(song_id: str, job_id: str | None = None) -> dict[str, Path]:
        """The stems of the song's latest separation, or of its separation ``job_id`` (model comparison)."""
        if job_id is not None:
            rows = library.job_stems(song_id, job_id)
            if not rows:
                raise ApiError(404, f"job {job_id[:40]!r} is not a finished separation of this song")
            return {r["name"]: Path(r["path"]) for r in rows}
        rows = library.stems(song_id)
        if not rows:
            raise ApiError(409, "this song has no finished separation yet")
        return {r["name"]: Path(r["path"]) for r in rows}

    async def read_json(request: Request) -> dict[str, Any]:
        """The JSON object in the body. ``application/json`` is required: a cross-site form can send
        ``text/plain`` without a preflight, never ``application/json``. The size is bounded while streaming."""
        ctype, _ = parse_options_header(request.headers.get("content-type", ""))
        if ctype != b"application/json":
            raise ApiError(415, "the body must be JSON sent as Content-Type: application/json")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_JSON_BYTES:
                raise ApiError(413, f"request body larger than {MAX_JSON_BYTES // 1024} KB")
        try:
            doc = json.loads(bytes(body) or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ApiError(400, f"body is not valid JSON ({getattr(e, 'msg', 'not UTF-8')})") from None
        if not isinstance(doc, dict):
            raise ApiError(400, "body must be a JSON object")
        return doc

    def check_model(name: str) -> str:
        entries = _model_entries()
        if name not in {e.name for e in entries}:
            raise ApiError(400, f"unknown model {name[:60]!r}; choose one of {', '.join(e.name for e in entries)}")
        return name

    def default_model() -> str:
        return config.default_model or _default_model_name()

    def start_job(song_id: str, model: str) -> str:
        job_id = library.add_job(song_id, model, {"model": model})
        try:
            runner.submit(job_id)
        except QueueFullError as e:
            library.update_job(job_id, status="failed", error=str(e), finished=time.time())
            raise ApiError(429, str(e)) from None
        return job_id

    def accept_upload(path: Path, size: int, filename: str, fields: dict[str, str]) -> dict[str, Any]:
        """Check the stored upload (bounded decode), record the song and queue its job (worker thread)."""
        model = check_model(fields.get("model") or default_model())
        shown = Path(filename).name[:120]
        try:
            info = probe_audio(path, config.max_duration, name=filename)
        except ProbeError as e:
            raise ApiError(e.status, f"{shown}: {e.reason}") from None
        song_id = library.add_song(
            title=(fields.get("title") or Path(filename).stem)[:200] or "untitled",
            original_name=Path(filename).name[:255], source_path="", samplerate=info.samplerate,
            channels=info.channels, duration=info.duration, size_bytes=size,
        )
        ext = Path(filename).suffix.lower()
        ext = ext if SAFE_EXT.match(ext) else ".audio"
        song_dir = data_dir / "songs" / song_id
        song_dir.mkdir(parents=True, exist_ok=True)
        source = song_dir / f"source{ext}"
        path.replace(source)
        with library.tx() as c:
            c.execute("UPDATE songs SET source_path = ? WHERE id = ?", (str(source), song_id))
        try:
            start_job(song_id, model)
        except ApiError:
            library.delete_song(song_id)
            shutil.rmtree(song_dir, ignore_errors=True)
            raise
        return song_view(library.song(song_id))

    # -- pages -----------------------------------------------------------------------------------------------------
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", response_class=HTMLResponse)
    def index():
        return FileResponse(STATIC_DIR / "index.html", headers={"cache-control": "no-cache"})

    # -- API -------------------------------------------------------------------------------------------------------
    schema_version = library.schema_version  # read once: the health check touches no file

    @app.get("/api/health")
    async def health():
        return {"ok": True, "queue": runner.pending(), "schema_version": schema_version}

    @app.get("/api/models")
    def models():
        return {
            "default": default_model(),
            "models": [
                {"name": e.name, "sources": list(e.sources), "description": e.description, "licence": e.licence}
                for e in _model_entries()
            ],
        }

    @app.get("/api/songs")
    def list_songs():
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
        try:
            return await asyncio.to_thread(accept_upload, up.path, up.size, up.filename, up.fields)
        finally:
            up.path.unlink(missing_ok=True)  # moved into the song's folder when accepted

    @app.get("/api/songs/{song_id}")
    def get_song(song_id: str):
        return song_view(song_or_404(song_id))

    @app.delete("/api/songs/{song_id}")
    def delete_song(song_id: str):
        song = song_or_404(song_id)
        for job in library.jobs_for(song["id"]):
            runner.cancel(job["id"])
        library.delete_song(song["id"])
        shutil.rmtree(data_dir / "songs" / song["id"], ignore_errors=True)
        return {"deleted": song["id"]}

    @app.post("/api/songs/{song_id}/jobs", status_code=201)
    async def rerun(song_id: str, request: Request):
        doc = await read_json(request)

        def run() -> dict[str, Any]:
            song = song_or_404(song_id)
            model = check_model(str(doc.get("model") or default_model()))
            if any(j["status"] in ("queued", "running") for j in library.jobs_for(song["id"])):
                raise ApiError(409, "this song already has a separation in progress")
            return library.job(start_job(song["id"], model))

        return await asyncio.to_thread(run)

    @app.get("/api/jobs/{job_id}")
    def get_job(job_id: str):
        job = _found(library.job, job_id, "job")
        live = dict(runner.live.jobs.get(job_id, {}))
        if job["status"] in ("queued", "running") and live:
            job["progress"] = live.get("progress", job["progress"])
        return job

    @app.post("/api/jobs/{job_id}/cancel")
    def cancel_job(job_id: str):
        job = _found(library.job, job_id, "job")
        if not runner.cancel(job_id):
            raise ApiError(409, f"job {job_id} is {job['status']}, not queued or running")
        return {"cancelling": job_id}

    @app.get("/api/events")
    async def events(request: Request, until_idle: bool = False):
        async def stream():
            seen = -1
            last_beat = time.monotonic()
            # ends when the client goes or the server stops (else a shutdown waits for every open tab)
            while not stopping.is_set():
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
    def stem_audio(song_id: str, stem: str, format: str = "wav", job: str | None = None):
        paths = stem_paths(song_or_404(song_id)["id"], job)
        if stem not in paths:
            raise ApiError(404, f"unknown stem {stem[:40]!r}; this song has {', '.join(paths)}")
        if format not in media.MEDIA_FORMATS:
            raise ApiError(400, f"format must be one of {', '.join(media.MEDIA_FORMATS)}")
        path = media.encoded(paths[stem], format)
        return FileResponse(path, media_type=media.MEDIA_FORMATS[format], headers={"cache-control": "no-cache"})

    @app.get("/api/songs/{song_id}/original")
    def original_audio(song_id: str):
        """The uploaded song decoded by the same reader as the separation (so it lines up with the stems sample
        for sample), as FLAC: the studio's A/B switch plays it against the mix."""
        song = song_or_404(song_id)
        source = Path(song["source_path"])
        if not source.is_file():
            raise ApiError(404, "this song's original file is not stored")
        path = media.encoded_original(source)
        return FileResponse(path, media_type=media.MEDIA_FORMATS["flac"], headers={"cache-control": "no-cache"})

    @app.get("/api/songs/{song_id}/peaks")
    def stem_peaks(song_id: str):
        paths = stem_paths(song_or_404(song_id)["id"])
        return {"stems": {name: media.peaks(p) for name, p in paths.items()}}

    @app.get("/api/songs/{song_id}/stems.zip")
    def stems_zip(song_id: str, format: str = "flac"):
        song = song_or_404(song_id)
        paths = stem_paths(song["id"])
        if format not in ("flac", "wav"):
            raise ApiError(400, "format must be flac or wav")
        target = data_dir / "songs" / song["id"] / f"stems-{format}.zip"
        if not target.exists() or any(p.stat().st_mtime > target.stat().st_mtime for p in paths.values()):
            media.stems_zip(paths, target, format)
        name = download_name(song["title"], "-stems.zip")
        return FileResponse(target, media_type="application/zip",
                            headers={"content-disposition": content_disposition(name)})

    @app.get("/api/songs/{song_id}/analysis")
    async def song_analysis(song_id: str):
        """Tempo, beats, downbeats, meter and key of the song's current stems: computed once (through the
        bounded exports queue, it takes seconds) and kept in the database with the separation job."""
        def lookup() -> tuple[str, dict[str, Path], dict[str, Any] | None]:
            song = song_or_404(song_id)
            paths = stem_paths(song["id"])
            job_id = library.stems(song["id"])[0]["job_id"]
            return job_id, paths, library.analysis(job_id)

        job_id, paths, stored = await asyncio.to_thread(lookup)
        if stored is None:
            try:
                stored = await exports.run(_analyse, paths)
            except ExportBusyError as e:
                raise ApiError(429, str(e)) from None
            except ValueError as e:  # silent or beatless stems: the analysis says why
                raise ApiError(422, f"cannot analyse this song: {e}") from None
            await asyncio.to_thread(library.save_analysis, song_id, job_id, stored)
        return {"job_id": job_id, **stored}

    @app.post("/api/songs/{song_id}/samples", status_code=201)
    async def save_loop_sample(song_id: str, request: Request):
        """"Save loop as sample": the mix document over ``[start, end)`` seconds of the song, cut at zero crossings
        with short fades into the studio's sample library (``DATA_DIR/samples``, the layout and index of
        ``stemwright samples``), named with the song's BPM and key (at the song's own speed and key: a document's
        ``time_pitch`` is not applied). Needs the song's analysis (the mixer asks for it on opening)."""
        doc = await read_json(request)

        def prepare() -> tuple[dict[str, Any], dict[str, Path], dict[str, Any], dict[str, Any], float, float]:
            from stemwright.samples.library import MAX_LOOP_SAMPLE_S, read_index

            song = song_or_404(song_id)
            if len(read_index(data_dir / "samples")) >= MAX_STUDIO_SAMPLES:
                raise ApiError(409, f"the studio's sample library holds {MAX_STUDIO_SAMPLES} samples, the most it keeps")
            paths = stem_paths(song["id"])
            mix = _validate_mix(doc.get("document"), paths)
            mix.pop("time_pitch", None)
            mix["version"] = 1
            start, end = doc.get("start"), doc.get("end")
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in (start, end)):
                raise ApiError(400, "'start' and 'end' must be numbers of seconds")
            if not 0 <= start < end or end - start > MAX_LOOP_SAMPLE_S:
                raise ApiError(400, f"'start'/'end': need 0 <= start < end and at most {MAX_LOOP_SAMPLE_S:g} s")
            analysis = library.analysis(library.stems(song["id"])[0]["job_id"])
            if analysis is None:
                raise ApiError(409, "this song is not analysed yet (open it in the mixer and wait for its BPM and key)")
            return song, paths, mix, analysis, float(start), float(end)

        song, paths, mix, analysis, start, end = await asyncio.to_thread(prepare)
        try:
            entry = await exports.run(_render_loop_sample, mix, paths, data_dir / "samples", song["title"], analysis,
                                      start, end)
        except ExportBusyError as e:
            raise ApiError(429, str(e)) from None
        except ValueError as e:
            raise ApiError(400, str(e)) from None
        return {**entry, "href": f"/api/samples/file?path={quote(entry['path'])}"}

    @app.get("/api/samples")
    def list_samples():
        from stemwright.samples.library import read_index

        return {"samples": [asdict(e) for e in read_index(data_dir / "samples")]}

    @app.get("/api/samples/file")
    def sample_file(path: str):
        """A sample of the studio's library, only by a path its index lists (no other file is reachable)."""
        from stemwright.samples.library import read_index

        root = data_dir / "samples"
        if path not in {e.path for e in read_index(root)}:
            raise ApiError(404, "no such sample in the studio's library")
        target = (root / path).resolve()
        if not target.is_relative_to(root.resolve()) or not target.is_file():
            raise ApiError(404, "no such sample in the studio's library")
        return FileResponse(target, media_type="audio/wav",
                            headers={"content-disposition": content_disposition(target.name)})

    @app.get("/api/songs/{song_id}/separations")
    def separations(song_id: str):
        """The song's finished separations (one per model run), newest first: what the mixer can compare."""
        return {"separations": library.separations(song_or_404(song_id)["id"])}

    @app.get("/api/songs/{song_id}/bleed")
    async def song_bleed(song_id: str, job: str):
        """``stemwright inspect``'s full-band bleed for one separation of the song: per stem, the mean share of its
        STFT-magnitude variance explained by each other stem (0 = none, 1 = the same signal), and the matrix.
        Computed through the bounded exports queue; kept in memory for the last few separations."""
        paths = await asyncio.to_thread(lambda: stem_paths(song_or_404(song_id)["id"], job))
        key = f"{song_id}/{job}"
        if key not in bleed_cache:
            try:
                bleed_cache[key] = await exports.run(_bleed, paths)
            except ExportBusyError as e:
                raise ApiError(429, str(e)) from None
            while len(bleed_cache) > BLEED_CACHE:
                bleed_cache.pop(next(iter(bleed_cache)))
        return {"job_id": job, **bleed_cache[key]}

    @app.get("/api/songs/{song_id}/stems.stem.mp4")
    async def ni_stems(song_id: str, codec: str = "aac"):
        """The song as an NI Stems file (mixture + drums, bass, other, vocals) for Traktor, Mixxx and other DJ
        software; rendered through the bounded exports queue, removed once downloaded."""
        if codec not in ("aac", "alac"):
            raise ApiError(400, "codec must be aac or alac")
        song = await asyncio.to_thread(song_or_404, song_id)
        paths = await asyncio.to_thread(stem_paths, song["id"])
        await asyncio.to_thread(exports.sweep)
        folder = await asyncio.to_thread(exports.new_dir)
        target = folder / "song.stem.mp4"
        try:
            await exports.run(_render_ni_stems, paths, Path(song["source_path"]), target, codec)
        except BaseException as e:
            await asyncio.shield(asyncio.to_thread(shutil.rmtree, folder, True))
            if isinstance(e, ExportBusyError):
                raise ApiError(429, str(e)) from None
            if isinstance(e, ValueError):  # e.g. a 2-stem separation: the message says what NI Stems needs
                raise ApiError(409, str(e)) from None
            raise
        return FileResponse(
            target, media_type="audio/mp4",
            headers={"content-disposition": content_disposition(download_name(song["title"], ".stem.mp4"))},
            background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True),
        )

    @app.get("/api/songs/{song_id}/mixes")
    def list_mixes(song_id: str):
        return {"mixes": library.mixes(song_or_404(song_id)["id"])}

    @app.post("/api/songs/{song_id}/mixes", status_code=201)
    async def save_mix(song_id: str, request: Request):
        doc = await read_json(request)

        def run() -> dict[str, Any]:
            song = song_or_404(song_id)
            mix = _validate_mix(doc.get("document"), stem_paths(song["id"]))
            name = str(doc.get("name") or "").strip()[:MIX_NAME_MAX]
            if not name:
                raise ApiError(400, "'name': a mix needs a name")
            mix_id = doc.get("id")
            if mix_id is not None:
                _check_id(str(mix_id), "mix")
            else:  # saving under an existing name replaces that mix: names are unique per song
                existing = library.mixes(song["id"])
                mix_id = next((m["id"] for m in existing if m["name"] == name), None)
                if mix_id is None and len(existing) >= MAX_MIXES_PER_SONG:
                    raise ApiError(409, f"this song has {len(existing)} saved mixes, the most it can keep; "
                                        "delete one or save under an existing name")
            return library.mix(library.save_mix(song["id"], name, mix, mix_id))

        return await asyncio.to_thread(run)

    @app.get("/api/mixes/{mix_id}")
    def get_mix(mix_id: str):
        return _found(library.mix, mix_id, "mix")

    @app.delete("/api/mixes/{mix_id}")
    def delete_mix(mix_id: str):
        mix = _found(library.mix, mix_id, "mix")
        library.delete_mix(mix["id"])
        return {"deleted": mix["id"]}

    @app.post("/api/songs/{song_id}/export")
    async def export(song_id: str, request: Request):
        doc = await read_json(request)
        fmt = str(doc.get("format", "wav"))
        if fmt not in ("wav", "mp3", "flac"):
            raise ApiError(400, "format must be wav, flac or mp3")

        def prepare() -> tuple[dict[str, Any], dict[str, Path], dict[str, Any]]:
            song = song_or_404(song_id)
            paths = stem_paths(song["id"])
            mix = _validate_mix(doc.get("document"), paths)
            exports.sweep()
            return song, paths, mix

        song, paths, mix = await asyncio.to_thread(prepare)
        folder = await asyncio.to_thread(exports.new_dir)
        target = folder / f"mix.{fmt}"
        try:
            await exports.run(_render_export, mix, paths, target, fmt)
        except BaseException as e:
            await asyncio.shield(asyncio.to_thread(shutil.rmtree, folder, True))
            if isinstance(e, ExportBusyError):
                raise ApiError(429, str(e)) from None
            raise
        return FileResponse(
            target, media_type=media.MEDIA_FORMATS[fmt],
            headers={"content-disposition": content_disposition(download_name(song["title"], f"-mix.{fmt}"))},
            background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True),  # gone once downloaded
        )

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
        check_mix_limits(mix)
    except (ValueError, TypeError, KeyError) as e:
        raise ApiError(400, f"invalid mix document: {e}") from None
    return mix.to_dict()


def _stemset(stems: dict[str, Path]) -> Any:
    from stemwright.audio.io import read_audio
    from stemwright.mixer.stems import as_stemset

    files = {name: read_audio(path) for name, path in stems.items()}
    rate = next(iter(files.values())).samplerate
    return as_stemset({name: f.samples for name, f in files.items()}, rate)


def _render_loop_sample(document: dict[str, Any], stems: dict[str, Path], library_dir: Path, title: str,
                        analysis: dict[str, Any], start: float, end: float) -> dict[str, Any]:
    """Render the mix, cut ``[start, end)`` into the sample library; bar numbers when both ends are bar lines."""
    from stemwright.mixer.document import Mix
    from stemwright.mixer.render import render
    from stemwright.samples.library import add_loop_sample

    stemset = _stemset(stems)
    audio = render(Mix.from_dict(document), stemset)
    downs = list(analysis.get("downbeats") or [])
    on_bar = lambda t: next((i for i, d in enumerate(downs) if abs(d - t) < 1e-3), None)  # noqa: E731
    i, j = on_bar(start), on_bar(end)
    bar, bars = (i + 1, j - i) if i is not None and j is not None and j > i else (None, None)
    entry = add_loop_sample(audio, stemset.samplerate, library_dir, song=title, stem="mix", start_s=start, end_s=end,
                            bpm=float(analysis["tempo_bpm"]), key=str(analysis["key"]), bar=bar, bars=bars)
    return asdict(entry)


def _bleed(stems: dict[str, Path]) -> dict[str, Any]:
    """Full-band bleed of ``stemwright inspect`` (mixer/inspect.py): the matrix and each stem's row mean."""
    from stemwright.mixer.inspect import bleed_matrix

    stemset = _stemset(stems)
    matrices, _bands = bleed_matrix(stemset.audio, stemset.samplerate)
    band = next(iter(matrices))  # the full band comes first (as in inspect's report)
    matrix = matrices[band]
    per_stem = {}
    for i, name in enumerate(stemset.names):
        others = [v for j, v in enumerate(matrix[i]) if j != i and v is not None]
        per_stem[name] = round(sum(others) / len(others), 3) if others else None
    return {"band": band, "stems": list(stemset.names), "matrix": matrix, "per_stem": per_stem}


def _analyse(stems: dict[str, Path]) -> dict[str, Any]:
    from stemwright.analysis import analyze

    return analyze(_stemset(stems)).to_dict()


def _render_ni_stems(stems: dict[str, Path], source: Path, target: Path, codec: str) -> None:
    from stemwright.mixer.export import export_ni_stems

    export_ni_stems(_stemset(stems), target, mixture=source if source.is_file() else None, codec=codec)


def _render_export(document: dict[str, Any], stems: dict[str, Path], target: Path, fmt: str) -> None:
    from stemwright.server.render_bridge import render_to_file

    render_to_file(document, stems, target, fmt)
