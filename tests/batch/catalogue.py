"""Generated inputs for batch tests: short songs and a corrupt file."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf


def make_catalogue(folder: Path, n: int = 5, seconds: float = 1.0) -> list[Path]:
    """``n`` short generated stereo songs and one corrupt file (``bad.wav``: not audio), sorted by name."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    files = []
    for i in range(n):
        p = folder / f"song{i}.wav"
        sf.write(p, (0.2 * rng.standard_normal((int(seconds * 44100), 2))).astype(np.float32), 44100)
        files.append(p)
    bad = folder / "bad.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00not audio at all" * 10)
    return sorted([*files, bad])
