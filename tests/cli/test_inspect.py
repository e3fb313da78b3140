"""``stemwright inspect``: text and JSON reports, plots, errors."""
from __future__ import annotations

import json

from stemwright.cli.main import main
from tests.mixer.songs import make_song

TRACK = "musdb18-excerpts/Music Delta - 80s Rock"


def test_inspect_text_and_json(shared_data, capsys):
    folder = shared_data / TRACK
    assert main(["inspect", str(folder), "--mixture", str(folder / "mixture.flac")]) == 0
    text = capsys.readouterr().out
    assert "residual -31" in text and "bleed (all band" in text and "L/R corr" in text
    assert main(["inspect", str(folder), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["stems"] == ["bass", "drums", "other", "vocals"] and len(data["bleed"]["all"]) == 4


def test_inspect_plots_and_no_overwrite(tmp_path, capsys):
    song = tmp_path / "song"
    make_song(song, 120.0, 0, "major", seconds=3.0, sr=16000)
    plots = tmp_path / "plots"
    assert main(["inspect", str(song), "--plots", str(plots)]) == 0
    assert "bleed.png" in capsys.readouterr().out
    assert sorted(p.name for p in plots.iterdir()) == [
        "bleed.png", "spectrogram-bass.png", "spectrogram-drums.png", "spectrogram-other.png",
        "spectrogram-vocals.png", "waveforms.png"]
    assert main(["inspect", str(song), "--plots", str(plots)]) == 1
    assert "already exists (use --overwrite" in capsys.readouterr().err
    assert main(["inspect", str(song), "--plots", str(plots), "--overwrite"]) == 0


def test_inspect_errors(tmp_path, capsys):
    assert main(["inspect", str(tmp_path / "nope")]) == 1
    assert "stems folder not found" in capsys.readouterr().err
    assert main(["inspect", str(tmp_path), "--mixture", str(tmp_path / "m.wav")]) == 1
    assert "no audio files found" in capsys.readouterr().err


def test_inspect_short_stems_and_mixture_flag(tmp_path, capsys):
    """Issue 17 defect 5: stems shorter than ~1024 samples raised a torch padding error; -m is --model elsewhere,
    so it no longer means --mixture here."""
    import numpy as np
    import soundfile as sf

    folder = tmp_path / "short"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ("vocals", "other"):
        sf.write(str(folder / f"{name}.wav"), 0.1 * rng.standard_normal((300, 2)), 44100, subtype="FLOAT")
    assert main(["inspect", str(folder), "--json"]) == 0, capsys.readouterr().err
    capsys.readouterr()
    assert main(["inspect", str(folder), "-m", str(folder / "vocals.wav")]) == 2
