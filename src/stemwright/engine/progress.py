"""Progress reporting shared by the CLI, the Python API and the web server."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class ProgressEvent:
    """One progress update.

    ``fraction`` is overall completion in [0, 1]; ``stage`` names the step ("load", "separate", "write", ...);
    ``chunk_index``/``num_chunks`` count model calls within the separate stage.
    """

    fraction: float
    stage: str
    chunk_index: int = 0
    num_chunks: int = 0
    message: str = ""


ProgressCallback = Callable[[ProgressEvent], None]


def scaled(callback: ProgressCallback | None, start: float, end: float) -> ProgressCallback | None:
    """Map a sub-task's [0, 1] progress into ``[start, end]`` of the caller's progress."""
    if callback is None:
        return None

    def inner(ev: ProgressEvent) -> None:
        callback(
            ProgressEvent(start + (end - start) * ev.fraction, ev.stage, ev.chunk_index, ev.num_chunks, ev.message)
        )

    return inner
