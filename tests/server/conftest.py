"""Fixtures for the studio tests: an app on a temporary data dir, with a fast controllable separator."""
from __future__ import annotations

import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from fastapi.testclient import TestClient

import soundfile as sf

from stemwright.audio.io import read_audio, write_audio
from stemwright.engine.progress import ProgressEvent
from stemwright.server.app import ServerConfig, create_app
from tests.server.fake_serve import idle_factory  # noqa: F401 - re-exported for the tests

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

    def separate_file(self, path, outdir, *, fmt, bit_depth, clip_mode, filename, overwrite, on_block=None):
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
        if on_block is not None:  # as the engine: the stems in time order, as they become final
            half = audio.samples.shape[-1] // 2
            for part in (slice(0, half), slice(half, None)):
                on_block({name: x[:, part].astype(np.float32) for name, x in stems.items()})
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
        # a loopback name: the Host allow-list refuses TestClient's default "testserver"
        client = TestClient(create_app(ServerConfig(**cfg)), base_url="http://localhost")
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


def sse_events(lines) -> list[tuple[str, str | None, dict]]:
    """``(event name, id, data)`` of a server-sent event stream's lines (``message`` when unnamed)."""
    import json

    out, name, event_id, data = [], "message", None, []
    for line in lines:
        if line == "":
            if data:
                out.append((name, event_id, json.loads("\n".join(data))))
            name, event_id, data = "message", None, []
        elif line.startswith("event: "):
            name = line[7:]
        elif line.startswith("id: "):
            event_id = line[4:]
        elif line.startswith("data: "):
            data.append(line[6:])
    if data:
        out.append((name, event_id, json.loads("\n".join(data))))
    return out


@pytest.fixture()
def short_wav(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    x = (0.1 * rng.standard_normal((2, 22050))).astype(np.float32)
    return write_audio(tmp_path / "short.wav", x, 22050, bit_depth=16)


@pytest.fixture(scope="session")
def hour_of_silence(tmp_path_factory) -> Path:
    """One hour of 44.1 kHz stereo silence as FLAC: ~600 KB on disk, 1.3 GB once decoded to float32."""
    path = tmp_path_factory.mktemp("bomb") / "hour.flac"
    block = np.zeros((441_000, 2), np.float32)
    with sf.SoundFile(str(path), "w", 44100, 2, subtype="PCM_16", format="FLAC") as f:
        for _ in range(360):
            f.write(block)
    assert path.stat().st_size < 1_000_000
    return path


REPO_ROOT = Path(__file__).resolve().parents[2]


class ServerProcess:
    """A studio server in a subprocess (``python -m tests.server.fake_serve`` or the real CLI) and the URL it
    printed, and the process."""

    def __init__(self, args: list[str], data_dir: Path, module: str = "tests.server.fake_serve"):
        import os
        import re
        import subprocess
        import sys

        env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1",
               # the sources the tests run on (PYTHONPATH first), then this checkout
               "PYTHONPATH": os.pathsep.join(p for p in [os.environ.get("PYTHONPATH", ""), str(REPO_ROOT / "src"), str(REPO_ROOT)] if p)}
        self.data_dir = data_dir
        self.proc = subprocess.Popen([sys.executable, "-m", module, *args, "--data-dir", str(data_dir)],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                                     cwd=str(REPO_ROOT))
        m = None
        for _ in range(50):  # skip warnings printed while importing
            self.first_line = self.proc.stdout.readline()
            m = re.search(r"studio: (http://\S+?/)(\s|\?|$)", self.first_line)
            if m or not self.first_line:
                break
        if not m:
            self.proc.kill()
            raise AssertionError(f"server did not print its URL: {self.first_line!r} {self.proc.stdout.read()[-2000:]}")
        self.url = m.group(1)
        self.wait_ready()

    def wait_ready(self, timeout: float = 30.0) -> None:
        import urllib.error
        import urllib.request

        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                urllib.request.urlopen(self.url + "api/health", timeout=1).read()
                return
            except urllib.error.HTTPError:
                return  # it answers (401 in token mode)
            except OSError:
                time.sleep(0.05)
        raise AssertionError("server did not answer /api/health")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc.stdout.close()


@pytest.fixture()
def server_process(tmp_path):
    started: list[ServerProcess] = []

    def start(*args: str, data_dir: Path | None = None, module: str = "tests.server.fake_serve") -> ServerProcess:
        p = ServerProcess(list(args), data_dir or tmp_path / "studio", module)
        started.append(p)
        return p

    yield start
    for p in started:
        p.stop()
