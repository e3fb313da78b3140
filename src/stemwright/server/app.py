"""The studio's HTTP API and page (FastAPI): the app is assembled here from its parts.

- :mod:`stemwright.server.studio`: the ``Studio`` service (library, jobs, exports, change log) the routes share;
- :mod:`stemwright.server.routers`: one ``APIRouter`` per resource (songs, jobs, stems, mixes, exports, samples,
  events, the page);
- :mod:`stemwright.server.web`: the guard middleware (Host allow-list, origin check, token, security headers),
  error handlers, JSON bodies and download helpers.

All identifiers in URLs are 32-hex-digit ids checked by a pattern, stem names must be ones the database knows, and
formats come from an allow-list, so no request parameter ever becomes part of a file path.
"""
from __future__ import annotations

import asyncio
import threading
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from stemwright.server import guard, renders
from stemwright.server.routers import ROUTERS
from stemwright.server.studio import STATIC_DIR, ServerConfig, Studio, remove_upload_leftovers
from stemwright.server.web import content_disposition, download_name, install_error_handlers, install_guard

__all__ = ["STATIC_DIR", "ServerConfig", "content_disposition", "create_app", "download_name",
           "remove_upload_leftovers"]


def create_app(config: ServerConfig) -> FastAPI:
    """The studio app over ``config.data_dir``. ``app.state.studio`` is its :class:`Studio`;
    ``app.state.begin_shutdown`` ends the event streams and stops the jobs (the signal handler calls it)."""
    studio = Studio(config)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        studio.runner.start()
        # load the model registry (it imports torch) in the background now, not on the page's first request
        # and the default model, so that the first song's first seconds do not wait for a model load
        def warm() -> None:
            renders.model_entries()
            studio.runner.warm(studio.default_model())

        threading.Thread(target=warm, name="stemwright-warm-registry", daemon=True).start()
        try:
            yield
        finally:
            studio.begin_shutdown()
            await asyncio.to_thread(studio.runner.stop)

    app = FastAPI(title="stemwright studio", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url="/api/openapi.json")
    app.state.studio = studio
    app.state.library = studio.library
    app.state.runner = studio.runner
    app.state.config = config
    app.state.exports = studio.exports
    app.state.begin_shutdown = studio.begin_shutdown
    install_error_handlers(app)
    install_guard(app, guard.HostPolicy.for_bind(config.host, config.allow_hosts, token=bool(config.token)),
                  config.token)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for router in ROUTERS:
        app.include_router(router)
    return app
