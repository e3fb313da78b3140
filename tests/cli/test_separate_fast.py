"""``stemwright separate --fast`` reaches the Separator's precision choice and still writes every stem."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import stemwright.api
from stemwright.cli.main import main


@pytest.mark.parametrize("flag", [[], ["--fast"]])
def test_fast_flag_reaches_the_precision_choice(flag: list[str], tmp_path: Path, tiny_model: str,
                                                monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    asked: list[bool] = []
    choose = stemwright.api.choose_precision

    def spy(device, fast):
        asked.append(fast)
        return choose(device, fast)

    monkeypatch.setattr(stemwright.api, "choose_precision", spy)
    song = tmp_path / "song.wav"
    sf.write(str(song), 0.1 * np.random.default_rng(0).standard_normal((44100, 2)).astype(np.float32), 44100)
    code = main(["separate", "-m", tiny_model, str(song), "-o", str(tmp_path / "out"), "-q", *flag])
    assert code == 0, capsys.readouterr().err
    assert asked == [bool(flag)]
    assert sorted(p.name for p in (tmp_path / "out" / "song").glob("*.wav")) == ["bass.wav", "drums.wav", "other.wav", "vocals.wav"]
