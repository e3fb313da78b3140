"""Where stemwright keeps what it downloads (published weights) or measures once per machine (the CPU-kernel
choice): ``$STEMWRIGHT_CACHE`` if set, else the platform's user cache dir. A leaf: it imports nothing of stemwright,
so the engine and the loaders both use it."""
from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The root of stemwright's cache (``$STEMWRIGHT_CACHE`` or the platform's user cache dir). Raises
    ``ImportError`` without platformdirs when ``$STEMWRIGHT_CACHE`` is not set."""
    env = os.environ.get("STEMWRIGHT_CACHE")
    if env:
        return Path(env).expanduser()
    import platformdirs  # only without $STEMWRIGHT_CACHE: the engine runs without it (benchmarks/gpu_check.py)

    return Path(platformdirs.user_cache_dir("stemwright"))
