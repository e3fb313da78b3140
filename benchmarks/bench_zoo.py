"""Speed of every architecture at its published configuration (random weights) on CPU, beside its reference package.

For each of umx (umxhq), htdemucs, bsrnn (paper size), bs_roformer (viperx ep_317 config), mel_roformer (Kim's vocals
config): parameter count, seconds and real-time factor (seconds of compute per second of audio) for 30 s of stereo
44.1 kHz audio through stemwright's engine, and for umx/htdemucs the reference package on the same input with the
same weights (``openunmix.model.Separator``; ``demucs.apply.apply_model``, shifts=0), plus the max abs difference.
Architectures whose module or reference package is missing are skipped with a message.

Seconds are wall-clock; ``cpu`` is the process CPU time of the same call, which a busy shared machine disturbs far
less (with one thread it is the work done). ``--bf16`` adds stemwright's fast path, bfloat16 linear
layers and attention (oneDNN bf16 kernels where the CPU has AVX-512 BF16 / AMX; what ``Separator(fast=True)`` /
``separate --fast`` run, see ``stemwright.engine.precision``) and the SNR of its stems against the float32 stems:
with random weights no SDR against references can judge it, so the difference itself is reported (``--layer-scales``
repeats that judgement on HT Demucs with its residual branches raised to a trained-like weight).
``--int8`` adds the CPU fast path of CPUs without native bfloat16 (int8 dynamically quantised linear layers) the same
way. "stemwright float32" runs the engine's default kernel choice (``STEMWRIGHT_CPU_KERNELS=auto``: measured per
operator class on this CPU, ``stemwright.engine.cpu_kernels``); ``--torch-kernels`` adds PyTorch's own kernels
everywhere (``torch``) and oneDNN everywhere (``onednn``, the former default) as sides.
``--repeat N`` times every side N times, interleaved, and keeps each side's best (least CPU) run.
``--isa avx2,native`` runs the whole benchmark once per instruction-set level, each in a child process whose
``ATEN_CPU_CAPABILITY``, ``ONEDNN_MAX_CPU_ISA`` and ``MKL_ENABLE_INSTRUCTIONS`` cap ATen, oneDNN and MKL at that level
(``native``: none set), so an AVX-512 machine also measures what an AVX2-only CPU gets. Every run prints the CPU
model, its flags and the ISA its kernels used.

Usage::

    .venv/bin/python benchmarks/bench_zoo.py [--seconds 30] [--only umx,htdemucs] [--threads N] [--bf16] [--int8]
        [--onnx] [--torch-kernels] [--repeat N] [--layer-scales 0.5,1] [--isa avx2,avx512,native]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import subprocess
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


def _timed(fn: Callable[[], torch.Tensor], fast: torch.dtype | None = None, kernels: str | None = None,
           ) -> tuple[torch.Tensor, float, float]:
    """``(output, wall seconds, process CPU seconds)``; with ``fast`` in that fast precision of ``Separator(fast=True)``
    (``torch.bfloat16``: bfloat16 linear layers and attention, CPUs with native bfloat16; ``torch.qint8``: int8
    linear layers, the others); with ``kernels`` under ``STEMWRIGHT_CPU_KERNELS=kernels`` (``torch``: PyTorch's own
    kernels everywhere; ``onednn``: the oneDNN routing everywhere), else the engine's default (measured) choice."""
    from stemwright.engine.cpu_kernels import ENV
    from stemwright.engine.precision import EXACT, Precision, precision_context

    chosen = Precision(fast, "bench") if fast is not None else EXACT
    precision = precision_context(chosen, torch.device("cpu"))
    before = os.environ.get(ENV)
    os.environ[ENV] = kernels or "auto"
    try:
        start, cpu = time.perf_counter(), time.process_time()
        with torch.inference_mode(), warnings.catch_warnings(), precision:
            warnings.simplefilter("ignore")
            out = fn().float()
        return out, time.perf_counter() - start, time.process_time() - cpu
    finally:
        if before is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = before


def _best_of(repeat: int, sides: dict[str, Callable[[], tuple[torch.Tensor, float, float]]],
             ) -> dict[str, tuple[torch.Tensor, float, float]]:
    """Each side ``repeat`` times, the sides interleaved (so a slow spell of the machine hits them alike); per side
    the run with the least CPU time (its output, wall and CPU seconds)."""
    best: dict[str, tuple[torch.Tensor, float, float]] = {}
    for _ in range(max(1, repeat)):
        for name, side in sides.items():
            result = side()
            if name not in best or result[2] < best[name][2]:
                best[name] = result
    return best


#: ``--isa`` levels: the environment of the child process that runs the benchmark at that level (``None``: unset).
ISA_LEVELS: dict[str, dict[str, str | None]] = {
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"},
    "avx512": {"ATEN_CPU_CAPABILITY": "avx512", "ONEDNN_MAX_CPU_ISA": "AVX512_CORE_BF16",
               "MKL_ENABLE_INSTRUCTIONS": "AVX512"},
    "native": {"ATEN_CPU_CAPABILITY": None, "ONEDNN_MAX_CPU_ISA": None, "MKL_ENABLE_INSTRUCTIONS": None},
}


def isa_levels(value: str) -> list[str]:
    """``--isa``'s comma-separated levels, checked (argparse type)."""
    levels = [v.strip() for v in value.split(",") if v.strip()]
    bad = [v for v in levels if v not in ISA_LEVELS]
    if bad or not levels:
        raise argparse.ArgumentTypeError(f"unknown ISA level(s) {bad or value!r}: expected {', '.join(ISA_LEVELS)}")
    return levels


def isa_environment(level: str, base: dict[str, str] | None = None) -> dict[str, str]:
    """A copy of ``base`` (default: this process's environment) with ``level``'s ISA caps set or removed."""
    env = dict(os.environ if base is None else base)
    for name, value in ISA_LEVELS[level].items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def run_isa_children(argv: list[str], levels: list[str], script: str) -> int:
    """Run ``script`` with ``argv`` once per ISA level, each in a child process with that level's environment, its
    output passed through; the first failing child's status, else 0."""
    status = 0
    for level in levels:
        print(f"## --isa {level}", flush=True)
        proc = subprocess.run([sys.executable, script, *argv], env=isa_environment(level), check=False)
        status = status or proc.returncode
    return status


def without_isa(argv: list[str]) -> list[str]:
    """``argv`` without its ``--isa`` option (``--isa X`` or ``--isa=X``), for the children."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--isa":
            skip = True
        elif not arg.startswith("--isa="):
            out.append(arg)
    return out


def cpu_description() -> str:
    """The CPU model and the vector/matrix extensions that matter for float32, bfloat16 and int8 kernels."""
    from stemwright.engine.cpu_kernels import cpu_model

    flags: set[str] = set()
    try:
        for line in open("/proc/cpuinfo"):
            key, _, value = line.partition(":")
            if key.strip() == "flags":
                flags = set(value.split())
                break
    except OSError:
        pass
    wanted = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_tile")
    return f"{cpu_model()}; flags: {' '.join(f for f in wanted if f in flags) or 'none of ' + ','.join(wanted)}"


def isa_description() -> str:
    """The instruction-set level this process's kernels use: ATen's dispatch, the caps in the environment, and the
    engine's measured kernel choice."""
    from stemwright.engine import cpu_kernels

    caps = ", ".join(f"{name}={os.environ.get(name, '(unset)')}" for name in cpu_kernels.ISA_ENV)
    try:
        kernels = f"{cpu_kernels.kernel_setting()}: {cpu_kernels.routes()}"
    except ValueError as e:
        kernels = str(e)
    return f"ATen {torch.backends.cpu.get_cpu_capability()}; {caps}; kernels {kernels}"


def snr_db(reference: torch.Tensor, estimate: torch.Tensor) -> float:
    """10 log10(|reference|^2 / |reference - estimate|^2) over everything."""
    noise = float((reference - estimate).double().pow(2).sum())
    return math.inf if noise == 0 else 10 * math.log10(float(reference.double().pow(2).sum()) / noise)


def build_umx() -> tuple[torch.nn.Module, Callable | None, str]:
    from stemwright.models.architectures import architecture_class
    from stemwright.models.umx import UmxConfig

    ours = architecture_class("umx")(UmxConfig()).eval()  # umxhq: hidden 512, max_bin 1487, niter 1, 300-frame blocks

    built: list[torch.nn.Module] = []

    def reference(mix: torch.Tensor) -> torch.Tensor:
        if not built:  # built on the first (untimed warm-up) call: the timed calls pay for the separation only
            model = _reference_import("openunmix.model")
            targets = {t: model.OpenUnmix(nb_bins=2049, nb_channels=2, hidden_size=512, max_bin=1487) for t in ours.targets}
            sep = model.Separator(targets, niter=1, n_fft=4096, n_hop=1024, nb_channels=2, wiener_win_len=300).eval()
            sep.load_state_dict(ours.state_dict(), strict=False)  # strict=False: its STFT windows / rate are not ours
            built.append(sep)
        return built[0](mix[None])[0]

    return ours, reference, "openunmix 1.3.0 Separator"


def build_htdemucs() -> tuple[torch.nn.Module, Callable | None, str]:
    from stemwright.models import htdemucs
    from stemwright.models.architectures import architecture_class

    config = htdemucs.PUBLISHED["htdemucs"]
    ours = architecture_class("htdemucs")(config).eval()

    built: list[torch.nn.Module] = []

    def reference(mix: torch.Tensor) -> torch.Tensor:
        apply = _reference_import("demucs.apply")
        if not built:  # built on the first (untimed warm-up) call: the timed calls pay for apply_model only
            dm = _reference_import("demucs.htdemucs")
            kw = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
            kw = {k: list(v) if isinstance(v, tuple) else v for k, v in kw.items()}
            built.append(dm.HTDemucs(**kw).eval())
        built[0].load_state_dict(ours.state_dict(), strict=True)  # ours may have changed (--layer-scales)
        return apply.apply_model(built[0], mix[None], shifts=0, overlap=0.25, split=True)[0]

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


def _set_layer_scales(model: torch.nn.Module, value: float) -> int:
    """Set every LayerScale of an HT Demucs to ``value`` (a stand-in for trained weights); returns how many."""
    from stemwright.models._demucs_layers import LayerScale

    layers = [m for m in model.modules() if isinstance(m, LayerScale)]
    with torch.no_grad():
        for m in layers:
            m.scale.fill_(value)
    return len(layers)


def _fast_snr_with_layer_scales(model: torch.nn.Module, mix: torch.Tensor, scales: list[float], fast: torch.dtype,
                                ) -> dict[str, float]:
    """SNR of the fast path against the exact path with the LayerScales raised (random weights leave HT Demucs'
    residual branches at 1e-4..1e-3 of their trained weight, so the initial model hides their rounding errors)."""
    from stemwright.engine.run import separate_tensor

    saved = {k: v.clone() for k, v in model.state_dict().items()}
    out = {}
    try:
        for value in scales:
            if not _set_layer_scales(model, value):
                break
            exact, _, _ = _timed(lambda: separate_tensor(model, mix))
            low, _, _ = _timed(lambda: separate_tensor(model, mix), fast=fast)
            out[f"{value:g}"] = round(snr_db(exact, low), 1)
    finally:
        model.load_state_dict(saved)
    return out


#: The fast sides: option name -> (row key prefix, dtype of the fast precision, description).
FAST_SIDES = {"bf16": ("bf16", torch.bfloat16, "--fast (bfloat16 products)"),
              "int8": ("int8", torch.qint8, "--fast (int8 linear layers)")}


def bench(name: str, seconds: float, seed: int = 0, bf16: bool = False, onnx: bool = False, repeat: int = 1,
          torch_kernels: bool = False, layer_scales: list[float] | None = None, int8: bool = False) -> dict[str, Any]:
    from stemwright.engine.run import separate_tensor

    preset, build = ARCHS[name]
    try:
        model, reference, ref_name = build()
    except (ImportError, AttributeError, KeyError) as e:
        return {"architecture": name, "skipped": f"{type(e).__name__}: {e}"}
    mix = 0.1 * torch.randn(2, int(seconds * SR), generator=torch.Generator().manual_seed(seed))
    # One untimed call of each side on 2 s first: the first forward pass of a process pays one-off set-up (oneDNN
    # kernels, allocator growth) of about 1 s, which would otherwise be charged to whichever side runs first.
    warm = mix[:, : 2 * SR]
    # Each side: what it separates and how it is timed (_timed's options); warm-up and timed calls both come from it.
    separate: Callable[[torch.Tensor], torch.Tensor] = lambda x: separate_tensor(model, x)
    plan: dict[str, tuple[Callable[[torch.Tensor], torch.Tensor], dict[str, bool]]] = {"ours": (separate, {})}
    if torch_kernels:
        plan["torch_kernels"] = (separate, {"kernels": "torch"})
        plan["onednn_kernels"] = (separate, {"kernels": "onednn"})
    for side, wanted in (("bf16", bf16), ("int8", int8)):
        if wanted:
            plan[side] = (separate, {"fast": FAST_SIDES[side][1]})
    if reference is not None:
        plan["reference"] = (reference, {})
    sides: dict[str, Callable[[], tuple[torch.Tensor, float, float]]] = {}
    ref_skipped = ""
    for side, (fn, options) in plan.items():
        try:
            _timed(lambda: fn(warm), **options)
        except ImportError as e:
            ref_skipped = f"skipped ({e})"
            continue
        sides[side] = lambda fn=fn, options=options: _timed(lambda: fn(mix), **options)
    best = _best_of(repeat, sides)
    ours, t_ours, c_ours = best["ours"]
    # Engine defaults (overlap 0.25 for chunked models; whole-track models, segment None, run in one call).
    row: dict[str, Any] = {
        "architecture": name, "preset": preset, "parameters": sum(p.numel() for p in model.parameters()),
        "seconds": round(t_ours, 2), "cpu": round(c_ours, 2), "rtf": round(t_ours / seconds, 3), "segment": model.segment,
        "repeat": repeat,
    }
    for side in ("torch_kernels", "onednn_kernels"):
        if side in best:
            plain, t_plain, c_plain = best[side]
            row.update({f"{side}_cpu": round(c_plain, 2), f"{side}_max_abs_diff": float((plain - ours).abs().max())})
    for side, (key, dtype, _) in FAST_SIDES.items():
        if side in best:
            low, t_low, c_low = best[side]
            row.update({f"{key}_seconds": round(t_low, 2), f"{key}_cpu": round(c_low, 2),
                        f"{key}_snr_db": round(snr_db(ours, low), 1)})
            if layer_scales:
                row[f"{key}_snr_db_layer_scales"] = _fast_snr_with_layer_scales(model, mix, layer_scales, dtype)
    if onnx:
        row.update(_bench_onnx(model, mix, warm, ours, seconds))
    if "reference" in best:
        ref, t_ref, c_ref = best["reference"]
        row.update(reference=ref_name, ref_seconds=round(t_ref, 2), ref_cpu=round(c_ref, 2),
                   ref_rtf=round(t_ref / seconds, 3), max_abs_diff=float((ours - ref).abs().max()),
                   speedup_cpu=round(c_ref / c_ours, 2))
        for key in ("torch_kernels", "onednn_kernels", "bf16", "int8"):
            if f"{key}_cpu" in row:
                row[f"{key}_speedup_cpu"] = round(c_ref / row[f"{key}_cpu"], 2)
        if "onnx_cpu" in row:
            row.update(onnx_speedup_cpu=round(c_ref / row["onnx_cpu"], 2),
                       onnx_max_abs_diff_ref=float((row.pop("_onnx_out") - ref).abs().max()))
    elif reference is not None:
        row["reference"] = ref_skipped
    row.pop("_onnx_out", None)
    return row


def describe(row: dict[str, Any]) -> list[str]:
    """The human-readable lines of one architecture's row."""
    name = row["architecture"]
    if "skipped" in row:
        return [f"{name:13s} skipped: {row['skipped']}"]
    ref_cpu = row.get("ref_cpu")

    def vs_ref(cpu: float) -> str:
        return f", {ref_cpu / cpu:.2f}x vs reference" if ref_cpu else ""

    lines = [f"{name:13s} {row['preset']} ({row['parameters'] / 1e6:.2f} M params), best of {row['repeat']}, CPU seconds:"]
    if ref_cpu:
        lines.append(f"  reference ({row['reference']}): {ref_cpu:.2f} s (wall {row['ref_seconds']:.2f} s, "
                     f"RTF {row['ref_rtf']:.3f})")
    elif "reference" in row:
        lines.append(f"  reference {row['reference']}")
    diff = f", max abs diff vs reference {row['max_abs_diff']:.1e}" if "max_abs_diff" in row else ""
    lines.append(f"  stemwright float32 (measured kernel choice): {row['cpu']:.2f} s (wall {row['seconds']:.2f} s, RTF {row['rtf']:.3f})"
                 f"{vs_ref(row['cpu'])}{diff}")
    for key, what in (("torch_kernels", "PyTorch's own kernels (STEMWRIGHT_CPU_KERNELS=torch)"),
                      ("onednn_kernels", "oneDNN routing everywhere (STEMWRIGHT_CPU_KERNELS=onednn)")):
        if f"{key}_cpu" in row:
            lines.append(f"  stemwright float32, {what}: {row[f'{key}_cpu']:.2f} s{vs_ref(row[f'{key}_cpu'])}, "
                         f"max abs diff vs the default {row[f'{key}_max_abs_diff']:.1e}")
    for key, _, what in FAST_SIDES.values():
        if f"{key}_cpu" in row:
            scales = row.get(f"{key}_snr_db_layer_scales")
            extra = ("; with LayerScales at " + ", ".join(f"{k}: {v} dB" for k, v in scales.items())) if scales else ""
            lines.append(f"  stemwright {what}: {row[f'{key}_cpu']:.2f} s{vs_ref(row[f'{key}_cpu'])}, "
                         f"SNR vs float32 {row[f'{key}_snr_db']} dB{extra}")
    if "onnx_cpu" in row:
        lines.append(f"  stemwright, core in ONNX Runtime: {row['onnx_cpu']:.2f} s{vs_ref(row['onnx_cpu'])}, "
                     f"max abs diff vs torch {row['onnx_max_abs_diff']:.1e} (export {row['onnx_export_cpu']} s CPU once)")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--only", default=",".join(ARCHS), help="comma-separated architectures")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per architecture")
    parser.add_argument("--bf16", action="store_true", help="also time the fast path (bfloat16 linear layers and attention)")
    parser.add_argument("--int8", action="store_true",
                        help="also time the int8 fast path (dynamically quantised linear layers, CPUs without bfloat16)")
    parser.add_argument("--isa", type=isa_levels, default=None,
                        help="comma-separated ISA levels (avx2, avx512, native): run the benchmark once per level in a "
                             "child process whose ATen/oneDNN/MKL are capped at it")
    parser.add_argument("--onnx", action="store_true", help="also time the core exported to ONNX Runtime (staged models)")
    parser.add_argument("--torch-kernels", action="store_true",
                        help="also time stemwright with PyTorch's own kernels everywhere and with the oneDNN routing "
                             "everywhere (STEMWRIGHT_CPU_KERNELS=torch / onednn)")
    parser.add_argument("--repeat", type=int, default=1, help="time each side this many times, interleaved; report the best")
    parser.add_argument("--layer-scales", default="",
                        help="with --bf16/--int8 on htdemucs: also judge the fast path with every LayerScale set to these "
                             "values (comma-separated, e.g. 0.5,1), a stand-in for trained weights")
    args = parser.parse_args(argv)
    if args.isa:
        return run_isa_children(without_isa(sys.argv[1:] if argv is None else argv), args.isa, __file__)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"# {args.seconds:g} s stereo @ {SR} Hz, CPU, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}", flush=True)
    print(f"# CPU: {cpu_description()}", flush=True)
    print(f"# ISA: {isa_description()}", flush=True)
    if args.bf16 or args.int8:
        from stemwright.engine.precision import choose_precision

        print(f"# --fast here: {choose_precision(torch.device('cpu'), fast=True).reason}", flush=True)
    scales = [float(v) for v in args.layer_scales.split(",") if v.strip()]
    for name in args.only.split(","):
        row = bench(name.strip(), args.seconds, bf16=args.bf16, onnx=args.onnx, repeat=args.repeat,
                    torch_kernels=args.torch_kernels, layer_scales=scales, int8=args.int8)
        print(json.dumps(row) if args.json else "\n".join(describe(row)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
