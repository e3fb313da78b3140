"""``stemdeck inspect``: text and JSON reports, plots, errors."""
from __future__ import annotations

import json

from stemdeck.cli.main import main

TRACK = "musdb18-excerpts/Music Delta - 80s Rock"


def test_inspect_text_json_and_plots(shared_data, tmp_path, capsys):
    folder = shared_data / TRACK
    assert main(["inspect", str(folder), "--mixture", str(folder / "mixture.flac"), "--plots", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "residual -31" in text and "bleed (all band" in text and "bleed.png" in text
    assert (tmp_path / "waveforms.png").is_file() and (tmp_path / "spectrogram-vocals.png").is_file()
    assert main(["inspect", str(folder), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["stems"] == ["bass", "drums", "other", "vocals"] and len(data["bleed"]["all"]) == 4
    assert main(["inspect", str(folder), "--plots", str(tmp_path)]) == 1
    assert "already exists" in capsys.readouterr().err


def test_inspect_errors(tmp_path, capsys):
    assert main(["inspect", str(tmp_path / "nope")]) == 1
    assert "stems folder not found" in capsys.readouterr().err
    assert main(["inspect", str(tmp_path), "--mixture", str(tmp_path / "m.wav")]) == 1
    assert "no audio files found" in capsys.readouterr().err
