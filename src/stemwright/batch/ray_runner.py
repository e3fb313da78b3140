"""Run a batch of files on Ray: a pool of actors, one track in flight per actor, retries, a report.

Ray schedules the actors (locally or on a cluster: ``address``); this module only hands each idle actor the next
track and replaces actors that die (killed, out of memory). A track whose separation raised an input error (a
bad file: ``ValueError``, as :class:`~stemwright.audio.io.AudioError`) fails at once, since trying again gives the
same answer; a worker's death or any other error is retried up to ``retries`` more times, then recorded.
Results land where ``stemwright separate`` puts them (same layout, same manifests, same skip rule), so a batch
that is stopped anywhere is finished by running it again.
"""
from __future__ import annotations

import json
import logging
import os
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from stemwright.api import ModelSettings
from stemwright.atomic import atomic_write_text
from stemwright.manifest import SeparationOptions

log = logging.getLogger(__name__)

REPORT_NAME = "batch.json"
STATUSES = ("done", "skipped", "failed")


@dataclass(frozen=True, kw_only=True)
class BatchSettings:
    """What every worker needs to build its :class:`~stemwright.api.Separator` and write like ``separate``."""

    model: ModelSettings
    options: SeparationOptions
    outdir: str
    overwrite: bool = False


@dataclass(frozen=True, kw_only=True)
class TrackResult:
    """One input's outcome. ``index`` is its position in the batch's input list; ``attempts`` counts tries."""

    index: int
    input: str
    status: str
    reason: str | None = None
    attempts: int = 1
    seconds: float | None = None
    duration: float | None = None
    manifest_path: str | None = None
    worker_pid: int | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"track result: status must be one of {', '.join(STATUSES)}, got {self.status!r}")

    def as_json(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("worker_pid")
        return d


@dataclass(frozen=True, kw_only=True)
class BatchReport:
    """What a batch did: every track's result (in input order), the wall time and the pool it ran on."""

    model: str
    outdir: str
    address: str | None
    workers: int
    seconds: float
    workers_replaced: int
    results: tuple[TrackResult, ...] = field(default_factory=tuple)
    interrupted: bool = False  # stopped by Ctrl-C: ``results`` holds what finished before

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def audio_hours(self) -> float:
        """Hours of audio separated by this run (skipped tracks not counted)."""
        return sum(r.duration or 0.0 for r in self.results if r.status == "done") / 3600

    @property
    def songs_per_minute(self) -> float:
        return self.count("done") / (self.seconds / 60) if self.seconds > 0 else 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "model": self.model, "outdir": self.outdir, "address": self.address, "workers": self.workers,
            "seconds": round(self.seconds, 3), "workers_replaced": self.workers_replaced,
            "interrupted": self.interrupted,
            "done": self.count("done"), "skipped": self.count("skipped"), "failed": self.count("failed"),
            "songs_per_minute": round(self.songs_per_minute, 4), "audio_hours": round(self.audio_hours, 6),
            "failures": [{"index": r.index, "input": r.input, "reason": r.reason, "attempts": r.attempts}
                         for r in self.results if r.status == "failed"],
            "tracks": [r.as_json() for r in self.results],
        }

    def write(self, path: str | Path) -> Path:
        return atomic_write_text(path, json.dumps(self.as_json(), indent=2) + "\n")

    def summary(self) -> str:
        lines = [f"{self.count('done')} separated, {self.count('skipped')} already done, {self.count('failed')} "
                 f"failed in {self.seconds:.1f} s on {self.workers} worker(s): {self.songs_per_minute:.2f} songs/min, "
                 f"{self.audio_hours * 60:.2f} min of audio"]
        lines += [f"failed: {r.input}: {r.reason}" + (f" ({r.attempts} attempt(s))" if r.attempts else "")
                  for r in self.results if r.status == "failed"]
        return "\n".join(lines)


class SeparatorWorker:
    """The actor: loads the model once, then separates one file per call with the streaming file path. Never
    raises for a track: errors come back as a failed :class:`TrackResult` (``retry`` says whether to try again)."""

    def __init__(self, settings: BatchSettings) -> None:
        # one intra-op thread per actor (Ray gives it one CPU): actors on a node do not fight over cores
        torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1") or 1)))
        self.settings = settings
        self.sep = settings.model.separator()

    def pid(self) -> int:
        return os.getpid()

    def separate(self, index: int, path: str, attempt: int) -> tuple[TrackResult, bool]:
        o = self.settings.options
        t0 = time.perf_counter()
        base = dict(index=index, input=path, attempts=attempt, worker_pid=os.getpid())
        try:
            r = self.sep.separate_file(path, self.settings.outdir, options=o, overwrite=self.settings.overwrite,
                                       skip_existing=not self.settings.overwrite)
        except ValueError as e:  # bad input or unwritable output: the message names the file and the reason
            msg = str(e)
            return TrackResult(status="failed", reason=msg if path in msg else f"{path}: {msg}", **base), False
        except Exception as e:  # noqa: BLE001 - one track never stops the batch
            return TrackResult(status="failed", reason=f"{type(e).__name__}: {e}", **base), True
        return TrackResult(status="skipped" if r.skipped else "done", seconds=round(time.perf_counter() - t0, 4),
                           duration=r.manifest.duration, manifest_path=str(r.manifest_path), **base), False


class RayBatch:
    """A pool of :class:`SeparatorWorker` actors on a Ray cluster (``address``: ``None`` starts a local Ray with
    ``workers`` CPUs; ``"auto"`` or ``"ray://host:port"`` joins one). Use as a context manager."""

    def __init__(self, settings: BatchSettings, *, workers: int = 1, address: str | None = None,
                 gpus_per_worker: float = 0.0, retries: int = 2) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        if retries < 0:
            raise ValueError(f"retries must be >= 0, got {retries}")
        if gpus_per_worker < 0:
            raise ValueError(f"gpus per worker must be >= 0, got {gpus_per_worker}")
        self.settings, self.workers, self.address = settings, workers, address
        self.gpus_per_worker, self.retries = gpus_per_worker, retries
        self.replaced = 0
        self._started_ray = False
        self._actors: list[Any] = []

    def __enter__(self) -> "RayBatch":
        import ray  # the optional [ray] extra: imported only when a batch starts

        if not ray.is_initialized():
            kwargs: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
            if self.address is None:
                kwargs["num_cpus"] = self.workers
            ray.init(address=self.address, **kwargs)
            self._started_ray = True
        self._remote = ray.remote(num_cpus=1, num_gpus=self.gpus_per_worker, max_restarts=0)(SeparatorWorker)
        self._actors = [self._new_actor() for _ in range(self.workers)]
        return self

    def __exit__(self, *exc: Any) -> None:
        import ray  # the optional [ray] extra

        for a in self._actors:
            try:
                ray.kill(a)
            except Exception:  # noqa: BLE001 - already dead
                pass
        self._actors = []
        if self._started_ray:
            ray.shutdown()

    def _new_actor(self) -> Any:
        return self._remote.remote(self.settings)

    def worker_pids(self) -> list[int]:
        """The live actors' process ids (for tests and diagnostics)."""
        import ray  # the optional [ray] extra

        return ray.get([a.pid.remote() for a in self._actors])

    def run(self, inputs: list[str], on_result: Callable[[TrackResult], None] | None = None) -> BatchReport:
        """Separate ``inputs`` (paths every node can read); ``on_result`` gets each result as it completes."""
        import ray  # the optional [ray] extra
        from ray.exceptions import RayActorError, RayError  # the optional [ray] extra

        t0 = time.perf_counter()
        queue = deque((i, p, 1) for i, p in enumerate(inputs))
        idle = list(range(len(self._actors)))
        inflight: dict[Any, tuple[int, int, str, int]] = {}
        results: dict[int, TrackResult] = {}

        def record(r: TrackResult) -> None:
            results[r.index] = r
            if on_result is not None:
                on_result(r)

        while queue or inflight:
            while queue and idle:
                k = idle.pop()
                i, p, attempt = queue.popleft()
                inflight[self._actors[k].separate.remote(i, p, attempt)] = (k, i, p, attempt)
            ready, _ = ray.wait(list(inflight), num_returns=1)
            ref = ready[0]
            k, i, p, attempt = inflight.pop(ref)
            try:
                result, retry = ray.get(ref)
            except RayActorError as e:  # the worker process died (killed, out of memory, node lost)
                log.warning("worker died on %s (attempt %d): %s", p, attempt, str(e).splitlines()[0])
                self._actors[k] = self._new_actor()
                self.replaced += 1
                result = TrackResult(index=i, input=p, status="failed", attempts=attempt,
                                     reason=f"worker died ({type(e).__name__})")
                retry = True
            except RayError as e:
                result = TrackResult(index=i, input=p, status="failed", attempts=attempt,
                                     reason=f"{type(e).__name__}: {str(e).splitlines()[0]}")
                retry = True
            idle.append(k)
            if result.status == "failed" and retry and attempt <= self.retries:
                queue.appendleft((i, p, attempt + 1))
                continue
            record(result)
        return BatchReport(model=self.settings.model.model, outdir=self.settings.outdir, address=self.address,
                           workers=self.workers, seconds=time.perf_counter() - t0, workers_replaced=self.replaced,
                           results=tuple(results[i] for i in sorted(results)))
