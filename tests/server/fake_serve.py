"""``stemwright serve`` with :class:`tests.server.conftest.IdleSeparator` instead of a model (a test helper run as
``python -m tests.server.fake_serve --port 0 --data-dir DIR [--workers N]``): the same binding, signal handling and
shutdown path as the real command, with jobs that run until they are stopped."""
from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from stemwright.engine.progress import ProgressEvent


class IdleSeparator:
    """Holds every job in its first step, reporting progress (so a cancel or a shutdown stops it), without
    decoding the song: for tests of long uploads and of shutdown. Gives up after ``limit`` seconds."""

    limit = 120.0

    def __init__(self, model: str, progress):
        self.progress = progress

    def separate_file(self, path, outdir, **_kw):
        Path(outdir).mkdir(parents=True, exist_ok=True)  # a job folder in progress, as the engine leaves one
        (Path(outdir) / "vocals.wav.partial").write_bytes(b"\0" * 1024)
        end = time.monotonic() + self.limit
        while time.monotonic() < end:
            self.progress(ProgressEvent(0.1, "separate", 0, 4))
            time.sleep(0.02)
        raise RuntimeError("IdleSeparator was never stopped")


def idle_factory(model, progress):
    return IdleSeparator(model, progress)


class SlowScale:
    """A deliberately slow model for the play-while-separating tests: 'vocals' = 0.25 x and 'other' = 0.75 x the
    mixture (so the stems are known exactly), 22.05 kHz stereo, 2 s chunks, sleeping ``delay`` s per call. Built
    as an ``nn.Module`` on first use (torch is imported by the engine anyway)."""

    delay = 0.4

    @classmethod
    def build(cls):
        import torch
        from torch import nn

        class _Slow(nn.Module):
            sources = ("vocals", "other")
            samplerate = 22050
            audio_channels = 2
            segment = 2.0

            def forward(self, mix: torch.Tensor) -> torch.Tensor:
                time.sleep(cls.delay)
                return torch.stack([0.25 * mix, 0.75 * mix], dim=1)

        return _Slow()


SLOW_FIRST_SEGMENT = 0.5


def slow_factory(model, progress):
    """The real engine and file path (short first chunk included) around :class:`SlowScale`."""
    from stemwright.api import Separator

    return Separator(model=SlowScale.build(), progress=progress, first_segment=SLOW_FIRST_SEGMENT)




if __name__ == "__main__":
    from stemwright.cli.serve import run_server
    from stemwright.server.app import ServerConfig

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--slow", type=float, default=None, help="SlowScale jobs, sleeping this many s per chunk")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.slow is not None:
        SlowScale.delay = args.slow
    run_server(ServerConfig(data_dir=args.data_dir, workers=args.workers, default_model="classic",
                            separator_factory=idle_factory if args.slow is None else slow_factory), args.port)
