"""``stemwright live``: a JACK client that separates its input at a fixed delay.

Threads and buffers (nothing in the process callback waits on the model):

- the JACK process callback copies each input block (one record: a header with the number of blocks it had to
  drop before this one, then ``C x n`` samples) into a lock-free :class:`jack.RingBuffer`, and copies one output
  record (``S x C x n`` stems) out of another;
- a worker thread reads input records, runs :meth:`LiveProcessor.process_tensor` (the model, whenever a chunk's
  window is complete) and writes output records. The output ring starts with ``plan.reserve_samples`` of silence
  and the processor delays by the rest, so the delay is exactly ``plan.latency_samples`` while the worker keeps up.

When it does not (the CPU is too slow for the model at this latency): a block whose output is not there in time
is a *late block*: the stem ports play silence for it and the mix port passes the input through; the worker's
output for that block, when it comes, is skipped, so the delay stays fixed. When the worker falls so far behind
that the input ring is full, input blocks are *dropped* (counted); the worker then writes silence for them and
restarts the processor (silence for one latency). The first late or dropped block is logged once as a warning;
every one is counted in :class:`LiveStats`. JACK's own xruns are counted too.

The JACK server must run at the model's rate (the input is not resampled) with a fixed block size.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import jack
import numpy as np
import torch

from stemwright.engine.live import LiveProcessor

__all__ = ["LiveClient", "LiveError", "LiveStats"]

log = logging.getLogger(__name__)

CHANNELS = ("L", "R")
INPUT_RING_SECONDS = 4.0  # input the worker may fall behind by before blocks are dropped (beyond one stride)


class LiveError(ValueError):
    """A JACK server that does not fit (rate, block size), or a port that does not exist."""


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

    @property
    def audio_s(self) -> float:
        return self.blocks * self.block_size / self.samplerate

    @property
    def cpu_share(self) -> float:
        return self.worker_cpu_s / self.audio_s if self.blocks else 0.0


def _write(ring: jack.RingBuffer, record: np.ndarray) -> None:
    """One whole record (the caller checked ``write_space``)."""
    ring.write(memoryview(record).cast("B"))


def _read_into(ring: jack.RingBuffer, out: np.ndarray) -> None:
    """Copy one record from the ring into ``out`` (float32, preallocated) and advance; no allocation of audio."""
    flat = out.reshape(-1)
    done = 0
    for buf in ring.read_buffers:
        take = min(len(buf) // 4, flat.size - done)
        if take:
            flat[done : done + take] = np.frombuffer(buf, dtype=np.float32, count=take)
            done += take
    ring.read_advance(out.nbytes)


class LiveClient:
    """A JACK client named ``name``: stereo inputs ``in_L``/``in_R``, one pair ``STEM_L``/``STEM_R`` per stem of
    ``stems`` and, with ``mix``, ``mix_L``/``mix_R`` (the sum of those stems). ``server``: the JACK server's name
    (default: ``$JACK_DEFAULT_SERVER`` or the default server)."""

    def __init__(self, processor: LiveProcessor, stems: list[str] | tuple[str, ...], *, mix: bool = False,
                 name: str = "stemwright", server: str | None = None) -> None:
        unknown = [s for s in stems if s not in processor.sources]
        if unknown or not stems:
            raise LiveError(f"stems {', '.join(unknown) or '(none)'}: the model has {', '.join(processor.sources)}")
        if processor.latency_samples != processor.plan.latency_samples - processor.plan.reserve_samples:
            raise LiveError("the processor must leave plan.reserve_samples to the client: Separator.live(threaded=True)")
        self.processor = processor
        self.plan = processor.plan
        self.n = self.plan.block_size
        self.client = jack.Client(name, servername=server, no_start_server=True)
        if self.client.samplerate != self.plan.samplerate:
            self.client.close()
            raise LiveError(f"the JACK server runs at {self.client.samplerate} Hz; the model separates at "
                            f"{self.plan.samplerate} Hz: start JACK at {self.plan.samplerate} Hz")
        if self.client.blocksize != self.n:
            self.client.close()
            raise LiveError(f"the JACK block size is {self.client.blocksize}, the plan's {self.n} (engine bug)")
        self.stem_index = [processor.sources.index(s) for s in stems]
        self.stems = tuple(stems)
        channels = processor.channels
        self.inports = [self.client.inports.register(f"in_{c}") for c in CHANNELS[:channels]]
        self.outports = [[self.client.outports.register(f"{s}_{c}") for c in CHANNELS[:channels]] for s in stems]
        self.mixports = [self.client.outports.register(f"mix_{c}") for c in CHANNELS[:channels]] if mix else []
        # records: input = [dropped-before count, C x n samples]; output = selected stems (S', C, n)
        self._in_rec = np.zeros(1 + channels * self.n, dtype=np.float32)
        self._out_rec = np.zeros((len(stems), channels, self.n), dtype=np.float32)
        self._work_in = np.zeros_like(self._in_rec)
        reserve_blocks = self.plan.reserve_samples // self.n
        stride_blocks = -(-self.plan.stride // self.n)
        in_blocks = int(INPUT_RING_SECONDS * self.plan.samplerate / self.n) + stride_blocks
        self.in_ring = jack.RingBuffer(self._in_rec.nbytes * in_blocks + 1)
        self.out_ring = jack.RingBuffer(self._out_rec.nbytes * (reserve_blocks + 8) + 1)
        silence = np.zeros_like(self._out_rec)
        for _ in range(reserve_blocks):  # the share of the delay the worker's timing needs (plan.reserve_samples)
            _write(self.out_ring, silence)
        # counters: each written by one thread only (callback: blocks, late, dropped, owed; worker: cpu)
        self.blocks = self.late_blocks = self.dropped_blocks = self.xruns = 0
        self._dropped_since = 0
        self._owed = 0
        self._cpu = 0.0
        self._warned = False
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._worker = threading.Thread(target=self._work, name="stemwright-live", daemon=True)
        self.client.set_process_callback(self._process)
        self.client.set_xrun_callback(self._xrun)

    # -- the JACK thread -----------------------------------------------------------------------------------
    def _xrun(self, delay: float) -> None:
        self.xruns += 1

    def _process(self, frames: int) -> None:
        n = self.n
        if frames != n:  # the server changed its block size: nothing fits any more
            for port in self.client.outports:
                port.get_array().fill(0.0)
            self.late_blocks += 1
            return
        self.blocks += 1
        rec = self._in_rec
        rec[0] = self._dropped_since
        for c, port in enumerate(self.inports):
            rec[1 + c * n : 1 + (c + 1) * n] = port.get_array()
        if self.in_ring.write_space >= rec.nbytes:
            _write(self.in_ring, rec)
            self._dropped_since = 0
        else:
            self._dropped_since += 1
            self.dropped_blocks += 1
        out = self._out_rec
        while self._owed and self.out_ring.read_space >= out.nbytes:  # output of blocks already played late
            self.out_ring.read_advance(out.nbytes)
            self._owed -= 1
        if not self._owed and self.out_ring.read_space >= out.nbytes:
            _read_into(self.out_ring, out)
            for s, ports in enumerate(self.outports):
                for c, port in enumerate(ports):
                    port.get_array()[:] = out[s, c]
            for c, port in enumerate(self.mixports):
                np.sum(out[:, c], axis=0, out=port.get_array())
            return
        self._owed += 1  # late: silence on the stems, the input on the mix; its output is skipped when it comes
        self.late_blocks += 1
        for ports in self.outports:
            for port in ports:
                port.get_array().fill(0.0)
        for c, port in enumerate(self.mixports):
            port.get_array()[:] = rec[1 + c * n : 1 + (c + 1) * n]

    # -- the worker thread ---------------------------------------------------------------------------------
    def _work(self) -> None:
        try:
            self._loop()
        except BaseException as e:  # reported by stats()/check(); the callback then plays silence (late blocks)
            self._error = e
            log.error("live worker stopped: %s", e)

    def _loop(self) -> None:
        n, rec, out = self.n, self._work_in, self._out_rec
        channels = self.processor.channels
        nap = n / self.plan.samplerate / 4
        silence = np.zeros_like(out)
        while not self._stop.is_set():
            if self.in_ring.read_space < rec.nbytes:
                time.sleep(nap)
                continue
            _read_into(self.in_ring, rec)
            dropped = int(rec[0])
            started = time.thread_time()
            if dropped:  # the input has a gap: silence for the dropped blocks, then start over
                for _ in range(dropped):
                    self._put(silence)
                self.processor.reset()
            block = torch.from_numpy(rec[1:].reshape(channels, n))
            stems = self.processor.process_tensor(block)
            self._put(stems[self.stem_index].numpy())
            self._cpu += time.thread_time() - started
            self._warn_once()

    def _put(self, record: np.ndarray) -> None:
        record = np.ascontiguousarray(record, dtype=np.float32)
        while self.out_ring.write_space < record.nbytes:
            if self._stop.is_set():
                return
            time.sleep(self.n / self.plan.samplerate / 4)
        _write(self.out_ring, record)

    def _warn_once(self) -> None:
        if self._warned or not (self.late_blocks or self.dropped_blocks):
            return
        self._warned = True
        log.warning("the CPU cannot keep up with this model at %.2f s latency: late blocks play silence on the "
                    "stem ports (the input on the mix port); try a longer --latency or a lighter model",
                    self.plan.latency)

    # -- control -------------------------------------------------------------------------------------------
    def start(self, connect_in: list[str] | tuple[str, ...] = ()) -> None:
        """Start the worker, activate the client, connect ``connect_in`` to the inputs (one port: both
        inputs; two: L and R)."""
        if len(connect_in) > len(self.inports):
            raise LiveError(f"--connect-in takes at most {len(self.inports)} ports, got {len(connect_in)}")
        self._worker.start()
        self.client.activate()
        sources = list(connect_in) * len(self.inports) if len(connect_in) == 1 else list(connect_in)
        for source, port in zip(sources, self.inports):
            try:
                self.client.connect(source, port)
            except jack.JackError as e:
                self.stop()
                raise LiveError(f"--connect-in: cannot connect JACK port {source!r} ({e})") from e

    def check(self) -> None:
        """Raise the worker's error, if it stopped on one."""
        if self._error is not None:
            raise self._error

    def stats(self) -> LiveStats:
        return LiveStats(blocks=self.blocks, xruns=self.xruns, late_blocks=self.late_blocks,
                         dropped_blocks=self.dropped_blocks, samplerate=self.plan.samplerate, block_size=self.n,
                         latency_samples=self.plan.latency_samples, segment_length=self.plan.segment_length,
                         worker_cpu_s=self._cpu)

    def stop(self) -> LiveStats:
        """Deactivate, stop the worker, close the client; the final counters."""
        self._stop.set()
        try:
            self.client.deactivate()
        except jack.JackError:
            pass
        if self._worker.is_alive():
            self._worker.join(timeout=30)
        stats = self.stats()
        self.client.close()
        return stats
