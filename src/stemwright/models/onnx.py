"""ONNX export of a staged model's core, and an ONNX Runtime model the engine runs like any other.

STFT/iSTFT (complex numbers), Wiener filtering (small complex matrix inverses) and similar steps export poorly or
not at all, while the learned core (LSTMs, transformers, convolutions on real tensors) exports well. So only the
``core`` stage of a staged model (see :mod:`stemwright.models.base`: ``prepare`` / ``core`` / ``finish``) goes into
the graph; ``prepare`` and ``finish`` run in torch, from the model rebuilt from its config without weights.

``export_onnx`` traces ``core`` (default names ``input0..``/``output0..`` and dynamic axis 0 ("batch") and last axis
("frames") unless the model declares ``core_input_names`` / ``core_output_names`` / ``core_dynamic_axes``), then
checks ONNX Runtime against torch on an input of another length.

Files: ``NAME.onnx`` (the core) + ``NAME.onnx.json`` (sidecar: ``format`` = "stemwright-onnx", ``architecture``,
``config``, ``sources``, ``samplerate``, ``audio_channels``, ``segment``, input/output names, ``sha256`` of the
ONNX file). :func:`stemwright.pretrained.formats.load_any` loads ``-m NAME.onnx`` through :class:`OnnxModel`.
"""
from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from stemwright.atomic import atomic_write, atomic_write_text
from stemwright.errors import StemwrightError
from stemwright.models.architectures import architecture_class, architecture_name
from stemwright.models.base import check_model, config_from_dict, config_to_dict, has_stages
from stemwright.models.checkpoint import read_versioned_json, sha256_file

log = logging.getLogger(__name__)

ONNX_FORMAT = "stemwright-onnx"
ONNX_FORMAT_VERSION = 1
DEFAULT_OPSET = 17


class OnnxExportError(StemwrightError):
    """A model cannot be exported, or an exported file is missing/inconsistent."""


def sidecar_path(path: str | Path) -> Path:
    """``NAME.onnx.json`` beside ``NAME.onnx`` (not ``NAME.json``: that is a stemwright checkpoint's metadata)."""
    p = Path(path)
    return p.with_name(p.name + ".json")


class _Core(nn.Module):
    """Exposes ``model.core`` as a module's forward for tracing."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, *inputs: torch.Tensor) -> Any:
        return self.model.core(*inputs)


def _as_tuple(x: Any) -> tuple[torch.Tensor, ...]:
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _names(model: nn.Module, attr: str, prefix: str, n: int) -> list[str]:
    names = list(getattr(model, attr, None) or [f"{prefix}{i}" for i in range(n)])
    if len(names) != n:
        raise OnnxExportError(f"{type(model).__name__}.{attr} has {len(names)} names for {n} tensors")
    return names


def _dynamic_axes(model: nn.Module, named: dict[str, torch.Tensor]) -> dict[str, dict[int, str]]:
    axes = getattr(model, "core_dynamic_axes", None)
    if axes is not None:
        return {k: dict(v) for k, v in axes.items()}
    return {name: {0: "batch", t.dim() - 1: "frames"} for name, t in named.items()}



def _example_mix(model: nn.Module, seconds: float, batch: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    length = max(1, int(round(seconds * int(model.samplerate))))
    return 0.1 * torch.randn(batch, int(model.audio_channels), length, generator=gen)


def _run_session(session: Any, names: Sequence[str], inputs: Sequence[torch.Tensor]) -> list[np.ndarray]:
    feeds = {name: t.detach().to("cpu", torch.float32).contiguous().numpy() for name, t in zip(names, inputs)}
    return session.run(None, feeds)


def _session(path: Path, providers: Sequence[str] | None = None) -> Any:
    try:
        import onnxruntime as ort  # lazy: the optional [onnx] extra
    except ImportError:
        raise OnnxExportError("onnxruntime is not installed: pip install 'stemwright[onnx]'") from None
    options = ort.SessionOptions()
    options.log_severity_level = 3
    # ONNX Runtime ignores torch's (and OMP_NUM_THREADS's) thread setting and takes every core by default: follow
    # torch's, so torch.set_num_threads / OMP_NUM_THREADS limit both runtimes alike.
    options.intra_op_num_threads = torch.get_num_threads()
    return ort.InferenceSession(str(path), options, providers=list(providers or ["CPUExecutionProvider"]))


def _check_export(model: nn.Module, path: Path, in_names: list[str], seconds: float, atol: float) -> float:
    """Run torch core and ORT on an input of another length/batch than the traced one; return max abs error."""
    mix = _example_mix(model, seconds * 0.77 + 0.1, 1, seed=1)
    inputs, _ = model.prepare(mix)
    with torch.inference_mode():
        ref = _as_tuple(model.core(*inputs))
    got = _run_session(_session(path), in_names, _as_tuple(inputs))
    err = max(float(np.max(np.abs(g - r.detach().cpu().numpy()))) if r.numel() else 0.0 for g, r in zip(got, ref))
    if not err <= atol:
        raise OnnxExportError(f"{path}: ONNX Runtime output differs from torch by {err:.3g} (> {atol:g})")
    return err


def export_onnx(
    model: nn.Module,
    path: str | Path,
    *,
    seconds: float = 4.0,
    opset: int = DEFAULT_OPSET,
    batch: int = 1,
    check: bool = True,
    atol: float = 1e-4,
    overwrite: bool = False,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Export the ``core`` stage of a staged ``model`` to ``path`` (``.onnx``) and write its JSON sidecar; returns ``path``.

    The graph is traced on ``seconds`` of random audio (the time/frames and batch axes stay dynamic). With
    ``check`` the exported file is run by ONNX Runtime on an input of another length and compared with torch
    (max abs error <= ``atol``); a failure deletes nothing but raises :class:`OnnxExportError`.
    """
    path = Path(path)
    check_model(model)
    if not has_stages(model):
        raise OnnxExportError(
            f"{type(model).__name__} is not a staged model "
            "(prepare / core / finish; see stemwright.models.base), so it has no core to export"
        )
    if path.suffix != ".onnx":
        raise OnnxExportError(f"{path}: the output file name must end in .onnx")
    meta = sidecar_path(path)
    for p in (path, meta):
        if p.exists() and not overwrite:
            raise OnnxExportError(f"{p}: already exists (use --overwrite)")
    model = model.eval()
    inputs, _ = model.prepare(_example_mix(model, seconds, batch, seed=0))
    inputs = _as_tuple(inputs)
    with torch.inference_mode():
        outputs = _as_tuple(model.core(*inputs))
    in_names = _names(model, "core_input_names", "input", len(inputs))
    out_names = _names(model, "core_output_names", "output", len(outputs))
    axes = _dynamic_axes(model, {**dict(zip(in_names, inputs)), **dict(zip(out_names, outputs))})

    def write_onnx(tmp: Path) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # _Core in eval mode: the exporter restores the wrapper's mode afterwards, recursively, and a
            # wrapper left in training mode would switch the model's BatchNorm/dropout to training.
            torch.onnx.export(
                _Core(model).eval(), inputs, str(tmp), dynamo=False, opset_version=opset, input_names=in_names,
                output_names=out_names, dynamic_axes=axes, do_constant_folding=True,
            )

    log.info("exporting %s core to %s", type(model).__name__, path)
    atomic_write(path, write_onnx)
    if check:
        err = _check_export(model, path, in_names, seconds, atol)
        log.info("ONNX Runtime vs torch core: max abs error %.3g", err)
    doc = {
        "format": ONNX_FORMAT,
        "format_version": ONNX_FORMAT_VERSION,
        "architecture": architecture_name(model),
        "config": config_to_dict(model.config),
        "sources": list(model.sources),
        "samplerate": int(model.samplerate),
        "audio_channels": int(model.audio_channels),
        "segment": model.segment,
        "input_names": in_names,
        "output_names": out_names,
        "opset": opset,
        "sha256": sha256_file(path),
        **(extra or {}),
    }
    atomic_write_text(meta, json.dumps(doc, indent=2) + "\n")
    return path


def read_sidecar(path: str | Path) -> dict[str, Any]:
    """The validated JSON sidecar of ``NAME.onnx``."""
    meta = sidecar_path(path)
    missing = f"{meta}: sidecar JSON of {Path(path).name} not found (written by stemwright export-onnx)"
    return read_versioned_json(meta, ONNX_FORMAT, ONNX_FORMAT_VERSION, OnnxExportError, "stemwright ONNX sidecar", missing)


class OnnxModel(nn.Module):
    """A separation model whose core runs in ONNX Runtime; pre/post-processing by the torch model's own code.

    Obeys the model contract (``sources``, ``samplerate``, ``audio_channels``, ``segment``, ``valid_length`` if
    the torch model has one), so :func:`stemwright.engine.run.separate_tensor` runs it like any other model.

    Shape: ``(B, C, T)`` -> ``(B, S, C, T)``.
    """

    def __init__(self, path: str | Path, *, providers: Sequence[str] | None = None, verify: bool = True):
        super().__init__()
        path = Path(path)
        if not path.is_file():
            raise OnnxExportError(f"{path}: ONNX file not found")
        doc = read_sidecar(path)
        if verify and doc.get("sha256") and sha256_file(path) != doc["sha256"]:
            raise OnnxExportError(f"{path}: sha256 does not match its sidecar {sidecar_path(path).name}; refusing it")
        try:
            cls = architecture_class(doc["architecture"])
        except ValueError as e:
            raise OnnxExportError(f"{sidecar_path(path)}: {e}") from None
        host = cls(config_from_dict(cls.config_class, doc["config"])).eval()
        if not has_stages(host):
            raise OnnxExportError(f"{path}: architecture {doc['architecture']} is not a staged model")
        self.host = host  # weights unused: only its parameter-free pre/post-processing runs
        self.config = host.config
        self.path = path
        self.sources = tuple(doc["sources"])
        self.samplerate = int(doc["samplerate"])
        self.audio_channels = int(doc["audio_channels"])
        self.segment = doc.get("segment")
        self.input_names = list(doc["input_names"])
        self.session = _session(path, providers)
        if callable(getattr(host, "valid_length", None)):
            self.valid_length = host.valid_length

    def forward(self, mix: torch.Tensor) -> torch.Tensor:
        inputs, context = self.host.prepare(mix)
        outs = _run_session(self.session, self.input_names, _as_tuple(inputs))
        tensors = tuple(torch.from_numpy(o).to(mix.device) for o in outs)
        core = tensors[0] if len(tensors) == 1 else tensors
        return self.host.finish(core, context)
