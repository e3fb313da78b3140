"""A 6-stem cascade (the family of ``stemwright_6stem``, tiny: the real one takes ~10 s on a short clip and is run by
tests/models/test_shipped.py) through ``stemwright separate``, then ``mix`` and ``export`` of its six stems."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from stemwright.cli.main import main
from tests.models.tiny_cascade import SPLITTER, tiny_cascade_config

MP3 = "spleeter_audio_example_SlowMotionDream_StevenMBryant_CC-BY-3.0.mp3"
SIX = ("vocals", "drums", "bass", "guitar", "piano", "other")
TINY6 = "test_tiny_6stem"


@pytest.fixture()
def tiny_6stem(monkeypatch: pytest.MonkeyPatch) -> str:
    """``-m test_tiny_6stem``: vocals from classic, then a 5-stem classic_refiner on the rest (untrained)."""
    from stemwright.models.cascade import Cascade
    from stemwright.models.registry import MODELS, ModelEntry

    config = dataclasses.replace(tiny_cascade_config(), splitter={"architecture": "classic_refiner",
                                                                  "config": {**SPLITTER, "sources": SIX[1:]}})
    entry = ModelEntry(name=TINY6, architecture="cascade", sources=SIX, samplerate=16000,
                       description="tiny 6-stem cascade (tests only)", licence="MIT (no weights)",
                       loader=lambda: Cascade(config).eval())
    monkeypatch.setitem(MODELS, TINY6, entry)
    return TINY6


def test_six_stems_separate_mix_and_fold_into_ni_stems(tmp_path: Path, mixtures_dir: Path, tiny_6stem: str,
                                                       capsys: pytest.CaptureFixture) -> None:
    data, sr = sf.read(str(mixtures_dir / MP3), frames=3 * 44100, dtype="float32")
    src = tmp_path / "song.wav"
    sf.write(str(src), data, sr, subtype="FLOAT")
    code = main(["separate", str(src), "-m", tiny_6stem, "-o", str(tmp_path / "out"), "--offline", "--residual", "other",
                 "--bit-depth", "32", "--clip-mode", "none", "--json", "--quiet"])
    out, err = capsys.readouterr()
    assert code == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert result["ok"] and tuple(result["stems"]) == SIX
    stems = {k: sf.read(v, dtype="float32")[0] for k, v in result["stems"].items()}
    assert np.abs(sum(stems.values()) - data).max() < 1e-4  # other takes the rest (16 kHz model: --residual)
    folder = tmp_path / "out" / "song"
    # mix: the new stems are stems like any other
    assert main(["mix", str(folder), "-o", str(tmp_path / "no_keys.wav"), "--mute", "guitar,piano",
                 "--bit-depth", "32", "--clip-mode", "none"]) == 0, capsys.readouterr().err
    mixed, _ = sf.read(str(tmp_path / "no_keys.wav"), dtype="float32")
    assert np.abs(mixed - (sum(stems.values()) - stems["guitar"] - stems["piano"])).max() < 1e-4
    # export: NI Stems has four slots, guitar and piano fold into other
    capsys.readouterr()
    assert main(["export", str(folder), "--format", "ni-stems", "-o", str(tmp_path / "song.stem.mp4"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert sorted(report["groups"]["other"]) == ["guitar", "other", "piano"]
    assert (tmp_path / "song.stem.mp4").stat().st_size > 0
