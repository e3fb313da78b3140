"""Writing community-layout RoFormer files (``.ckpt`` + YAML) from the reference ``bs-roformer`` package, with random
weights; used by the format tests and the CLI's checkpoint tests."""
from __future__ import annotations

import warnings
from pathlib import Path

import torch
import yaml

from tests.reference import require

SR = 44100
HOP = 128
BANDS = (2,) * 16 + (8,) * 12 + (32,) * 3 + (33,)  # 257 bins for n_fft 512


def model_section(kind: str, num_stems: int) -> dict:
    """The ``model:`` section as the training repositories write it (constructor keyword arguments)."""
    section = dict(dim=16, depth=2, stereo=True, num_stems=num_stems, time_transformer_depth=1,
                   freq_transformer_depth=1, dim_head=8, heads=2, attn_dropout=0.0, ff_dropout=0.0, flash_attn=True,
                   dim_freqs_in=257, stft_n_fft=512, stft_hop_length=HOP, stft_win_length=512,
                   stft_normalized=False, mask_estimator_depth=2, multi_stft_resolution_loss_weight=1.0,
                   multi_stft_resolutions_window_sizes=(4096, 2048, 1024, 512, 256), multi_stft_hop_size=147,
                   multi_stft_normalized=False)
    if kind == "bs":
        section["freqs_per_bands"] = BANDS  # a tuple: yaml.dump writes it as !!python/tuple, as in the wild
    else:
        section.update(num_bands=12, sample_rate=SR, mask_estimator_depth=1)
    return section


def reference_model(kind: str, section: dict) -> torch.nn.Module:
    bs_roformer = require("bs_roformer")
    kwargs = {k: v for k, v in section.items() if k != "dim_freqs_in" or kind == "bs"}
    torch.manual_seed(7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cls = bs_roformer.BSRoformer if kind == "bs" else bs_roformer.MelBandRoformer
        return cls(**kwargs).eval()


def write_pair(folder: Path, kind: str, *, target: str | None, instruments: list[str], name: str = "model",
               wrap: bool = False, **model_overrides) -> tuple[Path, torch.nn.Module]:
    num_stems = 1 if target else len(instruments)
    section = {**model_section(kind, num_stems), **model_overrides}
    ref = reference_model(kind, model_section(kind, num_stems))
    state = ref.state_dict()
    if wrap:  # Lightning-style container with a prefix
        state = {"state_dict": {f"model.{k}": v for k, v in state.items()}, "epoch": 3}
    folder.mkdir(parents=True, exist_ok=True)
    ckpt = folder / f"{name}.ckpt"
    torch.save(state, ckpt)
    doc = {
        "audio": {"chunk_size": 40 * HOP * 10, "dim_f": 256, "dim_t": 401, "hop_length": HOP, "n_fft": 512,
                  "num_channels": 2, "sample_rate": SR, "min_mean_abs": 0.0},
        "model": section,
        "training": {"batch_size": 2, "instruments": instruments, "target_instrument": target, "lr": 5e-5},
        "inference": {"batch_size": 1, "dim_t": 401, "num_overlap": 4},
    }
    (folder / f"{name}.yaml").write_text(yaml.dump(doc, sort_keys=False))
    return ckpt, ref
