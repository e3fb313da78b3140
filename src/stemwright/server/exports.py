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
from typing import Any

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
