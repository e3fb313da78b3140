"""Imports the installed museval 0.4.1 (test-only reference).

museval's package ``__init__`` imports musdb -> stempeg, which refuses to import without the ffmpeg binary; the
parts used here (``museval.evaluate`` and ``museval.metrics``) need neither, so musdb is stubbed when that happens.
"""
from __future__ import annotations

import sys
import types

from tests.reference import require


def import_museval():
    try:
        require("museval")
    except RuntimeError:  # stempeg: "ffmpeg or ffprobe could not be found"
        for name in [k for k in sys.modules if k.split(".")[0] in ("museval", "musdb", "stempeg")]:
            del sys.modules[name]
        sys.modules["musdb"] = types.ModuleType("musdb")
        import museval  # noqa: F811
    import museval

    return museval
