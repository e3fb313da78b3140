"""Keep freed memory in the process while a song is separated, instead of handing it back to the OS chunk by chunk.

Why: glibc's malloc serves every block above its mmap threshold (at most 32 MB) with a fresh ``mmap`` and unmaps it
on ``free``, so each chunk faults in and zeroes again the pages of the large activations (HT Demucs' spectral branch:
33-66 MB tensors). Measured on ``htdemucs``, 10 s, 1 thread: 0.45 s of system time in 5.1 s, and the page-zeroing
user time on top; with mmap off and trimming deferred during the separation, freed blocks are reused and the
system time is ~0. :func:`retain_freed_memory` sets that (``mallopt``) for the duration of a separation and
restores glibc's usual steady state afterwards, with ``malloc_trim(0)`` giving the retained memory back at once.

Process-wide, so reference-counted: nested or concurrent separations share one setting, the last to leave restores
it. A no-op off glibc (macOS, Windows, musl) and when the user tunes malloc through the environment
(``GLIBC_TUNABLES`` with ``glibc.malloc``, or ``MALLOC_*_``): their setting wins.
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import threading
from typing import Any, Iterator

log = logging.getLogger(__name__)

# mallopt parameters (malloc/malloc.h)
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_MMAP_MAX = -1, -3, -4
# What is restored. Any mallopt call turns off glibc's dynamic mmap threshold for good, so the restored values are
# where that dynamic rule ends up once large blocks have been freed (malloc/malloc.c: the threshold rises to the
# freed block's size, at most DEFAULT_MMAP_THRESHOLD_MAX = 32 MB on 64-bit, and the trim threshold to twice that):
# the rest of the process (and a reference run in the same benchmark) keeps glibc's usual steady state.
DEFAULT_MMAP_MAX = 65536
RESTORED_MMAP_THRESHOLD = 32 * 1024 * 1024
RESTORED_TRIM_THRESHOLD = 2 * RESTORED_MMAP_THRESHOLD
#: Trimming threshold while retaining (mallopt takes an int): free space at the heap's top is kept up to 2 GB.
RETAIN_TRIM_THRESHOLD = 2**31 - 1

_lock = threading.Lock()
_depth = 0


def _libc() -> Any | None:
    """glibc through ctypes, or None where the C library is not glibc or malloc is tuned by the environment."""
    try:
        glibc = os.confstr("CS_GNU_LIBC_VERSION") or ""  # "glibc 2.36"; instant, unlike platform.libc_ver()
    except (ValueError, OSError, AttributeError):  # not a glibc system (macOS, musl, Windows)
        glibc = ""
    if not glibc.startswith("glibc"):
        return None
    if "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", "") or any(k.startswith("MALLOC_") for k in os.environ):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt.argtypes, libc.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
        libc.malloc_trim.argtypes, libc.malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _libc()


def _set(retain: bool) -> None:
    assert _LIBC is not None
    if retain:
        ok = _LIBC.mallopt(M_MMAP_MAX, 0) and _LIBC.mallopt(M_TRIM_THRESHOLD, RETAIN_TRIM_THRESHOLD)
    else:
        ok = (_LIBC.mallopt(M_MMAP_MAX, DEFAULT_MMAP_MAX) and _LIBC.mallopt(M_MMAP_THRESHOLD, RESTORED_MMAP_THRESHOLD)
              and _LIBC.mallopt(M_TRIM_THRESHOLD, RESTORED_TRIM_THRESHOLD))
        _LIBC.malloc_trim(0)
    if not ok:
        log.debug("mallopt refused the %s setting", "retaining" if retain else "default")


@contextlib.contextmanager
def retain_freed_memory() -> Iterator[None]:
    """While active (in any thread), freed memory stays in the process for reuse; see the module docstring."""
    global _depth
    if _LIBC is None:
        yield
        return
    with _lock:
        _depth += 1
        if _depth == 1:
            _set(True)
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                _set(False)


def retaining() -> bool:
    """True while some separation retains freed memory (tests, diagnostics)."""
    return _depth > 0
