"""Train only the correction heads of a ``classic_refiner`` on cached trunk features (the 6-stem splitter's recipe).

Why: on a 2-core CPU shared by many jobs a full training step of the splitter (classic prior + BiLSTM trunk, forward
and backward) took ~30 s of wall time, so an hour gives ~120 steps. The 6-stem splitter keeps the 4-stem splitter's
trunk (``--init``: same names and shapes, see models/refiner.py) frozen and learns the per-band heads only: the trunk
and the prior run once per song (cached), and a head step is a few per-band MLPs on the cached features.

Per song (the mixture is the exact sum of its stems ``T_s``): the mixture STFT ``X``, the trunk features ``z`` and, per
masked source ``s``, what the heads must add to the prior, ``R_s = T_s - P_s`` (all in the model's STFT). A head step
predicts ``D_s`` and minimises the complex L1 of ``D_s X - R_s`` over the masked sources plus that of their sum (the
complement source's error is minus the sum of the others'). Selection: spectral SDR (``10 log10 |T|^2 / |err|^2``,
global per song, averaged over songs where the stem is present, then over stems) on the validation songs; the best
heads are written as a stemwright checkpoint (safetensors + JSON) and scored again on waveforms with the training's
validation (:func:`stemwright.train.validate.evaluate_model`).

Resumable: every ``--val-every`` steps the run writes a checkpoint folder (``OUT/checkpoints``, the training loop's
format: model with its heads, optimiser, step, sampler RNG) and the best heads so far (``OUT/best_heads.safetensors``);
``--resume`` continues from there exactly (the caches are rebuilt from the same songs, deterministically) and
``--minutes`` bounds each leg. The 4-stem splitter fine-tuned on the cascade's input (issue 28):
``--config configs/splitter3_cascade.yaml --init src/stemwright/pretrained/weights/stemwright_4stem_splitter
--train /work/data-28c/cache/train --val /work/data-28c/cache/val /work/data-28c/cache/musdb18-excerpts``.

Usage::

    OMP_NUM_THREADS=1 PYTHONPATH=src python scripts/train_heads.py --config configs/splitter6_novocals.yaml \\
        --init src/stemwright/pretrained/weights/stemwright_4stem_splitter --train /work/data-28/train \\
        --val /work/data-28/val /work/data-28/valrock --out /work/runs-28/heads --minutes 40
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from stemwright.audio.io import read_audio
from stemwright.dsp.stft import stft
from stemwright.models.base import config_from_dict
from stemwright.models.checkpoint import save_checkpoint
from stemwright.models.refiner import ClassicRefiner, ClassicRefinerConfig
from safetensors.torch import load_file, save_file

from stemwright.train.loop import init_weights
from stemwright.train.state import ResumeError, latest_folder, load_state, save_state
from stemwright.train.validate import evaluate_model, load_val_set

log = logging.getLogger("train_heads")


def song_dirs(roots: list[Path]) -> list[Path]:
    return [p for r in roots for p in sorted(r.iterdir()) if p.is_dir() and not p.name.startswith(".")]


@torch.no_grad()
def cache_song(model: ClassicRefiner, folder: Path, seconds: float) -> dict[str, torch.Tensor]:
    """Features, mixture STFT and the heads' targets of one song (first ``seconds``). Shapes: ``z (K, N, D)``,
    ``x (C, F, N)`` complex, ``r (S', C, F, N)`` complex, ``energy (S,)`` of the target spectrograms."""
    n = int(seconds * model.samplerate)
    stems = {s: torch.from_numpy(read_audio(folder / f"{s}.wav").samples[:, :n].astype(np.float32)) for s in model.sources}
    # whole STFT hops: the model pads its input to whole hops (dsp.stft.pad_to_whole_hops), the targets' STFT must
    # have as many frames as its prior
    hop = model.config.stft.hop_length
    n = min(x.shape[1] for x in stems.values()) // hop * hop
    stems = {s: x[:, :n] for s, x in stems.items()}
    mix = sum(stems.values())[None]
    (spec_ri, masks), ctx = model.prepare(mix)
    z = model.features(spec_ri, masks)[0]
    x = torch.view_as_complex(spec_ri[0].contiguous())
    masked = model.config.masked_sources
    targets = {s: stft(stems[s][None], model.config.stft, window=model.window)[0] for s in model.sources}
    r = torch.stack([targets[s] - ctx["prior"][0, i] for i, s in enumerate(masked)]).to(torch.complex32)
    energy = torch.tensor([float(targets[s].abs().square().sum()) for s in model.sources])
    return {"z": z.half(), "x": x.to(torch.complex32), "r": r, "energy": energy}  # half precision: memory


def _window(item: dict[str, torch.Tensor], start: int, frames: int) -> tuple[torch.Tensor, ...]:
    """``z (K, N', D)``, ``x (C, F, N')``, ``r (S', C, F, N')`` of frames ``start:start+frames``, in float32."""
    sl = slice(start, start + frames)
    return item["z"][:, sl].float(), item["x"][..., sl].to(torch.complex64), item["r"][..., sl].to(torch.complex64)


def _errors(model: ClassicRefiner, z: torch.Tensor, x: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """Error spectrograms of every source (masked ones, then their negated sum for the complement), in the model's
    source order. Shapes: ``z (B, K, N, D)``, ``x (B, C, F, N)``, ``r (B, S', C, F, N)`` -> ``(B, S, C, F, N)``."""
    b, c, _, n = x.shape
    d = torch.view_as_complex(model._decode(z, model.delta_heads, b, c, n).contiguous())  # (B, S', C, F, N)
    err = d * x[:, None] - r
    masked = model.config.masked_sources
    out = [None] * len(model.sources)
    for i, s in enumerate(masked):
        out[model.sources.index(s)] = err[:, i]
    out[model.sources.index(model.config.complement_source)] = -err.sum(1)
    return torch.stack(out, dim=1)


def spectral_sdr(model: ClassicRefiner, items: list[dict[str, torch.Tensor]]) -> dict[str, float]:
    """Mean over songs (where the stem is present) of ``10 log10 |T|^2 / |err|^2`` per source, and ``avg``."""
    scores: dict[str, list[float]] = {}
    with torch.no_grad():
        for it in items:
            z, x, r = _window(it, 0, it["z"].shape[1])
            err = _errors(model, z[None], x[None], r[None])[0]
            for i, s in enumerate(model.sources):
                if it["energy"][i] > 1e-3:
                    scores.setdefault(s, []).append(10 * math.log10(float(it["energy"][i]) / (float(err[i].abs().square().sum()) + 1e-9)))
    out = {s: float(np.mean(v)) for s, v in scores.items()}
    out["avg"] = float(np.mean(list(out.values())))
    return out


def keep_the_better_heads(model: ClassicRefiner, val: list[dict[str, torch.Tensor]], start: dict[str, torch.Tensor],
                          score: dict[str, float]) -> tuple[dict[str, float], list[str]]:
    """Per masked source, put its head back at its starting weights (for guitar/piano: the even share of classic's
    other; for drums/bass: the warm start) when that raises the validation average; greedy, sources in order."""
    reset = []
    for i, name in enumerate(model.config.masked_sources):
        kept = {k: v.clone() for k, v in model.delta_heads.state_dict().items()}
        model.delta_heads[i].load_state_dict({k.split(".", 1)[1]: v for k, v in start.items() if k.split(".")[0] == str(i)})
        trial = spectral_sdr(model, val)
        log.info("%s head at its start: %s", name, {k: round(v, 2) for k, v in trial.items()})
        if trial["avg"] > score["avg"]:
            score, reset = trial, [*reset, name]
        else:
            model.delta_heads.load_state_dict(kept)
    return score, reset


def _save_best(out: Path, heads: dict[str, torch.Tensor]) -> None:
    """The best heads so far, written to a temporary name and renamed (a resumed run starts its choice from them)."""
    tmp = out / ".best_heads.safetensors.part"
    save_file({k: v.contiguous() for k, v in heads.items()}, str(tmp))
    tmp.replace(out / "best_heads.safetensors")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", type=Path, required=True, help="training config (its `config` section and `export`)")
    ap.add_argument("--init", type=Path, required=True, help="checkpoint whose matching weights start the model")
    ap.add_argument("--train", type=Path, nargs="*", default=[])
    ap.add_argument("--heads-from", type=Path, help="start from the heads of this checkpoint (e.g. a finished run's "
                    "best, with --max-steps 0 to redo only the per-stem choice below)")
    ap.add_argument("--val", type=Path, nargs="+", required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seconds", type=float, default=20.0, help="seconds of each song cached")
    ap.add_argument("--frames", type=int, default=128, help="STFT frames per training window")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--max-steps", type=int, default=100000)
    ap.add_argument("--val-every", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--stop-at", type=int, help="end this leg at this step (the schedule still runs to --max-steps; "
                    "continue with --resume)")
    ap.add_argument("--resume", action="store_true", help="continue the run in --out from its latest checkpoint")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    doc = yaml.safe_load(args.config.read_text())
    model = ClassicRefiner(config_from_dict(ClassicRefinerConfig, dict(doc["config"]))).eval()
    loaded, skipped = init_weights(model, args.init)
    log.info("init %s: %d tensors loaded, %d new", args.init, len(loaded), len(skipped))
    init_heads = {k: v.clone() for k, v in model.delta_heads.state_dict().items()}
    if args.heads_from:
        init_weights(model, args.heads_from)  # its trunk is the same frozen warm start
    latest = latest_folder(args.out) if args.out.is_dir() else None
    if latest is not None and not args.resume:
        raise ResumeError(f"{args.out}: holds a run already (--resume, or another --out)")
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    train = [cache_song(model, p, args.seconds) for p in song_dirs(args.train)]
    val = [cache_song(model, p, args.seconds) for p in song_dirs(args.val)]
    log.info("cached %d train / %d val songs in %.0f s", len(train), len(val), time.monotonic() - t0)
    for p in model.parameters():
        p.requires_grad_(False)
    params = list(model.delta_heads.parameters())
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0)
    rng = np.random.default_rng(args.seed)
    step = 0
    if latest is not None:
        doc = load_state(latest, model, None, opt)
        step, best, best_step, history = int(doc["step"]), doc["best"], int(doc["best_step"]), doc["history"]
        rng.bit_generator.state = doc["sampler_rng"]
        best_state = load_file(str(args.out / "best_heads.safetensors"))
        log.info("resumed at step %d from %s (best so far: step %d, %.2f dB)", step, latest, best_step, best["avg"])
    else:
        best, best_step, history = spectral_sdr(model, val), 0, []
        log.info("step 0 (init) val %s", {k: round(v, 2) for k, v in best.items()})
        history.append({"step": 0, **best})
        best_state = {k: v.clone() for k, v in model.delta_heads.state_dict().items()}
        _save_best(args.out, best_state)
    deadline = time.monotonic() + 60 * args.minutes  # training time of this leg, after the caching
    stop = min(args.max_steps, args.stop_at or args.max_steps)
    while step < stop and time.monotonic() < deadline:
        lr = args.lr * min(1.0, (step + 1) / 50) * 0.5 * (1 + math.cos(math.pi * min(1.0, step / args.max_steps)))
        for g in opt.param_groups:
            g["lr"] = lr
        windows = []
        for _ in range(args.batch):
            it = train[rng.integers(len(train))]
            windows.append(_window(it, int(rng.integers(0, max(1, it["z"].shape[1] - args.frames))), args.frames))
        err = _errors(model, *(torch.stack(parts) for parts in zip(*windows)))
        loss = err.real.abs().mean() + err.imag.abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()
        step += 1
        if step % args.val_every == 0:
            score = spectral_sdr(model, val)
            history.append({"step": step, "loss": float(loss), **score})
            log.info("step %d loss %.5f val %s", step, float(loss), {k: round(v, 2) for k, v in score.items()})
            if score["avg"] > best["avg"]:
                best, best_step = score, step
                best_state = {k: v.clone() for k, v in model.delta_heads.state_dict().items()}
                _save_best(args.out, best_state)
            (args.out / "history.json").write_text(json.dumps(history, indent=1))
            save_state(args.out, step=step, model=model, ema_model=None, optimizer=opt,
                       sampler_state=rng.bit_generator.state, scaler_state=None,
                       extra={"best": best, "best_step": best_step, "history": history}, keep=2)
    model.delta_heads.load_state_dict(best_state)
    log.info("best step %d: %s", best_step, {k: round(v, 2) for k, v in best.items()})
    best, reset = keep_the_better_heads(model, val, init_heads, best)
    log.info("heads back at their start (validation): %s -> %s", reset, {k: round(v, 2) for k, v in best.items()})
    waveform = {}
    for root in args.val:
        items = load_val_set({"type": "synth", "path": str(root), "max_seconds": 12}, model.samplerate, model.audio_channels)
        waveform[root.name] = {k: round(v, 2) for k, v in evaluate_model(model, items).items()}
    log.info("waveform validation SDR (global, first 12 s): %s", waveform)
    export = doc.get("export", {})
    training = {**export.get("training", {}), "steps": step, "best_step": best_step, "recipe": "heads only on cached "
                f"trunk features (scripts/train_heads.py), batch {args.batch} x {args.frames} frames, lr {args.lr}",
                "init": str(args.init), "config_file": str(args.config),
                "heads_reset_to_start": reset, "heads_from": str(args.heads_from) if args.heads_from else None}
    save_checkpoint(model, args.out / "best", licence=export.get("licence", "unspecified"), training=training,
                    metrics={"val_spectral_sdr": best, "val_waveform_sdr": waveform})
    (args.out / "history.json").write_text(json.dumps(history, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
