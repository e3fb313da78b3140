"""``stemwright bench``: time a model on a file or on generated audio: seconds, real-time factor, peak memory."""
from __future__ import annotations

import json
import resource
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np
import typer

from stemwright.models.defaults import DEFAULT_MODEL


def generated_input(seconds: float, samplerate: int, channels: int = 2, seed: int = 0) -> np.ndarray:
    """Reproducible test signal: pink-ish noise plus a few tones. Shape: ``(channels, seconds * samplerate)``."""
    n = int(round(seconds * samplerate))
    rng = np.random.default_rng(seed)
    spec = np.fft.rfft(rng.standard_normal((channels, n)), axis=-1)
    spec /= np.sqrt(np.maximum(np.arange(spec.shape[-1]), 1))  # 1/f power
    x = np.fft.irfft(spec, n=n, axis=-1)
    t = np.arange(n) / samplerate
    x += sum(np.sin(2 * np.pi * f * t) for f in (110.0, 440.0, 1320.0))
    return (0.25 * x / np.abs(x).max()).astype(np.float32)


def _rss_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def run_bench(model: str, device: str = "auto", input_path: Path | None = None, seconds: float = 30.0,
              repeat: int = 1) -> dict[str, Any]:
    """Separate once (after loading), timed. Returns the JSON-ready report."""
    import torch

    from stemwright.api import Separator
    from stemwright.audio.io import read_audio
    from stemwright.models.registry import MODELS
    from stemwright.pretrained.loading import load_model

    rss_start = _rss_peak_mb()
    t0 = time.perf_counter()
    if model in MODELS and MODELS[model].needs_references:
        # an oracle needs true stems: generate them and score the mixture they make
        if input_path is not None:
            raise ValueError(f"{model} needs the true stems; use --seconds (generated stems), not --input")
        entry = MODELS[model]
        stems = {s: generated_input(seconds, entry.samplerate, seed=k + 1) for k, s in enumerate(entry.sources)}
        audio, rate = np.sum(list(stems.values()), axis=0), entry.samplerate
        sep = Separator(load_model(model, references=stems, samplerate=rate), device=device)
    else:
        sep = Separator(model=model, device=device)
        if input_path is not None:
            a = read_audio(input_path)
            audio, rate = a.samples, a.samplerate
        else:
            rate = sep.samplerate
            audio = generated_input(seconds, rate, channels=2)
    load_s = time.perf_counter() - t0
    cuda = sep.device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        sep.separate(audio, rate)
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    duration = audio.shape[-1] / rate
    best = min(times)
    report: dict[str, Any] = {
        "model": model, "device": str(sep.device), "input": str(input_path) if input_path else f"generated {seconds:g} s",
        "audio_seconds": round(duration, 3), "samplerate": rate, "load_seconds": round(load_s, 3),
        "seconds": round(best, 4), "all_seconds": [round(t, 4) for t in times],
        "rtf": round(best / duration, 5), "x_realtime": round(duration / best, 2),
        "peak_rss_mb": round(_rss_peak_mb(), 1), "rss_at_start_mb": round(rss_start, 1),
        "torch_threads": torch.get_num_threads(),
    }
    if cuda:
        report["cuda_max_allocated_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        report["cuda_device"] = torch.cuda.get_device_name()
    return report


def command(
    model: str = typer.Option(DEFAULT_MODEL, "-m", "-n", "--model", help="Model name ('stemwright models') or checkpoint path."),
    device: str = typer.Option("auto", "-d", "--device", help="auto, cpu, cuda or mps."),
    input_path: Optional[Path] = typer.Option(None, "--input", help="Audio file to separate (default: generated audio)."),
    seconds: float = typer.Option(30.0, "--seconds", help="Length of the generated input in seconds."),
    repeat: int = typer.Option(1, "--repeat", help="Separate N times and report the fastest."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Time a model: seconds, real-time factor (processing time / audio duration), peak memory."""
    from stemwright.cli.common import USAGE_EXIT, fail, fail_from

    if input_path is not None and not input_path.is_file():
        fail(f"{input_path}: file not found")
    if seconds <= 0 or repeat < 1:
        fail("--seconds must be > 0 and --repeat >= 1", USAGE_EXIT)
    try:
        report = run_bench(model, device, input_path, seconds, repeat)
    except ValueError as e:
        fail_from(e)
    if as_json:
        print(json.dumps(report, indent=2))
        return
    print(f"model      : {report['model']} on {report['device']}")
    print(f"input      : {report['input']} ({report['audio_seconds']} s at {report['samplerate']} Hz)")
    print(f"seconds    : {report['seconds']} (load {report['load_seconds']} s)")
    print(f"RTF        : {report['rtf']} ({report['x_realtime']}x real time)")
    print(f"peak RSS   : {report['peak_rss_mb']} MB")
    if "cuda_max_allocated_mb" in report:
        print(f"CUDA peak  : {report['cuda_max_allocated_mb']} MB allocated ({report['cuda_device']})")
