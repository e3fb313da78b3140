"""Measuring ``stemwright live`` on a JACK server with the dummy driver (no sound card): a player client plays an
array into it, a recorder captures its output ports. Used by the tests and ``benchmarks/bench_live.py``.

The recorder keys every sample by JACK frame time, so a recorded sample is matched to the sample played in the
same cycle (JACK runs player -> live -> recorder in one cycle). Nothing heavy may run in the measuring process
while the graph runs: a Python JACK client waits for its process's GIL, and a late measuring client is an xrun
that is not the measured command's.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import jack
import numpy as np

__all__ = ["LiveRun", "PlayRecord", "dummy_server", "offline_same_chunks", "record_live", "wait_for_port"]

RATE, PERIOD = 44100, 1024


@contextlib.contextmanager
def dummy_server(rate: int = RATE, period: int = PERIOD) -> Iterator[str]:
    """``jackd -d dummy -r RATE -p PERIOD`` under a unique name, exported as ``JACK_DEFAULT_SERVER`` (for this
    process and its children) while it runs; yields the name. Raises ``FileNotFoundError`` without ``jackd``."""
    jackd = shutil.which("jackd")
    if jackd is None:
        raise FileNotFoundError("jackd is not installed (Debian: jackd2; scripts/setup.sh --dev installs it)")
    name = f"stemwright-{uuid.uuid4().hex[:8]}"
    proc = subprocess.Popen([jackd, "-n", name, "-d", "dummy", "-r", str(rate), "-p", str(period)],
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
                    raise RuntimeError("jackd did not start: "
                                       + (proc.stderr.read() if proc.poll() is not None else "timeout")) from None
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


def wait_for_port(name: str, timeout: float = 120.0) -> None:
    """Wait until the JACK port ``name`` exists (a client starting in another process)."""
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
    The clients are activated at once; :meth:`connect` them to the measured client when its ports exist.
    ``xruns_while_playing``: xruns the server reported between the first played cycle and the end."""

    def __init__(self, audio: np.ndarray, play_to: int, record_from: int, record_frames: int) -> None:
        self.audio = np.ascontiguousarray(audio, dtype=np.float32)
        self.recording = np.zeros((record_from, record_frames), dtype=np.float32)
        self.recording.fill(0.0)  # every page now: a first touch in the process callback can take longer than a cycle
        # (numpy maps a large array in 2 MB huge pages; the first block of this one took 80 ms on the development VM)
        self.first_frame: int | None = None
        self.armed = self.done = False
        self.xruns_while_playing = 0
        self.player = jack.Client("stemwright-player", no_start_server=True)
        self.recorder = jack.Client("stemwright-recorder", no_start_server=True)
        self.outs = [self.player.outports.register(f"out_{i}") for i in range(play_to)]
        self.ins = [self.recorder.inports.register(f"in_{i}") for i in range(record_from)]
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
        """Play and record to the end (or raise after ``timeout`` seconds); the recording."""
        self.armed = True
        deadline = time.monotonic() + timeout
        end = self.recording.shape[1] + 2 * self.player.blocksize
        while self.first_frame is None or self.recorder.frame_time - self.first_frame < end:
            if time.monotonic() > deadline:
                raise TimeoutError("playing and recording took too long")
            time.sleep(0.05)
        self.done = True
        for client in (self.player, self.recorder):
            client.deactivate()
            client.close()
        return self.recording


@dataclass(frozen=True)
class LiveRun:
    """One ``stemwright live`` session played through: ``recording`` ``(stems x channels (+ mix), T)`` from the
    first played frame; ``report``: the command's ``--report`` counters; ``lead``: frames between its first block
    (where its chunk grid starts) and the first played frame; ``stdout``/``stderr`` of the command."""

    recording: np.ndarray
    report: dict[str, Any]
    lead: int
    xruns_while_playing: int
    stdout: str
    stderr: str
    returncode: int


def record_live(audio: np.ndarray, outputs: list[str], record_frames: int, args: list[str], *, name: str = "swlive",
                timeout: float = 600.0, commands: tuple[tuple[float, str], ...] = (),
                module: str = "stemwright.cli.main") -> LiveRun:
    """Start ``python -m MODULE live --name NAME ARGS`` on the current server, play ``audio (2, T)`` into it,
    record its ``outputs`` ports (names without the client prefix), stop it with Ctrl-C. ``commands``: ``(seconds
    after the first played frame, line)`` written to its stdin (a pipe; without commands, stdin is /dev/null)."""
    io = PlayRecord(audio, play_to=2, record_from=len(outputs), record_frames=record_frames)
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "live.json"
        proc = subprocess.Popen([sys.executable, "-m", module, "live", "--name", name, "--report", str(report), *args],
                                stdin=subprocess.PIPE if commands else subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            wait_for_port(f"{name}:{outputs[-1]}", timeout=timeout)
            io.connect([f"{name}:in_L", f"{name}:in_R"], [f"{name}:{p}" for p in outputs])
            if commands:
                threading.Thread(target=_send, args=(io, proc, commands), daemon=True).start()
            recording = io.run(timeout=timeout)
        finally:
            proc.send_signal(2)  # Ctrl-C: the command stops, prints and writes its counters
            out, err = proc.communicate(timeout=60)
        counters = json.loads(report.read_text()) if report.exists() else {}
    lead = io.first_frame - counters["start_frame"] if counters and io.first_frame is not None else -1
    return LiveRun(recording, counters, lead, io.xruns_while_playing, out, err, proc.returncode)


def _send(io: PlayRecord, proc: subprocess.Popen, commands: tuple[tuple[float, str], ...]) -> None:
    """Write each command to ``proc``'s stdin at its time after the first played frame (measured in frames)."""
    assert proc.stdin is not None
    while io.first_frame is None:
        time.sleep(0.01)
    rate = io.player.samplerate
    for at, line in commands:
        while not io.done and io.player.frame_time - io.first_frame < at * rate:
            time.sleep(0.01)
        if io.done:
            return
        proc.stdin.write(line + "\n")
        proc.stdin.flush()


def offline_same_chunks(model: Any, stream: np.ndarray, plan: Any) -> np.ndarray:
    """What the live processor gives for ``stream (C, T)`` (the input from where its chunk grid starts), without the
    delay: the offline separation with the plan's chunking, of the stream followed by silence (live input never
    ends: at least one chunk of silence, up to a whole number of strides, so that every chunk that reaches the
    stream is a whole one and the last is a whole stride, not a few samples a model's STFT cannot take).
    Shape (S, C, T)."""
    import torch  # (the tests and the benchmark only)

    from stemwright.engine.run import separate_tensor

    whole = -(-(stream.shape[-1] + plan.segment_length) // plan.stride) * plan.stride
    padded = np.pad(np.asarray(stream, dtype=np.float32), ((0, 0), (0, whole - stream.shape[-1])))
    out = separate_tensor(model, torch.from_numpy(padded), segment=plan.segment, overlap=plan.overlap)
    return out[..., : stream.shape[-1]].numpy()
