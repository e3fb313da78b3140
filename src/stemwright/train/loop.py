"""The training loop: AdamW + linear warm-up + cosine decay, gradient clipping, EMA, AMP on CUDA, periodic
checkpoints (resumable), periodic validation SDR (CSV + PNG curve) and export of the best EMA weights."""
from __future__ import annotations

import csv
import dataclasses
import logging
import math
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import nn
from tqdm import tqdm

from stemwright.atomic import atomic_write_png
from stemwright.engine.device import resolve_device
from stemwright.errors import StemwrightError
from stemwright.models.architectures import architecture_class
from stemwright.models.base import config_from_dict
from stemwright.models.checkpoint import CheckpointError, checkpoint_paths, save_checkpoint
from stemwright.train.augment import RemixSampler
from stemwright.train.card import write_model_card
from stemwright.train.config import TrainConfig, load_train_config
from stemwright.train.data import load_songs
from stemwright.train.ema import EMA
from stemwright.train.losses import total_loss
from stemwright.train.state import ResumeError, latest_folder, load_state, save_state
from stemwright.train.validate import evaluate_model, load_val_set

log = logging.getLogger(__name__)


def build_model(architecture: str, config: dict[str, Any]) -> nn.Module:
    """Instantiate a registered architecture from a config mapping (validated by its config class)."""
    cls = architecture_class(architecture)
    return cls(config_from_dict(cls.config_class, config))


def init_weights(model: nn.Module, path: str | Path) -> tuple[list[str], list[str]]:
    """Copy the weights of a stemwright checkpoint whose names and shapes match (warm start / fine-tuning).

    Returns ``(loaded, skipped)`` parameter names; raises when nothing matches.
    """
    weights, _ = checkpoint_paths(path)
    if not weights.exists():
        raise CheckpointError(f"{weights}: init_from checkpoint not found")
    src = load_file(str(weights))
    own = model.state_dict()
    loaded = [k for k, v in src.items() if k in own and own[k].shape == v.shape]
    if not loaded:
        raise CheckpointError(f"{weights}: no weight matches the model (init_from)")
    model.load_state_dict({k: src[k] for k in loaded}, strict=False)
    skipped = sorted(set(own) - set(loaded))
    log.info("init_from %s: %d tensors loaded, %d left at their initialisation", weights, len(loaded), len(skipped))
    return loaded, skipped


def lr_at(step: int, cfg) -> float:
    """Linear warm-up to ``lr`` then cosine decay to ``lr * min_lr_ratio`` at ``max_steps``."""
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    frac = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * frac)))


def _append_csv(path: Path, row: dict[str, Any]) -> None:
    new = not path.exists()
    fields = list(row)
    if not new:
        with open(path, newline="") as f:
            header = next(csv.reader(f), None)
        if header:
            fields = header + [k for k in row if k not in header]
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        if new:
            w.writeheader()
        w.writerow(row)


def plot_curves(out: Path) -> Path | None:
    """``OUT/curves.png``: training loss and validation SDR against steps."""
    import matplotlib  # lazy: a 0.3-0.6 s import only plots need

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: see above

    def read(p: Path) -> list[dict[str, str]]:
        return list(csv.DictReader(open(p))) if p.exists() else []

    tr, va = read(out / "train_log.csv"), read(out / "val_log.csv")
    if not tr and not va:
        return None
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    if tr:
        steps, losses = [int(r["step"]) for r in tr], [float(r["loss"]) for r in tr]
        a1.plot(steps, losses, lw=0.6, alpha=0.4, label="logged batches")
        k = max(1, len(losses) // 20)  # moving average: single-batch losses are noisy
        smooth = [sum(losses[max(0, i - k + 1): i + 1]) / len(losses[max(0, i - k + 1): i + 1]) for i in range(len(losses))]
        a1.plot(steps, smooth, lw=1.5, label=f"mean of {k}")
        a1.legend(fontsize=7)
        a1.set(xlabel="step", ylabel="training loss", title="training loss", yscale="log")
    if va:
        keys = [k for k in va[0] if k not in ("step", "seconds") and va[0][k] != ""]
        for k in keys:
            a2.plot([int(r["step"]) for r in va], [float(r[k]) if r.get(k) else float("nan") for r in va], marker="o", label=k)
        a2.set(xlabel="step", ylabel="SDR (dB)", title="validation SDR (EMA weights)")
        a2.legend(fontsize=7)
    fig.tight_layout()
    return atomic_write_png(out / "curves.png", fig, dpi=100)


def _validate(model: nn.Module, sets: list[tuple[str, list]], device: torch.device) -> dict[str, float]:
    row: dict[str, float] = {}
    for name, items in sets:
        for k, v in evaluate_model(model, items, device).items():
            row[f"{name}/{k}"] = round(v, 4)
    avgs = [v for k, v in row.items() if k.endswith("/avg")]
    row["score"] = round(sum(avgs) / len(avgs), 4) if avgs else float("nan")
    return row


class ExportPathError(StemwrightError):
    """The export path would write into the installed stemwright package without being allowed to."""


def _package_dir() -> Path:
    return Path(__file__).resolve().parent.parent


def resolve_export_path(cfg: TrainConfig, out: Path, export_path: str | Path | None,
                        allow_package_export: bool = False) -> Path | None:
    """Where the best model is exported: ``export_path`` if given, else ``out/export/<export.name>``, else nowhere.

    A path inside the installed stemwright package (the shipped weights live there) is refused unless
    ``allow_package_export`` is true.
    """
    if export_path is not None:
        target = Path(export_path)
    elif cfg.export is not None:
        name = str(cfg.export.get("name") or Path(cfg.source_path).stem or "model")
        target = out / "export" / name
    else:
        return None
    resolved = target.resolve()
    if not allow_package_export and resolved.is_relative_to(_package_dir()):
        raise ExportPathError(f"{target}: export path is inside the installed stemwright package ({_package_dir()}); "
                              "refusing to overwrite shipped files unless package export is explicitly allowed")
    return target


def train(config_path: str | Path, *, out: str | Path | None = None, resume: bool = False,
          max_steps: int | None = None, max_minutes: float | None = None, init_from: str | Path | None = None,
          export_path: str | Path | None = None, allow_package_export: bool = False) -> Path:
    """Run (or resume) a training run; returns the output folder. Stops at ``max_steps``, after ``max_minutes``,
    or on SIGTERM/SIGINT, always leaving a resumable checkpoint.

    Everything is written under ``out``; the best model is also exported to ``export_path`` when given (else to
    ``out/export/<export.name>`` when the config has an ``export`` section). See :func:`resolve_export_path`.
    """
    cfg: TrainConfig = load_train_config(config_path)
    if init_from is not None:
        cfg = dataclasses.replace(cfg, init_from=str(init_from))
    out = Path(out or cfg.out or Path("runs") / Path(config_path).stem)
    export_to = resolve_export_path(cfg, out, export_path, allow_package_export)
    latest = latest_folder(out) if out.exists() else None
    if latest is not None and not resume:
        raise ResumeError(f"{out}: already holds a training run (step folder {latest.name}); pass --resume to continue it or choose another --out")
    if resume and latest is None:
        log.warning("%s: nothing to resume, starting a new run", out)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.architecture, cfg.model)
    if cfg.init_from and not (resume and latest is not None):
        init_weights(model, cfg.init_from)
    model = model.to(device)
    ema = EMA(model, cfg.optim.ema_decay)
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.dim() < 2 else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.optim.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=cfg.optim.lr, betas=cfg.optim.betas)
    use_amp = cfg.optim.amp and device.type == "cuda"
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)

    pools = [(load_songs(spec), float(spec.get("weight", 1.0))) for spec in cfg.train_sets]
    sampler = RemixSampler(pools, sources=tuple(model.sources), samplerate=model.samplerate, channels=model.audio_channels,
                           segment_frames=int(cfg.segment * model.samplerate), augment=cfg.augment, seed=cfg.seed)
    val_sets = [(spec.get("name", Path(spec["path"]).name), load_val_set(spec, model.samplerate, model.audio_channels)) for spec in cfg.val_sets]
    step, best = 0, -float("inf")
    if latest is not None and resume:
        state = load_state(latest, model, ema.model, opt)
        step, best = int(state["step"]), float(state.get("best_score", -float("inf")))
        sampler.set_state(state["sampler_rng"])
        if state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        if state.get("config_digest") not in (None, cfg.digest()):
            raise ResumeError(f"{latest}: was trained with another architecture/model config than {config_path}")
        log.info("resumed %s at step %d", latest, step)
    total_steps = min(cfg.optim.max_steps, max_steps) if max_steps else cfg.optim.max_steps
    deadline = time.monotonic() + 60 * (max_minutes or cfg.max_minutes or 1e9)
    stop = {"flag": False}

    def _stop(signum, frame):  # noqa: ARG001
        stop["flag"] = True

    old = {s: signal.signal(s, _stop) for s in (signal.SIGTERM, signal.SIGINT)} if _main_thread() else {}

    def checkpoint() -> None:
        save_state(out, step=step, model=model, ema_model=ema.model, optimizer=opt, sampler_state=sampler.get_state(),
                   scaler_state=scaler.state_dict() if scaler.is_enabled() else None,
                   extra={"best_score": best, "config_digest": cfg.digest(), "config_file": str(config_path)},
                   keep=cfg.keep_checkpoints)

    try:
        bar = tqdm(total=total_steps, initial=step, desc="train", unit="step", disable=None)
        t0, last_saved = time.monotonic(), step
        while step < total_steps and not stop["flag"] and time.monotonic() < deadline:
            model.train()
            lr = lr_at(step, cfg.optim)
            for g in opt.param_groups:
                g["lr"] = lr
            mix, ref = sampler.batch(cfg.batch_size)
            mix, ref = mix.to(device), ref.to(device)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
                est = model(mix)
            loss, parts = total_loss(est.float(), ref, cfg.loss)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite loss at step {step}; lower optim.lr or check the data")
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
            gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
            scaler.step(opt)
            scaler.update()
            ema.update(model, step)
            step += 1
            bar.update(1)
            if step % cfg.log_every == 0 or step == 1:
                _append_csv(out / "train_log.csv", {"step": step, "loss": round(float(loss.detach()), 6), **{k: round(v, 6) for k, v in parts.items()},
                                                     "grad_norm": round(float(gnorm), 4), "lr": lr,
                                                     "sec_per_step": round((time.monotonic() - t0) / max(1, step - last_saved), 3)})
                bar.set_postfix(loss=f"{float(loss.detach()):.4f}")
            if val_sets and step % cfg.val_every == 0:
                best = _after_validation(cfg, out, export_to, step, ema.model, val_sets, device, best)
            if step % cfg.checkpoint_every == 0:
                checkpoint()
        bar.close()
        checkpoint()
        if val_sets and step % cfg.val_every != 0 and step >= total_steps:
            best = _after_validation(cfg, out, export_to, step, ema.model, val_sets, device, best)
            checkpoint()
        plot_curves(out)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    log.info("stopped at step %d (best validation score %.3f dB)", step, best)
    return out


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _after_validation(cfg: TrainConfig, out: Path, export_to: Path | None, step: int, model: nn.Module, val_sets, device, best: float) -> float:
    t = time.monotonic()
    row = _validate(model, val_sets, device)
    _append_csv(out / "val_log.csv", {"step": step, **row, "seconds": round(time.monotonic() - t, 1)})
    plot_curves(out)
    log.info("step %d validation %s", step, row)
    score = row["score"]
    if score > best:
        best = score
        training = {"steps": step, "config_file": cfg.source_path, "train_sets": list(cfg.train_sets),
                    "segment_s": cfg.segment, "batch_size": cfg.batch_size, "ema_decay": cfg.optim.ema_decay,
                    "init_from": cfg.init_from}
        save_checkpoint(model, out / "best", training=training, metrics={"validation_sdr": row, "step": step},
                        licence=(cfg.export or {}).get("licence", "unspecified"))
        if export_to is not None:
            extra = {k: v for k, v in (cfg.export or {}).items() if k not in ("name", "licence", "title")}
            save_checkpoint(model, export_to, licence=(cfg.export or {}).get("licence", "unspecified"),
                            training={**training, **extra.get("training", {})},
                            metrics={"validation_sdr": row, "step": step}, extra={k: v for k, v in extra.items() if k != "training"})
            card = write_model_card(export_to, title=(cfg.export or {}).get("title"))
            for f in (*checkpoint_paths(export_to), card):
                os.chmod(f, 0o644)  # package data: world-readable (temp files are created 0600)
            log.info("exported best model (score %.3f dB) to %s", score, export_to)
    return best
