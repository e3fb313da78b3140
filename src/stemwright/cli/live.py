"""``stemwright live``: separate live input through JACK at a fixed, reported delay (stemwright.live)."""
from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from stemwright.cli.common import INPUT_EXIT, USAGE_EXIT, fail, need_extra
from stemwright.cli.options import Device
from stemwright.models.defaults import DEFAULT_MODEL

if TYPE_CHECKING:
    from stemwright.live import LiveSession, LiveStats

DEFAULT_LATENCY = 2.0  # seconds: classic and the default model keep up with ~1 s chunks on one loaded core (docs/live.md)


def command(
    model: str = typer.Option(DEFAULT_MODEL, "-m", "--model", help="Model name ('stemwright models') or a checkpoint path."),
    latency: float = typer.Option(DEFAULT_LATENCY, "--latency",
                                  help="Fixed delay from input to stems, in seconds; longer separates better (longer chunks)."),
    stems: Optional[str] = typer.Option(None, "--stems", help="Comma-separated stems to output, e.g. vocals,drums [default: all]."),
    connect_in: Optional[list[str]] = typer.Option(None, "--connect-in",
                                                   help="JACK port to connect to the inputs (repeat for L and R; one port feeds both)."),
    mix: bool = typer.Option(False, "--mix", help="Also output the sum of the stems (mix_L/mix_R); for a late block, the input. "
                             "Its gains are live: lines 'STEM GAIN', 'mute STEM', 'unmute STEM' on stdin (a terminal or a pipe)."),
    fallback: Optional[str] = typer.Option(None, "--fallback", help="A cheaper model to switch to, at the same delay, "
                                           "when the CPU cannot keep up with -m (e.g. classic)."),
    name: str = typer.Option("stemwright", "--name", help="JACK client name."),
    device: Device = typer.Option("auto", "-d", "--device", help="Where the model runs."),  # type: ignore[valid-type]
    duration: Optional[float] = typer.Option(None, "--duration", min=0.0, help="Stop after this many seconds [default: until Ctrl-C]."),
    report: Optional[Path] = typer.Option(None, "--report", help="Write the session's counters as JSON to this file at the end."),
    offline: bool = typer.Option(False, "--offline", help="Never download model weights."),
) -> None:
    """Separate live input through JACK: stereo inputs in_L/in_R, one stereo output pair per stem (STEM_L/STEM_R),
    at a fixed delay it prints. The model runs in a worker process; xruns and late blocks are counted, and when the
    CPU cannot keep up it says so and plays silence on the stem ports for the late blocks (the input on the mix port),
    or switches to the --fallback model."""
    import dataclasses  # (function-level imports keep 'stemwright --help' fast)

    need_extra("jack", "live", "stemwright live")
    from stemwright.live import LiveError, LiveSession, LiveUsageError, WorkerSettings

    chosen = [s.strip() for s in stems.split(",") if s.strip()] if stems else None
    if stems is not None and not chosen:
        fail("--stems: no stem named", USAGE_EXIT)
    block_size = _server_block_size(name)
    settings = WorkerSettings(model=model, device=device.value, offline=offline, latency=latency, block_size=block_size,
                              fallback=fallback)
    try:
        session = LiveSession(settings, chosen, mix=mix, name=name)
    except LiveUsageError as e:
        fail(str(e), USAGE_EXIT)
    except LiveError as e:
        fail(str(e), INPUT_EXIT)
    try:
        session.client.start(connect_in or [])
    except LiveError as e:
        session.stop()
        fail(str(e))
    plan = session.plan
    print(f"{session.client.client.name}: latency {plan.latency:.3f} s ({plan.latency_samples} samples at "
          f"{plan.samplerate} Hz), chunks of {plan.segment:.2f} s every {plan.stride / plan.samplerate:.2f} s "
          f"(one took {session.ready.chunk_seconds:.2f} s at start); "
          f"outputs {', '.join(session.client.stems)}{' + mix' if mix else ''}", flush=True)
    spare = session.ready.fallback_plan
    if spare is not None:
        print(f"fallback {fallback}: the same latency, chunks of {spare.segment:.2f} s", flush=True)
    if mix and _stdin_is_control():
        threading.Thread(target=_control, args=(session,), name="stemwright-live-control", daemon=True).start()
    stats = _run(session, duration)
    switched = (f", switched to {fallback} at {stats.fallback_block * stats.block_size / stats.samplerate:.1f} s "
                f"({stats.late_blocks_after_fallback} late blocks after)" if stats.fallbacks else "")
    print(f"{stats.blocks} blocks ({stats.audio_s:.1f} s): {stats.xruns} xruns, {stats.late_blocks} late blocks, "
          f"{stats.dropped_blocks} dropped blocks, worker CPU {stats.cpu_share:.0%} of one core{switched}", flush=True)
    if report is not None:
        report.write_text(json.dumps({**dataclasses.asdict(stats), "cpu_share": stats.cpu_share,
                                      "fallbacks": stats.fallbacks, "latency_s": plan.latency,
                                      "segment_s": plan.segment}, indent=2))


def _stdin_is_control() -> bool:
    """Gain commands are read from a terminal or a pipe (not from /dev/null or a file)."""
    import os
    import stat
    import sys

    try:
        return sys.stdin.isatty() or stat.S_ISFIFO(os.fstat(sys.stdin.fileno()).st_mode)
    except (OSError, ValueError):  # no stdin at all
        return False


def _control(session: LiveSession) -> None:
    """The terminal control of the mix's gains: one command per line until stdin ends (the session goes on)."""
    import sys

    from stemwright.live import LiveUsageError

    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            print(session.client.command(line), flush=True)
        except LiveUsageError as e:
            print(f"error: {e}", file=sys.stderr, flush=True)


def _server_block_size(name: str) -> int:
    """The running server's block size (the worker plans its chunks for it before the client exists)."""
    import jack

    try:
        probe = jack.Client(f"{name}-probe", no_start_server=True)
    except jack.JackOpenError:
        fail("no JACK server is running (start one: jackd -d alsa, or PipeWire's JACK layer)")
    try:
        return probe.blocksize
    finally:
        probe.close()


def _run(session: LiveSession, duration: float | None) -> LiveStats:
    """Run until ``duration``, Ctrl-C or SIGTERM; the final counters."""
    from stemwright.live import LiveError

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
    end = time.monotonic() + duration if duration is not None else None
    try:
        while not stop.is_set() and (end is None or time.monotonic() < end):
            time.sleep(0.1)
            session.poll()
    except LiveError as e:
        session.stop()
        fail(str(e))
    return session.stop()
