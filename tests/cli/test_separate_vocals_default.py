"""``stemwright separate --two-stems vocals`` without ``-m`` uses the vocals default (Spleeter's 2-stem model)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from stemwright.cli.main import main
from stemwright.models.defaults import DEFAULT_MODEL, DEFAULT_VOCALS_MODEL

MP3 = "spleeter_audio_example_SlowMotionDream_StevenMBryant_CC-BY-3.0.mp3"


def test_two_stems_vocals_defaults_to_spleeter(tmp_path: Path, mixtures_dir: Path, capsys: pytest.CaptureFixture) -> None:
    data, sr = sf.read(str(mixtures_dir / MP3), frames=4 * 44100, dtype="float32")
    src = tmp_path / "song.wav"
    sf.write(str(src), data, sr, subtype="FLOAT")
    code = main(["separate", str(src), "-o", str(tmp_path / "out"), "--two-stems", "vocals", "--offline",
                 "--bit-depth", "32", "--clip-mode", "none", "--json", "--quiet"])
    out, err = capsys.readouterr()
    assert code == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert result["ok"] and set(result["stems"]) == {"vocals", "no_vocals"}
    manifest = json.loads((tmp_path / "out" / "song" / "stemwright.json").read_text())
    assert manifest["model"] == DEFAULT_VOCALS_MODEL == "spleeter_2stems" != DEFAULT_MODEL
    vocals, _ = sf.read(str(tmp_path / "out" / "song" / "vocals.wav"), dtype="float32")
    rest, _ = sf.read(str(tmp_path / "out" / "song" / "no_vocals.wav"), dtype="float32")
    assert np.abs(vocals + rest - data).max() < 1e-5  # no_vocals = mixture - vocals
    assert 0.01 < np.sqrt(np.mean(vocals**2)) < np.sqrt(np.mean(data**2))  # a real, partial separation
