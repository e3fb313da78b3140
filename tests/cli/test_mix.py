"""``stemwright mix``: outputs, presets, flags, mix files, and a clear one-line error for every bad flag."""
from __future__ import annotations

import os

import json

import numpy as np
import pytest
import soundfile as sf

from stemwright.cli.main import main
from stemwright.mixer.loudness import integrated_lufs, true_peak_db
from tests.mixer.songs import make_song


@pytest.fixture(scope="module")
def stems_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli") / "song"
    make_song(folder, 110.0, 0, "major", seconds=5.0, sr=22050)
    return folder


def _read(path):
    x, sr = sf.read(str(path), dtype="float32", always_2d=True)
    return x.T, sr


def test_neutral_mix_writes_the_sum(stems_dir, tmp_path, capsys):
    out = tmp_path / "mix.wav"
    assert main(["mix", str(stems_dir), "-o", str(out), "--bit-depth", "32", "--clip-mode", "none"]) == 0
    y, sr = _read(out)
    stems = {n: _read(stems_dir / f"{n}.wav")[0] for n in ("bass", "drums", "other", "vocals")}
    assert sr == 22050 and np.array_equal(y, stems["bass"] + stems["drums"] + stems["other"] + stems["vocals"])
    text = capsys.readouterr().out
    assert f"wrote {out}" in text and "LUFS" in text


def test_preset_flags_loudness_and_save_mix(stems_dir, tmp_path):
    out, doc = tmp_path / "karaoke.flac", tmp_path / "mix.json"
    code = main(["mix", str(stems_dir), "-o", str(out), "--preset", "karaoke:guide", "--gain", "bass=+2,drums=-1.5",
                 "--pan", "other=-0.3", "--fx", "vocals=highpass(120),compressor(-18,3)", "--master", "limiter(-1)",
                 "--loudness", "-14", "--save-mix", str(doc)])
    assert code == 0
    y, sr = _read(out)
    assert integrated_lufs(y, sr) == pytest.approx(-14, abs=0.5) and true_peak_db(y) <= -0.9  # 24-bit rounding
    saved = json.loads(doc.read_text())
    chans = {c["stem"]: c for c in saved["channels"]}
    assert chans["vocals"]["gain_db"] == -18.0 and chans["bass"]["gain_db"] == 2.0 and chans["other"]["pan"] == -0.3
    assert [e["type"] for e in chans["vocals"]["effects"]] == ["highpass", "compressor"]
    assert saved["master"]["effects"][0]["type"] == "limiter" and saved["loudness_lufs"] == -14
    # the saved document renders the same file again
    again = tmp_path / "again.flac"
    assert main(["mix", str(stems_dir), "-o", str(again), "--mix-file", str(doc)]) == 0
    assert np.array_equal(_read(again)[0], y)


def test_format_flag_and_mp3(stems_dir, tmp_path):
    assert main(["mix", str(stems_dir), "-o", str(tmp_path / "x"), "--format", "mp3", "--solo", "vocals"]) == 0
    assert (tmp_path / "x.mp3").is_file()


def test_no_overwrite_without_flag(stems_dir, tmp_path, capsys):
    out = tmp_path / "a.wav"
    assert main(["mix", str(stems_dir), "-o", str(out)]) == 0
    before = out.read_bytes()
    assert main(["mix", str(stems_dir), "-o", str(out), "--mute", "drums"]) == 1
    assert "already exists (use --overwrite" in capsys.readouterr().err
    assert out.read_bytes() == before
    assert main(["mix", str(stems_dir), "-o", str(out), "--mute", "drums", "--overwrite"]) == 0
    assert out.read_bytes() != before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav"]  # no temporary files left


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--gain", "voxals=-3"], "--gain: unknown stem 'voxals' (valid stems: bass, drums, other, vocals)"),
        (["--gain", "vocals"], "--gain: expected STEM=VALUE"),
        (["--gain", "vocals=loud"], "--gain: vocals='loud' is not a number of dB"),
        (["--gain", "vocals=+99"], "outside [-120, 24] dB"),
        (["--mute", "guitar"], "--mute: unknown stem 'guitar' (valid stems: bass, drums, other, vocals)"),
        (["--solo", "vocals,"], "--solo: empty stem name"),
        (["--pan", "other=2"], "--pan: other=2 is outside [-1, 1]"),
        (["--offset", "bass=x"], "--offset: bass='x' is not a number"),
        (["--fx", "vocals=hipass(120)"], "unknown effect 'hipass'"),
        (["--fx", "highpass(120)"], "--fx: expected STEM=EFFECT"),
        (["--fx", "piano=reverb"], "--fx: unknown stem 'piano'"),
        (["--fx", "vocals=compressor(-18,0.5)"], "ratio: must be in [1, 100]"),
        (["--master", "limiter(+3)"], "threshold_db: must be in [-60, 0] dB, got 3"),
        (["--preset", "nightcore"], "unknown preset 'nightcore'"),
        (["--preset", "practice:piano"], "needs a 'piano' stem"),
        (["--loudness", "5"], "--loudness: must be in [-70, 0] LUFS"),
        (["--format", "ogg"], "--format: unknown format 'ogg'"),
        (["--master-gain", "loud"], "--master-gain: master='loud' is not a number of dB"),
        (["--fx", "vocals=highpass(120"], "unbalanced '('"),  # issue 17 defect 5: was exit 1
        (["--bit-depth", "8"], "wav bit depth must be 16, 24 or 32, got 8"),  # defect 5: refused before rendering
        (["--mp3-bitrate", "5", "-o", "x.mp3"], "mp3 bitrate must be 32-320 kbit/s, got 5"),
        (["--clip-mode", "soft"], "soft"),
    ],
)
def test_bad_flags_are_usage_errors(stems_dir, tmp_path, capsys, args, message):
    out = tmp_path / "o.wav"
    assert main(["mix", str(stems_dir), "-o", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1  # one line
    assert not out.exists()


def test_bad_inputs(stems_dir, tmp_path, capsys):
    assert main(["mix", str(tmp_path / "missing"), "-o", str(tmp_path / "o.wav")]) == 1
    assert "stems folder not found" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text('{"channels": [{"stem": "vocals", "pan": 5}]}')
    assert main(["mix", str(stems_dir), "-o", str(tmp_path / "o.wav"), "--mix-file", str(bad)]) == 1
    assert "bad.json: channels[0].pan: must be in [-1, 1]" in capsys.readouterr().err
    other = tmp_path / "other.json"
    other.write_text('{"channels": [{"stem": "guitar"}]}')
    assert main(["mix", str(stems_dir), "-o", str(tmp_path / "o.wav"), "--mix-file", str(other)]) == 1
    assert "stem 'guitar' is not in" in capsys.readouterr().err
    assert main(["mix", str(stems_dir)]) == 2
    assert "-o OUT" in capsys.readouterr().err
    assert main(["mix", str(stems_dir), "-o", str(tmp_path / "o.ogg")]) == 2


def test_unreadable_documents_and_folders_are_one_line(stems_dir, tmp_path, capsys):
    """Issue 17 defect 5: tracebacks for a read-only --save-mix folder, a non-UTF-8 or .wav --mix-file, deep JSON."""
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if not os.access(locked, os.W_OK):  # (root can write anywhere)
            assert main(["mix", str(stems_dir), "--save-mix", str(locked / "m.json")]) == 1
            err = capsys.readouterr().err
            assert err.startswith(f"error: {locked / 'm.json'}: cannot write") and err.count("\n") == 1
    finally:
        locked.chmod(0o700)
    wav = next(p for p in stems_dir.iterdir() if p.suffix == ".wav")
    latin = tmp_path / "latin.json"
    latin.write_bytes('{"channels": [], "note": "caf\xe9"}'.encode("latin-1"))
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100000 + "]" * 100000)
    for doc, reason in ((wav, "not UTF-8"), (latin, "not UTF-8"), (deep, "nested too deeply")):
        assert main(["mix", str(stems_dir), "-o", str(tmp_path / "o.wav"), "--mix-file", str(doc)]) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"error: {doc}") and reason in err and err.count("\n") == 1, err
    assert not (tmp_path / "o.wav").exists()


def test_clip_mode_defaults_to_one_gain_that_prevents_clipping(stems_dir, tmp_path, capsys):
    """Presets could write clipped files with only a warning; now one gain keeps the mix under full scale."""
    import soundfile as sf

    out = tmp_path / "loud.wav"
    assert main(["mix", str(stems_dir), "-o", str(out), "--master-gain", "+12", "--bit-depth", "16"]) == 0
    printed = capsys.readouterr().out
    assert "clip: the mix peaked at +" in printed and "so that it does not clip" in printed
    x, _ = sf.read(str(out))
    assert np.abs(x).max() <= 1.0 and np.abs(x).max() > 0.99
    kept = tmp_path / "kept.wav"
    assert main(["mix", str(stems_dir), "-o", str(kept), "--master-gain", "+12", "--clip-mode", "none"]) == 0
    assert "warning: the mix peaked at +" in capsys.readouterr().err


def test_debleed_effect_on_a_stem_and_refused_on_the_master(stems_dir, tmp_path, capsys):
    out = tmp_path / "clean.wav"
    assert main(["mix", str(stems_dir), "-o", str(out), "--solo", "vocals", "--fx", "vocals=debleed(0.8)",
                 "--bit-depth", "32"]) == 0
    plain = tmp_path / "plain.wav"
    assert main(["mix", str(stems_dir), "-o", str(plain), "--solo", "vocals", "--bit-depth", "32"]) == 0
    cleaned, _ = _read(out)
    vocals, _ = _read(plain)
    assert cleaned.shape == vocals.shape and not np.allclose(cleaned, vocals, atol=1e-4)
    capsys.readouterr()
    assert main(["mix", str(stems_dir), "-o", str(tmp_path / "m.wav"), "--master", "debleed(0.5)"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "master.effects[0].type: debleed" in err[0]
