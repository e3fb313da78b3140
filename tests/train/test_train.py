"""Training pipeline: a tiny run on tiny generated songs lowers the loss, writes checkpoints that `stemwright separate
-m` loads, and resumes exactly where it stopped."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from stemwright.models.checkpoint import load_checkpoint
from stemwright.train.augment import AugmentConfig, RemixSampler
from stemwright.train.config import ConfigError, load_train_config
from stemwright.train.data import load_songs
from stemwright.train.loop import lr_at, train
from stemwright.train.state import ResumeError

SR = 8000


def _song(folder: Path, seed: int, seconds: float = 3.0) -> None:
    """A tiny song in the MUSDB layout: sine 'bass', noise-burst 'drums', square 'other', vibrato 'vocals'."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    f0 = rng.uniform(50, 90)
    bass = 0.3 * np.sin(2 * np.pi * f0 * t)
    env = np.exp(-30 * (t % 0.5))
    drums = 0.3 * env * rng.standard_normal(t.size)
    other = 0.1 * np.sign(np.sin(2 * np.pi * rng.uniform(300, 600) * t))
    vocals = 0.2 * np.sin(2 * np.pi * rng.uniform(200, 400) * t + 3 * np.sin(2 * np.pi * 5 * t))
    folder.mkdir(parents=True)
    stems = {"bass": bass, "drums": drums, "other": other, "vocals": vocals}
    for name, x in stems.items():
        sf.write(folder / f"{name}.wav", np.stack([x, 0.8 * x], 1).astype(np.float32), SR, subtype="FLOAT")
    sf.write(folder / "mixture.wav", np.stack([sum(stems.values())] * 2, 1).astype(np.float32), SR, subtype="FLOAT")


@pytest.fixture(scope="module")
def songs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("songs")
    for i in range(3):
        _song(root / f"song{i}", i)
    return root


def _config(tmp: Path, songs: Path, **over) -> Path:
    doc = {
        "architecture": "bsrnn",
        "config": {"sources": ["vocals", "drums", "bass", "other"], "samplerate": SR, "n_fft": 256, "hop_length": 128,
                   "band_widths": [8, 8, 16, 32, 65], "feature_dim": 8, "hidden_dim": 8, "num_layers": 1, "mlp_dim": 16,
                   "segment": 1.0},
        "data": {"segment": 0.5, "batch_size": 2, "train": [{"type": "synth", "path": str(songs)}]},
        "augment": {"speed_prob": 0.2},
        "loss": {"l1": 1.0, "mrstft": 0.5, "resolutions": [[256, 64]]},
        "optim": {"lr": 0.01, "warmup_steps": 2, "max_steps": 30, "ema_decay": 0.9},
        "checkpoint": {"every": 4, "keep": 2},
        "validation": {"every": 30, "sets": [{"name": "val", "type": "musdb", "path": str(songs), "max_items": 1, "max_seconds": 1.0}]},
        "seed": 0,
        "threads": 1,
        "device": "cpu",
    }
    for k, v in over.items():
        doc[k] = {**doc[k], **v} if isinstance(v, dict) and isinstance(doc.get(k), dict) else v
    path = tmp / "cfg.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _losses(out: Path) -> list[float]:
    import csv

    return [float(r["loss"]) for r in csv.DictReader(open(out / "train_log.csv"))]


def test_short_run_lowers_loss_and_writes_loadable_checkpoint(tmp_path, songs):
    cfg = _config(tmp_path, songs, log_every=1, export={"licence": "test"})
    out = train(cfg, out=tmp_path / "run", export_path=tmp_path / "exported" / "tiny")
    losses = _losses(out)
    assert len(losses) == 30
    assert np.mean(losses[-5:]) < 0.85 * np.mean(losses[:5])
    assert (out / "curves.png").stat().st_size > 1000
    rows = list(open(out / "val_log.csv"))
    assert len(rows) == 2 and "val/vocals" in rows[0] and "val/accompaniment" in rows[0]
    best = load_checkpoint(out / "best")
    assert best.sources == ("vocals", "drums", "bass", "other")
    meta = json.loads((tmp_path / "exported" / "tiny.json").read_text())
    assert meta["training"]["steps"] == 30 and "validation_sdr" in meta["metrics"]
    card = (tmp_path / "exported" / "tiny.md").read_text()
    assert "Training steps: 30" in card and "val/vocals" in card and "<!-- measured -->" in card
    # `stemwright separate -m PATH` loads the exported checkpoint and writes four stems.
    from stemwright.cli.main import main

    mix = tmp_path / "mix.wav"
    sf.write(mix, np.random.default_rng(0).standard_normal((SR, 2)).astype(np.float32) * 0.1, SR)
    code = main(["separate", str(mix), "-m", str(tmp_path / "exported" / "tiny.json"), "-o", str(tmp_path / "sep")])
    assert code == 0
    written = sorted(p.name for p in (tmp_path / "sep").rglob("*.wav"))
    assert written == ["bass.wav", "drums.wav", "other.wav", "vocals.wav"]


def test_resume_continues_exactly(tmp_path, songs):
    cfg = _config(tmp_path, songs, optim={"max_steps": 8}, validation={"every": 100, "sets": []})
    straight = train(cfg, out=tmp_path / "a")
    train(cfg, out=tmp_path / "b", max_steps=4)
    with pytest.raises(ResumeError, match="--resume"):
        train(cfg, out=tmp_path / "b")
    resumed = train(cfg, out=tmp_path / "b", resume=True)
    sa = json.loads((straight / "checkpoints" / "latest.json").read_text())
    sb = json.loads((resumed / "checkpoints" / "latest.json").read_text())
    assert sa["step"] == sb["step"] == 8
    a = load_checkpoint(straight / "checkpoints" / sa["folder"] / "ema").state_dict()
    b = load_checkpoint(resumed / "checkpoints" / sb["folder"] / "ema").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert _losses(straight)[-1] == pytest.approx(_losses(resumed)[-1], rel=1e-6)


def test_sampler_mixture_is_sum_of_stems_and_remixes(songs):
    pools = [(load_songs({"type": "synth", "path": str(songs)}), 1.0)]
    sampler = RemixSampler(pools, sources=("vocals", "accompaniment"), samplerate=16000, channels=2, segment_frames=4000,
                           augment=AugmentConfig(speed_prob=0.5), seed=1)
    mix, stems = sampler.batch(3)
    assert mix.shape == (3, 2, 4000) and stems.shape == (3, 2, 2, 4000)
    assert torch.allclose(mix, stems.sum(1), atol=1e-6)
    assert stems.abs().amax() > 0.01


def test_config_errors_name_file_and_field(tmp_path, songs):
    bad = _config(tmp_path, songs, architecture="nope")
    with pytest.raises(ConfigError, match="cfg.yaml: field 'architecture'"):
        load_train_config(bad)
    bad = _config(tmp_path, songs, optim={"lr": -1})
    with pytest.raises(ConfigError, match="optim"):
        load_train_config(bad)
    bad = _config(tmp_path, songs, augment={"polarity": 2})
    with pytest.raises(ConfigError, match="augment.polarity"):
        load_train_config(bad)
    bad = _config(tmp_path, songs, config={"band_widths": [1, 2]})
    with pytest.raises(ConfigError, match="cfg.yaml: field 'config' is not a valid bsrnn configuration: .*band_widths sum to 3"):
        load_train_config(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_train_config(tmp_path / "missing.yaml")


def test_lr_schedule_warmup_then_cosine():
    from stemwright.train.config import OptimConfig

    cfg = OptimConfig(lr=1.0, warmup_steps=10, max_steps=110, min_lr_ratio=0.1)
    assert lr_at(0, cfg) == pytest.approx(0.1)
    assert lr_at(9, cfg) == pytest.approx(1.0)
    assert lr_at(60, cfg) == pytest.approx(0.55)
    assert lr_at(110, cfg) == pytest.approx(0.1)


def test_init_from_copies_matching_weights(tmp_path):
    from stemwright.models.bsrnn import BSRNN, BSRNNConfig
    from stemwright.models.checkpoint import save_checkpoint
    from stemwright.train.loop import init_weights

    base = dict(samplerate=SR, n_fft=256, hop_length=128, band_widths=(64, 65), feature_dim=8, hidden_dim=8, num_layers=1, mlp_dim=8)
    torch.manual_seed(0)
    four = BSRNN(BSRNNConfig(sources=("vocals", "drums", "bass", "other"), **base))
    save_checkpoint(four, tmp_path / "four")
    torch.manual_seed(1)
    comp = BSRNN(BSRNNConfig(sources=("vocals", "drums", "bass", "other"), complement_source="other", **base))
    loaded, skipped = init_weights(comp, tmp_path / "four")
    assert not skipped and len(loaded) == len(comp.state_dict())
    assert torch.equal(comp.heads[2][1].fc2.weight, four.heads[2][1].fc2.weight)
    other = BSRNN(BSRNNConfig(sources=("vocals",), **{**base, "feature_dim": 4, "hidden_dim": 4, "mlp_dim": 4, "band_widths": (129,)}))
    with pytest.raises(ValueError, match="no weight matches"):
        init_weights(other, tmp_path / "four")


def test_validation_sdr_is_the_mdx_sdr():
    from stemwright.train.validate import sdr

    rng = np.random.default_rng(0)
    ref = rng.standard_normal((2, 1000))
    assert sdr(ref, ref + 0.1 * ref) == pytest.approx(20.0, abs=1e-6)
    assert sdr(ref, np.zeros_like(ref)) == pytest.approx(0.0, abs=1e-6)


def test_stem_mp4_folder_gets_a_conversion_hint(tmp_path):
    from stemwright.train.data import DataError, stem_folder_songs

    (tmp_path / "Song A.stem.mp4").write_bytes(b"not decoded")
    with pytest.raises(DataError, match=r"holds \.stem\.mp4 files.*ffmpeg -i SONG\.stem\.mp4"):
        stem_folder_songs(tmp_path)
    (tmp_path / "Song A.stem.mp4").unlink()
    with pytest.raises(DataError, match="no song folders with stem files"):
        stem_folder_songs(tmp_path)


def test_songs_still_being_written_are_skipped(tmp_path):
    """Defect: the hidden `.NAME.*.part` folder of a song `stemwright synth` was still writing was read as a song (and
    vanished when renamed), so a run could not start on a dataset while it was being generated."""
    from stemwright.train.data import stem_folder_songs
    from stemwright.train.validate import load_val_set

    _song(tmp_path / "done", 0)
    _song(tmp_path / ".next.x1y2.part", 1)
    assert [s.name for s in stem_folder_songs(tmp_path)] == ["done"]
    assert [it.name for it in load_val_set({"type": "synth", "path": str(tmp_path)}, SR, 2)] == ["done"]


REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("config", sorted((REPO / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_export_under_the_run_folder(config, tmp_path):
    """Defect: the configs exported to src/stemwright/pretrained/weights/... whatever --out said."""
    from stemwright.train.config import load_train_config
    from stemwright.train.loop import resolve_export_path

    cfg = load_train_config(config)
    target = resolve_export_path(cfg, tmp_path / "runs" / "mine", None)
    assert target is not None and target.resolve().is_relative_to((tmp_path / "runs" / "mine").resolve())


def test_export_path_in_config_is_refused(tmp_path, songs):
    from stemwright.train.config import ConfigError, load_train_config

    cfg = _config(tmp_path, songs, export={"path": str(tmp_path / "x"), "licence": "test"})
    with pytest.raises(ConfigError, match="export.path"):
        load_train_config(cfg)


def test_export_into_the_package_needs_the_flag(tmp_path, songs):
    import hashlib

    import stemwright
    from stemwright.train.loop import ExportPathError

    shipped = Path(stemwright.__file__).parent / "pretrained" / "weights" / "stemwright_vocals.json"
    before = hashlib.sha256(shipped.read_bytes()).hexdigest()
    cfg = _config(tmp_path, songs, export={"licence": "test"})
    with pytest.raises(ExportPathError, match="inside the installed stemwright package"):
        train(cfg, out=tmp_path / "run", export_path=shipped.with_suffix(""))
    assert hashlib.sha256(shipped.read_bytes()).hexdigest() == before
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_cli_train_refuses_package_export(tmp_path, songs, capsys):
    import stemwright
    from stemwright.cli.main import main

    cfg = _config(tmp_path, songs, export={"licence": "test"})
    target = Path(stemwright.__file__).parent / "pretrained" / "weights" / "stemwright_vocals"
    code = main(["train", "--config", str(cfg), "--out", str(tmp_path / "run"), "--export", str(target)])
    assert code == 1
    assert "inside the installed stemwright package" in capsys.readouterr().err
