"""``stemwright mashup`` end to end on two small generated songs."""
from __future__ import annotations

import json

import pytest
import soundfile as sf

from stemwright.cli.main import main
from tests.mixer.songs import make_song


@pytest.fixture(scope="module")
def songs(tmp_path_factory):
    root = tmp_path_factory.mktemp("mash")
    make_song(root / "a", 90.0, 9, "minor", seconds=9.0, seed=3, lead_in=0.2)  # A minor
    make_song(root / "b", 120.0, 0, "minor", seconds=8.0, seed=4)  # C minor
    return root / "a", root / "b"


def test_mashup_prints_the_plan_and_writes(songs, tmp_path, capsys):
    out = tmp_path / "m.wav"
    assert main(["mashup", "--vocals", str(songs[0]), "--backing", str(songs[1]), "-o", str(out),
                 "--loudness", "-14", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["backing_tempo_bpm"] == pytest.approx(120, abs=1) and plan["vocals_tempo_bpm"] == pytest.approx(90, abs=1)
    assert plan["vocals_key"] == "A minor" and plan["backing_key"] == "C minor" and plan["semitones"] == 3
    info = sf.info(str(out))
    assert info.samplerate == 22050 and info.frames == 8 * 22050


def test_mashup_text_and_overrides(songs, tmp_path, capsys):
    out = tmp_path / "m.wav"
    assert main(["mashup", "--vocals", str(songs[0]), "--backing", str(songs[1]), "-o", str(out), "--semitones", "-2",
                 "--offset", "1.0", "--no-stretch"]) == 0
    text = capsys.readouterr().out
    assert "pitch-shifted -2 semitones" in text and "starts at +1.000 s" in text and "x1.0000" in text
    assert main(["mashup", "--vocals", str(songs[0]), "--backing", str(songs[1]), "-o", str(out)]) == 1
    assert "already exists" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--vocals-key", "H minor"], 2, "key: cannot parse 'H minor'"),
        (["--backing-tempo", "1000"], 2, "--backing-tempo: tempo must be in [20, 400] BPM"),
        (["--semitones", "20"], 2, "--semitones: must be in [-12, 12]"),
        (["--vocal-stem", "lead"], 1, "no 'lead' stem"),
    ],
)
def test_mashup_errors(songs, tmp_path, capsys, args, code, message):
    assert main(["mashup", "--vocals", str(songs[0]), "--backing", str(songs[1]), "-o", str(tmp_path / "m.wav"), *args]) == code
    assert message in capsys.readouterr().err
