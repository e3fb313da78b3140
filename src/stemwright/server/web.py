"""HTTP plumbing shared by the studio's routers: security headers and the guard middleware, error handlers,
JSON request bodies (content type, size and nesting bounded before Pydantic sees them), file names for downloads,
and the "render into a temporary folder, then stream it" answer.
"""
from __future__ import annotations

import json
import logging
import re
import unicodedata
from pathlib import Path
from typing import Any, Callable, TypeVar
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from pydantic import BaseModel, ValidationError
from python_multipart.multipart import parse_options_header
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from stemwright.server import guard
from stemwright.server.exports import ExportBusyError
from stemwright.server.jobs import QueueFullError
from stemwright.server.renders import MixDocumentError
from stemwright.server.studio import ApiError, Studio
from stemwright.server.upload import UploadError, UploadResult, receive_upload

log = logging.getLogger(__name__)

MAX_JSON_BYTES = 256 * 1024
# The routes that stream a file upload with their own bound (bounded_upload): a song, a layer, a drum one-shot.
# The guard's JSON bound must not apply to them (it refused every layer over 256 KB: 1.5 s of 24-bit stereo).
UPLOAD_PATHS = re.compile(r"^/api/songs(/[0-9A-Za-z]+/(layers|drums/samples))?$")
# A mix document nests about six levels (document, channels, channel, effects, effect); 32 leaves room for any
# hand-written body while a 100,000-level one is refused before the parser recurses on it.
MAX_JSON_DEPTH = 32
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
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
_JSON_BRACKET = re.compile(rb"[\[\]{}]")

Body = TypeVar("Body", bound=BaseModel)


# -- download names -------------------------------------------------------------------------------------------
def download_name(title: str, suffix: str) -> str:
    """A file name from a song title: Unicode kept; path separators, quotes, ``<``/``>`` and control characters
    replaced."""
    text = "".join(ch for ch in unicodedata.normalize("NFC", title) if unicodedata.category(ch)[0] != "C")
    text = re.sub(r'[\\/:*?"<>|]+', "_", text).strip(" .")[:80] or "stemwright"
    return f"{text}{suffix}"


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII fallback and the exact name as RFC 5987 ``filename*``."""
    ascii_name = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode()
    ascii_name = re.sub(r"[^A-Za-z0-9._ -]+", "_", ascii_name).strip() or "download"
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


# -- JSON bodies ---------------------------------------------------------------------------------------------------
def json_depth(body: bytes) -> int:
    """The deepest nesting of arrays and objects in a JSON text (brackets inside strings do not count)."""
    depth = deepest = 0
    for bracket in _JSON_BRACKET.findall(_JSON_STRING.sub(b'""', body)):
        depth += 1 if bracket in b"[{" else -1
        deepest = max(deepest, depth)
    return deepest


async def read_json(request: Request) -> dict[str, Any]:
    """The JSON object in the body. ``application/json`` is required: a cross-site form can send ``text/plain``
    without a preflight, never ``application/json``. Size and nesting are bounded before parsing."""
    ctype, _ = parse_options_header(request.headers.get("content-type", ""))
    if ctype != b"application/json":
        raise ApiError(415, "the body must be JSON sent as Content-Type: application/json")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_JSON_BYTES:
            raise ApiError(413, f"request body larger than {MAX_JSON_BYTES // 1024} KB")
    if json_depth(bytes(body)) > MAX_JSON_DEPTH:
        raise ApiError(400, f"body is nested more than {MAX_JSON_DEPTH} levels deep")
    try:
        doc = json.loads(bytes(body) or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ApiError(400, f"body is not valid JSON ({getattr(e, 'msg', 'not UTF-8')})") from None
    if not isinstance(doc, dict):
        raise ApiError(400, "body must be a JSON object")
    return doc


def json_body(model: type[Body]) -> Any:
    """The dependency of every JSON body: :func:`read_json`'s checks, then ``model`` (400 naming the field).
    Pair it with ``openapi_extra=body_schema(model)`` on the route so the schema describes the body."""

    async def parse(request: Request) -> Body:
        doc = await read_json(request)
        try:
            return model.model_validate(doc)
        except ValidationError as e:
            parts = [f"{'.'.join(str(x) for x in err['loc']) or 'body'}: {err['msg']}" for err in e.errors()]
            raise ApiError(400, "invalid request: " + "; ".join(parts)) from None

    return Depends(parse)


def body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` describing a JSON body read through :func:`json_body`."""
    return {"requestBody": {"required": True,
                            "content": {"application/json": {"schema": model.model_json_schema()}}}}


# -- render, then stream ----------------------------------------------------------------------------------------
async def rendered_download(studio: Studio, key: str, render: Callable[[Path], Any], filename: str,
                            download: str, media_type: str) -> FileResponse:
    """Run ``render(folder)`` (through the bounded exports queue, shared with an identical request still running)
    and stream ``folder/filename`` as an attachment named ``download``; the folder goes once it is sent."""
    folder, release = await studio.renders.acquire(key, render)
    return FileResponse(folder / filename, media_type=media_type,
                        headers={"content-disposition": content_disposition(download)},
                        background=BackgroundTask(release))


async def bounded_upload(request: Request, folder: Path, limit_mb: int, too_large: str) -> UploadResult:
    """A multipart upload with a ``file`` field streamed into ``folder`` with at most ``limit_mb`` MB (refused at once
    when ``Content-Length`` says more); :class:`ApiError` (``too_large`` for 413, the parser's status otherwise)."""
    limit = limit_mb * 1024 * 1024
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit + 64 * 1024:
        raise ApiError(413, too_large)
    try:
        return await receive_upload(request.headers.get("content-type", ""), request.stream(), folder, limit)
    except UploadError as e:
        raise ApiError(e.status, str(e)) from None


# -- middleware and errors -----------------------------------------------------------------------------------------
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


def _refuse(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=SECURITY_HEADERS)


def install_guard(app: FastAPI, hosts: guard.HostPolicy, token: str | None) -> None:
    """Host, origin and token checks and the security headers on every request; JSON bodies bounded by size."""

    @app.middleware("http")
    async def _guard(request: Request, call_next):
        host = request.headers.get("host")
        if not hosts.allows(host):
            return _refuse(403, f"Host {str(host)[:80]!r} is not one of the studio's allowed hosts")
        reason = guard.cross_origin_reason(request.method, host, request.headers.get("origin"),
                                           request.headers.get("sec-fetch-site"))
        if reason:
            return _refuse(403, reason)
        if token:
            query_token = request.query_params.get("token")
            given = guard.given_token(request.headers, query_token, request.cookies.get(TOKEN_COOKIE))
            if not guard.token_matches(given, token):
                return _refuse(401, "missing or wrong access token")
            if query_token is not None and request.method in ("GET", "HEAD"):
                # exchange the token for a cookie and drop it from the address bar and the history
                clean = request.url.remove_query_params("token")
                target = clean.path + (f"?{clean.query}" if clean.query else "")
                response = RedirectResponse(target, status_code=303, headers=SECURITY_HEADERS)
                response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict", path="/")
                return response
        length = request.headers.get("content-length")
        upload = request.method == "POST" and UPLOAD_PATHS.match(request.url.path)
        if not upload and length and length.isdigit() and int(length) > MAX_JSON_BYTES:
            return _refuse(413, f"request body larger than {MAX_JSON_BYTES // 1024} KB")
        response = await call_next(request)
        for k, v in SECURITY_HEADERS.items():
            response.headers.setdefault(k, v)
        return response

    app.add_middleware(TextGzip)


def install_error_handlers(app: FastAPI) -> None:
    """Errors are always JSON with a message, never a stack trace; a full queue (separations or exports) is 429."""

    @app.exception_handler(ApiError)
    async def _api_error(_r: Request, e: ApiError):
        return JSONResponse({"error": e.message, **e.extra}, status_code=e.status)

    @app.exception_handler(QueueFullError)
    @app.exception_handler(ExportBusyError)
    async def _busy(_r: Request, e: Exception):
        return JSONResponse({"error": str(e)}, status_code=429, headers={"retry-after": "5"})

    @app.exception_handler(MixDocumentError)
    async def _bad_mix(_r: Request, e: MixDocumentError):
        return JSONResponse({"error": str(e)}, status_code=400)

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
