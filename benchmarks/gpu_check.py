"""GPU check: does stemwright run on CUDA, give the CPU's stems there, and how fast?

Unattended, in under 8 minutes, with only torch, numpy and stemwright's own model code imported (no audio I/O
library, no weight file: random weights of the published configurations, audio synthesised in memory):

1. CUDA vs CPU stems for every registered architecture (max abs difference through the engine, TF32 off, on at most
   10 s of audio: the CPU side stays short);
2. seconds, real-time factor and peak GPU memory of ``htdemucs``, ``htdemucs_ft`` (a bag of four), the default model's
   architecture (``cascade``: Spleeter vocals + the shipped splitter) and ``bs_roformer`` on 3 minutes of audio;
3. a few mixed-precision (AMP) training steps of ``htdemucs``: step time, peak memory, finite loss and gradients.

``--dry-run`` runs the same code with tiny configurations and seconds of audio on the CPU (CI runs it so that the
script does not rot); the "CUDA" side is then the CPU again.

Usage::

    python benchmarks/gpu_check.py [--dry-run] [--device cuda] [--max-minutes 8] [--json out.json]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import platform
import sys
import time
from importlib import resources
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from stemwright.engine.precision import EXACT, choose_precision, precision_context
from stemwright.engine.run import separate_tensor
from stemwright.models.architectures import ARCHITECTURES
from stemwright.models.bag import BagConfig
from stemwright.models.base import config_from_dict, config_to_dict
from stemwright.models.bsrnn import BSRNNConfig
from stemwright.models.cascade import CascadeConfig
from stemwright.models.classic import ClassicConfig
from stemwright.models.hdemucs import HDemucsConfig
from stemwright.models.htdemucs import PUBLISHED, HTDemucsConfig
from stemwright.models.refiner import ClassicRefinerConfig
from stemwright.models.roformer import BSRoformerConfig, MelRoformerConfig
from stemwright.models.spleeter import SpleeterConfig
from stemwright.models.umx import UmxConfig

log = logging.getLogger("gpu_check")
SR = 44100


def _package_json(*parts: str) -> dict[str, Any]:
    """A JSON file shipped in the package (catalogue entries, shipped models' metadata): read, never a weight file."""
    return json.loads(resources.files("stemwright").joinpath(*parts).read_text())


def _catalogue_config(name: str) -> dict[str, Any]:
    entries = {e["name"]: e for e in _package_json("pretrained", "catalogue", "demucs.json")["models"]}
    entries.update({e["name"]: e for e in _package_json("pretrained", "catalogue", "umx.json")["models"]})
    return entries[name]["config"]


def _splitter_config() -> dict[str, Any]:
    return _package_json("pretrained", "weights", "stemwright_4stem_splitter.json")["config"]


def published_configs() -> dict[str, Callable[[], Any]]:
    """Architecture -> its published configuration (the catalogue's or the shipped model's)."""
    return {
        "classic": lambda: ClassicConfig(),
        "htdemucs": lambda: PUBLISHED["htdemucs"],
        "hdemucs": lambda: config_from_dict(HDemucsConfig, _catalogue_config("hdemucs_mmi")),
        "umx": lambda: config_from_dict(UmxConfig, _catalogue_config("umxhq")),
        "bsrnn": lambda: config_from_dict(BSRNNConfig, _package_json("pretrained", "weights", "stemwright_vocals.json")["config"]),
        "classic_refiner": lambda: config_from_dict(ClassicRefinerConfig, _splitter_config()),
        # SpleeterConfig's defaults are the published 2-stem model (Spleeter's 2stems.json)
        "spleeter": lambda: SpleeterConfig(),
        # the default model stemwright_4stem: Spleeter's vocals, then the shipped drums/bass/other splitter
        "cascade": lambda: CascadeConfig(vocals={"architecture": "spleeter", "config": config_to_dict(SpleeterConfig())},
                                         splitter={"architecture": "classic_refiner", "config": _splitter_config()}),
        # The defaults are the published configurations: viperx's BS-RoFormer ep_317 and Kim's Mel-RoFormer vocals
        # (checked against the catalogue by tests/benchmarks/test_gpu_check.py).
        "bs_roformer": lambda: BSRoformerConfig(),
        "mel_roformer": lambda: MelRoformerConfig(),
        "bag": lambda: config_from_dict(BagConfig, _catalogue_config("htdemucs_ft")),
    }


_TINY_HT = dict(channels=8, depth=4, nfft=2048, bottom_channels=16, t_layers=1, t_heads=2, segment=1.0, dconv_mode=3)


def tiny_configs() -> dict[str, Callable[[], Any]]:
    """Architecture -> a tiny configuration (``--dry-run``)."""
    member = {"architecture": "htdemucs", "config": config_to_dict(HTDemucsConfig(**_TINY_HT))}
    roformer = dict(dim=16, depth=1, dim_head=8, heads=2, n_fft=256, hop_length=64, win_length=256, segment=0.5)
    return {
        "classic": lambda: ClassicConfig(n_fft=1024, hop_length=256),
        "htdemucs": lambda: HTDemucsConfig(**_TINY_HT),
        "hdemucs": lambda: HDemucsConfig(channels=8, depth=5, nfft=1024, dconv_mode=3, segment=3.0),
        "umx": lambda: UmxConfig(hidden_size=8, n_fft=512, hop_length=128, max_bin=100),
        "bsrnn": lambda: BSRNNConfig(samplerate=SR, n_fft=256, hop_length=64, band_widths=(8, 8, 16, 32, 65),
                                     feature_dim=8, hidden_dim=8, num_layers=1, mlp_dim=8, segment=0.5),
        "classic_refiner": lambda: ClassicRefinerConfig(n_fft=512, hop_length=256, band_widths=(16, 16, 32, 64, 129),
                                                        feature_dim=8, hidden_dim=8, num_layers=1, mlp_dim=8, segment=1.0),
        "spleeter": lambda: SpleeterConfig(n_fft=256, hop_length=64, max_bin=64, block_frames=16, filters=(2, 4)),
        "cascade": lambda: CascadeConfig(
            vocals={"architecture": "spleeter", "config": config_to_dict(
                SpleeterConfig(n_fft=256, hop_length=64, max_bin=64, block_frames=16, filters=(2, 4)))},
            splitter={"architecture": "classic_refiner", "config": config_to_dict(ClassicRefinerConfig(
                sources=("drums", "bass", "other"), n_fft=512, hop_length=256, band_widths=(16, 16, 32, 64, 129),
                feature_dim=8, hidden_dim=8, num_layers=1, mlp_dim=8, segment=1.0))}),
        "bs_roformer": lambda: BSRoformerConfig(**roformer, freqs_per_bands=(32, 32, 32, 33)),
        "mel_roformer": lambda: MelRoformerConfig(**roformer, num_bands=8),
        "bag": lambda: BagConfig(members=(member, member), weights=((1, 0, 1, 0.5), (0, 1, 1, 0.5))),
    }


def build(arch: str, configs: dict[str, Callable[[], Any]], seed: int = 0) -> nn.Module:
    """A model of ``arch`` with seeded random weights, in eval mode on the CPU."""
    torch.manual_seed(seed)
    return ARCHITECTURES[arch](configs[arch]()).eval()


def synth_audio(seconds: float, channels: int = 2, seed: int = 0) -> torch.Tensor:
    """Music-like stereo test audio made in memory: chords, a bass line, noise bursts. Shape: ``(C, T)``."""
    n = int(seconds * SR)
    t = np.arange(n) / SR
    rng = np.random.default_rng(seed)
    chord = sum(np.sin(2 * np.pi * f * t + rng.uniform(0, 6)) for f in (220.0, 277.2, 329.6)) / 3
    bass = np.sin(2 * np.pi * 55.0 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 0.5 * t))
    bursts = rng.standard_normal((channels, n)) * (np.sin(2 * np.pi * 2.0 * t) > 0.95)
    pan = np.linspace(0.8, 1.0, channels)[:, None]
    return torch.from_numpy((0.2 * chord * pan + 0.2 * bass + 0.1 * bursts).astype(np.float32))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_reset(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def _peak_mb(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None


def check_parity(arch: str, configs: dict, device: torch.device, seconds: float) -> dict[str, Any]:
    """CUDA (``device``) vs CPU stems of one architecture through the engine. TF32 off: full float32 on both."""
    model = build(arch, configs)
    mix = synth_audio(seconds, model.audio_channels, seed=1)
    cpu = separate_tensor(model, mix, overlap=0.25)
    sensitivity = float32_sensitivity(model, mix)
    other = model.to(device)
    _sync(device)
    got = separate_tensor(other, mix, overlap=0.25, device=device)
    diff = float((got - cpu).abs().max())
    peak = float(cpu.abs().max())  # random weights: stems far from unit scale, so the difference relative to them too
    return {"check": "parity", "arch": arch, "seconds_audio": seconds, "max_abs_diff": diff, "max_abs_cpu": peak,
            "relative_diff": diff / peak if peak else None, "cpu_f32_vs_f64": sensitivity,
            "finite": bool(torch.isfinite(got).all())}


def float32_sensitivity(model: nn.Module, mix: torch.Tensor) -> float:
    """Max abs difference between float32 and float64 forward passes of the model on the CPU (one call on the first
    segment): how much the model itself amplifies float32 rounding. With random weights the RoFormers do (2.4e-3 on
    stems peaking at 0.06 for bs_roformer), HT Demucs does not (6e-8); a CUDA difference well above this number
    points at reduced precision on the GPU (TF32, cuDNN's algorithm choice), one near it at rounding alone.
    ``model`` (float32, on the CPU) is converted to float64 for the second pass and back: float32 weights survive the
    round trip exactly, so it is left as it was given."""
    n = mix.shape[-1] if not model.segment else min(mix.shape[-1], int(model.segment * SR))
    x = mix[None, :, :n]
    with torch.inference_mode():
        f32 = model(x)
        f64 = model.double()(x.double())
    model.float()
    return float((f32.double() - f64).abs().max())


def check_speed(arch: str, configs: dict, device: torch.device, seconds: float, batch_size: int) -> dict[str, Any]:
    """Seconds, real-time factor and peak memory of one separation after a short warm-up."""
    model = build(arch, configs).to(device)
    params = sum(p.numel() for p in model.parameters())
    separate_tensor(model, synth_audio(min(seconds, 2.0 * (model.segment or 1.0))), device=device)  # warm-up
    mix = synth_audio(seconds, model.audio_channels, seed=2)
    _sync(device)
    _peak_reset(device)
    start = time.perf_counter()
    out = separate_tensor(model, mix, device=device, batch_size=batch_size)
    _sync(device)
    took = time.perf_counter() - start
    return {"check": "speed", "arch": arch, "seconds_audio": seconds, "batch_size": batch_size, "parameters": params,
            "seconds": round(took, 3), "rtf": round(took / seconds, 4), "peak_mb": _peak_mb(device),
            "finite": bool(torch.isfinite(out).all())}


def check_fast(configs: dict, device: torch.device, seconds: float) -> dict[str, Any]:
    """The ``fast`` option (on CUDA: bfloat16 autocast where the device has it) on ``htdemucs``: seconds against the exact path
    in the same run, and the SNR of its stems against the exact path's (random weights: no reference can judge them)."""
    model = build("htdemucs", configs).to(device)
    mix = synth_audio(seconds, model.audio_channels, seed=4)
    precision = choose_precision(device, fast=True)
    timings, outs = {}, {}
    for name, prec in (("exact", EXACT), ("fast", precision)):
        with precision_context(prec, device):
            separate_tensor(model, mix[:, : min(mix.shape[-1], 2 * SR)], device=device)  # warm-up
            _sync(device)
            start = time.perf_counter()
            outs[name] = separate_tensor(model, mix, device=device)
            _sync(device)
        timings[name] = time.perf_counter() - start
    err = (outs["fast"] - outs["exact"]).double()
    snr = 10 * math.log10(float(outs["exact"].double().pow(2).sum()) / max(float(err.pow(2).sum()), 1e-30))
    return {"check": "fast", "arch": "htdemucs", "dtype": precision.name, "seconds_audio": seconds,
            "exact_s": round(timings["exact"], 3), "fast_s": round(timings["fast"], 3),
            "speedup": round(timings["exact"] / timings["fast"], 2), "snr_db_vs_exact": round(snr, 1),
            "finite": bool(torch.isfinite(outs["fast"]).all())}


def check_amp_training(configs: dict, device: torch.device, steps: int, batch: int) -> dict[str, Any]:
    """A few AMP training steps of htdemucs (L1 on random targets): bfloat16 where the GPU has it, else float16
    with a gradient scaler; float32 autocast-free steps on the CPU dry run."""
    model = build("htdemucs", configs).to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=3e-4)
    length = int((model.segment or 1.0) * SR)
    use_amp = device.type == "cuda"
    dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and dtype == torch.float16)
    gen = torch.Generator().manual_seed(3)
    losses, times = [], []
    _peak_reset(device)
    for _ in range(steps):
        mix = (0.1 * torch.randn(batch, 2, length, generator=gen)).to(device)
        target = (0.1 * torch.randn(batch, len(model.sources), 2, length, generator=gen)).to(device)
        _sync(device)
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=dtype, enabled=use_amp):
            loss = (model(mix) - target).abs().mean()
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        _sync(device)
        times.append(time.perf_counter() - start)
        losses.append(float(loss.detach()))
    grads_finite = all(p.grad is None or bool(torch.isfinite(p.grad).all()) for p in model.parameters())
    return {"check": "amp_training", "arch": "htdemucs", "dtype": str(dtype).removeprefix("torch.") if use_amp else "float32",
            "steps": steps, "batch": batch, "segment_s": model.segment, "step_seconds": [round(t, 3) for t in times],
            "losses": [round(x, 5) for x in losses], "finite": all(map(math.isfinite, losses)) and grads_finite,
            "peak_mb": _peak_mb(device)}


def machine(device: torch.device) -> dict[str, Any]:
    info = {"python": platform.python_version(), "torch": torch.__version__, "cpu": platform.processor() or platform.machine(),
            "threads": torch.get_num_threads(), "device": str(device)}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(gpu=props.name, gpu_memory_gb=round(props.total_memory / 2**30, 1), cuda=torch.version.cuda)
    return info


def run(dry_run: bool, device: torch.device, max_minutes: float) -> list[dict[str, Any]]:
    """All checks in order; once ``max_minutes`` is spent the rest are reported as skipped."""
    configs = tiny_configs() if dry_run else published_configs()
    parity_seconds = {"bs_roformer": 3.0, "mel_roformer": 3.0, "bag": 5.0}  # the slow ones on CPU: shorter
    plan: list[tuple[str, Callable[[], dict[str, Any]]]] = []
    for arch in sorted(ARCHITECTURES):
        seconds = 0.5 if dry_run else parity_seconds.get(arch, 10.0)
        plan.append((f"parity {arch}", lambda a=arch, s=seconds: check_parity(a, configs, device, s)))
    speed = ["htdemucs", "bag", "cascade", "bs_roformer"]  # bag = htdemucs_ft; cascade = the default model
    for arch in speed:
        seconds = 2.0 if dry_run else 180.0
        plan.append((f"speed {arch}", lambda a=arch, s=seconds: check_speed(a, configs, device, s, batch_size=1)))
    plan.append(("fast htdemucs", lambda: check_fast(configs, device, 2.0 if dry_run else 30.0)))
    plan.append(("amp training", lambda: check_amp_training(configs, device, steps=2 if dry_run else 5, batch=1 if dry_run else 4)))
    deadline = time.monotonic() + 60 * max_minutes
    results = []
    for name, fn in plan:
        if time.monotonic() > deadline:
            results.append({"check": name, "skipped": f"over the {max_minutes} min budget"})
            continue
        start = time.perf_counter()
        try:
            result = fn()
        except ImportError as e:  # e.g. mel_roformer's band layout needs librosa
            result = {"check": name, "skipped": f"{type(e).__name__}: {e}"}
        except Exception as e:  # noqa: BLE001 - unattended: one broken check must not hide the others' results
            log.exception("%s failed", name)
            result = {"check": name, "error": f"{type(e).__name__}: {e}"[:500], "finite": False}
        result["wall_s"] = round(time.perf_counter() - start, 2)
        print(json.dumps(result), flush=True)
        results.append(result)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="tiny configs, seconds of audio, CPU only")
    parser.add_argument("--device", default=None, help="device to check against the CPU (default: cuda)")
    parser.add_argument("--max-minutes", type=float, default=8.0, help="time budget; later checks are skipped")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    device = torch.device(args.device or ("cpu" if args.dry_run else "cuda"))
    if device.type == "cuda" and not torch.cuda.is_available():
        print("gpu_check: CUDA is not available on this machine (use --dry-run for the CPU self-test)", file=sys.stderr)
        return 1
    # Full float32 on the GPU, so the CPU/CUDA difference measures the code, not TF32's 10-bit mantissa: the old flags
    # and PyTorch 2.9+'s fp32_precision settings (the first H200 run set only the old flags and saw HT Demucs' CUDA
    # stems 0.7 % off the CPU's, where float64 says float32 rounding alone gives 3e-7 %), and deterministic cuDNN.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    for owner in ("backends", "backends.cuda.matmul", "backends.cudnn", "backends.cudnn.conv", "backends.cudnn.rnn"):
        obj = torch
        for part in owner.split("."):
            obj = getattr(obj, part, None)
        if obj is not None and hasattr(obj, "fp32_precision"):
            try:
                obj.fp32_precision = "ieee"
            except (RuntimeError, ValueError, AttributeError) as e:
                log.warning("torch.%s.fp32_precision: %s", owner, e)
    print(json.dumps({"check": "machine", **machine(device), "dry_run": args.dry_run}), flush=True)
    start = time.perf_counter()
    results = run(args.dry_run, device, args.max_minutes)
    total = round(time.perf_counter() - start, 1)
    print(json.dumps({"check": "total", "seconds": total}), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine(device), "dry_run": args.dry_run, "results": results, "seconds": total}, f, indent=2)
    bad = [r for r in results if r.get("finite") is False]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
