"""``load_any``: format detection and dispatch, with clear errors for what is not a checkpoint."""
from __future__ import annotations

import importlib

import pytest
import torch

from stemwright.models.checkpoint import save_checkpoint
from stemwright.models.registry import load_model
from stemwright.models.umx import build_umx
from stemwright.pretrained import formats
from stemwright.pretrained.formats import FormatError, detect, load_any
from tests.models.umx_reference import one_thread, randomize_  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("one_thread")


def test_stemwright_checkpoint_by_any_of_its_names(tmp_path):
    model = randomize_(build_umx(hidden_size=8, n_fft=512, hop_length=128, max_bin=100), 1).eval()
    save_checkpoint(model, tmp_path / "tiny", licence="MIT")
    for name in ("tiny", "tiny.json", "tiny.safetensors"):
        assert detect(tmp_path / name) == "stemwright"
    loaded = load_model(tmp_path / "tiny.safetensors")  # the registry goes through formats.load_any
    mix = 0.1 * torch.randn(1, 2, 8000, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(loaded(mix), model(mix))


def test_unrecognised_and_missing(tmp_path):
    with pytest.raises(FormatError, match="not found"):
        load_any(tmp_path / "nothing.pth")
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(FormatError, match="unrecognised checkpoint format"):
        load_any(text)


def test_missing_family_module_says_not_supported_yet(tmp_path, monkeypatch):
    real_import = importlib.import_module

    def fake_import(name, *args):
        if name == "stemwright.pretrained.demucs_format":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real_import(name, *args)

    monkeypatch.setattr(formats.importlib, "import_module", fake_import)
    th = tmp_path / "955717e8-8726e21a.th"
    th.write_bytes(b"\x80\x04junk")
    with pytest.raises(FormatError, match="not supported yet"):
        load_any(th)
