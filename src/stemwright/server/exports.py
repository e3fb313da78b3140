"""Bounded mix exports: limits on what one mix document may ask for, a small queue (429 when full), and export
files that live only until they are downloaded or their time-to-live passes."""
from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable

log = logging.getLogger(__name__)

# A studio strip has a 3-band EQ; 16 leaves room for hand-written documents without letting one request stack
# thousands of filters.
MAX_EFFECTS_PER_CHANNEL = 16
# Offsets nudge a stem against the others (latency, a late entry); a minute covers that without letting one
# request render an hour of silence.
MAX_OFFSET_S = 60.0


class ExportBusyError(RuntimeError):
    """The export queue is full."""


def check_mix_limits(mix: Any) -> None:
    """Raise ValueError when a :class:`stemwright.mixer.document.Mix` exceeds the studio's export limits."""
    for i, ch in enumerate(mix.channels):
        if len(ch.effects) > MAX_EFFECTS_PER_CHANNEL:
            raise ValueError(f"channels[{i}].effects: at most {MAX_EFFECTS_PER_CHANNEL} effects per channel "
                             f"(got {len(ch.effects)})")
        if abs(ch.offset_s) > MAX_OFFSET_S:
            raise ValueError(f"channels[{i}].offset_s: must be within ±{MAX_OFFSET_S:g} s (got {ch.offset_s:g})")
    if len(mix.master.effects) > MAX_EFFECTS_PER_CHANNEL:
        raise ValueError(f"master.effects: at most {MAX_EFFECTS_PER_CHANNEL} effects (got {len(mix.master.effects)})")


@dataclass
class ExportQueue:
    """At most ``workers`` renders at once and ``max_pending`` accepted (running + waiting); files under
    ``folder`` are removed after download (by the caller) or after ``ttl_s``, and all of them at start-up."""

    folder: Path
    max_pending: int = 4
    workers: int = 1
    ttl_s: float = 600.0

    def __post_init__(self) -> None:
        self._pending = 0
        self._slots: asyncio.Semaphore | None = None

    def clear(self) -> None:
        """Remove every export (at start-up: no download can resume across a restart)."""
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True, exist_ok=True)

    def sweep(self, now: float | None = None) -> int:
        """Remove exports older than the time-to-live; returns how many were removed."""
        now = time.time() if now is None else now
        removed = 0
        if not self.folder.is_dir():
            return 0
        for d in self.folder.iterdir():
            try:
                if now - d.stat().st_mtime > self.ttl_s:
                    shutil.rmtree(d, ignore_errors=True) if d.is_dir() else d.unlink(missing_ok=True)
                    removed += 1
            except FileNotFoundError:
                continue
        return removed

    @property
    def pending(self) -> int:
        return self._pending

    def new_dir(self) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(dir=self.folder, prefix="export-"))

    async def run(self, fn: Any, *args: Any) -> Any:
        """Run ``fn(*args)`` in a thread when a slot is free; raise :class:`ExportBusyError` when full."""
        if self._pending >= self.max_pending:
            raise ExportBusyError(f"the export queue is full ({self.max_pending} exports pending); try again shortly")
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.workers)
        self._pending += 1
        try:
            async with self._slots:
                return await asyncio.to_thread(fn, *args)
        finally:
            self._pending -= 1


@dataclass
class _Render:
    task: asyncio.Future
    folder: Path
    users: int = 0


class SharedRenders:
    """Renders into a temporary folder of the exports queue, shared by identical requests: while a render for
    ``key`` runs, a second request for the same key (a user clicking again) waits for it instead of starting
    another. The folder is removed once the last request using it has been answered (or has gone)."""

    def __init__(self, queue: ExportQueue) -> None:
        self.queue = queue
        self._running: dict[str, _Render] = {}

    @property
    def running(self) -> int:
        return len(self._running)

    async def acquire(self, key: str, render: Callable[[Path], Any]) -> tuple[Path, Callable[[], Awaitable[None]]]:
        """Run ``render(folder)`` in the queue (or join the one running for ``key``); returns the folder and the
        release to call once its file has been sent. Raises what the render raised (ExportBusyError: full)."""
        entry = self._running.get(key)
        if entry is None:
            await asyncio.to_thread(self.sweep_quietly)
            folder = await asyncio.to_thread(self.queue.new_dir)
            entry = _Render(asyncio.ensure_future(self.queue.run(render, folder)), folder)
            self._running[key] = entry
            entry.task.add_done_callback(lambda _t, k=key, e=entry: self._ended(k, e))
        entry.users += 1
        released = False

        async def release() -> None:
            nonlocal released
            if not released:
                released = True
                entry.users -= 1
                await self._cleanup(entry)

        try:
            await asyncio.shield(entry.task)
        except BaseException:
            await asyncio.shield(release())
            raise
        return entry.folder, release

    def sweep_quietly(self) -> None:
        self.queue.sweep()

    def _ended(self, key: str, entry: _Render) -> None:
        if self._running.get(key) is entry:
            del self._running[key]  # a later request renders afresh (the document or stems may have changed)
        if not entry.task.cancelled():
            entry.task.exception()  # retrieved here: every waiter may have gone
        if entry.users == 0:
            asyncio.ensure_future(self._cleanup(entry))

    async def _cleanup(self, entry: _Render) -> None:
        if entry.users == 0 and entry.task.done():
            await asyncio.to_thread(shutil.rmtree, entry.folder, True)
