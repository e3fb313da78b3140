"""The training configuration (a YAML file), validated with messages that name the file and field."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from stemwright.errors import StemwrightError
from stemwright.models.architectures import ARCHITECTURES, architecture_class
from stemwright.models.base import config_from_dict

from stemwright.train.augment import AugmentConfig
from stemwright.train.losses import LossConfig


class ConfigError(StemwrightError):
    """A training config is unreadable or has a bad field."""


@dataclass(frozen=True, kw_only=True)
class OptimConfig:
    lr: float = 1e-3
    weight_decay: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 200
    max_steps: int = 10000
    min_lr_ratio: float = 0.05  # cosine decay down to lr * min_lr_ratio
    grad_clip: float = 5.0
    ema_decay: float = 0.999
    amp: bool = True  # mixed precision (bfloat16/float16 autocast) on CUDA only

    def __post_init__(self) -> None:
        if self.lr <= 0 or self.max_steps <= 0 or self.warmup_steps < 0:
            raise ValueError("optim: lr and max_steps must be positive, warmup_steps >= 0")


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    architecture: str
    model: dict[str, Any]
    train_sets: tuple[dict[str, Any], ...]
    val_sets: tuple[dict[str, Any], ...] = ()
    segment: float = 3.0
    batch_size: int = 4
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    checkpoint_every: int = 200
    keep_checkpoints: int = 3
    val_every: int = 200
    log_every: int = 10
    export: dict[str, Any] | None = None
    seed: int = 0
    threads: int | None = None
    device: str = "auto"
    max_minutes: float | None = None
    out: str | None = None
    init_from: str | None = None  # stemwright checkpoint whose matching weights (same name and shape) start a new run
    source_path: str = ""

    def digest(self) -> str:
        doc = {"architecture": self.architecture, "model": self.model}
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


def _section(doc: dict, key: str, path: Path) -> dict:
    value = doc.get(key) or {}
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: field {key!r} must be a mapping")
    return value


def load_train_config(path: str | Path) -> TrainConfig:
    """Read and validate a training YAML. Relative dataset/export paths are relative to the current directory."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: training config not found")
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e})") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    export = doc.get("export")
    if export is not None:
        if not isinstance(export, dict):
            raise ConfigError(f"{path}: field 'export' must be a mapping")
        if "path" in export:
            # A path in a config resolved against the current folder once let a run from the repository root
            # overwrite the shipped weights; exports now go under the run folder or to an explicit --export path.
            raise ConfigError(f"{path}: field 'export.path' is not read from configs; use 'export.name' (written to "
                              "RUN/export/NAME) or pass an explicit export path")
    known = {"architecture", "config", "data", "augment", "loss", "optim", "checkpoint", "validation", "export",
             "seed", "threads", "device", "max_minutes", "out", "log_every", "init_from"}
    unknown = sorted(set(doc) - known)
    if unknown:
        raise ConfigError(f"{path}: unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    arch = doc.get("architecture")
    if arch not in ARCHITECTURES:
        raise ConfigError(f"{path}: field 'architecture' must be one of {', '.join(sorted(ARCHITECTURES))}, got {arch!r}")
    model_cfg = _section(doc, "config", path)
    try:
        config_from_dict(architecture_class(arch).config_class, model_cfg)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{path}: field 'config' is not a valid {arch} configuration: {e}") from None
    data = _section(doc, "data", path)
    train_sets = data.get("train") or []
    if not train_sets or not all(isinstance(s, dict) and "path" in s for s in train_sets):
        raise ConfigError(f"{path}: data.train must be a non-empty list of {{type, path}} entries")
    val = _section(doc, "validation", path)
    ckpt = _section(doc, "checkpoint", path)
    try:
        optim = _section(doc, "optim", path)
        if "betas" in optim:
            optim = {**optim, "betas": tuple(optim["betas"])}
        return TrainConfig(
            architecture=arch,
            model=_section(doc, "config", path),
            train_sets=tuple(train_sets),
            val_sets=tuple(val.get("sets") or ()),
            segment=float(data.get("segment", 3.0)),
            batch_size=int(data.get("batch_size", 4)),
            augment=AugmentConfig.from_dict(doc.get("augment")),
            loss=LossConfig.from_dict(doc.get("loss")),
            optim=OptimConfig(**optim),
            checkpoint_every=int(ckpt.get("every", 200)),
            keep_checkpoints=int(ckpt.get("keep", 3)),
            val_every=int(val.get("every", 200)),
            log_every=int(doc.get("log_every", 10)),
            export=doc.get("export"),
            seed=int(doc.get("seed", 0)),
            threads=doc.get("threads"),
            device=str(doc.get("device", "auto")),
            max_minutes=doc.get("max_minutes"),
            out=doc.get("out"),
            init_from=doc.get("init_from"),
            source_path=str(path),
        )
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{path}: {e}") from None
