"""``stemwright separate`` and ``stemwright models`` end to end, on real files from ../shared/data."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from stemwright.audio.io import read_audio
from stemwright.cli.main import main
from stemwright.models.defaults import DEFAULT_MODEL

MP3 = "spleeter_audio_example_SlowMotionDream_StevenMBryant_CC-BY-3.0.mp3"
FAST = ["--segment", "6"]  # shorter chunks than classic's default: these inputs are short


def run(args: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def _crop(src: Path, dst: Path, seconds: float, start: float = 0.0) -> Path:
    info = sf.info(str(src))
    data, sr = sf.read(str(src), start=int(start * info.samplerate), frames=int(seconds * info.samplerate), dtype="float32")
    sf.write(str(dst), data, sr, subtype="PCM_24")
    return dst


def test_real_mp3_residual_other_sums_to_mixture(tmp_path: Path, mixtures_dir: Path, capsys: pytest.CaptureFixture) -> None:
    src = mixtures_dir / MP3
    code, out, err = run(["separate", str(src), "-o", str(tmp_path), "--residual", "other", "--bit-depth", "32",
                          "--clip-mode", "none", "--json", "--quiet", *FAST], capsys)
    assert code == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert result["ok"] and set(result["stems"]) == {"vocals", "drums", "bass", "other"}
    mix = read_audio(src)
    stems = {k: read_audio(v) for k, v in result["stems"].items()}
    for s in stems.values():
        assert s.samplerate == mix.samplerate and s.samples.shape == mix.samples.shape
    total = sum(s.samples for s in stems.values())
    assert float(np.abs(total - mix.samples).max()) < 1e-4
    manifest = json.loads(Path(result["manifest"]).read_text())
    assert manifest["parameters"]["residual"] == "other" and manifest["clip"]["clip_mode"] == "none"
    assert manifest["input"]["path"] == str(src.resolve())


def test_real_oggs_in_a_folder_at_48k(tmp_path: Path, mixtures_dir: Path, capsys: pytest.CaptureFixture) -> None:
    """Both CC-BY-SA Ogg files (48 kHz), cropped to 4 s so the test stays fast; a folder input is walked."""
    songs = tmp_path / "songs"
    (songs / "sub").mkdir(parents=True)
    _crop(mixtures_dir / "singularity_ChimesTheyFade_MaxMcCracken_CC-BY-SA-3.0.ogg", songs / "chimes.flac", 4.0, 10.0)
    _crop(mixtures_dir / "singularity_Awakening_MaxMcCracken_CC-BY-SA-3.0.ogg", songs / "sub" / "awakening.wav", 4.0, 60.0)
    (songs / "notes.txt").write_text("not audio, not picked up")
    code, out, err = run(["separate", str(songs), "-o", str(tmp_path / "out"), "--format", "flac", "--bit-depth", "16", *FAST], capsys)
    assert code == 0, err
    for track in ("chimes", "awakening"):
        folder = tmp_path / "out" / track
        assert sorted(p.name for p in folder.iterdir()) == ["bass.flac", "drums.flac", "other.flac", "stemwright.json", "vocals.flac"]
        a = read_audio(folder / "drums.flac")
        assert a.samplerate == 48000 and a.samples.shape == (2, 4 * 48000)
    assert "100%" in err  # the progress bar was drawn (on stderr)


def test_folder_walk_skips_the_output_folder(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from stemwright.cli.separate import collect_inputs

    (tmp_path / "out" / "song").mkdir(parents=True)
    for name in ("song.wav", "b.flac", ".hidden.wav", "out/song/vocals.wav", "cover.png"):
        (tmp_path / name).write_bytes(b"x")
    files, failures = collect_inputs([tmp_path, tmp_path / "missing.mp3"], exclude=tmp_path / "out")
    assert files == [tmp_path / "b.flac", tmp_path / "song.wav"]
    assert [f.error for f in failures] == [f"{tmp_path / 'missing.mp3'}: file not found"]
    empty = tmp_path / "empty_dir"
    empty.mkdir()
    assert "no audio files" in collect_inputs([empty])[1][0].error


def test_batch_goes_on_past_bad_files(tmp_path: Path, mixtures_dir: Path, capsys: pytest.CaptureFixture) -> None:
    good = _crop(mixtures_dir / MP3, tmp_path / "good.wav", 2.0)
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "text.wav").write_text("hello")
    trunc = tmp_path / "trunc.mp3"
    trunc.write_bytes((mixtures_dir / MP3).read_bytes()[:60000])
    nan = np.zeros((1000, 2), np.float32)
    nan[3] = np.nan
    sf.write(str(tmp_path / "nan.wav"), nan, 44100, subtype="FLOAT")
    inputs = [tmp_path / n for n in ("empty.wav", "text.wav", "good.wav", "trunc.mp3", "nan.wav", "missing.wav")]
    code, out, err = run(["separate", *map(str, inputs), "-o", str(tmp_path / "out"), "-q", *FAST], capsys)
    assert code == 1
    assert (tmp_path / "out" / "good" / "vocals.wav").exists()
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 5, err
    reasons = {"empty.wav": "empty", "text.wav": "not an audio file", "trunc.mp3": "truncated", "nan.wav": "non-finite",
               "missing.wav": "not found"}
    for name, reason in reasons.items():
        assert any(name in e and reason in e for e in errors), (name, err)
    assert "5 input(s) failed, 1 separated" in err
    assert good.exists()


def test_json_reports_failures_too(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "empty.wav").write_bytes(b"")
    code, out, _ = run(["separate", str(tmp_path / "empty.wav"), "-o", str(tmp_path / "o"), "--json", "-q"], capsys)
    assert code == 1
    lines = [json.loads(line) for line in out.strip().splitlines()]
    assert lines == [{"input": str(tmp_path / "empty.wav"), "ok": False, "error": lines[0]["error"]}]
    assert "empty" in lines[0]["error"]


def test_unwritable_output_six_channels_silence_one_sample(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rng = np.random.default_rng(0)
    sf.write(str(tmp_path / "six.wav"), 0.1 * rng.standard_normal((22050, 6)).astype(np.float32), 44100)
    sf.write(str(tmp_path / "silence.wav"), np.zeros((22050, 2), np.float32), 44100)
    sf.write(str(tmp_path / "one.wav"), np.array([[0.5, 0.5]], np.float32), 44100)
    with pytest.warns(UserWarning, match="six.wav: 6-channel input downmixed"):
        code, out, err = run(["separate", str(tmp_path / "six.wav"), str(tmp_path / "silence.wav"), str(tmp_path / "one.wav"),
                              "-o", str(tmp_path / "o"), "-q", "--segment", "2"], capsys)
    assert code == 0, err
    assert read_audio(tmp_path / "o" / "six" / "bass.wav").channels == 2
    assert not read_audio(tmp_path / "o" / "silence" / "vocals.wav").samples.any()
    assert read_audio(tmp_path / "o" / "one" / "drums.wav").samples.shape == (2, 1)
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    code, out, err = run(["separate", str(tmp_path / "one.wav"), "-o", str(blocker / "out"), "-q"], capsys)
    assert code == 1 and "cannot create output folder" in err


def test_two_stems_stems_overwrite_filename_mp3(tmp_path: Path, mixtures_dir: Path, capsys: pytest.CaptureFixture) -> None:
    src = _crop(mixtures_dir / MP3, tmp_path / "song.wav", 2.0)
    out = tmp_path / "o"
    code, _, err = run(["separate", str(src), "-o", str(out), "--two-stems", "vocals", "-q", *FAST], capsys)
    assert code == 0, err
    assert sorted(p.name for p in (out / "song").iterdir()) == ["no_vocals.wav", "stemwright.json", "vocals.wav"]
    code, _, err = run(["separate", str(src), "-o", str(out), "--two-stems", "vocals", "-q", *FAST], capsys)
    assert code == 1 and "already exists" in err and "--overwrite" in err
    code, _, err = run(["separate", str(src), "-o", str(out), "--two-stems", "vocals", "--overwrite", "-q", *FAST], capsys)
    assert code == 0, err
    code, _, err = run(["separate", str(src), "-o", str(out), "--stems", "drums,bass", "--format", "mp3", "--mp3-bitrate", "128",
                        "--filename", "{track}-{model}/{stem}.{ext}", "-q", *FAST], capsys)
    assert code == 0, err
    named = out / f"song-{DEFAULT_MODEL}"  # {model}: the default model's name
    assert sorted(p.name for p in named.iterdir()) == ["bass.mp3", "drums.mp3", "stemwright.json"]
    assert read_audio(named / "bass.mp3").samplerate == 44100


def test_jobs_runs_files_in_parallel(tmp_path: Path, mixtures_dir: Path, capsys: pytest.CaptureFixture) -> None:
    a = _crop(mixtures_dir / MP3, tmp_path / "a.wav", 1.5)
    b = _crop(mixtures_dir / MP3, tmp_path / "b.wav", 1.5, start=3.0)
    code, out, err = run(["separate", str(a), str(b), "-o", str(tmp_path / "o"), "--jobs", "2", "--json", "-q", "--segment", "2"], capsys)
    assert code == 0, err
    results = [json.loads(line) for line in out.strip().splitlines()]
    assert [r["input"] for r in results] == [str(a), str(b)] and all(r["ok"] for r in results)


@pytest.mark.parametrize(
    "args",
    [
        ["separate"],
        ["separate", "x.wav", "--format", "ogg"],
        ["separate", "x.wav", "--bit-depth", "20"],
        ["separate", "x.wav", "--format", "flac", "--bit-depth", "32"],
        ["separate", "x.wav", "--stems", "vocals", "--two-stems", "vocals"],
        ["separate", "x.wav", "--stems", "guitar"],
        ["separate", "x.wav", "--two-stems", "piano"],
        ["separate", "x.wav", "--residual", "piano"],
        ["separate", "x.wav", "--overlap", "1.2"],
        ["separate", "x.wav", "--jobs", "0"],
        ["separate", "x.wav", "--clip-mode", "soft"],
        ["separate", "x.wav", "--device", "tpu"],
        ["separate", "x.wav", "-m", "no-such-model", "--offline"],
        ["separate", "x.wav", "--filename", "{track}/{nope}.{ext}"],
        ["models", "--bogus"],
    ],
)
def test_usage_errors_exit_2(args: list[str], capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    code, _, err = run(args, capsys)
    assert code == 2, err


def test_demo_and_rerun(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code, out, err = run(["separate", "--demo", "-o", str(tmp_path), "-q"], capsys)
    assert code == 0, err
    assert f"Stems are in {tmp_path / 'demo'}/" in out
    for s in ("vocals", "drums", "bass", "other"):
        assert str(tmp_path / "demo" / f"{s}.wav") in out
        assert read_audio(tmp_path / "demo" / f"{s}.wav").samples.shape[1] > 20 * 44100
    code, out, err = run(["separate", "--demo", "-o", str(tmp_path), "-q"], capsys)
    assert code == 0 and "already separated" in out


def test_models_command(capsys: pytest.CaptureFixture) -> None:
    code, out, _ = run(["models", "--json"], capsys)
    assert code == 0
    data = json.loads(out)
    classic = next(m for m in data["models"] if m["name"] == "classic")
    assert classic["sources"] == ["vocals", "drums", "bass", "other"] and classic["samplerate"] == 44100
    assert "MIT" in classic["licence"]
    assert [m["name"] for m in data["models"] if m["default"]] == [DEFAULT_MODEL]
    assert data["published"] is None or isinstance(data["published"], list)
    assert (data["published"] is None) == (data["published_note"] is not None)
    code, out, _ = run(["models"], capsys)
    assert code == 0 and "classic" in out


def test_installed_entry_point(tmp_path: Path) -> None:
    """The command in a fresh process: exit status, one-line errors and warnings on stderr."""
    sf.write(str(tmp_path / "six.wav"), np.full((2000, 6), 0.1, np.float32), 44100)
    args = ["separate", str(tmp_path / "missing.wav"), str(tmp_path / "six.wav"), "-q", "-o", str(tmp_path / "o"), "--segment", "1"]
    proc = subprocess.run([sys.executable, "-m", "stemwright.cli.main", *args], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert f"warning: {tmp_path / 'six.wav'}: 6-channel input downmixed to stereo (mean of all channels in both)" in lines
    assert lines[-1] == f"error: {tmp_path / 'missing.wav'}: file not found"
    assert (tmp_path / "o" / "six" / "vocals.wav").exists()
