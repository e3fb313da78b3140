"""Fixtures for the studio tests: an app on a temporary data dir, with a fast controllable separator."""
from __future__ import annotations

import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from fastapi.testclient import TestClient

from stemwright.audio.io import read_audio, write_audio
from stemwright.engine.progress import ProgressEvent
from stemwright.server.app import ServerConfig, create_app

MP3 = "spleeter_audio_example_SlowMotionDream_StevenMBryant_CC-BY-3.0.mp3"


class FakeSeparator:
    """Splits the mixture into 'vocals' (0.25 x) and 'other' (0.75 x) — sums exactly to the input.

    ``gate`` (a threading.Event), when given, holds the job in its first progress step until set; ``fail`` makes it
    raise, to test error reporting.
    """

    gate: threading.Event | None = None
    fail: str | None = None

    def __init__(self, model: str, progress):
        self.model = model
        self.progress = progress

    def separate_file(self, path, outdir, *, fmt, bit_depth, clip_mode, filename, overwrite):
        audio = read_audio(path)
        for i in range(4):
            self.progress(ProgressEvent(i / 4, "separate", i, 4))
            if self.gate is not None:
                while not self.gate.wait(0.05):
                    self.progress(ProgressEvent(i / 4, "separate", i, 4))
            if self.fail:
                raise RuntimeError(self.fail)
        outdir = Path(outdir)
        stems = {"vocals": audio.samples * 0.25, "other": audio.samples * 0.75}
        paths = {}
        for name, x in stems.items():
            paths[name] = write_audio(outdir / f"{name}.wav", x, audio.samplerate, bit_depth=32, overwrite=True)
        self.progress(ProgressEvent(1.0, "write", 4, 4))
        return SimpleNamespace(stem_paths=paths, manifest=SimpleNamespace(samplerate=audio.samplerate))


def fake_factory(model, progress):
    return FakeSeparator(model, progress)


@pytest.fixture()
def make_client(tmp_path):
    clients = []

    def make(**overrides) -> TestClient:
        cfg = dict(data_dir=tmp_path / "studio", separator_factory=fake_factory, max_upload_mb=20)
        cfg.update(overrides)
        client = TestClient(create_app(ServerConfig(**cfg)))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    FakeSeparator.gate = None
    FakeSeparator.fail = None
    for c in clients:
        c.__exit__(None, None, None)


@pytest.fixture()
def mp3_path(mixtures_dir) -> Path:
    return mixtures_dir / MP3


def upload(client: TestClient, path: Path, model: str = "classic", headers=None):
    with open(path, "rb") as f:
        return client.post("/api/songs", files={"file": (path.name, f, "audio/mpeg")}, data={"model": model},
                           headers=headers or {})


def wait_status(client: TestClient, song_id: str, statuses=("done",), timeout=60.0, headers=None) -> dict:
    end = time.time() + timeout
    while time.time() < end:
        song = client.get(f"/api/songs/{song_id}", headers=headers or {}).json()
        if song["status"] in statuses:
            return song
        time.sleep(0.05)
    raise AssertionError(f"song {song_id} did not reach {statuses}: {song}")


@pytest.fixture()
def short_wav(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    x = (0.1 * rng.standard_normal((2, 22050))).astype(np.float32)
    return write_audio(tmp_path / "short.wav", x, 22050, bit_depth=16)
