"""scripts/train_heads.py: a run that stops and resumes ends exactly where an uninterrupted run ends."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import yaml
from safetensors.torch import load_file

from stemwright.models.base import config_from_dict
from stemwright.models.checkpoint import save_checkpoint
from stemwright.models.refiner import ClassicRefiner, ClassicRefinerConfig

ROOT = Path(__file__).resolve().parents[2]
SR = 44100
CONFIG = {
    "sources": ["drums", "bass", "other"], "samplerate": SR, "audio_channels": 2, "n_fft": 2048, "hop_length": 1024,
    "band_widths": [6, 6, 5, 6, 6, 6, 6, 5, 12, 12, 11, 12, 23, 23, 24, 23, 46, 47, 46, 47, 92, 93, 93, 93, 186, 96],
    "complement_source": "other", "feature_dim": 8, "hidden_dim": 8, "num_layers": 1, "mlp_dim": 8, "segment": 4.0,
}


def _songs(root: Path, n: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    for i in range(n):
        song = root / f"s{i}"
        song.mkdir(parents=True)
        for stem in ("drums", "bass", "other"):
            sf.write(str(song / f"{stem}.wav"), (0.1 * rng.standard_normal((int(1.3 * SR), 2))).astype(np.float32), SR,
                     subtype="FLOAT")
    return root


def _run(tmp: Path, out: Path, *extra: str) -> None:
    cmd = [sys.executable, str(ROOT / "scripts" / "train_heads.py"), "--config", str(tmp / "cfg.yaml"), "--init",
           str(tmp / "init"), "--train", str(tmp / "train"), "--val", str(tmp / "val"), "--out", str(out),
           "--seconds", "1.3", "--frames", "16", "--batch", "2", "--val-every", "2", *extra]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]


def test_stopped_and_resumed_run_equals_the_uninterrupted_one(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = ClassicRefiner(config_from_dict(ClassicRefinerConfig, CONFIG))
    for p in model.delta_heads.parameters():  # non-zero heads, so the steps move them
        torch.nn.init.normal_(p, std=0.05)
    save_checkpoint(model, tmp_path / "init", licence="test")
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump({"architecture": "classic_refiner", "config": CONFIG}))
    _songs(tmp_path / "train", 2, 1), _songs(tmp_path / "val", 1, 2)
    _run(tmp_path, tmp_path / "straight", "--max-steps", "4")
    _run(tmp_path, tmp_path / "legs", "--max-steps", "4", "--stop-at", "2")
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "train_heads.py"), "--config", str(tmp_path / "cfg.yaml"),
                        "--init", str(tmp_path / "init"), "--val", str(tmp_path / "val"), "--out", str(tmp_path / "legs")],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode != 0 and "holds a run already" in r.stderr  # a finished run is not overwritten by mistake
    _run(tmp_path, tmp_path / "legs", "--max-steps", "4", "--resume")
    a = load_file(str(tmp_path / "straight" / "checkpoints" / "step_0000004" / "model.safetensors"))
    b = load_file(str(tmp_path / "legs" / "checkpoints" / "step_0000004" / "model.safetensors"))
    heads = [k for k in a if k.startswith("delta_heads.")]
    assert heads and all(torch.equal(a[k], b[k]) for k in a)
    start = model.state_dict()
    assert any(not torch.equal(a[k], start[k]) for k in heads)  # it trained
