"""benchmarks/gpu_check.py: its CPU dry run works with only torch, numpy and stemwright's model code importable, and
its "published configurations" are the catalogue's."""
from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from stemwright.models.architectures import ARCHITECTURES
from stemwright.models.roformer import BSRoformerConfig, MelRoformerConfig
from stemwright.pretrained.catalogue import catalogue
from stemwright.pretrained.roformer_format import config_from_yaml

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "gpu_check.py"
#: Packages the script must run without: audio I/O, formats and everything else that is not torch/numpy.
BLOCKED = ("soundfile", "av", "soxr", "librosa", "pedalboard", "torchaudio", "scipy", "safetensors", "yaml",
           "platformdirs", "tqdm", "onnx", "onnxruntime", "matplotlib", "pyloudnorm", "typer", "fastapi")
_RUNNER = """
import runpy, sys
for name in sys.argv[1].split(","):
    sys.modules[name] = None  # as if not installed: importing it raises ModuleNotFoundError
sys.argv = [sys.argv[2], *sys.argv[3:]]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def _load_script():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dry_run_on_cpu_without_audio_or_format_libraries(tmp_path):
    out = tmp_path / "gpu.json"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", _RUNNER, ",".join(BLOCKED), str(SCRIPT), "--dry-run", "--json", str(out)],
        capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    results = {(r["check"], r.get("arch")): r for r in report["results"]}
    for arch in ARCHITECTURES:
        r = results[("parity", arch)] if ("parity", arch) in results else None
        if arch == "mel_roformer" and r is None:  # its mel band layout needs librosa, blocked here
            assert any("librosa" in x.get("skipped", "") for x in report["results"])
            continue
        assert r is not None and r["finite"] and r["max_abs_diff"] == 0.0, arch  # CPU against CPU: identical
    for arch in ("htdemucs", "bag", "cascade", "bs_roformer"):
        r = results[("speed", arch)]
        assert r["finite"] and r["seconds"] > 0 and r["rtf"] > 0
    fast = results[("fast", "htdemucs")]
    assert fast["finite"] and fast["exact_s"] > 0 and fast["fast_s"] > 0 and fast["snr_db_vs_exact"] > 20
    assert not [r for r in report["results"] if "error" in r]
    amp = results[("amp_training", "htdemucs")]
    assert amp["finite"] and len(amp["losses"]) == amp["steps"] == 2
    assert '"check": "total"' in proc.stdout


def test_without_cuda_the_full_run_says_so():
    if _load_script().torch.cuda.is_available():
        pytest.skip("a GPU is present: the full check would run")
    proc = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    assert proc.returncode == 1 and "CUDA is not available" in proc.stderr


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_published_configurations_build(arch):
    config = _load_script().published_configs()[arch]()
    assert isinstance(config, ARCHITECTURES[arch].config_class)


def test_roformer_defaults_are_the_catalogue_configurations():
    entries = catalogue()
    _, bs, _ = config_from_yaml(entries["bs_roformer_viperx_1297"]["config"], where="viperx")
    _, mel, _ = config_from_yaml(entries["mel_roformer_kim_vocals"]["config"], where="kim")
    assert dataclasses.replace(bs, attn_dropout=0.0, ff_dropout=0.0) == BSRoformerConfig()  # dropout: training only
    assert mel == MelRoformerConfig()
