"""``stemwright live``: separate live input through JACK at a fixed, reported delay (stemwright.live)."""
from __future__ import annotations

import json
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from stemwright.cli.common import USAGE_EXIT, fail, fail_from, need_extra
from stemwright.cli.separate import Device
from stemwright.models.defaults import DEFAULT_MODEL

if TYPE_CHECKING:
    from stemwright.live import LiveClient, LiveStats

DEFAULT_LATENCY = 2.0  # seconds: classic keeps up with ~1 s chunks on one loaded core (docs/live.md)


def command(
    model: str = typer.Option(DEFAULT_MODEL, "-m", "--model", help="Model name ('stemwright models') or a checkpoint path."),
    latency: float = typer.Option(DEFAULT_LATENCY, "--latency",
                                  help="Fixed delay from input to stems, in seconds; longer separates better (longer chunks)."),
    stems: Optional[str] = typer.Option(None, "--stems", help="Comma-separated stems to output, e.g. vocals,drums [default: all]."),
    connect_in: Optional[list[str]] = typer.Option(None, "--connect-in",
                                                   help="JACK port(s) to connect to the inputs (repeat for L and R; one port feeds both)."),
    mix: bool = typer.Option(False, "--mix", help="Also output the sum of the stems (mix_L/mix_R); when late, the input."),
    name: str = typer.Option("stemwright", "--name", help="JACK client name."),
    device: Device = typer.Option("auto", "-d", "--device", help="Where the model runs."),  # type: ignore[valid-type]
    duration: Optional[float] = typer.Option(None, "--duration", min=0.0, help="Stop after this many seconds [default: until Ctrl-C]."),
    report: Optional[Path] = typer.Option(None, "--report", help="Write the session's counters as JSON to this file at the end."),
    offline: bool = typer.Option(False, "--offline", help="Never download model weights."),
) -> None:
    """Separate live input through JACK: stereo inputs in_L/in_R, one stereo output pair per stem (STEM_L/STEM_R),
    at a fixed delay it prints. Counts xruns and late blocks; when the CPU cannot keep up it says so and plays
    silence on the stem ports for the late blocks (the input on the mix port)."""
    import dataclasses  # (function-level imports below keep 'stemwright --help' fast)

    need_extra("jack", "live", "stemwright live")
    from stemwright.api import SeparationError, Separator
    from stemwright.engine.live import LatencyError
    from stemwright.live import LiveClient, LiveError

    sys.setswitchinterval(0.001)  # the JACK callback waits for the GIL at most this long behind the worker
    try:
        separator = Separator(model, device=device.value, offline=offline)
        processor = separator.live(latency=latency, block_size=_server_block_size(name), threaded=True)
    except LatencyError as e:
        fail(f"--latency: {e}", USAGE_EXIT)
    except (SeparationError, ValueError, OSError) as e:
        fail_from(e)
    chosen = [s.strip() for s in stems.split(",") if s.strip()] if stems else list(separator.sources)
    unknown = [s for s in chosen if s not in separator.sources]
    if unknown or not chosen:
        fail(f"--stems: {', '.join(unknown) or '(none)'} not among the model's stems ({', '.join(separator.sources)})",
             USAGE_EXIT)
    try:
        client = LiveClient(processor, chosen, mix=mix, name=name)
        client.start(connect_in or [])
    except LiveError as e:
        fail(str(e))
    plan = processor.plan
    print(f"{client.client.name}: latency {plan.latency:.3f} s ({plan.latency_samples} samples at {plan.samplerate} Hz), "
          f"chunks of {plan.segment:.2f} s every {plan.stride / plan.samplerate:.2f} s; outputs "
          f"{', '.join(chosen)}{' + mix' if mix else ''}", flush=True)
    stats = _run(client, duration)
    print(f"{stats.blocks} blocks ({stats.audio_s:.1f} s): {stats.xruns} xruns, {stats.late_blocks} late blocks, "
          f"{stats.dropped_blocks} dropped blocks, worker CPU {stats.cpu_share:.0%} of one core", flush=True)
    if report is not None:
        report.write_text(json.dumps({**dataclasses.asdict(stats), "cpu_share": stats.cpu_share,
                                      "latency_s": plan.latency, "segment_s": plan.segment}, indent=2))


def _server_block_size(name: str) -> int:
    """The running server's block size (the plan needs it before the client exists)."""
    import jack

    try:
        probe = jack.Client(f"{name}-probe", no_start_server=True)
    except jack.JackOpenError:
        fail("no JACK server is running (start one: jackd -d alsa, or PipeWire's JACK layer)")
    try:
        return probe.blocksize
    finally:
        probe.close()


def _run(client: "LiveClient", duration: float | None) -> "LiveStats":
    """Run until ``duration``, Ctrl-C or SIGTERM; the final counters."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
    end = time.monotonic() + duration if duration is not None else None
    try:
        while not stop.is_set() and (end is None or time.monotonic() < end):
            time.sleep(0.1)
            client.check()
    finally:
        stats = client.stop()
    return stats
