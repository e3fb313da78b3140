"""``stemwright separate`` and ``stemwright models`` end to end, on real files from ../shared/data."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from stemwright.audio.io import read_audio
from stemwright.cli.main import COMMANDS, main
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


def test_real_oggs_in_a_folder_at_48k(tmp_path: Path, mixtures_dir: Path, capsys: pytest.CaptureFixture, tiny_model: str) -> None:
    """Both CC-BY-SA Ogg files (48 kHz), cropped to 4 s so the test stays fast; a folder input is walked."""
    songs = tmp_path / "songs"
    (songs / "sub").mkdir(parents=True)
    _crop(mixtures_dir / "singularity_ChimesTheyFade_MaxMcCracken_CC-BY-SA-3.0.ogg", songs / "chimes.flac", 4.0, 10.0)
    _crop(mixtures_dir / "singularity_Awakening_MaxMcCracken_CC-BY-SA-3.0.ogg", songs / "sub" / "awakening.wav", 4.0, 60.0)
    (songs / "notes.txt").write_text("not audio, not picked up")
    code, out, err = run(["separate", "-m", tiny_model, str(songs), "-o", str(tmp_path / "out"), "--format", "flac", "--bit-depth", "16", *FAST], capsys)
    assert code == 0, err
    for track in ("chimes", "awakening"):
        folder = tmp_path / "out" / track
        assert sorted(p.name for p in folder.iterdir()) == ["bass.flac", "drums.flac", "other.flac", "stemwright.json", "vocals.flac"]
        a = read_audio(folder / "drums.flac")
        assert a.samplerate == 48000 and a.samples.shape == (2, 4 * 48000)
    assert "awakening.wav: done" in err and "\r" not in err  # stderr is no terminal here: plain lines, no bar


def test_folder_walk_skips_the_output_folder(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from stemwright.cli.separate import Outcome, collect_inputs

    (tmp_path / "out" / "song").mkdir(parents=True)
    for name in ("song.wav", "b.flac", ".hidden.wav", "out/song/vocals.wav", "cover.png"):
        (tmp_path / name).write_bytes(b"x")
    items = collect_inputs([tmp_path, tmp_path / "missing.mp3"], exclude=tmp_path / "out")
    assert items[:2] == [tmp_path / "b.flac", tmp_path / "song.wav"]
    assert isinstance(items[2], Outcome) and items[2].error == f"{tmp_path / 'missing.mp3'}: file not found"
    empty = tmp_path / "empty_dir"
    empty.mkdir()
    assert "no audio files" in collect_inputs([empty])[0].error
    # Defect 9: files skipped only because they sit in the output folder are named as such.
    only_out = collect_inputs([tmp_path / "out"], exclude=tmp_path / "out")[0]
    assert "inside the output folder" in only_out.error and "no audio files" not in only_out.error


def test_batch_goes_on_past_bad_files(tmp_path: Path, mixtures_dir: Path, capsys: pytest.CaptureFixture, tiny_model: str) -> None:
    good = _crop(mixtures_dir / MP3, tmp_path / "good.wav", 2.0)
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "text.wav").write_text("hello")
    trunc = tmp_path / "trunc.mp3"
    trunc.write_bytes((mixtures_dir / MP3).read_bytes()[:60000])
    nan = np.zeros((1000, 2), np.float32)
    nan[3] = np.nan
    sf.write(str(tmp_path / "nan.wav"), nan, 44100, subtype="FLOAT")
    inputs = [tmp_path / n for n in ("empty.wav", "text.wav", "good.wav", "trunc.mp3", "nan.wav", "missing.wav")]
    code, out, err = run(["separate", "-m", tiny_model, *map(str, inputs), "-o", str(tmp_path / "out"), "-q", *FAST], capsys)
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


def test_json_reports_failures_too(tmp_path: Path, capsys: pytest.CaptureFixture, tiny_model: str) -> None:
    (tmp_path / "empty.wav").write_bytes(b"")
    code, out, _ = run(["separate", "-m", tiny_model, str(tmp_path / "empty.wav"), "-o", str(tmp_path / "o"), "--json", "-q"], capsys)
    assert code == 1
    lines = [json.loads(line) for line in out.strip().splitlines()]
    assert lines == [{"input": str(tmp_path / "empty.wav"), "ok": False, "error": lines[0]["error"]}]
    assert "empty" in lines[0]["error"]


def test_unwritable_output_six_channels_silence_one_sample(tmp_path: Path, capsys: pytest.CaptureFixture, tiny_model: str) -> None:
    rng = np.random.default_rng(0)
    sf.write(str(tmp_path / "six.wav"), 0.1 * rng.standard_normal((22050, 6)).astype(np.float32), 44100)
    sf.write(str(tmp_path / "silence.wav"), np.zeros((22050, 2), np.float32), 44100)
    sf.write(str(tmp_path / "one.wav"), np.array([[0.5, 0.5]], np.float32), 44100)
    with pytest.warns(UserWarning, match=r"six.wav: 5.1 downmixed to stereo \(ITU-R BS.775"):
        code, out, err = run(["separate", "-m", tiny_model, str(tmp_path / "six.wav"), str(tmp_path / "silence.wav"), str(tmp_path / "one.wav"),
                              "-o", str(tmp_path / "o"), "-q", "--segment", "2"], capsys)
    assert code == 0, err
    assert read_audio(tmp_path / "o" / "six" / "bass.wav").channels == 2
    assert not read_audio(tmp_path / "o" / "silence" / "vocals.wav").samples.any()
    assert read_audio(tmp_path / "o" / "one" / "drums.wav").samples.shape == (2, 1)
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    code, out, err = run(["separate", "-m", tiny_model, str(tmp_path / "one.wav"), "-o", str(blocker / "out"), "-q"], capsys)
    assert code == 1 and "cannot create output folder" in err


def test_two_stems_stems_overwrite_filename_mp3(tmp_path: Path, mixtures_dir: Path, capsys: pytest.CaptureFixture, tiny_model: str) -> None:
    src = _crop(mixtures_dir / MP3, tmp_path / "song.wav", 2.0)
    out = tmp_path / "o"
    code, _, err = run(["separate", "-m", tiny_model, str(src), "-o", str(out), "--two-stems", "vocals", "-q", *FAST], capsys)
    assert code == 0, err
    assert sorted(p.name for p in (out / "song").iterdir()) == ["no_vocals.wav", "stemwright.json", "vocals.wav"]
    code, _, err = run(["separate", "-m", tiny_model, str(src), "-o", str(out), "--two-stems", "vocals", "-q", *FAST], capsys)
    assert code == 1 and "already exists" in err
    code, _, err = run(["separate", "-m", tiny_model, str(src), "-o", str(out), "--two-stems", "vocals", "--overwrite", "-q", *FAST], capsys)
    assert code == 0, err
    code, _, err = run(["separate", "-m", tiny_model, str(src), "-o", str(out), "--stems", "drums,bass", "--format", "mp3", "--mp3-bitrate", "128",
                        "--filename", "{track}-{model}/{stem}.{ext}", "-q", *FAST], capsys)
    assert code == 0, err
    named = out / f"song-{tiny_model}"  # {model}: the model's name
    assert sorted(p.name for p in named.iterdir()) == ["bass.mp3", "drums.mp3", "stemwright.json"]
    assert read_audio(named / "bass.mp3").samplerate == 44100


def test_jobs_runs_files_in_parallel(tmp_path: Path, mixtures_dir: Path, capsys: pytest.CaptureFixture, tiny_model: str) -> None:
    a = _crop(mixtures_dir / MP3, tmp_path / "a.wav", 1.5)
    b = _crop(mixtures_dir / MP3, tmp_path / "b.wav", 1.5, start=3.0)
    code, out, err = run(["separate", "-m", tiny_model, str(a), str(b), "-o", str(tmp_path / "o"), "--jobs", "2", "--json", "-q", "--segment", "2"], capsys)
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
        ["separate", "x.wav", "--filename", "{track}/{stem!r}.{ext}"],  # defect 9
        ["separate", "x.wav", "--filename", "../{track}/{stem}.{ext}"],
        ["separate", "x.wav", "--filename", "{track}/{stem:>8}.{ext}"],
        ["separate", "x.wav", "--segment", "0.01"],  # defect 9: a lower bound
        ["separate", "x.wav", "--mp3", "--flac"],
        ["separate", "x.wav", "--int24", "--float32"],
        ["separate", "x.wav", "--mp3-bitrate", "5", "--mp3"],
        ["separate", "x.wav", "--overwrite", "--skip-existing"],
        ["bench", "-m", "no-such-model", "--seconds", "1"],  # one rule for unknown models: 2 everywhere
        ["models", "--bogus"],
        [],  # bare 'stemwright': help on stderr, exit 2
    ],
)
def test_usage_errors_exit_2(args: list[str], capsys: pytest.CaptureFixture, tmp_path: Path, tiny_model: str) -> None:
    if args[:1] == ["separate"] and "-m" not in args:
        args = [*args, "-m", tiny_model]
    if args[:1] == ["separate"]:  # a real input: usage errors that need the model come after the inputs' check
        sf.write(str(tmp_path / "x.wav"), np.zeros((4410, 2), dtype=np.float32), 44100)
        args = [str(tmp_path / "x.wav") if a == "x.wav" else a for a in args]
    code, out, err = run(args, capsys)
    assert code == 2, err
    assert err.startswith("error: ") or (not args and "usage: stemwright" in err), err
    assert len([line for line in err.splitlines() if line.startswith("error: ")]) <= 1


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_has_short_help(command: str, capsys: pytest.CaptureFixture) -> None:
    code, out, err = run([command, "-h"], capsys)
    assert code == 0 and "Usage: stemwright " + command in out, err


def test_aliases_as_demucs_spells_them(tmp_path: Path, tiny_model: str, capsys: pytest.CaptureFixture) -> None:
    src = tmp_path / "song.wav"
    sf.write(str(src), np.full((4410, 2), 0.1, np.float32), 44100)
    for flags, name, subtype in ((["--mp3"], "vocals.mp3", None), (["--flac"], "vocals.flac", "PCM_24"),
                                 (["--int24"], "vocals.wav", "PCM_24"), (["--float32"], "vocals.wav", "FLOAT")):
        out = tmp_path / "-".join(flags)
        code, _, err = run(["separate", str(src), "-n", tiny_model, "-d", "cpu", "-o", str(out), "-q", *flags], capsys)
        assert code == 0, err
        assert (out / "song" / name).exists()
        if subtype:
            assert sf.info(str(out / "song" / name)).subtype == subtype


def _two_albums(root: Path) -> list[Path]:
    files = []
    for album, level in (("A", 0.1), ("B", 0.3)):
        (root / "albums" / album).mkdir(parents=True)
        files.append(root / "albums" / album / "01.wav")
        sf.write(str(files[-1]), np.full((4410, 2), level, np.float32), 44100, subtype="FLOAT")
    return files


def test_same_name_in_two_folders_never_overwrite_each_other(tmp_path: Path, tiny_model: str,
                                                            capsys: pytest.CaptureFixture) -> None:
    """Defect 3: albums/A/01.wav and albums/B/01.wav: B failed, or with --overwrite replaced A's stems."""
    a, b = _two_albums(tmp_path)
    for extra in ([], ["--overwrite"]):
        code, _, err = run(["separate", str(tmp_path / "albums"), "-m", tiny_model, "-o", str(tmp_path / "o"), "-q",
                            "--float32", *extra], capsys)
        assert code == 1
        assert f"{b}: its stems would overwrite those of {a}" in err and "{parent}" in err
        vocals = read_audio(tmp_path / "o" / "01" / "vocals.wav").samples
        assert np.allclose(vocals, 0.4 * 0.1, atol=1e-6)  # A's stems, not B's
    code, _, err = run(["separate", str(tmp_path / "albums"), "-m", tiny_model, "-o", str(tmp_path / "p"), "-q",
                        "--filename", "{parent}/{track}/{stem}.{ext}"], capsys)
    assert code == 0, err
    assert (tmp_path / "p" / "A" / "01" / "vocals.wav").exists() and (tmp_path / "p" / "B" / "01" / "vocals.wav").exists()


def test_musdb_layout_feeds_eval_estimates(tmp_path: Path, tiny_model: str, capsys: pytest.CaptureFixture) -> None:
    """{parent}: MUSDB's TRACK/mixture.wav -> OUT/TRACK/<stem>.wav, which 'eval --estimates' reads directly."""
    rng = np.random.default_rng(0)
    for track in ("song a", "song b"):
        folder = tmp_path / "db" / "test" / track
        folder.mkdir(parents=True)
        stems = {s: 0.1 * rng.standard_normal((8000, 2)).astype(np.float32) for s in ("vocals", "drums", "bass", "other")}
        for s, x in stems.items():
            sf.write(str(folder / f"{s}.wav"), x, 8000, subtype="FLOAT")
        sf.write(str(folder / "mixture.wav"), sum(stems.values()), 8000, subtype="FLOAT")
    mixtures = sorted((tmp_path / "db").rglob("mixture.wav"))
    code, _, err = run(["separate", *map(str, mixtures), "-m", tiny_model, "-o", str(tmp_path / "est"), "-q",
                        "--filename", "{parent}/{stem}.{ext}"], capsys)
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "est").iterdir()) == ["song a", "song b"]
    code, out, err = run(["eval", "--references", str(tmp_path / "db"), "--estimates", str(tmp_path / "est"),
                          "--protocol", "mdx", "-o", str(tmp_path / "report"), "-q", "--json"], capsys)
    assert code == 0, err


def test_failed_input_leaves_no_track_folder(tmp_path: Path, tiny_model: str, capsys: pytest.CaptureFixture) -> None:
    """Defect 6: 'separate bad/empty.wav -o o' left o/empty/."""
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "empty.wav").write_bytes(b"")
    code, _, err = run(["separate", str(tmp_path / "bad" / "empty.wav"), "-m", tiny_model, "-o", str(tmp_path / "o"), "-q"], capsys)
    assert code == 1 and "empty" in err
    assert not (tmp_path / "o" / "empty").exists()


def test_skip_existing_twice_and_resume_after_interrupt(tmp_path: Path, tiny_model: str, capsys: pytest.CaptureFixture,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from stemwright.api import Separator

    songs = tmp_path / "songs"
    songs.mkdir()
    for i in range(3):
        sf.write(str(songs / f"s{i}.wav"), np.full((4410, 2), 0.1 * (i + 1), np.float32), 44100)
    out = tmp_path / "o"
    real = Separator.separate_file

    def interrupted(self, path, *args, **kwargs):  # Ctrl-C while the second song is being separated
        if Path(path).name == "s1.wav":
            raise KeyboardInterrupt
        return real(self, path, *args, **kwargs)

    monkeypatch.setattr(Separator, "separate_file", interrupted)
    code, _, err = run(["separate", str(songs), "-m", tiny_model, "-o", str(out), "-q", "--skip-existing"], capsys)
    assert code == 130 and "--skip-existing" in err
    assert (out / "s0" / "stemwright.json").exists() and not (out / "s1").exists()
    monkeypatch.setattr(Separator, "separate_file", real)
    code, stdout, err = run(["separate", str(songs), "-m", tiny_model, "-o", str(out), "-q", "--skip-existing", "--json"], capsys)
    assert code == 0, err
    lines = [json.loads(x) for x in stdout.splitlines()]
    assert [(r["input"], r["skipped"]) for r in lines] == [(str(songs / f"s{i}.wav"), i == 0) for i in range(3)]
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    code, stdout, err = run(["separate", str(songs), "-m", tiny_model, "-o", str(out), "-q", "--skip-existing"], capsys)
    assert code == 0, err
    assert stdout.count("(skipped)") == 3 and {p: p.stat().st_mtime_ns for p in out.rglob("*")} == stamps
    # Interrupted after the stems but before the manifest: redone.
    (out / "s2" / "stemwright.json").unlink()
    code, stdout, err = run(["separate", str(songs), "-m", tiny_model, "-o", str(out), "-q", "--skip-existing"], capsys)
    assert code == 0 and stdout.count("(skipped)") == 2 and (out / "s2" / "stemwright.json").exists()
    # Without --skip-existing a re-run is still an error for every song already done.
    code, _, err = run(["separate", str(songs), "-m", tiny_model, "-o", str(out), "-q"], capsys)
    assert code == 1 and err.count("already exists") == 3


def test_overwrite_with_other_stems_removes_the_previous_runs(tmp_path: Path, tiny_model: str,
                                                             capsys: pytest.CaptureFixture) -> None:
    src = tmp_path / "song.wav"
    sf.write(str(src), np.full((4410, 2), 0.1, np.float32), 44100)
    assert run(["separate", str(src), "-m", tiny_model, "-o", str(tmp_path / "o"), "-q"], capsys)[0] == 0
    code, _, err = run(["separate", str(src), "-m", tiny_model, "-o", str(tmp_path / "o"), "-q", "--overwrite",
                        "--two-stems", "vocals"], capsys)
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "o" / "song").iterdir()) == ["no_vocals.wav", "stemwright.json", "vocals.wav"]


def test_json_streams_each_result_in_input_order(tmp_path: Path, tiny_model: str, capsys: pytest.CaptureFixture,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from stemwright.api import Separator

    files = []
    for i in range(2):
        files.append(tmp_path / f"s{i}.wav")
        sf.write(str(files[-1]), np.full((4410, 2), 0.1, np.float32), 44100)
    real = Separator.separate_file
    seen_before_second: list[str] = []

    def watch(self, path, *args, **kwargs):
        if Path(path).name == "s1.wav":
            seen_before_second.append(capsys.readouterr().out)
        return real(self, path, *args, **kwargs)

    monkeypatch.setattr(Separator, "separate_file", watch)
    code, _, err = run(["separate", *map(str, files), "-m", tiny_model, "-o", str(tmp_path / "o"), "--json"], capsys)
    assert code == 0, err
    assert json.loads(seen_before_second[0])["input"] == str(files[0])  # printed before the second one started


def test_demo_follows_the_model(tmp_path: Path, tiny_model: str, capsys: pytest.CaptureFixture) -> None:
    """Defect 9: --demo ignored -m (it said "already separated" with another model's stems)."""
    code, out, err = run(["separate", "--demo", "-m", tiny_model, "-o", str(tmp_path), "-q"], capsys)
    assert code == 0 and f"with model '{tiny_model}'" in out, err
    code, out, err = run(["separate", "--demo", "-m", tiny_model, "-o", str(tmp_path), "-q"], capsys)
    assert code == 0 and "already separated" in out
    code, out, err = run(["separate", "--demo", "-m", "classic", "-o", str(tmp_path), "-q", "--stems", "vocals"], capsys)
    assert code == 1 and "already separated" not in out
    assert f"holds another run's stems (separated with model '{tiny_model}', not 'classic')" in err and "use --overwrite" in err


def test_third_party_warnings_hidden_unless_verbose(tmp_path: Path) -> None:
    """One fresh interpreter (warning filters are process-wide): a library's warning is hidden, then shown with -v."""
    sf.write(str(tmp_path / "a.wav"), np.full((4410, 2), 0.1, np.float32), 44100)
    script = (
        "import contextlib, io, json, sys, warnings\n"
        f"sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})\n"
        "import stemwright.api\n"
        "from stemwright.cli.main import main\n"
        "from stemwright.models.registry import MODELS, ModelEntry\n"
        "from tests.cli.tiny_model import build\n"
        "MODELS['test_tiny'] = ModelEntry(name='test_tiny', architecture='test', sources=('vocals', 'drums', 'bass',"
        " 'other'), samplerate=44100, description='', licence='', loader=build)\n"
        "real = stemwright.api.open_audio_stream\n"
        "def noisy(p):\n"
        "    warnings.warn_explicit('noise from a library', RuntimeWarning, 'numpy/x.py', 1, module='numpy')\n"
        "    return real(p)\n"
        "stemwright.api.open_audio_stream = noisy\n"
        "out = []\n"
        "for extra in ([], ['-v']):\n"
        "    err = io.StringIO()\n"
        "    with contextlib.redirect_stderr(err):\n"
        "        code = main([*extra, *sys.argv[1:]])\n"
        "    warnings.resetwarnings()\n"
        "    out.append([code, err.getvalue()])\n"
        "print(json.dumps(out))\n"
    )
    args = ["separate", str(tmp_path / "a.wav"), "-m", "test_tiny", "-q", "-o", str(tmp_path / "o"), "--overwrite"]
    proc = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    (quiet, quiet_err), (loud, loud_err) = json.loads(proc.stdout.strip().splitlines()[-1])
    assert quiet == 0 and "noise from a library" not in quiet_err, quiet_err
    assert loud == 0 and "warning: noise from a library" in loud_err, loud_err


def test_device_choices_are_the_engines() -> None:
    """The CLI spells the engine's device list without importing torch; this keeps the two the same."""
    from stemwright.cli.options import DEVICE_CHOICES
    from stemwright.engine.device import DEVICE_CHOICES as ENGINE

    assert DEVICE_CHOICES == ENGINE


def test_ctrl_c_with_jobs_stops_the_batch(tmp_path: Path, tiny_model: str, capsys: pytest.CaptureFixture,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """With --jobs, Ctrl-C stops the batch: the inputs not started are dropped (Executor.map cancels them)."""
    from stemwright.api import Separator

    songs = tmp_path / "songs"
    songs.mkdir()
    for i in range(8):
        sf.write(str(songs / f"s{i}.wav"), np.full((4410, 2), 0.1, np.float32), 44100)
    real = Separator.separate_file
    started: list[str] = []

    def slow_then_interrupt(self, path, *args, **kwargs):
        started.append(Path(path).name)
        if Path(path).name == "s0.wav":
            raise KeyboardInterrupt  # raised in a worker: the main thread gets it from map() in input order
        time.sleep(0.3)  # the others take a while, so most are still queued when the interrupt arrives
        return real(self, path, *args, **kwargs)

    monkeypatch.setattr(Separator, "separate_file", slow_then_interrupt)
    code, _, err = run(["separate", str(songs), "-m", tiny_model, "-o", str(tmp_path / "o"), "-q", "-j", "2"], capsys)
    assert code == 130
    assert len(started) < 8, started
