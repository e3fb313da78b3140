"""A JACK server with the dummy driver (no sound card) and a player/recorder pair of clients, for the live tests.

The player plays an array into some ports from its first cycle after :meth:`PlayRecord.start`; the recorder
records other ports, keyed by JACK frame time, so a recording sample is matched to the sample played in the same
cycle whatever the graph does (JACK runs player -> live -> recorder in one cycle).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from typing import Iterator

import numpy as np
import pytest

from tests.reference import in_ci, require

RATE, PERIOD = 44100, 1024


def jack_server() -> Iterator[str]:
    """Start ``jackd -d dummy -r 44100 -p 1024`` under a unique name (exported as ``JACK_DEFAULT_SERVER`` so
    subprocesses use it), yield the name, stop it."""
    jack = require("jack")
    jackd = shutil.which("jackd")
    if jackd is None:
        message = "jackd is not installed (Debian: jackd2; scripts/setup.sh --dev installs it)"
        if in_ci():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    name = f"stemwright-test-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "JACK_NO_AUDIO_RESERVATION": "1"}
    proc = subprocess.Popen([jackd, "-n", name, "-d", "dummy", "-r", str(RATE), "-p", str(PERIOD)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    old = os.environ.get("JACK_DEFAULT_SERVER")
    os.environ["JACK_DEFAULT_SERVER"] = name
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                jack.Client("probe", servername=name, no_start_server=True).close()
                break
            except jack.JackOpenError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"jackd did not start: {proc.stderr.read() if proc.poll() is not None else 'timeout'}")
                time.sleep(0.1)
        yield name
    finally:
        if old is None:
            os.environ.pop("JACK_DEFAULT_SERVER", None)
        else:
            os.environ["JACK_DEFAULT_SERVER"] = old
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_for_port(name: str, timeout: float = 60.0) -> None:
    """Wait until the JACK port ``name`` exists (a client starting in another process)."""
    jack = require("jack")
    client = jack.Client("port-probe", no_start_server=True)
    try:
        deadline = time.monotonic() + timeout
        while not client.get_ports(name):
            if time.monotonic() > deadline:
                raise TimeoutError(f"JACK port {name} did not appear in {timeout} s")
            time.sleep(0.1)
    finally:
        client.close()


class PlayRecord:
    """Plays ``audio (C, T)`` through ``play_to`` output ports and records ``record_from`` input ports for
    ``record_frames`` frames from the first played cycle on: ``recording`` is ``(record_from, record_frames)``.
    The clients are activated at once; :meth:`connect` them to the tested client when its ports exist (a client
    activating during a test can cost an xrun of its own)."""

    def __init__(self, audio: np.ndarray, play_to: int, record_from: int, record_frames: int) -> None:
        jack = require("jack")
        self.audio = np.ascontiguousarray(audio, dtype=np.float32)
        self.recording = np.zeros((record_from, record_frames), dtype=np.float32)
        self.first_frame: int | None = None
        self.armed = False
        self.done = False
        self.player = jack.Client("test-player", no_start_server=True)
        self.recorder = jack.Client("test-recorder", no_start_server=True)
        self.outs = [self.player.outports.register(f"out_{i}") for i in range(play_to)]
        self.ins = [self.recorder.inports.register(f"in_{i}") for i in range(record_from)]
        self.xruns_while_playing = 0
        self.player.set_xrun_callback(self._xrun)
        self.player.set_process_callback(self._play)
        self.recorder.set_process_callback(self._record)
        self.player.activate()
        self.recorder.activate()

    def connect(self, play_to: list[str], record_from: list[str]) -> None:
        for port, target in zip(self.outs, play_to, strict=True):
            self.player.connect(port, target)
        for port, source in zip(self.ins, record_from, strict=True):
            self.recorder.connect(source, port)

    def _xrun(self, delay: float) -> None:
        if self.first_frame is not None and not self.done:
            self.xruns_while_playing += 1

    def _play(self, frames: int) -> None:
        if self.armed and self.first_frame is None:
            self.first_frame = self.player.last_frame_time
        pos = None if self.first_frame is None else self.player.last_frame_time - self.first_frame
        for c, port in enumerate(self.outs):
            buf = port.get_array()
            buf.fill(0.0)
            if pos is not None and pos < self.audio.shape[1]:
                chunk = self.audio[c, pos : pos + frames]
                buf[: chunk.shape[0]] = chunk

    def _record(self, frames: int) -> None:
        if self.first_frame is None:
            return
        pos = self.recorder.last_frame_time - self.first_frame
        room = self.recording.shape[1] - pos
        if pos < 0 or room <= 0:
            return
        for c, port in enumerate(self.ins):
            chunk = port.get_array()[: min(frames, room)]
            self.recording[c, pos : pos + chunk.shape[0]] = chunk

    def run(self, timeout: float) -> np.ndarray:
        """Play and record to the end (or ``timeout`` seconds); the recording."""
        self.armed = True
        deadline = time.monotonic() + timeout
        end = self.recording.shape[1] + 2 * PERIOD
        while self.first_frame is None or self.recorder.frame_time - self.first_frame < end:
            if time.monotonic() > deadline:
                raise TimeoutError("playing and recording took too long")
            time.sleep(0.05)
        self.done = True
        for client in (self.player, self.recorder):
            client.deactivate()
            client.close()
        return self.recording
