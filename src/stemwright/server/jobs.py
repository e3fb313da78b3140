"""Separation jobs: a bounded queue served by a pool of worker threads.

Progress comes from the engine's progress callback and is kept in memory (for the live event stream) and written
to the database at most a few times a second. Cancelling sets a flag that the callback turns into an exception,
which stops the engine between chunks.
"""
from __future__ import annotations

import logging
import queue
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from stemwright.server.db import Library

log = logging.getLogger(__name__)


class QueueFullError(RuntimeError):
    """The job queue is at capacity."""


class JobCancelled(Exception):
    """Raised inside the progress callback to stop a cancelled job."""


@dataclass
class LiveState:
    """In-memory view of job progress, read by the event stream."""

    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    version: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def update(self, job_id: str, **fields: Any) -> None:
        with self.lock:
            self.jobs.setdefault(job_id, {"id": job_id}).update(fields)
            self.version += 1

    def snapshot(self) -> tuple[int, list[dict[str, Any]]]:
        with self.lock:
            return self.version, [dict(v) for v in self.jobs.values()]


SeparatorFactory = Callable[[str, Callable], Any]


def default_separator_factory(model: str, progress: Callable) -> Any:
    from stemwright.api import Separator

    return Separator(model=model, device="auto", progress=progress)


class JobRunner:
    """Owns the queue and the workers. ``start()`` launches ``workers`` daemon threads."""

    def __init__(
        self,
        library: Library,
        data_dir: Path,
        *,
        workers: int = 1,
        max_queue: int = 16,
        separator_factory: SeparatorFactory = default_separator_factory,
    ):
        self.library = library
        self.data_dir = Path(data_dir)
        self.workers = max(1, workers)
        self.queue: queue.Queue[str] = queue.Queue(maxsize=max(1, max_queue))
        self.live = LiveState()
        self.separator_factory = separator_factory
        self._cancel: dict[str, threading.Event] = {}
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()

    def start(self) -> None:
        for i in range(self.workers):
            t = threading.Thread(target=self._loop, name=f"stemwright-job-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        for ev in self._cancel.values():
            ev.set()
        for t in self._threads:
            t.join(timeout)

    def job_dir(self, song_id: str, job_id: str) -> Path:
        return self.data_dir / "songs" / song_id / "jobs" / job_id

    def submit(self, job_id: str) -> None:
        """Queue a job, or raise :class:`QueueFullError` (the job is then marked failed)."""
        self._cancel[job_id] = threading.Event()
        try:
            self.queue.put_nowait(job_id)
        except queue.Full:
            self._cancel.pop(job_id, None)
            raise QueueFullError(
                f"the separation queue is full ({self.queue.maxsize} jobs waiting); try again when a job has finished"
            ) from None
        self.live.update(job_id, status="queued", progress=0.0, stage="queued")

    def cancel(self, job_id: str) -> bool:
        """Ask a queued or running job to stop; returns False if it is not pending."""
        job = self.library.job(job_id)
        if job is None or job["status"] not in ("queued", "running"):
            return False
        ev = self._cancel.setdefault(job_id, threading.Event())
        ev.set()
        if job["status"] == "queued":
            self.library.update_job(job_id, status="cancelled", finished=time.time())
            self.live.update(job_id, status="cancelled")
        return True

    def pending(self) -> int:
        return self.queue.qsize()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                job_id = self.queue.get(timeout=0.2)
            except queue.Empty:
                continue
            try:
                self._run(job_id)
            except Exception:  # noqa: BLE001 - a worker must survive any job failure
                log.exception("job %s crashed", job_id)
            finally:
                self.queue.task_done()

    def _run(self, job_id: str) -> None:
        job = self.library.job(job_id)
        if job is None:
            return
        cancel = self._cancel.setdefault(job_id, threading.Event())
        if cancel.is_set() or job["status"] != "queued":
            return
        song = self.library.song(job["song_id"])
        if song is None:
            return
        started = time.time()
        self.library.update_job(job_id, status="running", started=started, progress=0.0, stage="load")
        self.live.update(job_id, song_id=song["id"], status="running", progress=0.0, stage="load")
        last_write = [0.0]

        def on_progress(ev: Any) -> None:
            if cancel.is_set():
                raise JobCancelled()
            frac = float(min(1.0, max(0.0, ev.fraction)))
            self.live.update(job_id, progress=frac, stage=ev.stage)
            now = time.monotonic()
            if now - last_write[0] > 0.5:
                last_write[0] = now
                self.library.update_job(job_id, progress=frac, stage=ev.stage)

        out = self.job_dir(song["id"], job_id)
        tmp = out.with_name(out.name + ".part")
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            separator = self.separator_factory(job["model"], on_progress)
            result = separator.separate_file(
                song["source_path"], tmp, fmt="wav", bit_depth=32, clip_mode="none",
                filename="{stem}.{ext}", overwrite=True,
            )
            tmp.rename(out)  # job ids are fresh, so `out` never exists; a clash fails the job loudly
            stems = {name: str(out / Path(p).name) for name, p in result.stem_paths.items()}
            self.library.set_stems(song["id"], job_id, stems, int(result.manifest.samplerate))
            seconds = time.time() - started
            self.library.update_job(job_id, status="done", progress=1.0, stage="done", finished=time.time(), seconds=seconds)
            self.live.update(job_id, status="done", progress=1.0, stage="done")
        except JobCancelled:
            shutil.rmtree(tmp, ignore_errors=True)
            self.library.update_job(job_id, status="cancelled", finished=time.time(), stage="cancelled")
            self.live.update(job_id, status="cancelled", stage="cancelled")
        except Exception as e:  # noqa: BLE001 - reported to the user through the job's error field
            shutil.rmtree(tmp, ignore_errors=True)
            message = str(e) or type(e).__name__
            log.warning("job %s failed: %s", job_id, message)
            self.library.update_job(job_id, status="failed", error=message, finished=time.time(), stage="failed")
            self.live.update(job_id, status="failed", error=message)
        finally:
            self._cancel.pop(job_id, None)
