"""The studio service: the state behind the HTTP routes (library database, job runner, exports queue, change log)
and the operations on it. Routes get it through ``Depends(get_studio)`` and hold no state of their own; nothing
here knows HTTP except :class:`ApiError`, the typed error the routes answer with.

Methods that touch the database, files or the model registry are plain functions: routes call them in FastAPI's
thread pool (or ``asyncio.to_thread``), so the event loop never waits on them.
"""
from __future__ import annotations

import logging
import re
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from fastapi import Request

from stemwright.server import guard, renders
from stemwright.server.db import Library
from stemwright.server.events import LibraryEvents
from stemwright.server.exports import ExportQueue, SharedRenders
from stemwright.server.jobs import JobRunner, QueueFullError, default_separator_factory
from stemwright.server.probe import ProbeError, probe_audio
from stemwright.server.segments import SegmentIndex, finished_index, read_finished

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
ID_RE = re.compile(r"^[0-9a-f]{32}$")
SAFE_EXT = re.compile(r"^\.[a-z0-9]{1,8}$")
MAX_STUDIO_SAMPLES = 1000  # "save loop as sample" files (each at most 60 s): bounds the disk one client can fill
BLEED_CACHE = 32  # separations whose bleed figures the studio keeps in memory (a few kB each)
MIX_NAME_MAX = 120
MAX_MIXES_PER_SONG = 100  # named mixes are typed by hand; a bound keeps one song's list (and the page's menu) sane


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
    """An answer to the client: HTTP ``status`` and a message naming the field or file and the reason; ``extra``
    fields join ``error`` in the JSON body."""

    def __init__(self, status: int, message: str, extra: dict[str, Any] | None = None):
        self.status = status
        self.message = message
        self.extra = extra or {}
        super().__init__(message)


def check_id(value: str, what: str) -> str:
    if not ID_RE.match(value or ""):
        raise ApiError(404, f"unknown {what} {value[:40]!r}")
    return value


def remove_upload_leftovers(upload_dir: Path) -> int:
    """Remove partial uploads a killed server left behind (at start-up)."""
    removed = 0
    for part in upload_dir.glob(".upload.*.part"):
        part.unlink(missing_ok=True)
        removed += 1
    return removed


class Studio:
    """The studio's state and operations (one per app)."""

    def __init__(self, config: ServerConfig):
        self.config = config
        self.data_dir = Path(config.data_dir).resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.library = Library(self.data_dir / "library.sqlite3")
        self.schema_version = self.library.schema_version  # read once: the health check touches no file
        self.events = LibraryEvents()
        interrupted = self.library.mark_interrupted()
        if interrupted:
            log.warning("%d job(s) were interrupted by the last shutdown and can be re-run", len(interrupted))
        self.runner = JobRunner(self.library, self.data_dir, workers=config.workers, max_queue=config.max_queue,
                                separator_factory=config.separator_factory,
                                analyse=lambda stems: renders.analyse(stems),
                                song_changed=lambda song_id: self.events.song("changed", song_id))
        leftovers = self.runner.remove_leftovers() + remove_upload_leftovers(self.data_dir / "uploads")
        if leftovers:
            log.warning("removed %d partial file(s) left by a server that was killed", leftovers)
        self.exports = ExportQueue(self.data_dir / "exports", max_pending=config.max_exports,
                                   ttl_s=config.export_ttl_s)
        self.exports.clear()
        self.renders = SharedRenders(self.exports)
        self.stopping = threading.Event()
        self.bleed_cache: dict[str, dict[str, Any]] = {}

    def begin_shutdown(self) -> None:
        """First step of a shutdown (called from the signal handler): end event streams, stop jobs."""
        self.stopping.set()
        self.runner.request_stop()

    # -- lookups ----------------------------------------------------------------------------------------------
    def song_or_404(self, song_id: str) -> dict[str, Any]:
        song = self.library.song(check_id(song_id, "song"))
        if song is None:  # e.g. deleted in another tab: say so in words, not as an id
            raise ApiError(404, "this song is no longer in the library (it was deleted)")
        return song

    def job_or_404(self, job_id: str) -> dict[str, Any]:
        job = self.library.job(check_id(job_id, "job"))
        if job is None:
            raise ApiError(404, f"unknown job {job_id}")
        return job

    def mix_or_404(self, mix_id: str) -> dict[str, Any]:
        mix = self.library.mix(check_id(mix_id, "mix"))
        if mix is None:
            raise ApiError(404, f"unknown mix {mix_id}")
        return mix

    def live_jobs(self) -> dict[str, dict[str, Any]]:
        return {j["id"]: j for j in self.runner.live.snapshot()[1]}

    def song_view(self, song: dict[str, Any], live: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
        """A song as the API shows it. ``rerunnable`` is false when its source cannot be decoded (the reason is
        the last job's error); ``analysis`` is "analysing" while the job analyses the stems, "done" once tempo
        and key are stored, else null."""
        jobs = self.library.jobs_for(song["id"])
        stems = self.library.stems(song["id"])
        live = self.live_jobs() if live is None else live
        for j in jobs:
            if j["id"] in live and j["status"] in ("queued", "running"):
                j["progress"] = live[j["id"]].get("progress", j["progress"])
                j["stage"] = live[j["id"]].get("stage", j["stage"])
        latest = jobs[-1] if jobs else None
        stems_job = stems[0]["job_id"] if stems else None
        analysis = None
        if stems_job is not None:
            analysis = "analysing" if self.runner.analysing(stems_job) else (
                "done" if self.library.analysis(stems_job) is not None else None)
        return {
            "id": song["id"], "title": song["title"], "duration": song["duration"],
            "samplerate": song["samplerate"], "channels": song["channels"], "created": song["created"],
            "status": latest["status"] if latest else "new", "jobs": jobs,
            "stems": [s["name"] for s in stems], "stems_job": stems_job,
            "rerunnable": song.get("unreadable") is None, "analysis": analysis,
        }

    def songs(self) -> list[dict[str, Any]]:
        live = self.live_jobs()  # one snapshot for the whole list, not one per song
        return [self.song_view(s, live) for s in self.library.songs()]

    def stem_paths(self, song_id: str, job_id: str | None = None) -> dict[str, Path]:
        """The stems of the song's latest separation, or of its separation ``job_id`` (model comparison)."""
        if job_id is not None:
            rows = self.library.job_stems(song_id, job_id)
            if not rows:
                raise ApiError(404, f"job {job_id[:40]!r} is not a finished separation of this song")
            return {r["name"]: Path(r["path"]) for r in rows}
        rows = self.library.stems(song_id)
        if not rows:
            raise ApiError(409, "this song has no finished separation yet")
        return {r["name"]: Path(r["path"]) for r in rows}

    def layers_dir(self, song_id: str) -> Path:
        """Where the song's uploaded layers (files of the mix document's ``layers``) are kept."""
        return self.data_dir / "songs" / check_id(song_id, "song") / "layers"

    def song_stems(self, song_id: str, job_id: str | None = None) -> tuple[dict[str, Any], dict[str, Path]]:
        song = self.song_or_404(song_id)
        return song, self.stem_paths(song["id"], job_id)

    # -- stems as segments (play while separating) -----------------------------------------------------------
    def stream_index(self, song_id: str) -> SegmentIndex:
        """The segments of the song's stems: its latest finished separation's, else those its running job has
        separated so far (docs/studio.md, "Play while separating")."""
        song = self.song_or_404(song_id)
        rows = self.library.stems(song["id"])
        if rows:
            return finished_index(rows[0]["job_id"], {r["name"]: Path(r["path"]) for r in rows})
        jobs = self.library.jobs_for(song["id"])
        segments = self.runner.segments(jobs[-1]["id"]) if jobs else None
        if segments is None:
            raise ApiError(409, "this song has no separated audio yet")
        return segments.index()

    def stream_segment(self, song_id: str, job_id: str, k: int) -> tuple[bytes, int, int]:
        """Segment ``k`` of job ``job_id``'s stems in the wire format of :mod:`stemwright.server.segments`, with
        its start frame and length."""
        song = self.song_or_404(song_id)
        job = self.job_or_404(job_id)
        if job["song_id"] != song["id"]:
            raise ApiError(404, f"job {job_id} is not a separation of this song")
        running = self.runner.segments(job_id)
        if running is not None:
            path = running.path(k)
            index = running.index()
            if path is not None:
                try:
                    seg = index.segments[k]
                    return path.read_bytes(), seg.start, seg.frames
                except FileNotFoundError:
                    pass  # the job has just finished: its stems are read below
        rows = self.library.job_stems(song["id"], job_id)
        if not rows:
            raise ApiError(404, f"segment {k} of this separation is not ready")
        paths = {r["name"]: Path(r["path"]) for r in rows}
        index = finished_index(job_id, paths)
        try:
            data = read_finished(index, paths, k)
        except IndexError:
            raise ApiError(404, f"this separation has {len(index.segments)} segments, not {k + 1}") from None
        seg = index.segments[k]
        return data, seg.start, seg.frames

    # -- models and jobs --------------------------------------------------------------------------------------
    def models(self) -> dict[str, Any]:
        return {"default": self.default_model(),
                "models": [{"name": e.name, "sources": list(e.sources), "description": e.description,
                            "licence": e.licence} for e in renders.model_entries()]}

    def check_model(self, name: str) -> str:
        entries = renders.model_entries()
        if name not in {e.name for e in entries}:
            raise ApiError(400, f"unknown model {name[:60]!r}; choose one of {', '.join(e.name for e in entries)}")
        return name

    def default_model(self) -> str:
        return self.config.default_model or renders.default_model_name()

    def start_job(self, song_id: str, model: str) -> str:
        """Queue a separation; a full queue marks the job failed and raises :class:`QueueFullError` (429)."""
        job_id = self.library.add_job(song_id, model, {"model": model})
        try:
            self.runner.submit(job_id)
        except QueueFullError as e:
            self.library.update_job(job_id, status="failed", error=str(e), finished=time.time())
            raise
        return job_id

    def rerun(self, song_id: str, model: str | None) -> dict[str, Any]:
        song = self.song_or_404(song_id)
        if song.get("unreadable"):
            raise ApiError(409, f"{song['unreadable']}; upload the file again")
        model = self.check_model(model or self.default_model())
        if any(j["status"] in ("queued", "running") for j in self.library.jobs_for(song["id"])):
            raise ApiError(409, "this song already has a separation in progress")
        job = self.library.job(self.start_job(song["id"], model))
        self.events.song("changed", song["id"])
        return job

    def cancel(self, job_id: str) -> dict[str, Any]:
        """Cancel a queued or running job: ``{"cancelling": id, "song": view}``. A job that has already ended
        (done, failed, cancelled, interrupted) answers 409 with the same ``song`` view (and the ``job``), so the
        page can show the row as the server has it."""
        job = self.job_or_404(job_id)
        if not self.runner.cancel(job_id):
            job = self.library.job(job_id) or job
            raise ApiError(409, f"this job has already ended ({job['status']}); nothing to cancel",
                           extra={"job": job, "song": self._view_of(job["song_id"])})
        return {"cancelling": job_id, "song": self._view_of(job["song_id"])}

    def _view_of(self, song_id: str) -> dict[str, Any] | None:
        song = self.library.song(song_id)
        return self.song_view(song) if song else None

    # -- uploads and songs ------------------------------------------------------------------------------------
    def accept_upload(self, path: Path, size: int, filename: str, fields: dict[str, str]) -> dict[str, Any]:
        """Check the stored upload (bounded decode, start and end), record the song and queue its job."""
        model = self.check_model(fields.get("model") or self.default_model())
        shown = Path(filename).name[:120]
        try:
            info = probe_audio(path, self.config.max_duration, name=filename)
        except ProbeError as e:
            raise ApiError(e.status, f"{shown}: {e.reason}") from None
        song_id = self.library.add_song(
            title=(fields.get("title") or Path(filename).stem)[:200] or "untitled",
            original_name=Path(filename).name[:255], source_path="", samplerate=info.samplerate,
            channels=info.channels, duration=info.duration, size_bytes=size,
        )
        ext = Path(filename).suffix.lower()
        ext = ext if SAFE_EXT.match(ext) else ".audio"
        song_dir = self.data_dir / "songs" / song_id
        song_dir.mkdir(parents=True, exist_ok=True)
        source = song_dir / f"source{ext}"
        path.replace(source)
        self.library.set_source_path(song_id, str(source))
        try:
            self.start_job(song_id, model)
        except QueueFullError:
            self.library.delete_song(song_id)
            shutil.rmtree(song_dir, ignore_errors=True)
            raise
        self.events.song("added", song_id)
        return self.song_view(self.library.song(song_id))

    def delete_song(self, song_id: str) -> dict[str, Any]:
        song = self.song_or_404(song_id)
        for job in self.library.jobs_for(song["id"]):
            self.runner.cancel(job["id"])
        self.library.delete_song(song["id"])
        shutil.rmtree(self.data_dir / "songs" / song["id"], ignore_errors=True)
        self.events.song("removed", song["id"])
        return {"deleted": song["id"]}

    # -- mixes -------------------------------------------------------------------------------------------------
    def save_mix(self, song_id: str, name: str, document: Any, mix_id: str | None) -> dict[str, Any]:
        song, paths = self.song_stems(song_id)
        mix = renders.validate_mix(document, paths, self.layers_dir(song["id"]))
        name = name.strip()[:MIX_NAME_MAX]
        if not name:
            raise ApiError(400, "'name': a mix needs a name")
        if mix_id is not None:
            check_id(mix_id, "mix")
        else:  # saving under an existing name replaces that mix: names are unique per song
            existing = self.library.mixes(song["id"])
            mix_id = next((m["id"] for m in existing if m["name"] == name), None)
            if mix_id is None and len(existing) >= MAX_MIXES_PER_SONG:
                raise ApiError(409, f"this song has {len(existing)} saved mixes, the most it can keep; "
                                    "delete one or save under an existing name")
        return self.library.mix(self.library.save_mix(song["id"], name, mix, mix_id))

    def delete_mix(self, mix_id: str) -> dict[str, Any]:
        mix = self.mix_or_404(mix_id)
        self.library.delete_mix(mix["id"])
        return {"deleted": mix["id"]}


def get_studio(request: Request) -> Studio:
    """The app's :class:`Studio` (the ``Depends`` of every route)."""
    return request.app.state.studio
