"""Writing files so that nothing half-written is ever seen: a temporary name in the destination folder, then a rename.

Every output of stemwright (stems, manifests, checkpoints, reports, plots, caches) goes through :func:`atomic_write`,
so all of them get the same guarantees: the destination folder is created, the temporary file is removed if writing
fails, and the result has the usual permissions (``mkstemp`` creates files as 0600; we apply 0666 minus the umask).
"""
from __future__ import annotations

import contextlib
import os
import signal
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable, Iterator

from stemwright.errors import OutputError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | Path, write: Callable[[Path], object], *, suffix: str = ".part") -> Path:
    """Call ``write(tmp)`` on a temporary path beside ``path`` and rename it to ``path`` when it returns.

    ``suffix`` ends the temporary name (writers that infer the format from the extension need e.g. ``".part.png"``).
    """
    p = Path(path)
    with temporary_beside(p, suffix) as tmp:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, p)
    return p


@contextlib.contextmanager
def temporary_beside(path: str | Path, suffix: str = ".part") -> Iterator[Path]:
    """A temporary file beside ``path`` (its folder is created) for scratch data, removed on exit and by
    :func:`remove_live_temporaries` on a signal, like :func:`atomic_write`'s."""
    p = Path(path)
    created = _missing_folders(p.parent)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{p.name}.", suffix=suffix, dir=p.parent)
    os.close(fd)
    tmp = Path(name)
    with _LOCK:
        _LIVE.add(tmp)
        _FOLDERS[tmp] = created
    try:
        yield tmp
    finally:
        tmp.unlink(missing_ok=True)
        with _LOCK:
            _LIVE.discard(tmp)
            _FOLDERS.pop(tmp, None)


def _missing_folders(folder: Path) -> list[Path]:
    """The folders (deepest first) that creating ``folder`` would create."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


# Temporary files being written right now, by any thread: a signal that kills the process removes them
# (``except BaseException`` above only runs for Python exceptions, not for SIGTERM's default action).
_LIVE: set[Path] = set()
# The folders each live temporary's creation made: a signal removes them again when they are left empty (a track
# folder of a separation killed by SIGTERM must not stay behind, empty).
_FOLDERS: dict[Path, list[Path]] = {}
_LOCK = threading.Lock()


def remove_live_temporaries() -> int:
    """Delete every temporary file :func:`atomic_write` is writing at this moment, and the folders their creation
    made when they are empty; returns how many files."""
    with _LOCK:
        live = list(_LIVE)
        folders = [f for tmp in live for f in _FOLDERS.pop(tmp, [])]
        _LIVE.clear()
    for tmp in live:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
    for folder in sorted(set(folders), key=lambda f: -len(f.parts)):  # deepest first
        try:
            folder.rmdir()
        except OSError:
            pass  # not empty: it holds other outputs
    return len(live)


def remove_temporaries_on_signals(signals: tuple[int, ...] = (signal.SIGTERM, signal.SIGHUP)) -> None:
    """Install handlers (main thread only) that remove the live temporary files, then let the signal do what it
    would have done (so the exit status still says "killed by SIGTERM"). SIGINT needs none: it raises
    ``KeyboardInterrupt``, which the ``except`` in :func:`atomic_write` handles."""

    def handler(signum: int, frame: Any) -> None:
        remove_live_temporaries()
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    if threading.current_thread() is not threading.main_thread():
        return
    for sig in signals:
        signal.signal(sig, handler)


def check_writable_folder(folder: str | Path) -> None:
    """:class:`~stemwright.errors.OutputError` unless ``folder`` is, or could be created as, a writable folder
    (its nearest existing ancestor is a writable folder). Creates nothing."""
    folder = Path(folder)
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(folder, f"cannot create output folder ({existing} is not a folder)")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(folder, f"output folder is not writable ({existing})")


def atomic_write_text(path: str | Path, data: str | bytes) -> Path:
    """Write text (UTF-8) or bytes atomically."""
    if isinstance(data, str):
        return atomic_write(path, lambda tmp: tmp.write_text(data, encoding="utf-8"))
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_png(path: str | Path, fig: Any, *, dpi: int = 110) -> Path:
    """Save a matplotlib figure as PNG atomically and close it (also when saving fails)."""
    import matplotlib.pyplot as plt

    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=dpi, format="png"), suffix=".part.png")
    finally:
        plt.close(fig)
