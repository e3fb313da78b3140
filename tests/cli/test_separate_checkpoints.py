"""`stemwright separate -m PATH` with a checkpoint file of every supported family (issue 3's done-means).

The files are written by the reference packages (demucs .th, bs-roformer .ckpt + YAML) or by stemwright's own
format, with random weights; each run must write every stem at the input's length and rate.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from stemwright.cli.main import main
from tests.models.demucs_reference import reference_model as demucs_reference, save_th
from tests.models.tiny import TINY_HT
from tests.pretrained.roformer_files import write_pair

SR = 44100


@pytest.fixture()
def song(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    t = np.arange(int(2.5 * SR)) / SR
    x = 0.2 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(t.size)
    path = tmp_path / "song.wav"
    sf.write(path, np.stack([x, 0.8 * x]).T.astype(np.float32), SR, subtype="PCM_24")
    return path


def separate(song: Path, model: Path, out: Path) -> dict[str, np.ndarray]:
    assert main(["separate", str(song), "-m", str(model), "-o", str(out), "--quiet"]) == 0
    files = sorted((out / "song").glob("*.wav"))
    stems = {}
    for f in files:
        data, sr = sf.read(f, always_2d=True)
        assert sr == SR and data.shape == (int(2.5 * SR), 2), f
        stems[f.stem] = data
    return stems


def test_demucs_th_package(tmp_path, song, one_thread):
    from stemwright.models.htdemucs import HTDemucsConfig

    path = save_th(demucs_reference(HTDemucsConfig(**TINY_HT), seed=3), tmp_path / "ckpt", "abcd1234")
    stems = separate(song, path, tmp_path / "out")
    assert sorted(stems) == ["bass", "drums", "other", "vocals"]


@pytest.mark.parametrize("kind", ["bs", "mel"])
def test_roformer_ckpt_and_yaml(tmp_path, song, kind):
    ckpt, _ = write_pair(tmp_path / "ckpt", kind, target=None, instruments=["vocals", "other"])
    stems = separate(song, ckpt, tmp_path / "out")
    assert sorted(stems) == ["other", "vocals"]


def test_stemwright_checkpoint(tmp_path, song):
    import torch

    from stemwright.models.bsrnn import BSRNN, BSRNNConfig
    from stemwright.models.checkpoint import save_checkpoint

    torch.manual_seed(0)
    model = BSRNN(BSRNNConfig(sources=("vocals", "accompaniment"), n_fft=512, hop_length=256,
                              band_widths=(16,) * 16 + (1,), feature_dim=8, hidden_dim=8, num_layers=1, mlp_dim=16))
    meta = save_checkpoint(model, tmp_path / "ckpt" / "tiny", licence="test")
    stems = separate(song, meta, tmp_path / "out")
    assert sorted(stems) == ["accompaniment", "vocals"]
