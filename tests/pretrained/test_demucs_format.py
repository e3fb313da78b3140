"""Loading demucs checkpoints (``.th`` packages, safetensors exports, bag YAML) without the demucs package, and the
published-model catalogue data.

Files are written by the reference package itself (``demucs.states.save_with_checksum`` on the dict that
``serialize_model`` builds; demucs' safetensors reader ``demucs.hf.load_safetensors_model`` validates our export
writer) with random weights, then loaded by both sides and compared through the whole pipeline.
"""
from __future__ import annotations

import hashlib
import json
import os
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import save_file

from stemwright.engine.run import separate_tensor
from stemwright.models.base import config_from_dict
from stemwright.models.architectures import architecture_class
from stemwright.models.bag import BagOfModels
from stemwright.models.hdemucs import HDemucs, HDemucsConfig
from stemwright.models.htdemucs import HTDemucs, HTDemucsConfig
from stemwright.pretrained import demucs_format as df
from tests.models.demucs_reference import demucs_modules, reference_model, save_th
from tests.models.tiny import TINY_H, TINY_HT
from tests.reference import require

TOL = 1e-4

pytestmark = pytest.mark.usefixtures("one_thread")
SR = 44100


@pytest.fixture(scope="module")
def mix() -> torch.Tensor:
    """10 s of a stereo test signal (chords + noise bursts). Shape: (2, 441000)."""
    t = torch.arange(10 * SR) / SR
    g = torch.Generator().manual_seed(0)
    tone = sum(torch.sin(2 * np.pi * f * t) for f in (110.0, 220.0 * 1.26, 440.0 * 1.5)) / 3
    bursts = torch.randn(2, t.numel(), generator=g) * (torch.sin(2 * np.pi * 2 * t) > 0.9)
    return (0.3 * tone + 0.2 * bursts).float()


def save_safetensors_export(model, path: Path) -> Path:
    """Demucs' safetensors export layout (read by ``demucs.hf.load_safetensors_model``)."""

    def encode(value):
        if isinstance(value, Fraction):
            return {"_type": "fraction", "numerator": value.numerator, "denominator": value.denominator}
        if isinstance(value, dict):
            return {k: encode(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [encode(v) for v in value]
        return value

    args, kwargs = model._init_args_kwargs
    kwargs = dict(kwargs, segment=Fraction(kwargs.get("segment", 10)).limit_denominator(1000))
    meta = {"klass": f"{type(model).__module__}.{type(model).__name__}",
            "args": json.dumps(encode(list(args))), "kwargs": json.dumps(encode(kwargs))}
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path), metadata=meta)
    return path


def outputs_equal(ref_model, ours, mix: torch.Tensor) -> None:
    dm = demucs_modules()
    with torch.no_grad():
        expected = dm.apply.apply_model(ref_model, mix[None], shifts=0)[0]
    got = separate_tensor(ours, mix)
    assert got.shape == expected.shape
    err = float((got - expected).abs().max())
    assert err <= TOL, f"max abs error {err:.3g}"
    assert float(expected.abs().max()) > 1e-3


# ------------------------------------------------------------------------------------------------ .th packages


@pytest.mark.parity
@pytest.mark.parametrize("kind", ["htdemucs", "hdemucs"])
def test_th_package_loads_to_reference_outputs(tmp_path, mix, kind):
    demucs = demucs_modules()
    require("demucs.states")

    config = HTDemucsConfig(**TINY_HT) if kind == "htdemucs" else HDemucsConfig(**TINY_H)
    path = save_th(reference_model(config, seed=11), tmp_path, "0123abcd")
    # demucs' file naming: SIG-<first 8 hex of the file's sha256> (what the catalogue's sha256_prefix relies on)
    assert path.stem.split("-")[1] == hashlib.sha256(path.read_bytes()).hexdigest()[:8]
    assert df.is_demucs_file(path)
    ref = demucs.states.load_model(path).eval()  # the reference loader (half weights upcast)
    ours = df.load_demucs(path)
    assert type(ours) is (HTDemucs if kind == "htdemucs" else HDemucs)
    assert ours.config == config or kind == "htdemucs" and ours.config.segment == pytest.approx(config.segment)
    outputs_equal(ref, ours, mix)


@pytest.mark.parity
def test_load_any_dispatches_demucs_files(tmp_path):
    from stemwright.pretrained.formats import detect, load_any

    path = save_th(reference_model(HTDemucsConfig(**TINY_HT), seed=12), tmp_path, "feedbeef")
    assert detect(path) == "Demucs"
    assert isinstance(load_any(path), HTDemucs)


@pytest.mark.parity
def test_tampered_th_is_refused(tmp_path):
    path = save_th(reference_model(HTDemucsConfig(**TINY_HT), seed=13), tmp_path, "00000001")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(df.DemucsFormatError, match="tampered"):
        df.load_demucs(path)


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_restricted_unpickler_refuses_code(tmp_path):
    path = tmp_path / "evil.th"
    torch.save({"klass": None, "args": [], "kwargs": {}, "state": {}, "training_args": _Evil()}, path)
    with pytest.raises(df.DemucsFormatError, match="refusing to unpickle .*system"):
        df.load_demucs(path)


def test_unsupported_and_malformed_packages(tmp_path):
    import collections

    path = tmp_path / "other.th"
    torch.save({"klass": collections.Counter, "args": [], "kwargs": {}, "state": {}}, path)
    with pytest.raises(df.DemucsFormatError, match="collections.Counter"):
        df.load_demucs(path)
    demucs = demucs_modules()
    require("demucs.demucs")

    v2 = tmp_path / "v2.th"
    torch.save({"klass": demucs.demucs.Demucs, "args": [], "kwargs": {}, "state": {}}, v2)
    with pytest.raises(df.DemucsFormatError, match="Demucs v2"):
        df.load_demucs(v2)
    garbage = tmp_path / "garbage.th"
    garbage.write_bytes(b"not a checkpoint")
    assert not df.is_demucs_file(garbage)
    with pytest.raises(df.DemucsFormatError, match="not a readable"):
        df.load_demucs(garbage)


@pytest.mark.parity
def test_quantized_and_mismatched_states_are_refused(tmp_path):
    demucs = demucs_modules()
    require("demucs.htdemucs")

    ref = reference_model(HTDemucsConfig(**TINY_HT), seed=14)
    args, kwargs = ref._init_args_kwargs
    q = tmp_path / "q.th"
    torch.save({"klass": demucs.htdemucs.HTDemucs, "args": args, "kwargs": kwargs,
                "state": {"__quantized": True, "quantized": []}}, q)
    with pytest.raises(df.DemucsFormatError, match="DiffQ"):
        df.load_demucs(q)
    bad = tmp_path / "bad.th"
    torch.save({"klass": demucs.htdemucs.HTDemucs, "args": args, "kwargs": {**kwargs, "channels": 16},
                "state": ref.state_dict()}, bad)
    with pytest.raises(df.DemucsFormatError, match="do not fit htdemucs"):
        df.load_demucs(bad)


# ------------------------------------------------------------------------------------------------ safetensors


@pytest.mark.parity
def test_safetensors_export_loads_to_reference_outputs(tmp_path, mix):
    demucs = demucs_modules()
    require("demucs.hf")

    ref = reference_model(HTDemucsConfig(**TINY_HT), seed=15)
    path = save_safetensors_export(ref, tmp_path / "0badc0de.safetensors")
    assert df.is_demucs_file(path)
    ref_loaded = demucs.hf.load_safetensors_model(path).eval()  # demucs' own reader accepts our export
    outputs_equal(ref_loaded, df.load_demucs(path), mix)


# ------------------------------------------------------------------------------------------------ bags


@pytest.mark.parity
def test_bag_yaml_loads_to_reference_outputs(tmp_path, mix):
    demucs = demucs_modules()
    require("demucs.pretrained")

    config = HTDemucsConfig(**TINY_HT)
    sigs = ["aaaa0001", "aaaa0002"]
    for i, sig in enumerate(sigs):
        save_th(reference_model(config, seed=20 + i), tmp_path, sig)
    weights = [[1.0, 0.0, 0.5, 1.0], [0.0, 1.0, 0.5, 1.0]]
    (tmp_path / "mybag.yaml").write_text(yaml.safe_dump({"models": sigs, "weights": weights, "segment": 0.8}))
    ref = demucs.pretrained.get_model("mybag", repo=tmp_path)
    ours = df.load_demucs(tmp_path / "mybag.yaml")
    assert isinstance(ours, BagOfModels) and ours.segment == 0.8 and ours.weights == tuple(map(tuple, weights))
    outputs_equal(ref, ours, mix)


@pytest.mark.parity
def test_catalogue_loader_builds_one_model_and_bags(tmp_path):
    paths = [save_th(reference_model(HDemucsConfig(**TINY_H), seed=30), tmp_path, "bbbb0001")]
    single = df.load_catalogue_entry({"name": "x", "bag": {"models": ["bbbb0001"], "segment": 44}}, paths)
    assert isinstance(single, HDemucs) and single.segment == 44.0  # a one-model bag is the model itself
    paths = [save_th(reference_model(HTDemucsConfig(**TINY_HT), seed=31 + i), tmp_path, f"cccc000{i}") for i in range(4)]
    onehot = [[float(i == j) for j in range(4)] for i in range(4)]
    bag = df.load_catalogue_entry({"name": "ft", "bag": {"weights": onehot}}, paths)
    assert isinstance(bag, BagOfModels) and len(bag.models) == 4 and bag.segment == 1.0


def test_missing_bag_member_is_named(tmp_path):
    (tmp_path / "b.yaml").write_text(yaml.safe_dump({"models": ["deadbeef"]}))
    assert df.is_demucs_file(tmp_path / "b.yaml")
    with pytest.raises(df.DemucsFormatError, match="deadbeef"):
        df.load_demucs(tmp_path / "b.yaml")


# ------------------------------------------------------------------------------------------------ catalogue data


def _demucs_remote() -> Path:
    demucs = demucs_modules()

    return Path(demucs.__file__).parent / "remote"


def _remote_files() -> dict[str, str]:
    """name -> URL from demucs' remote/files.txt (root lines switch the folder)."""
    root, out = "", {}
    for line in (_demucs_remote() / "files.txt").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("root:"):
            root = line.split(":", 1)[1].strip()
            continue
        out[line] = "https://dl.fbaipublicfiles.com/demucs/" + root + line
    return out


@pytest.mark.parity
def test_catalogue_matches_demucs_remote_files():
    from stemwright.pretrained.catalogue import catalogue

    entries = {k: v for k, v in catalogue().items() if v["family"] == "demucs"}
    assert set(entries) == {"htdemucs", "htdemucs_ft", "htdemucs_6s", "hdemucs_mmi"}
    remote = _remote_files()
    for name, entry in entries.items():
        bag = yaml.safe_load((_demucs_remote() / f"{name}.yaml").read_text())
        assert [f["signature"] for f in entry["files"]] == bag["models"] == entry["bag"]["models"]
        assert entry["bag"].get("weights") == bag.get("weights") and entry["bag"].get("segment") == bag.get("segment")
        for spec in entry["files"]:
            assert remote[spec["filename"]] == spec["url"]
            assert spec["filename"] == f"{spec['signature']}-{spec['sha256_prefix']}.th"
        assert entry["licence"] == "MIT"
        model_class = architecture_class(entry["architecture"])
        config = config_from_dict(model_class.config_class, entry["config"])  # a valid config of its architecture
        if entry["architecture"] == "bag":
            assert len(config.members) == 4 and list(config.weights) == [tuple(r) for r in bag["weights"]]
            config = config_from_dict(HTDemucsConfig, config.members[0]["config"])
        assert list(config.sources) == entry["sources"]
        assert config.segment == (bag.get("segment") or 7.8)
