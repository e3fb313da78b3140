"""The community ``.ckpt`` + YAML RoFormer layout: files written from the reference ``bs-roformer`` package (random
weights, the YAML layout of the training repositories incl. ``!!python/tuple``) load into stemwright's models and give
the reference's outputs; malformed or unsafe files are refused with errors naming the file."""
from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import pytest
import torch
import yaml

from stemwright.models.roformer import BSRoformer, MelRoformer
from stemwright.pretrained.roformer_format import (
    RoformerFormatError,
    config_from_yaml,
    is_roformer_file,
    load_catalogue_entry,
    load_roformer,
    read_yaml,
)

from tests.pretrained.roformer_files import HOP, SR, model_section, write_pair


def reference_output(ref: torch.nn.Module, mix: torch.Tensor) -> torch.Tensor:
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = ref(mix)
    return out if out.dim() == 4 else out.unsqueeze(1)


@pytest.mark.parity
def test_bs_roformer_ckpt_yaml_gives_reference_outputs(tmp_path):
    ckpt, ref = write_pair(tmp_path, "bs", target="vocals", instruments=["vocals", "other"])
    assert "!!python/tuple" in ckpt.with_suffix(".yaml").read_text()
    model = load_roformer(ckpt)
    assert isinstance(model, BSRoformer) and model.sources == ("vocals",)
    assert model.audio_channels == 2 and model.samplerate == SR
    assert model.segment == pytest.approx(40 * HOP * 10 / SR) and model.default_overlap == pytest.approx(0.75)
    mix = torch.randn(2, 2, 300 * HOP, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        got = model(mix)
    assert float((got - reference_output(ref, mix)).abs().max()) <= 1e-5


@pytest.mark.parity
def test_mel_roformer_ckpt_yaml_gives_reference_outputs(tmp_path):
    stems = ["vocals", "drums", "bass", "other"]
    ckpt, ref = write_pair(tmp_path, "mel", target=None, instruments=stems, wrap=True)
    model = load_roformer(ckpt.with_suffix(".yaml"))  # the YAML path works too
    assert isinstance(model, MelRoformer) and model.sources == tuple(stems)
    mix = torch.randn(1, 2, 250 * HOP, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        got = model(mix)
    assert float((got - reference_output(ref, mix)).abs().max()) <= 1e-5


def test_is_roformer_file(tmp_path):
    ckpt, _ = write_pair(tmp_path / "a", "bs", target="vocals", instruments=["vocals", "other"])
    assert is_roformer_file(ckpt) and is_roformer_file(ckpt.with_suffix(".yaml"))
    lonely = tmp_path / "b" / "lonely.ckpt"
    lonely.parent.mkdir()
    torch.save({"w": torch.zeros(1)}, lonely)
    assert not is_roformer_file(lonely)  # no YAML beside it
    (tmp_path / "b" / "lonely.yaml").write_text("audio: {sample_rate: 44100}\nmodel: {channels: 48}\n")
    assert not is_roformer_file(lonely)  # a YAML, but not a RoFormer one (e.g. another family)
    assert not is_roformer_file(tmp_path / "missing.ckpt")
    (tmp_path / "b" / "bad.ckpt").write_bytes(b"\x00garbage")
    (tmp_path / "b" / "bad.yaml").write_text("model: [unclosed")
    assert not is_roformer_file(tmp_path / "b" / "bad.ckpt")


def test_config_found_by_convention_and_missing_config_is_explained(tmp_path):
    ckpt, _ = write_pair(tmp_path, "bs", target="vocals", instruments=["vocals", "other"], name="ep_317")
    ckpt.with_suffix(".yaml").rename(tmp_path / "config_ep_317.yaml")
    (tmp_path / "notes.yml").write_text("a: 1\n")
    assert isinstance(load_roformer(ckpt), BSRoformer)  # config_NAME.yaml
    (tmp_path / "config_ep_317.yaml").unlink()
    (tmp_path / "notes2.yml").write_text("a: 2\n")
    assert is_roformer_file(ckpt)  # recognised by its keys, so the user gets the explanation below
    with pytest.raises(RoformerFormatError, match=r"ep_317.ckpt: no YAML config found"):
        load_roformer(ckpt)
    elsewhere = tmp_path / "configs" / "viperx.yaml"
    elsewhere.parent.mkdir()
    elsewhere.write_text(yaml.dump({"audio": {"sample_rate": SR}, "model": model_section("bs", 1),
                                    "training": {"instruments": ["vocals", "other"], "target_instrument": "vocals"}}))
    assert load_roformer(ckpt, config=elsewhere).sources == ("vocals",)


@pytest.mark.parametrize(
    "override,message",
    [
        ({"linear_transformer_depth": 1}, r"linear_transformer_depth=1 is a fork option"),
        ({"freqs_per_bands": (64, 64, 64, 64)}, r"freqs_per_bands sums to 256 bins.*257"),
        ({"rotary_theta": 5}, r"unsupported model option\(s\) rotary_theta"),
        ({"dim": 24}, r"norm.gamma has shape \(16,\), the YAML's config needs \(24,\)"),
        ({"depth": 3}, r"weights do not fit the YAML's BSRoformer config: \d+ missing \(e.g. \['layers.2"),
    ],
)
def test_bad_configs_are_refused_naming_the_yaml(tmp_path, override, message):
    ckpt, _ = write_pair(tmp_path, "bs", target="vocals", instruments=["vocals", "other"], **override)
    with pytest.raises(RoformerFormatError, match=message) as err:
        load_roformer(ckpt)
    assert "model.yaml" in str(err.value) or "model.ckpt" in str(err.value)


def test_stem_count_must_match_instruments(tmp_path):
    doc = {"audio": {"sample_rate": SR}, "model": {**model_section("bs", 3)},
           "training": {"instruments": ["vocals", "other"], "target_instrument": None}}
    with pytest.raises(RoformerFormatError, match=r"num_stems=3 but training.instruments has 2"):
        config_from_yaml(doc, where="x.yaml")


class Payload:
    """Any class: a checkpoint holding one must not be unpickled."""

    def __reduce__(self):
        return (print, ("this must never run",))


def test_pickled_objects_are_refused(tmp_path, capsys):
    ckpt, _ = write_pair(tmp_path, "bs", target="vocals", instruments=["vocals", "other"])
    torch.save({"weights": torch.zeros(2), "evil": Payload()}, ckpt)
    with pytest.raises(RoformerFormatError, match="refused to unpickle"):
        load_roformer(ckpt)
    assert "must never run" not in capsys.readouterr().out


def test_yaml_reader_accepts_tuples_but_no_other_python_tags(tmp_path):
    ok = tmp_path / "ok.yaml"
    ok.write_text("model:\n  freqs_per_bands: !!python/tuple\n  - 2\n  - 3\n")
    assert read_yaml(ok)["model"]["freqs_per_bands"] == (2, 3)
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: !!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(RoformerFormatError, match="bad.yaml: cannot read YAML"):
        read_yaml(bad)


def test_catalogue_family_loader(tmp_path):
    ckpt, ref = write_pair(tmp_path, "bs", target="vocals", instruments=["vocals", "other"])
    config = read_yaml(ckpt.with_suffix(".yaml"))
    entry = {"name": "tiny", "architecture": "bs_roformer", "family": "roformer", "config": config,
             "files": [{"url": ckpt.as_uri(), "sha256": hashlib.sha256(ckpt.read_bytes()).hexdigest()}]}
    model = load_catalogue_entry(entry, [ckpt])
    mix = torch.randn(1, 2, 100 * HOP)
    with torch.no_grad():
        assert float((model(mix) - reference_output(ref, mix)).abs().max()) <= 1e-5


def test_catalogue_entries_map_to_valid_configs():
    from stemwright.pretrained.catalogue import read_catalogue_file

    path = Path(__file__).resolve().parents[2] / "src" / "stemwright" / "pretrained" / "catalogue" / "roformer.json"
    entries = read_catalogue_file(path)
    assert entries, "roformer.json lists no model"
    for entry in entries:
        assert entry["family"] == "roformer"
        cls, config, extras = config_from_yaml(entry["config"], where=entry["name"], architecture=entry["architecture"])
        assert {"bs_roformer": BSRoformer, "mel_roformer": MelRoformer}[entry["architecture"]] is cls
        assert list(config.sources) == entry["sources"] and config.samplerate == entry["samplerate"]
        assert all(len(f.get("sha256", "")) == 64 for f in entry["files"])
        # The published checkpoint's size pins its layout: the weights of the model built from the catalogue config
        # (on the meta device: no memory) plus torch.save's archive overhead (< 0.05 %) must make up the file.
        with torch.device("meta"):
            model = cls(config)
        tensor_bytes = sum(v.numel() * v.element_size() for v in model.state_dict().values())
        size = entry["files"][0]["size"]
        assert tensor_bytes < size < tensor_bytes * 1.0005, (entry["name"], tensor_bytes, size)
