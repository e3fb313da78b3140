"""Open-Unmix files (built by openunmix 1.3.0 with random weights) load to the reference's outputs."""
from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path

import pytest
import torch

from stemwright.models.umx import OpenUnmix
from stemwright.pretrained.formats import detect, load_any
from stemwright.pretrained.umx_format import UmxFormatError, is_umx_file, load_umx
from tests.models.umx_reference import reference_separator

pytestmark = [pytest.mark.parity, pytest.mark.usefixtures("one_thread")]
SETTINGS = dict(hidden_size=16, n_fft=2048, n_hop=512, max_bin=700)


def _mix(seconds: float = 2.0, seed: int = 0) -> torch.Tensor:
    return 0.2 * torch.randn(1, 2, int(seconds * 44100), generator=torch.Generator().manual_seed(seed))


def _save_target(state: dict, folder: Path, target: str, hashed: bool) -> Path:
    tmp = folder / f"{target}.tmp"
    torch.save(state, tmp)
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()[:8]
    path = folder / (f"{target}-{digest}.pth" if hashed else f"{target}.pth")
    tmp.rename(path)
    return path


def _write_folder(ref, folder: Path, hashed: bool = True) -> None:
    """The layout of openunmix's scripts/train.py: separator.json, <target>.json, <target>[-hash].pth."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "separator.json").write_text(json.dumps({"nfft": 2048, "nhop": 512, "sample_rate": 44100, "nb_channels": 2}))
    for target, module in ref.target_models.items():
        state = dict(module.state_dict())
        if target == "vocals":  # what openunmix 1.0 files also carry: dropped on load
            state["stft.window"] = torch.hann_window(2048)
            state["sample_rate"] = torch.tensor(44100.0)
        _save_target(state, folder, target, hashed)
        args = {"nfft": 2048, "nhop": 512, "hidden_size": 16, "nb_channels": 2, "bandwidth": 16000, "target": target}
        (folder / f"{target}.json").write_text(json.dumps({"args": args, "best_loss": 0.1}))


def _assert_same(model, ref, seconds: float = 2.0) -> None:
    mix = _mix(seconds)
    with torch.no_grad():
        expected, got = ref(mix), model(mix)
    assert got.shape == expected.shape
    assert (got - expected).abs().max().item() <= 1e-4


def test_training_folder_loads_to_reference_outputs(tmp_path):
    ref = reference_separator(**SETTINGS, niter=1, wiener_win_len=300, seed=2)
    _write_folder(ref, tmp_path / "mymodel")
    assert is_umx_file(tmp_path / "mymodel") and detect(tmp_path / "mymodel") == "Open-Unmix"
    model = load_any(tmp_path / "mymodel")
    assert isinstance(model, OpenUnmix)
    assert model.sources == ("vocals", "drums", "bass", "other")
    assert model.config.hop_length == 512 and model.config.hidden_size == 16 and model.config.max_bin == 700
    _assert_same(model, ref)
    # the separator.json path itself works too
    assert load_any(tmp_path / "mymodel" / "separator.json").config == model.config


def test_separator_state_dict_file(tmp_path):
    ref = reference_separator(**SETTINGS, niter=2, wiener_win_len=None, seed=3)
    (tmp_path / "separator.json").write_text(json.dumps({"nfft": 2048, "nhop": 512, "sample_rate": 44100, "nb_channels": 2}))
    torch.save(ref.state_dict(), tmp_path / "whole.pth")
    model = load_any(tmp_path / "whole.pth", niter=2, wiener_win_len=None)
    _assert_same(model, ref)


def test_single_target_file_gives_target_and_residual(tmp_path):
    ref = reference_separator(**SETTINGS, targets=("vocals",), niter=1, residual=True, seed=4)
    (tmp_path / "separator.json").write_text(json.dumps({"nfft": 2048, "nhop": 512, "sample_rate": 44100, "nb_channels": 2}))
    path = _save_target(ref.target_models["vocals"].state_dict(), tmp_path, "vocals", hashed=True)
    model = load_umx(path)
    assert model.sources == ("vocals", "residual")
    _assert_same(model, ref)


class _Evil:
    def __reduce__(self):
        return (print, ("unpickled!",))


def test_bad_files_are_refused_by_name(tmp_path):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(UmxFormatError, match="junk.pth"):
        load_umx(junk)
    assert not is_umx_file(junk)
    evil = tmp_path / "evil.pth"
    with open(evil, "wb") as f:
        pickle.dump({"fc1.weight": _Evil()}, f)
    with pytest.raises(UmxFormatError, match="weights-only"):
        load_umx(evil)
    other = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(3)}, other)
    with pytest.raises(UmxFormatError, match="not an Open-Unmix"):
        load_umx(other)


def test_mismatched_tensors_are_reported(tmp_path):
    ref = reference_separator(**SETTINGS, seed=5)
    _write_folder(ref, tmp_path / "m", hashed=False)
    state = torch.load(tmp_path / "m" / "drums.pth", weights_only=True)
    state["fc2.weight"] = torch.zeros(3, 3)
    torch.save(state, tmp_path / "m" / "drums.pth")
    with pytest.raises(UmxFormatError, match="drums"):
        load_umx(tmp_path / "m")


def test_cli_separates_real_file_with_umx_folder(tmp_path, mixtures_dir):
    """``stemwright separate SONG -m FOLDER`` with an Open-Unmix training folder (random weights): 4 stems written."""
    import soundfile as sf

    from stemwright.cli.main import main

    ref = reference_separator(**SETTINGS, niter=1, seed=6)
    _write_folder(ref, tmp_path / "umxmodel")
    song = mixtures_dir / "spleeter_audio_example_SlowMotionDream_StevenMBryant_CC-BY-3.0.mp3"
    assert main(["separate", str(song), "-m", str(tmp_path / "umxmodel"), "-o", str(tmp_path / "out"), "--quiet"]) == 0
    stems = sorted(p.stem for p in (tmp_path / "out").rglob("*.wav"))
    assert stems == ["bass", "drums", "other", "vocals"]
    info = sf.info(next((tmp_path / "out").rglob("vocals.wav")))
    assert info.samplerate == 44100 and info.channels == 2 and abs(info.duration - sf.info(song).duration) < 0.05
