"""ONNX export (STFT and Wiener filter outside the graph) run by ONNX Runtime through the same engine."""
from __future__ import annotations

import json

import pytest
import torch

from stemwright.models.onnx import OnnxExportError, OnnxModel, export_onnx, sidecar_path, has_stages
from stemwright.engine.run import separate_tensor
from stemwright.models.umx import build_umx
from stemwright.pretrained.formats import load_any
from tests.models.umx_reference import randomize_
from tests.reference import require

require("onnxruntime")

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def umx():
    return randomize_(build_umx(hidden_size=16, n_fft=2048, hop_length=512, max_bin=700, wiener_win_len=100), 7).eval()


@pytest.fixture(scope="module")
def exported(umx, tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / "umx.onnx"
    export_onnx(umx, path, seconds=2.0)
    return path


def _mix(seconds: float, batch: int = 1, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return 0.2 * torch.randn(batch, 2, int(seconds * 44100), generator=gen)


def test_umx_onnx_equals_torch_through_engine(umx, exported):
    onnx_model = OnnxModel(exported)
    assert onnx_model.sources == umx.sources and onnx_model.samplerate == umx.samplerate
    mix = _mix(3.3)[0]
    with torch.no_grad():
        expected = separate_tensor(umx, mix)
        got = separate_tensor(onnx_model, mix)
    assert got.shape == expected.shape == (4, 2, mix.shape[-1])
    assert (got - expected).abs().max().item() <= 1e-4


def test_other_batch_and_length(umx, exported):
    onnx_model = OnnxModel(exported)
    mix = _mix(1.1, batch=2, seed=3)
    with torch.no_grad():
        assert (onnx_model(mix) - umx(mix)).abs().max().item() <= 1e-4


def test_sidecar_and_load_any(umx, exported):
    doc = json.loads(sidecar_path(exported).read_text())
    assert doc["format"] == "stemwright-onnx" and doc["architecture"] == "umx"
    assert doc["config"]["hidden_size"] == 16 and doc["input_names"] == ["magnitude"]
    model = load_any(exported)
    assert isinstance(model, OnnxModel) and model.sources == umx.sources


def test_tampered_onnx_is_refused(exported, tmp_path):
    bad = tmp_path / "bad.onnx"
    data = bytearray(exported.read_bytes())
    data[-10] ^= 0xFF
    bad.write_bytes(bytes(data))
    sidecar_path(bad).write_text(sidecar_path(exported).read_text())
    with pytest.raises(OnnxExportError, match="sha256"):
        OnnxModel(bad)


def test_export_refusals(umx, exported, tmp_path):
    with pytest.raises(OnnxExportError, match="already exists"):
        export_onnx(umx, exported)
    with pytest.raises(OnnxExportError, match=r"\.onnx"):
        export_onnx(umx, tmp_path / "x.bin")

    class NoSplit(torch.nn.Module):
        sources, samplerate, audio_channels, segment = ("a",), 44100, 2, None

    assert not has_stages(NoSplit()) and has_stages(umx)
    with pytest.raises(OnnxExportError, match="not a staged model"):
        export_onnx(NoSplit(), tmp_path / "n.onnx")
    with pytest.raises(OnnxExportError, match="sidecar"):
        (tmp_path / "lonely.onnx").write_bytes(exported.read_bytes())
        OnnxModel(tmp_path / "lonely.onnx")


def test_cli_export_and_separate_with_onnx(umx, tmp_path, capsys):
    from stemwright.cli.main import main
    from stemwright.models.checkpoint import save_checkpoint

    save_checkpoint(umx, tmp_path / "tiny", licence="MIT")
    out = tmp_path / "tiny.onnx"
    assert main(["export-onnx", "-m", str(tmp_path / "tiny.safetensors"), "-o", str(out), "--seconds", "1"]) == 0
    assert "wrote" in capsys.readouterr().out
    assert main(["export-onnx", "-m", str(tmp_path / "tiny.safetensors"), "-o", str(out)]) == 1
    assert "already exists" in capsys.readouterr().err
    model = load_any(out)
    mix = _mix(1.0)
    with torch.no_grad():
        assert (model(mix) - umx(mix)).abs().max().item() <= 1e-4
