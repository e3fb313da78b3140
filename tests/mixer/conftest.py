"""Fixtures of the mixer tests: real separated stems (once per session) and small synthetic stems."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

SPLEETER_MP3 = "spleeter_audio_example_SlowMotionDream_StevenMBryant_CC-BY-3.0.mp3"
MUSDB_TRACK = "Music Delta - 80s Rock"


@pytest.fixture(scope="session")
def separated_dir(mixtures_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 10.9 s mp3 separated once with the classic model (a 'stemwright separate' output folder)."""
    import stemwright

    out = tmp_path_factory.mktemp("separated")
    result = stemwright.Separator(model="classic").separate_file(mixtures_dir / SPLEETER_MP3, out)
    return result.manifest_path.parent


@pytest.fixture(scope="session")
def separated(separated_dir: Path):
    from stemwright.mixer.stems import load_stems

    return load_stems(separated_dir)


@pytest.fixture(scope="session")
def musdb_track(musdb_excerpt: Path) -> Path:
    return musdb_excerpt / MUSDB_TRACK


@pytest.fixture()
def random_stems() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1234)
    return {n: (rng.standard_normal((2, 8000)) * 0.1).astype(np.float32) for n in ("vocals", "drums", "bass", "other")}
