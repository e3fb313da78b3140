"""Separation jobs: a bounded queue served by a pool of worker threads.

Progress comes from the engine's progress callback and is kept in memory (for the live event stream) and written
to the database at most a few times a second. Cancelling sets a flag that the callback turns into an exception,
which stops the engine between chunks.

Shutdown sets the same flags. A job the user cancelled ends "cancelled"; every other job still queued or running
when the server stops ends "interrupted" — decided by who asked, never by timing: final states are written under
one lock, and once :meth:`JobRunner.stop` has marked the leftovers, a late worker writes nothing.
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

from stemwright.audio.io import AudioError
from stemwright.server.db import Library, interrupted_message
from stemwright.server.segments import SEGMENT_SUFFIX, SegmentLog

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
# The song analysis run after each separation (stems by name -> SongAnalysis.to_dict()); ValueError: not analysable.
Analyser = Callable[[dict[str, Path]], dict[str, Any]]
# Told the song id whenever one of its jobs changes state (the library's event stream).
SongChanged = Callable[[str], None]


# The studio separates with the short first chunk rule (engine/chunking.ChunkGrid): the first 3 s of a song are
# final after one 4 s model call, so the page can play them while the rest is separated (docs/studio.md).
STUDIO_FIRST_SEGMENT = 4.0
MODEL_CACHE = 2  # loaded models kept between jobs: the next song's first seconds do not wait for a model load
_models: dict[str, Any] = {}
_models_lock = threading.Lock()


def cached_model(name: str) -> Any:
    """The model ``name``, loaded once and kept (the last :data:`MODEL_CACHE` used); models keep no state
    between calls (the model contract: forward writes nothing to the module), so jobs can share one."""
    # function-level imports: torch and the registry load in the worker, not when the server module is imported
    from stemwright.engine.device import resolve_device
    from stemwright.pretrained.loading import load_model

    with _models_lock:
        model = _models.pop(name, None)
        if model is None:
            model = load_model(name, device=resolve_device("auto"), progress=False)
            model.name = name  # the Separator's model_name, as when it loads the name itself
        _models[name] = model  # most recently used last
        while len(_models) > MODEL_CACHE:
            _models.pop(next(iter(_models)))
        return model


def warm_up(model: Any) -> None:
    """One short call of ``model`` on silence, so that the first song's first chunk does not pay for the first
    call's set-up (the CPU kernel choice, allocations)."""
    import torch  # function-level: torch loads in the warm-up thread, not when the server module is imported

    from stemwright.engine.run import default_workers, run_chunks

    device = next(model.parameters(), torch.zeros(0)).device
    workers = default_workers(device)
    # as many chunks as the jobs run at once: the workers' thread count gets its CPU-kernel choice here too
    run_chunks(model, [torch.zeros(int(model.audio_channels), int(model.samplerate))] * workers, device, workers)


def default_separator_factory(model: str, progress: Callable) -> Any:
    from stemwright.api import Separator  # function-level: torch loads with the first job, not at import

    return Separator(model=cached_model(model), device="auto", progress=progress,
                     first_segment=STUDIO_FIRST_SEGMENT)


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
        analyse: Analyser | None = None,
        song_changed: SongChanged | None = None,
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
        self._user_cancelled: set[str] = set()
        self._final = threading.Lock()
        self._closed = False
        self.analyse = analyse
        self.song_changed = song_changed or (lambda _song_id: None)
        self._analysing: dict[str, threading.Event] = {}  # separation job id -> set when its analysis ends
        self._segments: dict[str, SegmentLog] = {}  # running job id -> the stems separated so far
        self.model_ready = threading.Event()  # set once warm() has loaded the default model (or had nothing to do)

    def start(self) -> None:
        for i in range(self.workers):
            t = threading.Thread(target=self._loop, name=f"stemwright-job-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def request_stop(self) -> None:
        """Ask every job to stop (safe from a signal handler: sets flags only)."""
        self._stop.set()
        for ev in list(self._cancel.values()):
            ev.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def stop(self, timeout: float = 5.0) -> list[str]:
        """Stop the workers (waiting at most ``timeout`` s in all) and mark every job that did not finish as
        interrupted; returns their ids."""
        self.request_stop()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        with self._final:
            self._closed = True
            ids = self.library.mark_interrupted()
        for job_id in ids:
            self.live.update(job_id, status="interrupted", stage="interrupted")
            job = self.library.job(job_id)
            if job is not None:
                self.song_changed(job["song_id"])
        if ids:
            log.warning("%d job(s) interrupted by the shutdown; they can be re-run", len(ids))
        return ids

    def remove_leftovers(self) -> int:
        """Remove the ``jobs/*.part`` folders a killed server left behind (at start-up, before any job runs)."""
        removed = 0
        for pattern in ("*/jobs/*.part", f"*/jobs/*{SEGMENT_SUFFIX}"):
            for part in (self.data_dir / "songs").glob(pattern):
                shutil.rmtree(part, ignore_errors=True)
                removed += 1
        return removed

    def _drop_segments(self, job_id: str, segments: SegmentLog) -> None:
        """The stems are recorded (or the job ended without them): the page reads finished stems from now on."""
        self._segments.pop(job_id, None)
        segments.remove()

    def warm(self, model: str) -> None:
        """Load ``model`` before the first job needs it (the default factory's cache; a test's factory loads
        nothing)."""
        try:
            if self.separator_factory is default_separator_factory:
                warm_up(cached_model(model))
        except Exception:  # noqa: BLE001 - the first job loads it again and reports the error
            log.exception("could not load model %s ahead of the first job", model)
        finally:
            self.model_ready.set()

    def segments(self, job_id: str) -> SegmentLog | None:
        """The segments of running job ``job_id`` (None when it is not running or has none yet)."""
        return self._segments.get(job_id)

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
        self._user_cancelled.add(job_id)
        ev = self._cancel.setdefault(job_id, threading.Event())
        ev.set()
        if job["status"] == "queued":
            self._finish(job_id, status="cancelled", finished=time.time(), stage="cancelled")
        return True

    def _finish(self, job_id: str, **fields: Any) -> bool:
        """Write a job's final state unless the runner has already closed (then stop() has marked it)."""
        with self._final:
            if self._closed:
                return False
            self.library.update_job(job_id, **fields)
        self.live.update(job_id, **{k: v for k, v in fields.items() if k in ("status", "progress", "stage", "error")})
        job = self.library.job(job_id)
        if job is not None:
            self.song_changed(job["song_id"])
        return True

    def analysing(self, job_id: str) -> threading.Event | None:
        """The event set when the analysis of separation ``job_id`` ends, while it runs; else None."""
        return self._analysing.get(job_id)

    def _analyse(self, song_id: str, job_id: str, stems: dict[str, str]) -> None:
        """The song analysis of a finished separation, as the last step of its job (the mixer then shows tempo
        and key at once). A song that cannot be analysed (silent, beatless) is left without one: the analysis
        route says why when asked."""
        if self.analyse is None:
            return
        done = self._analysing.setdefault(job_id, threading.Event())
        if self._stop.is_set():
            self._end_analysis(song_id, job_id)
            return
        self.live.update(job_id, analysis="analysing")
        self.song_changed(song_id)
        state = "failed"
        try:
            self.library.save_analysis(song_id, job_id, self.analyse({n: Path(p) for n, p in stems.items()}))
            state = "done"
        except ValueError as e:
            log.info("job %s: song not analysed: %s", job_id, e)
        except Exception:  # noqa: BLE001 - the stems are fine; the analysis route can try again
            log.exception("job %s: analysis failed", job_id)
        finally:
            self.live.update(job_id, analysis=state)
            self._end_analysis(song_id, job_id)

    def _end_analysis(self, song_id: str, job_id: str) -> None:
        """The analysis of ``job_id`` has ended (or will not run): waiters are released, the song is shown anew."""
        done = self._analysing.pop(job_id, None)
        if done is not None:
            done.set()
            self.song_changed(song_id)

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
        if cancel.is_set() or job["status"] != "queued" or self._stop.is_set():
            return
        song = self.library.song(job["song_id"])
        if song is None:
            return
        started = time.time()
        self.library.update_job(job_id, status="running", started=started, progress=0.0, stage="load")
        self.live.update(job_id, song_id=song["id"], status="running", progress=0.0, stage="load")
        self.song_changed(song["id"])
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
        segments = SegmentLog(out.with_name(out.name + SEGMENT_SUFFIX), job_id, int(song["samplerate"]),
                              int(round(float(song["duration"]) * int(song["samplerate"]))),
                              announce=lambda seconds: self.live.update(job_id, separated_s=round(seconds, 3)))
        self._segments[job_id] = segments
        try:
            separator = self.separator_factory(job["model"], on_progress)
            result = separator.separate_file(
                song["source_path"], tmp, fmt="wav", bit_depth=32, clip_mode="none",
                filename="{stem}.{ext}", overwrite=True, on_block=segments.add,
            )
            segments.flush()
            tmp.rename(out)  # job ids are fresh, so `out` never exists; a clash fails the job loudly
            stems = {name: str(out / Path(p).name) for name, p in result.stem_paths.items()}
            samplerate = int(result.manifest.samplerate)
            with self._final:
                if self._closed:  # stop() has marked the job interrupted: its stems are not recorded
                    shutil.rmtree(out, ignore_errors=True)
                    return
                self.library.set_stems(song["id"], job_id, stems, samplerate)
                if self.analyse is not None:
                    # "analysing" from the moment the job is done: a poll between the two must not read "no
                    # analysis will come" (the analysis itself starts a moment later, in this thread)
                    self._analysing.setdefault(job_id, threading.Event())
                self.library.update_job(job_id, status="done", progress=1.0, stage="done", finished=time.time(),
                                        seconds=time.time() - started)
            self.live.update(job_id, status="done", progress=1.0, stage="done")
            self.song_changed(song["id"])
            self._drop_segments(job_id, segments)
            self._analyse(song["id"], job_id, stems)
        except Exception as e:  # noqa: BLE001 - reported to the user through the job's error field
            shutil.rmtree(tmp, ignore_errors=True)
            # a stop request decides the outcome whatever the engine raised on its way out (JobCancelled or an
            # error wrapping it): the user's cancel gives "cancelled", a shutdown "interrupted"
            if isinstance(e, JobCancelled) or cancel.is_set():
                if job_id in self._user_cancelled:
                    self._finish(job_id, status="cancelled", finished=time.time(), stage="cancelled")
                else:
                    progress = self.live.jobs.get(job_id, {}).get("progress", 0.0)
                    self._finish(job_id, status="interrupted", finished=time.time(), stage="interrupted",
                                 error=interrupted_message("running", progress))
                return
            message = str(e) or type(e).__name__
            if isinstance(e, AudioError) and Path(e.path) == Path(song["source_path"]):
                # the upload passed the bounded probe but does not decode to its end: say so with the user's file
                # name (never the server's path), and mark the song so that Re-run is not offered
                message = f"{song['original_name']}: {e.reason}"
                self.library.mark_unreadable(song["id"], message)
            log.warning("job %s failed: %s", job_id, message)
            self._finish(job_id, status="failed", error=message, finished=time.time(), stage="failed")
        finally:
            self._drop_segments(job_id, segments)
            self._end_analysis(song["id"], job_id)  # announced at "done", but an error came before it ran
            self._cancel.pop(job_id, None)
            self._user_cancelled.discard(job_id)
