"""``stemwright live``: a JACK client that separates its input at a fixed delay.

Two processes, so that nothing in the JACK process callback ever waits on the model:

- the **client process** holds the JACK client and runs no model: its process callback copies each input
  block into a shared-memory ring (one record: the number of blocks it had to drop before this one, then ``C x n``
  samples) and one output record (``S x C x n`` stems) out of another. A Python JACK callback needs its process's
  GIL, and a model thread in the same process (preempted while it holds the GIL on a loaded machine) makes the
  callback late: measured as xruns on the 2-core development machine, none with the model in its own process;
- the **worker process** loads the model, reads input records, runs
  :meth:`~stemwright.engine.live.LiveProcessor.process_tensor` and writes output records. The output ring starts
  with ``plan.reserve_samples`` of silence and the processor delays by the rest, so the delay is exactly
  ``plan.latency_samples`` while the worker keeps up.

The rings (:class:`ShmRing`) are single-producer single-consumer and lock-free: each side only writes its own
64-bit position, after the record's data.

When the worker does not keep up (the CPU is too slow for the model at this latency): a block whose output is not
there in time is a *late block*: the stem ports play silence for it and the mix port passes the input through; the
worker's output for that block, when it comes, is skipped, so the delay stays fixed. When the worker falls so far
behind that the input ring is full, input blocks are *dropped* (counted); the worker then writes silence for them
and restarts the processor (silence for one latency). The first late or dropped block is logged once as a warning;
every one is counted in :class:`LiveStats`, and so are JACK's xruns.

With a fallback model (``--fallback``), the worker switches to it once the client has counted
``FALLBACK_AFTER_S`` of late or dropped blocks: it writes silence for every input block already written (the
client skips those it played late), and the fallback's processor, planned to the same delay
(:func:`~stemwright.engine.live.plan_fallback`) and warmed up at start, takes the next block as the first of its
chunk grid. From there the output is the fallback's separation of the input from that block on, at the same delay.

The JACK server must run at the model's rate (the input is not resampled).
"""
from __future__ import annotations

import logging
import math
import multiprocessing as mp
import time
import uuid
from dataclasses import dataclass
from multiprocessing import shared_memory
from multiprocessing.connection import Connection
from typing import Any

import jack
import numpy as np

from stemwright.engine.live import LivePlan, LiveProcessor
from stemwright.errors import UsageError

__all__ = ["LiveClient", "LiveError", "LiveSession", "LiveStats", "LiveUsageError", "LiveWorker", "ShmRing",
           "WorkerSettings", "start_worker"]

log = logging.getLogger(__name__)

CHANNELS = ("L", "R")
INPUT_RING_SECONDS = 4.0  # how far the worker may fall behind (beyond one stride) before input blocks are dropped
STARTUP_TIMEOUT = 600.0  # seconds for the worker to load its model (a first download included)
# late or dropped audio after which the worker switches to the fallback model: longer than a scheduling hiccup of a
# loaded machine (a few blocks), short enough that a model that cannot keep up is replaced within a second
FALLBACK_AFTER_S = 0.5
MAX_GAIN = 4.0  # a live gain of the mix: up to +12 dB
# a chunk measured at start taking more than this share of the time between chunks warns: the worker's reserve is one
# stride, and the machine's load varies (a chunk at half the stride leaves room for a doubling)
CHUNK_WARNING = 0.5


class LiveError(ValueError):
    """A JACK server that does not fit (rate), a port that does not exist, or a worker that failed."""


class LiveUsageError(LiveError):
    """A value the user typed is wrong (``--latency``, ``--stems``, the model's name): exit status 2."""


@dataclass(frozen=True)
class LiveStats:
    """Counters of a live session. ``cpu_share``: the worker's CPU seconds per second of audio (1.0 = one core)."""

    blocks: int
    xruns: int
    late_blocks: int
    dropped_blocks: int
    samplerate: int
    block_size: int
    latency_samples: int
    segment_length: int
    worker_cpu_s: float
    start_frame: int  # JACK frame time of the first block: where the chunk grid starts (-1: no block yet)
    fallback_block: int = -1  # the block from which the fallback model separates (-1: no switch)
    late_blocks_after_fallback: int = 0  # late blocks from that block on

    @property
    def fallbacks(self) -> int:
        """Switches to the fallback model (0 or 1)."""
        return int(self.fallback_block >= 0)

    @property
    def audio_s(self) -> float:
        return self.blocks * self.block_size / self.samplerate

    @property
    def cpu_share(self) -> float:
        return self.worker_cpu_s / self.audio_s if self.blocks else 0.0


class ShmRing:
    """A single-producer single-consumer ring of ``capacity`` float32 records of ``shape``, in shared memory.

    Header: ``[write count, read count, two shared counters]`` as int64; the writer stores the record's data
    before it advances its count, the reader copies it out before it advances its own, and each slot has one writer,
    so no lock is needed (aligned 64-bit stores are atomic on x86-64 and ARM64). The counters: on the input ring,
    ``TROUBLE`` (late + dropped blocks, written by the client); on the output ring, ``CPU`` (the worker's CPU
    microseconds) and ``SWITCH`` (1 + the block from which the fallback separates; 0: none), written by the worker."""

    HEADER = 4
    TROUBLE = CPU = 2
    SWITCH = 3

    def __init__(self, shape: tuple[int, ...], capacity: int, name: str | None = None) -> None:
        self.shape, self.capacity = tuple(shape), capacity
        size = int(np.prod(shape))
        nbytes = 8 * self.HEADER + 4 * size * capacity
        self.owner = name is None
        self.shm = shared_memory.SharedMemory(name=name or f"stemwright-{uuid.uuid4().hex[:12]}", create=self.owner,
                                              size=nbytes)
        self.counts = np.ndarray((self.HEADER,), dtype=np.int64, buffer=self.shm.buf)
        self.data = np.ndarray((capacity, *shape), dtype=np.float32, buffer=self.shm.buf, offset=8 * self.HEADER)
        if self.owner:
            self.counts[:] = 0
            # every page now, not at its first use in the JACK callback: a first touch can take longer than a cycle
            # (on the 2-core development VM, writing the first block of a fresh 10 MB numpy array took 80 ms: four
            # 2 MB huge pages zeroed; the test recorder's buffer, written page by page, gave xruns at the start)
            self.data.fill(0.0)

    @property
    def name(self) -> str:
        return self.shm.name

    def __len__(self) -> int:
        return int(self.counts[0] - self.counts[1])

    def full(self) -> bool:
        return len(self) >= self.capacity

    def put(self, record: np.ndarray) -> bool:
        """Copy one record in; False (nothing written) when the ring is full."""
        w = int(self.counts[0])
        if w - int(self.counts[1]) >= self.capacity:
            return False
        self.data[w % self.capacity] = record
        self.counts[0] = w + 1
        return True

    def get(self, out: np.ndarray) -> bool:
        """Copy the oldest record into ``out``; False when the ring is empty."""
        r = int(self.counts[1])
        if int(self.counts[0]) == r:
            return False
        out[...] = self.data[r % self.capacity]
        self.counts[1] = r + 1
        return True

    def skip(self) -> bool:
        """Drop the oldest record; False when the ring is empty."""
        r = int(self.counts[1])
        if int(self.counts[0]) == r:
            return False
        self.counts[1] = r + 1
        return True

    def close(self) -> None:
        del self.counts, self.data  # views into the buffer must go before it closes
        self.shm.close()
        if self.owner:
            self.shm.unlink()


@dataclass(frozen=True)
class WorkerSettings:
    """What the worker process needs to build its processor (picklable)."""

    model: str
    device: str
    offline: bool
    latency: float
    block_size: int
    channels: int = 2
    fallback: str | None = None


@dataclass(frozen=True)
class WorkerReady:
    """The worker's first message: its plan and the model's stems."""

    plan: LivePlan
    sources: tuple[str, ...]
    processor_delay: int
    fallback_plan: LivePlan | None = None
    fallback_sources: tuple[str, ...] = ()
    chunk_seconds: float = 0.0  # wall time of one chunk of the main model at warm-up (this machine, now)


@dataclass(frozen=True)
class WorkerFailed:
    """The worker could not start; ``usage``: the user's value was wrong (``--latency``, the model name)."""

    message: str
    usage: bool


@dataclass(frozen=True)
class Rings:
    """The shared-memory names the client sends the worker, and the stems it wants (by name)."""

    input_name: str
    output_name: str
    input_capacity: int
    output_capacity: int
    stems: tuple[str, ...]


class LiveWorker:
    """The worker process's side: the processor between the two rings (and the fallback's, once switched)."""

    def __init__(self, processor: LiveProcessor, rings: Rings, fallback: LiveProcessor | None = None) -> None:
        plan = processor.plan
        self.n, self.channels = plan.block_size, processor.channels
        self.stems = rings.stems
        self.input = ShmRing((1 + self.channels * self.n,), rings.input_capacity, name=rings.input_name)
        self.output = ShmRing((len(self.stems), self.channels, self.n), rings.output_capacity,
                              name=rings.output_name)
        self.nap = self.n / plan.samplerate / 4
        self.fallback = fallback
        self.fallback_after = -(-int(FALLBACK_AFTER_S * plan.samplerate) // self.n)  # blocks
        self.blocks = 0  # input blocks accounted for (records read + blocks the client dropped)
        self._switching = False  # switched, and the fallback has not had its first block yet
        self._use(processor)

    def _use(self, processor: LiveProcessor) -> None:
        self.processor = processor
        self.stem_index = [processor.sources.index(s) for s in self.stems]

    def run(self, stop: Any) -> None:
        """Until ``stop`` (an Event) is set."""
        import torch  # (imported in the worker process only)

        record = np.zeros(self.input.shape, dtype=np.float32)
        silence = np.zeros(self.output.shape, dtype=np.float32)
        cpu = 0.0
        while not stop.is_set():
            if self.fallback is not None and int(self.input.counts[ShmRing.TROUBLE]) >= self.fallback_after:
                self._switch(record, silence, stop)
            if not self.input.get(record):
                time.sleep(self.nap)
                continue
            started = time.thread_time()
            dropped = int(record[0])
            if dropped:  # the input has a gap: silence for the dropped blocks, then start over
                for _ in range(dropped):
                    self._put(silence, stop)
                self.processor.reset()
                self.blocks += dropped
                if self._switching:  # the fallback's grid starts after the gap
                    self.output.counts[ShmRing.SWITCH] = self.blocks + 1
            self._switching = False
            self.blocks += 1
            block = torch.from_numpy(record[1:].reshape(self.channels, self.n))
            stems = self.processor.process_tensor(block)[self.stem_index].numpy()
            self._put(stems, stop)
            cpu += time.thread_time() - started
            self.output.counts[ShmRing.CPU] = int(cpu * 1e6)

    def _switch(self, record: np.ndarray, silence: np.ndarray, stop: Any) -> None:
        """Silence for every input block written so far (the client plays it, or skips the blocks it played
        late), then the fallback from the next block on: the first of its chunk grid."""
        written = int(self.input.counts[0])
        while int(self.input.counts[1]) < written and self.input.get(record):
            for _ in range(1 + int(record[0])):
                self._put(silence, stop)
            self.blocks += 1 + int(record[0])
        self.output.counts[ShmRing.SWITCH] = self.blocks + 1
        self._use(self.fallback)
        self.fallback, self._switching = None, True
        log.info("switched to the fallback model at block %d", self.blocks)

    def _put(self, record: np.ndarray, stop: Any) -> None:
        while not self.output.put(record):
            if stop.is_set():
                return
            time.sleep(self.nap)

    def close(self) -> None:
        self.input.close()
        self.output.close()


def _load(settings: WorkerSettings, conn: Connection) -> tuple[LiveProcessor, LiveProcessor | None, float] | None:
    """The main processor (warmed up), the fallback's, planned to the same delay, and the wall seconds of one main
    chunk measured at warm-up; None after telling the client why they could not be made."""
    from stemwright.api import Separator
    from stemwright.engine.live import LatencyError, plan_fallback, prefer_short_blocks

    option = "-m"
    try:
        separator = Separator(settings.model, device=settings.device, offline=settings.offline)
        prefer_short_blocks(separator.model)  # (this process's own copy of the model)
        option = "--latency"
        processor = separator.live(latency=settings.latency, block_size=settings.block_size,
                                   channels=settings.channels, threaded=True)
        chunk_seconds = processor.warm_up()
        fallback = None
        if settings.fallback:
            option = "--fallback"
            other = Separator(settings.fallback, device=settings.device, offline=settings.offline)
            prefer_short_blocks(other.model)
            plan = plan_fallback(other.model, processor.plan)
            fallback = LiveProcessor(other.model, plan, channels=settings.channels, device=other.device,
                                     delay=processor.latency_samples)  # the same share of the delay as the main one
            fallback.warm_up()
    except LatencyError as e:
        name = f" {settings.fallback}" if option == "--fallback" else ""
        conn.send(WorkerFailed(f"{option}:{name} {e}", usage=True))
        return None
    except Exception as e:  # noqa: BLE001 - every load failure goes back to the client as one line
        usage = isinstance(e, UsageError)  # a name the user typed (model, device): exit 2, as every command
        prefix = "--fallback: " if option == "--fallback" else ""
        conn.send(WorkerFailed(f"{prefix}{e}", usage=usage))
        return None
    return processor, fallback, chunk_seconds


def _worker_main(settings: WorkerSettings, conn: Connection, stop: Any) -> None:
    """Entry point of the worker process."""
    import torch

    torch.set_num_threads(1)  # one core: the client process and the rest of the machine keep the others
    loaded = _load(settings, conn)
    if loaded is None:
        return
    processor, fallback, chunk_seconds = loaded
    conn.send(WorkerReady(processor.plan, tuple(processor.sources), processor.latency_samples,
                          fallback.plan if fallback else None, tuple(fallback.sources) if fallback else (),
                          chunk_seconds))
    rings = conn.recv()
    if rings is None:
        return
    worker = LiveWorker(processor, rings, fallback)
    try:
        worker.run(stop)
    finally:
        worker.close()


def start_worker(settings: WorkerSettings) -> tuple[Any, Connection, Any, WorkerReady]:
    """Start the worker process and wait for its model; raises :class:`LiveError` (:class:`LiveUsageError` when
    the user's value was wrong) if it cannot start."""
    ctx = mp.get_context("spawn")  # a fresh interpreter: no fork of a process holding a JACK client
    parent, child = ctx.Pipe()
    stop = ctx.Event()
    process = ctx.Process(target=_worker_main, args=(settings, child, stop), name="stemwright-live-worker",
                          daemon=True)
    process.start()
    if not parent.poll(STARTUP_TIMEOUT):
        process.terminate()
        raise LiveError(f"the model worker did not start within {STARTUP_TIMEOUT:.0f} s")
    try:
        message = parent.recv()
    except EOFError:
        raise LiveError(f"the model worker exited (status {process.exitcode}) before it was ready") from None
    if isinstance(message, WorkerFailed):
        process.join()
        raise (LiveUsageError if message.usage else LiveError)(message.message)
    return process, parent, stop, message


class LiveClient:
    """The JACK side: a client named ``name`` with stereo inputs ``in_L``/``in_R``, one pair ``STEM_L``/``STEM_R``
    per stem of ``stems`` and, with ``mix``, ``mix_L``/``mix_R`` (the sum of those stems, each times its live gain:
    :meth:`set_gain`). ``server``: the JACK server's name (default: ``$JACK_DEFAULT_SERVER`` or the default
    server)."""

    def __init__(self, ready: WorkerReady, stems: list[str] | tuple[str, ...], *, mix: bool = False,
                 name: str = "stemwright", server: str | None = None, channels: int = 2) -> None:
        plan = ready.plan
        if ready.processor_delay != plan.latency_samples - plan.reserve_samples:
            raise LiveError("the processor must leave plan.reserve_samples to the client (Separator.live(threaded=True))")
        self.plan, self.n = plan, plan.block_size
        self.stems = tuple(stems)
        self.client = jack.Client(name, servername=server, no_start_server=True)
        if self.client.samplerate != plan.samplerate or self.client.blocksize != self.n:
            got = (self.client.samplerate, self.client.blocksize)
            self.client.close()
            raise LiveError(f"the JACK server runs at {got[0]} Hz in blocks of {got[1]}; the model separates at "
                            f"{plan.samplerate} Hz (blocks of {self.n} planned): start JACK at {plan.samplerate} Hz")
        self.inports = [self.client.inports.register(f"in_{c}") for c in CHANNELS[:channels]]
        self.outports = [[self.client.outports.register(f"{s}_{c}") for c in CHANNELS[:channels]] for s in stems]
        self.mixports = [self.client.outports.register(f"mix_{c}") for c in CHANNELS[:channels]] if mix else []
        reserve_blocks = plan.reserve_samples // self.n
        in_blocks = int(INPUT_RING_SECONDS * plan.samplerate / self.n) + -(-plan.stride // self.n)
        self.input = ShmRing((1 + channels * self.n,), in_blocks)
        self.output = ShmRing((len(stems), channels, self.n), reserve_blocks + 8)
        self._in_rec = np.zeros(self.input.shape, dtype=np.float32)
        self._out_rec = np.zeros(self.output.shape, dtype=np.float32)
        for _ in range(reserve_blocks):  # the share of the delay the worker's timing needs (plan.reserve_samples)
            self.output.put(self._out_rec)
        # counters: each written by the JACK thread only
        self.blocks = self.late_blocks = self.dropped_blocks = self.xruns = 0
        self.late_after_fallback = 0
        self._dropped_since = 0
        self._owed = 0
        self.start_frame = -1
        # live gains of the mix: targets written by the control thread (one float store each, no lock), the gains
        # the last block ended at and the buffers of the ramp between them owned by the JACK thread
        self.gains = np.ones(len(stems))
        self._unmuted = np.ones(len(stems))  # the gain each stem had before 'mute' (the control thread's)
        self._gains_now = np.ones(len(stems))
        self._ramp = np.arange(1, self.n + 1, dtype=np.float32) / self.n  # one block from the old gain to the new
        self._curve = np.zeros(self.n, dtype=np.float32)
        self._scratch = np.zeros(self.n, dtype=np.float32)
        self.client.set_process_callback(self._process)
        self.client.set_xrun_callback(self._xrun)
        # the server can drop a client (it quits, or zombifies one it finds too slow): its ports are gone and its
        # callback never runs again, so nothing would be counted late; LiveSession.poll says so and ends the session
        self.shutdown_reason: str | None = None
        self.client.set_shutdown_callback(self._shutdown)

    def rings(self) -> Rings:
        return Rings(self.input.name, self.output.name, self.input.capacity, self.output.capacity, self.stems)

    def command(self, line: str) -> str:
        """One line of the terminal control: ``STEM GAIN`` (0 to ``MAX_GAIN``), ``mute STEM`` or ``unmute STEM``
        (back to the gain before ``mute``). Returns what it did; raises :class:`LiveUsageError` for a bad line."""
        words = line.split()
        if len(words) != 2:
            raise LiveUsageError(f"expected 'STEM GAIN', 'mute STEM' or 'unmute STEM', got {line.strip()!r}")
        verb, stem = (words[0], words[1]) if words[0] in ("mute", "unmute") else ("gain", words[0])
        if stem not in self.stems:
            raise LiveUsageError(f"{stem!r} is not an output stem ({', '.join(self.stems)})")
        i = self.stems.index(stem)
        if verb == "mute":
            if self.gains[i] > 0.0:
                self._unmuted[i] = self.gains[i]
            self.set_gain(stem, 0.0)
            return f"{stem} muted"
        gain = float(self._unmuted[i]) if verb == "unmute" else _number(words[1])
        self.set_gain(stem, gain)
        return f"{stem} gain {gain:.2f}"

    def set_gain(self, stem: str, gain: float) -> None:
        """The mix's gain of ``stem`` from the next block on (a one-block ramp from the current one)."""
        if not (math.isfinite(gain) and 0.0 <= gain <= MAX_GAIN):
            raise LiveUsageError(f"gain must be a number from 0 to {MAX_GAIN:g}, got {gain!r}")
        self.gains[self.stems.index(stem)] = gain

    # -- the JACK thread -----------------------------------------------------------------------------------
    def _shutdown(self, status: Any, reason: str) -> None:
        self.shutdown_reason = reason.strip() or "no reason given"  # one store: read by the control thread

    def _xrun(self, delay: float) -> None:
        if self.blocks:  # from the first cycle on (the server may report one for the activation itself)
            self.xruns += 1

    def _process(self, frames: int) -> None:
        n = self.n
        if frames != n:  # the server changed its block size: nothing fits any more
            for port in self.client.outports:
                port.get_array().fill(0.0)
            self.late_blocks += 1
            return
        if not self.blocks:
            self.start_frame = self.client.last_frame_time
        self.blocks += 1
        rec = self._in_rec
        rec[0] = self._dropped_since
        for c, port in enumerate(self.inports):
            rec[1 + c * n : 1 + (c + 1) * n] = port.get_array()
        if self.input.put(rec):
            self._dropped_since = 0
        else:
            self._dropped_since += 1
            self.dropped_blocks += 1
            self.input.counts[ShmRing.TROUBLE] = self.late_blocks + self.dropped_blocks
        while self._owed and self.output.skip():  # output of blocks already played late
            self._owed -= 1
        out = self._out_rec
        if not self._owed and self.output.get(out):
            for s, ports in enumerate(self.outports):
                for c, port in enumerate(ports):
                    port.get_array()[:] = out[s, c]
            if self.mixports:
                self._mix(out)
            return
        self._owed += 1  # late: silence on the stems, the input on the mix; its output is skipped when it comes
        self.late_blocks += 1
        self.input.counts[ShmRing.TROUBLE] = self.late_blocks + self.dropped_blocks
        switch = int(self.output.counts[ShmRing.SWITCH])
        if switch and self.blocks >= switch:  # (block index self.blocks - 1 >= the switch block switch - 1)
            self.late_after_fallback += 1
        for ports in self.outports:
            for port in ports:
                port.get_array().fill(0.0)
        for c, port in enumerate(self.mixports):
            port.get_array()[:] = rec[1 + c * n : 1 + (c + 1) * n]

    def _mix(self, out: np.ndarray) -> None:
        """The mix ports: the sum of the stems ``out (S, C, n)`` times their gains, each gain ramped linearly over
        this block to a new target (no click); in place, no allocation of audio."""
        mix = [port.get_array() for port in self.mixports]
        for buf in mix:
            buf.fill(0.0)
        for s in range(len(self.stems)):
            now, target = float(self._gains_now[s]), float(self.gains[s])
            if now == target == 0.0:
                continue
            if now == target:
                gain: Any = now
            else:
                gain = np.multiply(self._ramp, target - now, out=self._curve)
                gain += now
                self._gains_now[s] = target
            for c, buf in enumerate(mix):
                np.multiply(out[s, c], gain, out=self._scratch)
                buf += self._scratch

    # -- control -------------------------------------------------------------------------------------------
    def start(self, connect_in: list[str] | tuple[str, ...] = ()) -> None:
        """Activate the client and connect ``connect_in`` to the inputs (one port feeds both; two: L and R)."""
        if len(connect_in) > len(self.inports):
            raise LiveError(f"--connect-in takes at most {len(self.inports)} ports, got {len(connect_in)}")
        self.client.activate()
        sources = list(connect_in) * len(self.inports) if len(connect_in) == 1 else list(connect_in)
        for source, port in zip(sources, self.inports):
            try:
                self.client.connect(source, port)
            except jack.JackError as e:
                raise LiveError(f"--connect-in: cannot connect JACK port {source!r} ({e})") from e

    def stats(self) -> LiveStats:
        return LiveStats(blocks=self.blocks, xruns=self.xruns, late_blocks=self.late_blocks,
                         dropped_blocks=self.dropped_blocks, samplerate=self.plan.samplerate, block_size=self.n,
                         latency_samples=self.plan.latency_samples, segment_length=self.plan.segment_length,
                         worker_cpu_s=int(self.output.counts[ShmRing.CPU]) / 1e6, start_frame=self.start_frame,
                         fallback_block=int(self.output.counts[ShmRing.SWITCH]) - 1,
                         late_blocks_after_fallback=self.late_after_fallback)

    def deactivate(self) -> LiveStats:
        """Stop the callback (before the worker stops: blocks after that would count as late); final counters."""
        try:
            self.client.deactivate()
        except jack.JackError:
            pass
        return self.stats()

    def close(self) -> None:
        """Close the client and free the rings (after the worker has stopped)."""
        self.client.close()
        self.input.close()
        self.output.close()


def _number(word: str) -> float:
    try:
        return float(word)
    except ValueError:
        raise LiveUsageError(f"gain must be a number from 0 to {MAX_GAIN:g}, got {word!r}") from None


class LiveSession:
    """A worker process and its JACK client, from start to :meth:`stop`; :meth:`poll` warns once when the CPU
    cannot keep up and raises :class:`LiveError` if the worker died or the JACK server dropped the client."""

    def __init__(self, settings: WorkerSettings, stems: list[str] | None, *, mix: bool = False,
                 name: str = "stemwright", server: str | None = None) -> None:
        self.process, self.conn, self.stop_event, self.ready = start_worker(settings)
        chosen = list(stems) if stems else list(self.ready.sources)
        unknown = [s for s in chosen if s not in self.ready.sources]
        if unknown:
            self._abort()
            raise LiveUsageError(f"--stems: {', '.join(unknown)} not among the model's stems "
                                 f"({', '.join(self.ready.sources)})")
        missing = [s for s in chosen if s not in self.ready.fallback_sources] if settings.fallback else []
        if missing:
            self._abort()
            raise LiveUsageError(f"--fallback: {settings.fallback} has no {', '.join(missing)} stem "
                                 f"(it has {', '.join(self.ready.fallback_sources)}): choose --stems both models have")
        try:
            self.client = LiveClient(self.ready, chosen, mix=mix, name=name, server=server,
                                     channels=settings.channels)
        except BaseException:
            self._abort()
            raise
        self.conn.send(self.client.rings())
        self.plan = self.ready.plan
        self.settings = settings
        self.warned = self.switched = False
        stride = self.plan.stride / self.plan.samplerate
        if self.ready.chunk_seconds > CHUNK_WARNING * stride:
            log.warning("one chunk of %s took %.2f s at start, %.0f%% of the %.2f s between chunks: on this machine "
                        "now, late blocks are likely; a longer --latency or --fallback classic helps",
                        settings.model, self.ready.chunk_seconds, 100 * self.ready.chunk_seconds / stride, stride)

    def _abort(self) -> None:
        self.conn.send(None)
        self.process.join(timeout=30)

    def poll(self) -> None:
        if not self.process.is_alive():
            raise LiveError(f"the model worker exited (status {self.process.exitcode})")
        if self.client.shutdown_reason is not None:
            raise LiveError(f"the JACK server stopped this client ({self.client.shutdown_reason}): its ports are gone")
        stats = self.client.stats()
        if not self.warned and (stats.late_blocks or stats.dropped_blocks):
            self.warned = True
            then = (f"switching to the fallback model {self.settings.fallback} after {FALLBACK_AFTER_S:g} s of them"
                    if self.settings.fallback else "try a longer --latency or a lighter model")
            log.warning("the CPU cannot keep up with %s at %.2f s latency: late blocks play silence on the stem "
                        "ports (the input on the mix port); %s", self.settings.model, self.plan.latency, then)
        if not self.switched and stats.fallbacks:
            self.switched = True
            log.warning("switched to the fallback model %s at %.2f s: same %.3f s delay, the output is silent for "
                        "one delay while it starts", self.settings.fallback,
                        stats.fallback_block * stats.block_size / stats.samplerate, self.plan.latency)

    def stop(self) -> LiveStats:
        """Deactivate the client, stop the worker, free everything; the final counters."""
        stats = self.client.deactivate()
        self.stop_event.set()
        self.process.join(timeout=30)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join()
        self.client.close()
        return stats
