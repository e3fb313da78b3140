"""The cascade cache: what a cascade's splitter receives (mixture - vocals estimate) and its targets, per song."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from torch import nn

from stemwright.train.cascade_cache import CascadeCacheError, build_cascade_cache
from stemwright.train.validate import load_val_set

SR = 44100


class HalfVocals(nn.Module):
    """A stand-in vocals model: vocals = 0.5 x mixture (so the residue is half the instruments, half the voice)."""

    sources = ("vocals", "accompaniment")
    samplerate = SR
    audio_channels = 2
    segment = None

    def forward(self, mix: torch.Tensor) -> torch.Tensor:
        return torch.stack([0.5 * mix, 0.5 * mix], dim=1)


def _song(folder: Path, seed: int, stems=("drums", "bass", "other", "vocals")) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    out = {}
    for name in stems:
        x = (0.1 * rng.standard_normal((2, SR // 4))).astype(np.float32)
        sf.write(str(folder / f"{name}.wav"), x.T, SR, subtype="FLOAT")
        out[name] = x
    return out


def test_cache_holds_the_cascade_input_and_residual_rule_targets(tmp_path: Path) -> None:
    truth = _song(tmp_path / "songs" / "a", 1)
    records = build_cascade_cache(HalfVocals(), tmp_path / "songs", tmp_path / "cache", model_name="half")
    assert [r.name for r in records] == ["a"] and records[0].built
    cached = {n: sf.read(str(tmp_path / "cache" / "a" / f"{n}.wav"), dtype="float32")[0].T for n in ("drums", "bass", "other")}
    mixture = truth["drums"] + truth["bass"] + truth["other"] + truth["vocals"]
    np.testing.assert_array_equal(cached["drums"], truth["drums"])
    np.testing.assert_array_equal(cached["bass"], truth["bass"])
    # other = true other + vocal residue, so the cached stems sum to what the splitter receives
    np.testing.assert_allclose(cached["other"], truth["other"] + truth["vocals"] - 0.5 * mixture, atol=1e-6)
    items = load_val_set({"type": "synth", "path": str(tmp_path / "cache")}, SR, 2)
    np.testing.assert_allclose(items[0].mix, 0.5 * mixture, atol=1e-6)
    assert records[0].vocals_sdr is not None and records[0].vocals_sdr < 1.0


def test_rerun_keeps_finished_songs_and_skips_unfinished_ones(tmp_path: Path) -> None:
    _song(tmp_path / "songs" / "a", 1)
    _song(tmp_path / "songs" / ".b.part", 2)  # a song stemwright synth is still writing
    build_cascade_cache(HalfVocals(), tmp_path / "songs", tmp_path / "cache", model_name="half")
    before = (tmp_path / "cache" / "a" / "other.wav").stat().st_mtime_ns
    _song(tmp_path / "songs" / "c", 3)
    records = build_cascade_cache(HalfVocals(), tmp_path / "songs", tmp_path / "cache", model_name="half")
    assert [(r.name, r.built) for r in records] == [("a", False), ("c", True)]
    assert (tmp_path / "cache" / "a" / "other.wav").stat().st_mtime_ns == before
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["a", "c"]  # no temporary folder left


def test_song_without_vocals_is_refused(tmp_path: Path) -> None:
    _song(tmp_path / "songs" / "a", 1, stems=("drums", "bass", "other"))
    with pytest.raises(CascadeCacheError, match="no vocals stem"):
        build_cascade_cache(HalfVocals(), tmp_path / "songs", tmp_path / "cache", model_name="half")
    assert not (tmp_path / "cache").exists()
