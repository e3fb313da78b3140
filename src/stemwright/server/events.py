"""The library's change log, read by the event stream (``GET /api/events``) so that every open tab follows the
server: songs added, removed or changed (a job started, ended, its analysis finished) in any tab or by a restart.

Each change has a sequence number; the stream sends it as the event id ``<boot>.<seq>``, so a browser that
reconnects (``EventSource`` sends ``Last-Event-ID``) gets the changes it missed, or — after a server restart (another
``boot``) or a gap longer than the log — a ``reset`` telling it to reload the library.
"""
from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass

LOG_SIZE = 512  # changes kept for reconnecting tabs; a tab further behind reloads the library
SONG_ACTIONS = ("added", "removed", "changed")


@dataclass(frozen=True)
class SongEvent:
    """One change: ``action`` is one of :data:`SONG_ACTIONS`, ``seq`` its place in the log."""

    seq: int
    action: str
    song_id: str


class LibraryEvents:
    """A bounded, thread-safe log of song changes (written by request handlers and job workers)."""

    def __init__(self) -> None:
        self.boot = uuid.uuid4().hex[:12]  # a new id per server start: a tab seeing another one reloads
        self.started = time.time()
        self._log: deque[SongEvent] = deque(maxlen=LOG_SIZE)
        self._seq = 0
        self._lock = threading.Lock()

    def song(self, action: str, song_id: str) -> None:
        if action not in SONG_ACTIONS:
            raise ValueError(f"action must be one of {', '.join(SONG_ACTIONS)}, got {action!r}")
        with self._lock:
            self._seq += 1
            self._log.append(SongEvent(self._seq, action, song_id))

    @property
    def seq(self) -> int:
        with self._lock:
            return self._seq

    def since(self, seq: int) -> list[SongEvent] | None:
        """The changes after ``seq``; None when some of them have left the log (the reader must reload)."""
        with self._lock:
            if seq > self._seq:
                return None
            if seq < self._seq and (not self._log or self._log[0].seq > seq + 1):
                return None
            return [e for e in self._log if e.seq > seq]

    def resume_point(self, last_event_id: str | None) -> int | None:
        """The sequence number a reconnecting reader has seen (its ``Last-Event-ID``), or None when it comes from
        another server start (or sends no id): it must reload."""
        boot, _, seq = (last_event_id or "").partition(".")
        if boot != self.boot or not seq.isdigit():
            return None
        return int(seq)

    def event_id(self, seq: int) -> str:
        return f"{self.boot}.{seq}"
