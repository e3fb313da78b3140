"""Loading stems folders: manifests, plain folders, mismatched rates/lengths (warned), errors."""
from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import soundfile as sf

from stemwright.mixer.effects import MixError
from stemwright.mixer.stems import load_stems


def _write(folder, name, x, sr):
    folder.mkdir(parents=True, exist_ok=True)
    sf.write(str(folder / name), x.T, sr, subtype="FLOAT" if name.endswith(".wav") else "PCM_24")


def test_separate_output_folder(separated_dir, separated):
    manifest = json.loads((separated_dir / "stemwright.json").read_text())
    assert separated.names == list(manifest["stems"])
    assert separated.samplerate == manifest["samplerate"] == 44100
    assert separated.warnings == []


def test_manifest_paths_are_relative(tmp_path):
    x = np.full((2, 1000), 0.25, np.float32)
    _write(tmp_path / "sub", "lead.wav", x, 22050)
    (tmp_path / "stemwright.json").write_text(json.dumps({"stems": {"vocals": "sub/lead.wav"}, "samplerate": 22050}))
    s = load_stems(tmp_path)
    assert s.names == ["vocals"] and np.array_equal(s["vocals"], x)


def test_plain_folder_with_mixture_and_mismatches(tmp_path, caplog):
    rng = np.random.default_rng(0)
    _write(tmp_path, "vocals.wav", rng.standard_normal((2, 44100)).astype(np.float32) * 0.1, 44100)
    _write(tmp_path, "drums.flac", rng.standard_normal((2, 22050)).astype(np.float32) * 0.1, 44100)
    _write(tmp_path, "bass.wav", rng.standard_normal((2, 24000)).astype(np.float32) * 0.1, 48000)
    _write(tmp_path, "mixture.wav", rng.standard_normal((2, 44100)).astype(np.float32) * 0.1, 44100)
    (tmp_path / "notes.txt").write_text("not audio")
    with caplog.at_level(logging.WARNING):
        s = load_stems(tmp_path)
    assert s.names == ["bass", "drums", "vocals"]  # mixture.* is not a stem
    assert s.mixture_path == tmp_path / "mixture.wav"
    assert s.samplerate == 44100 and all(x.shape == (2, 44100) for x in s.audio.values())
    assert any("'bass' is at 48000 Hz; resampled to 44100 Hz" in w for w in s.warnings)
    assert any("'drums' is 0.500 s shorter" in w for w in s.warnings)
    assert "resampled" in caplog.text and "padded" in caplog.text
    assert not s["drums"][:, 22050:].any()


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: None, "stems folder not found"),
        (lambda p: p.mkdir(), "no audio files found"),
        (lambda p: (p.mkdir(), (p / "stemwright.json").write_text("{")), "cannot read manifest"),
        (lambda p: (p.mkdir(), (p / "stemwright.json").write_bytes(b"\xff\xfe\x00garbage")), "cannot read manifest"),
        (lambda p: (p.mkdir(), (p / "stemwright.json").write_text("[" * 100000)), "cannot read manifest"),
        (lambda p: (p.mkdir(), (p / "stemwright.json").write_text('{"stems": []}')), "field 'stems' must be"),
        (lambda p: (p.mkdir(), (p / "stemwright.json").write_text('{"stems": {"vocals": "v.wav"}}')), "stem 'vocals': .*file not found"),
        (lambda p: (p.mkdir(), (p / "vocals.wav").write_bytes(b"RIFF garbage")), r"stem 'vocals': .*vocals\.wav: .*corrupt"),
        (lambda p: (p.mkdir(), (p / "x.wav").write_bytes(b"RIFF garbage")), r"no stem files found .found x\.wav.*--stems"),
    ],
)
def test_load_errors_name_the_folder_or_file(tmp_path, setup, message):
    folder = tmp_path / "stems"
    setup(folder)
    with pytest.raises(MixError, match=message):
        load_stems(folder)


def test_a_file_is_not_a_folder(tmp_path):
    f = tmp_path / "song.wav"
    f.write_bytes(b"")
    with pytest.raises(MixError, match="not a folder"):
        load_stems(f)
