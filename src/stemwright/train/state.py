"""Resumable training state, without pickle.

A checkpoint folder ``OUT/checkpoints/step_XXXXXXX/`` holds:

- ``model.safetensors/.json`` and ``ema.safetensors/.json``: stemwright checkpoints (:mod:`stemwright.models.checkpoint`);
- ``optimizer.safetensors``: every tensor of the optimiser state (``state.<param index>.<name>``) and the RNG states;
- ``state.json``: step, optimiser param groups and scalar state, sampler RNG, AMP scaler, config digest.

``OUT/checkpoints/latest.json`` names the newest complete folder (written last, atomically).
"""
from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from stemwright.atomic import atomic_write_text
from stemwright.errors import StemwrightError
from stemwright.models.checkpoint import load_checkpoint, save_checkpoint

log = logging.getLogger(__name__)


class ResumeError(StemwrightError):
    """A training output folder cannot be resumed (missing/corrupt state) or would be overwritten."""


def _write_json(path: Path, doc: dict[str, Any]) -> None:
    atomic_write_text(path, json.dumps(doc, indent=2))


def _optimizer_to_flat(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, st in sd["state"].items():
        for name, value in st.items():
            if torch.is_tensor(value):
                tensors[f"state.{idx}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(idx), {})[name] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _optimizer_from_flat(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], doc: dict[str, Any]) -> None:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("state."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = value
    for idx, sc in doc.get("scalars", {}).items():
        state.setdefault(int(idx), {}).update(sc)
    groups = doc["param_groups"]
    for g in groups:
        if "betas" in g:
            g["betas"] = tuple(g["betas"])
    opt.load_state_dict({"state": state, "param_groups": groups})


def save_state(
    folder: Path,
    *,
    step: int,
    model: torch.nn.Module,
    ema_model: torch.nn.Module | None,
    optimizer: torch.optim.Optimizer,
    sampler_state: Any,
    scaler_state: dict[str, Any] | None,
    extra: dict[str, Any],
    keep: int = 3,
) -> Path:
    """Write a complete checkpoint folder for ``step`` and point ``latest.json`` at it; keep the newest ``keep``."""
    root = folder / "checkpoints"
    final = root / f"step_{step:07d}"
    tmp = root / f".step_{step:07d}.part"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_checkpoint(model, tmp / "model", training={"step": step})
    if ema_model is not None:
        save_checkpoint(ema_model, tmp / "ema", training={"step": step, "ema": True})
    tensors, opt_doc = _optimizer_to_flat(optimizer)
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        tensors["rng.cuda"] = torch.cuda.get_rng_state()
    save_file(tensors, str(tmp / "optimizer.safetensors"))
    _write_json(tmp / "state.json", {
        "step": step, "optimizer": opt_doc, "sampler_rng": sampler_state, "scaler": scaler_state, **extra,
    })
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    _write_json(root / "latest.json", {"step": step, "folder": final.name})
    old = sorted(p for p in root.glob("step_*") if p.is_dir())
    for p in old[:-keep] if keep > 0 else []:
        shutil.rmtree(p, ignore_errors=True)
    return final


def latest_folder(folder: Path) -> Path | None:
    """The newest complete checkpoint folder of a run, or ``None`` when the run has none."""
    pointer = folder / "checkpoints" / "latest.json"
    if not pointer.exists():
        return None
    try:
        doc = json.loads(pointer.read_text())
    except json.JSONDecodeError as e:
        raise ResumeError(f"{pointer}: corrupt ({e})") from None
    path = pointer.parent / doc["folder"]
    if not (path / "state.json").exists():
        raise ResumeError(f"{path}: checkpoint folder named by {pointer} is incomplete")
    return path


def load_state(path: Path, model: torch.nn.Module, ema_model: torch.nn.Module | None, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """Restore model, EMA, optimiser and torch RNG from a checkpoint folder; returns ``state.json``."""
    doc = json.loads((path / "state.json").read_text())
    model.load_state_dict(load_checkpoint(path / "model").state_dict(), strict=True)
    if ema_model is not None and (path / "ema.json").exists():
        ema_model.load_state_dict(load_checkpoint(path / "ema").state_dict(), strict=True)
    tensors = load_file(str(path / "optimizer.safetensors"))
    _optimizer_from_flat(optimizer, tensors, doc["optimizer"])
    torch.set_rng_state(tensors["rng.torch"])
    if "rng.cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng.cuda"])
    return doc
