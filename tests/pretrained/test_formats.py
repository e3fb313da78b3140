"""``load_any``: format detection and dispatch, with clear errors for what is not a checkpoint."""
from __future__ import annotations

import pytest
import torch

from stemwright.models.checkpoint import save_checkpoint
from stemwright.pretrained.loading import load_model
from stemwright.models.umx import build_umx
from stemwright.pretrained.formats import FormatError, detect, load_any
from tests.models.umx_reference import randomize_

pytestmark = pytest.mark.usefixtures("one_thread")


def test_stemwright_checkpoint_by_any_of_its_names(tmp_path):
    model = randomize_(build_umx(hidden_size=8, n_fft=512, hop_length=128, max_bin=100), 1).eval()
    save_checkpoint(model, tmp_path / "tiny", licence="MIT")
    for name in ("tiny", "tiny.json", "tiny.safetensors"):
        assert detect(tmp_path / name) == "stemwright"
    loaded = load_model(tmp_path / "tiny.safetensors")  # the resolver goes through formats.load_any
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
