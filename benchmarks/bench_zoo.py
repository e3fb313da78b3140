"""Speed of every architecture at its published configuration (random weights) on CPU, beside its reference package.

For each of umx (umxhq), htdemucs, bsrnn (paper size), bs_roformer (viperx ep_317 config), mel_roformer (Kim's vocals
config): parameter count, seconds and real-time factor (seconds of compute per second of audio) for 30 s of stereo
44.1 kHz audio through stemwright's engine, and for umx/htdemucs the reference package on the same input with the
same weights (``openunmix.model.Separator``; ``demucs.apply.apply_model``, shifts=0), plus the max abs difference.
Architectures whose module or reference package is missing are skipped with a message.

Seconds are wall-clock; ``cpu`` is the process CPU time of the same call, which a busy shared machine disturbs far
less (with one thread it is the work done). ``--bf16`` adds stemwright under ``torch.autocast("cpu", bfloat16)``
(oneDNN bf16 kernels where the CPU has AVX-512 BF16 / AMX; what ``Separator(fast=True)`` / ``separate --fast`` run,
see ``stemwright.engine.precision``) and the SNR of its stems against the float32 stems:
with random weights no SDR against references can judge it, so the difference itself is reported.

Usage::

    .venv/bin/python benchmarks/bench_zoo.py [--seconds 30] [--only umx,htdemucs] [--threads N] [--bf16] [--onnx]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import platform
import sys
import time
import types
import warnings
from typing import Any, Callable

import torch

log = logging.getLogger("bench_zoo")
SR = 44100


def _reference_import(module: str) -> Any:
    """Import a test-only reference package; torchaudio (imported by them, unused by their models) stood in."""
    import importlib

    sys.modules.setdefault("torchaudio", types.ModuleType("torchaudio"))
    return importlib.import_module(module)


def _timed(fn: Callable[[], torch.Tensor], bf16: bool = False) -> tuple[torch.Tensor, float, float]:
    """``(output, wall seconds, process CPU seconds)``; with ``bf16`` under CPU autocast to bfloat16."""
    from stemwright.engine.precision import EXACT, Precision, precision_context

    # the same context as Separator(fast=True) on a CPU with native bfloat16 kernels
    chosen = Precision(torch.bfloat16, "bench --bf16") if bf16 else EXACT
    precision = precision_context(chosen, torch.device("cpu"))
    start, cpu = time.perf_counter(), time.process_time()
    with torch.inference_mode(), warnings.catch_warnings(), precision:
        warnings.simplefilter("ignore")
        out = fn().float()
    return out, time.perf_counter() - start, time.process_time() - cpu


def cpu_description() -> str:
    """The CPU model and the vector/matrix extensions that matter for float32 and bfloat16 kernels."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in open("/proc/cpuinfo"):
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
                break
    except OSError:
        pass
    wanted = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_tile")
    return f"{model}; flags: {' '.join(f for f in wanted if f in flags) or 'none of ' + ','.join(wanted)}"


def snr_db(reference: torch.Tensor, estimate: torch.Tensor) -> float:
    """10 log10(|reference|^2 / |reference - estimate|^2) over everything."""
    noise = float((reference - estimate).double().pow(2).sum())
    return math.inf if noise == 0 else 10 * math.log10(float(reference.double().pow(2).sum()) / noise)


def build_umx() -> tuple[torch.nn.Module, Callable | None, str]:
    from stemwright.models.architectures import architecture_class
    from stemwright.models.umx import UmxConfig

    ours = architecture_class("umx")(UmxConfig()).eval()  # umxhq: hidden 512, max_bin 1487, niter 1, 300-frame blocks

    def reference(mix: torch.Tensor) -> torch.Tensor:
        model = _reference_import("openunmix.model")
        targets = {t: model.OpenUnmix(nb_bins=2049, nb_channels=2, hidden_size=512, max_bin=1487) for t in ours.targets}
        sep = model.Separator(targets, niter=1, n_fft=4096, n_hop=1024, nb_channels=2, wiener_win_len=300).eval()
        sep.load_state_dict(ours.state_dict(), strict=False)  # strict=False: its STFT windows / rate are not ours
        return sep(mix[None])[0]

    return ours, reference, "openunmix 1.3.0 Separator"


def build_htdemucs() -> tuple[torch.nn.Module, Callable | None, str]:
    from stemwright.models import htdemucs
    from stemwright.models.architectures import architecture_class

    config = htdemucs.PUBLISHED["htdemucs"]
    ours = architecture_class("htdemucs")(config).eval()

    def reference(mix: torch.Tensor) -> torch.Tensor:
        _reference_import("demucs.htdemucs")
        dm = sys.modules["demucs.htdemucs"]
        apply = _reference_import("demucs.apply")
        kw = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
        kw = {k: list(v) if isinstance(v, tuple) else v for k, v in kw.items()}
        ref = dm.HTDemucs(**kw).eval()
        ref.load_state_dict(ours.state_dict(), strict=True)
        return apply.apply_model(ref, mix[None], shifts=0, overlap=0.25, split=True)[0]

    return ours, reference, "demucs 4.1.0 apply_model"


def build_bsrnn() -> tuple[torch.nn.Module, Callable | None, str]:
    from stemwright.models.bsrnn import BSRNNConfig
    from stemwright.models.architectures import architecture_class

    # Luo & Yu 2023, sec. 4: feature dimension 128, 12 band/sequence modules, BLSTM 256 hidden units.
    config = BSRNNConfig(feature_dim=128, hidden_dim=256, num_layers=12, mlp_dim=512)
    return architecture_class("bsrnn")(config).eval(), None, ""


def _roformer(name: str) -> tuple[torch.nn.Module, Callable | None, str]:
    from stemwright.pretrained.catalogue import get_published
    from stemwright.pretrained.roformer_format import config_from_yaml

    entry = get_published(name)
    cls, config, _ = config_from_yaml(entry["config"], where=name)
    return cls(config).eval(), None, ""


ARCHS: dict[str, tuple[str, Callable[[], tuple[torch.nn.Module, Callable | None, str]]]] = {
    "umx": ("umxhq", build_umx),
    "htdemucs": ("htdemucs", build_htdemucs),
    "bsrnn": ("paper size", build_bsrnn),
    "bs_roformer": ("viperx ep_317", lambda: _roformer("bs_roformer_viperx_1297")),
    "mel_roformer": ("Kim vocals", lambda: _roformer("mel_roformer_kim_vocals")),
}


def _bench_onnx(model: torch.nn.Module, mix: torch.Tensor, warm: torch.Tensor, exact: torch.Tensor,
                seconds: float) -> dict[str, Any]:
    """The model's core exported to ONNX (``stemwright export-onnx``) and run by ONNX Runtime through the engine
    (what ``-m NAME.onnx`` runs), STFT/iSTFT in torch; the export is a one-off cost, timed apart."""
    import tempfile

    from stemwright.engine.run import separate_tensor
    from stemwright.models.base import has_stages
    from stemwright.models.onnx import OnnxModel, export_onnx

    if not has_stages(model):
        return {"onnx": "not a staged model"}
    with tempfile.TemporaryDirectory() as tmp:
        start = time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            path = export_onnx(model, f"{tmp}/core.onnx", seconds=min(4.0, seconds), check=False)
        export_cpu = time.process_time() - start
        onnx_model = OnnxModel(path)
        _timed(lambda: separate_tensor(onnx_model, warm))
        out, t_onnx, c_onnx = _timed(lambda: separate_tensor(onnx_model, mix))
    return {"onnx_seconds": round(t_onnx, 2), "onnx_cpu": round(c_onnx, 2), "onnx_rtf": round(t_onnx / seconds, 3),
            "onnx_export_cpu": round(export_cpu, 1), "onnx_max_abs_diff": float((out - exact).abs().max()),
            "_onnx_out": out}


def bench(name: str, seconds: float, seed: int = 0, bf16: bool = False, onnx: bool = False) -> dict[str, Any]:
    from stemwright.engine.run import separate_tensor

    preset, build = ARCHS[name]
    try:
        model, reference, ref_name = build()
    except (ImportError, AttributeError, KeyError) as e:
        return {"architecture": name, "skipped": f"{type(e).__name__}: {e}"}
    mix = 0.1 * torch.randn(2, int(seconds * SR), generator=torch.Generator().manual_seed(seed))
    # One untimed call each on 2 s first: the first forward pass of a process pays one-off set-up (oneDNN kernels,
    # allocator growth) of about 1 s, which would otherwise be charged to whichever side runs first.
    warm = mix[:, : 2 * SR]
    _timed(lambda: separate_tensor(model, warm))
    if bf16:
        _timed(lambda: separate_tensor(model, warm), bf16=True)
    if reference is not None:
        try:
            _timed(lambda: reference(warm))
        except ImportError:
            pass
    # Engine defaults (overlap 0.25 for chunked models; whole-track models, segment None, run in one call).
    ours, t_ours, c_ours = _timed(lambda: separate_tensor(model, mix))
    row: dict[str, Any] = {
        "architecture": name, "preset": preset, "parameters": sum(p.numel() for p in model.parameters()),
        "seconds": round(t_ours, 2), "cpu": round(c_ours, 2), "rtf": round(t_ours / seconds, 3), "segment": model.segment,
    }
    if bf16:
        low, t_low, c_low = _timed(lambda: separate_tensor(model, mix), bf16=True)
        row.update(bf16_seconds=round(t_low, 2), bf16_cpu=round(c_low, 2), bf16_snr_db=round(snr_db(ours, low), 1))
    if onnx:
        row.update(_bench_onnx(model, mix, warm, ours, seconds))
    if reference is not None:
        try:
            ref, t_ref, c_ref = _timed(lambda: reference(mix))
        except ImportError as e:
            row["reference"] = f"skipped ({e})"
        else:
            row.update(reference=ref_name, ref_seconds=round(t_ref, 2), ref_cpu=round(c_ref, 2),
                       ref_rtf=round(t_ref / seconds, 3), max_abs_diff=float((ours - ref).abs().max()),
                       speedup_cpu=round(c_ref / c_ours, 2))
            if bf16:
                row["bf16_speedup_cpu"] = round(c_ref / c_low, 2)
            if "onnx_cpu" in row:
                row.update(onnx_speedup_cpu=round(c_ref / row["onnx_cpu"], 2),
                           onnx_max_abs_diff_ref=float((row.pop("_onnx_out") - ref).abs().max()))
    row.pop("_onnx_out", None)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--only", default=",".join(ARCHS), help="comma-separated architectures")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per architecture")
    parser.add_argument("--bf16", action="store_true", help="also time stemwright under CPU bfloat16 autocast")
    parser.add_argument("--onnx", action="store_true", help="also time the core exported to ONNX Runtime (staged models)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"# {args.seconds:g} s stereo @ {SR} Hz, CPU, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}", flush=True)
    print(f"# CPU: {cpu_description()}", flush=True)
    if args.bf16:
        from stemwright.engine.precision import choose_precision

        print(f"# --fast here: {choose_precision(torch.device('cpu'), fast=True).reason}", flush=True)
    for name in args.only.split(","):
        row = bench(name.strip(), args.seconds, bf16=args.bf16, onnx=args.onnx)
        if args.json:
            print(json.dumps(row), flush=True)
        elif "skipped" in row:
            print(f"{name:13s} skipped: {row['skipped']}", flush=True)
        else:
            line = (f"{name:13s} {row['preset']:14s} {row['parameters'] / 1e6:7.2f} M params  "
                    f"stemwright {row['seconds']:7.2f} s (cpu {row['cpu']:.2f} s, RTF {row['rtf']:.3f})")
            if "bf16_seconds" in row:
                line += f" | bf16 {row['bf16_seconds']:7.2f} s (cpu {row['bf16_cpu']:.2f} s, SNR {row['bf16_snr_db']} dB)"
            if "onnx_seconds" in row:
                line += (f" | onnx {row['onnx_seconds']:7.2f} s (cpu {row['onnx_cpu']:.2f} s, RTF {row['onnx_rtf']:.3f}, "
                         f"export {row['onnx_export_cpu']} s cpu once, max abs diff vs torch {row['onnx_max_abs_diff']:.1e})")
            if "ref_seconds" in row:
                line += (f" | {row['reference']} {row['ref_seconds']:7.2f} s (cpu {row['ref_cpu']:.2f} s, RTF "
                         f"{row['ref_rtf']:.3f}) | max abs diff {row['max_abs_diff']:.2e} | speed-up (cpu) "
                         f"{row['speedup_cpu']}x" + (f", bf16 {row['bf16_speedup_cpu']}x" if "bf16_speedup_cpu" in row else "")
                         + (f", onnx {row['onnx_speedup_cpu']}x (max abs diff {row['onnx_max_abs_diff_ref']:.1e})"
                            if "onnx_speedup_cpu" in row else ""))
            elif "reference" in row:
                line += f" | reference {row['reference']}"
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
