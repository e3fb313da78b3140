"""``separate``: outputs never replace inputs, ``--skip-existing`` checks the input's identity and the stems, and
``--clip-mode none`` says what an integer format did (issue 22, items 1-3, 10, 11)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from stemwright.cli.main import main


def run(args: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def song(path: Path, seed: int = 0, seconds: float = 0.5, peak: float = 0.5, subtype: str = "PCM_16") -> Path:
    """A short generated stereo clip (noise scaled to ``peak``)."""
    x = np.random.default_rng(seed).standard_normal((int(44100 * seconds), 2)).astype(np.float32)
    x *= peak / np.abs(x).max()
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), x, 44100, subtype=subtype)
    return path


@pytest.mark.parametrize("link", ["same", "hard", "symlink"])
@pytest.mark.parametrize("overwrite", [False, True])
def test_an_output_that_is_the_input_is_refused(tmp_path: Path, tiny_model: str, capsys: pytest.CaptureFixture,
                                                link: str, overwrite: bool) -> None:
    folder = tmp_path / "st2"
    original = song(tmp_path / "song.wav")
    target = folder / "vocals.wav"
    folder.mkdir()
    if link == "same":
        target.write_bytes(original.read_bytes())
        inp = target
    else:
        inp = tmp_path / "input.wav"
        inp.write_bytes(original.read_bytes())
        (os.link if link == "hard" else os.symlink)(inp, target)
    before = inp.read_bytes()
    args = ["separate", str(inp), "-o", str(folder), "-m", tiny_model, "--filename", "{stem}.{ext}", "-q"]
    code, _, err = run(args + (["--overwrite"] if overwrite else []), capsys)
    assert code == 1
    assert "is the input" in err and "--overwrite" not in err, err
    assert inp.read_bytes() == before
    assert not (folder / "drums.wav").exists() and not (folder / "stemwright.json").exists()


def test_an_output_that_is_another_input_is_refused_before_any_work(tmp_path: Path, tiny_model: str,
                                                                      capsys: pytest.CaptureFixture) -> None:
    a = song(tmp_path / "st" / "mix.wav")
    b = song(tmp_path / "st" / "vocals.wav", seed=1)
    before = b.read_bytes()
    code, _, err = run(["separate", str(a), str(b), "-o", str(tmp_path / "st"), "-m", tiny_model,
                        "--filename", "{stem}.{ext}", "--overwrite", "-q"], capsys)
    assert code == 1 and "is the input" in err
    assert b.read_bytes() == before and not (tmp_path / "st" / "drums.wav").exists()


def test_collision_advice_names_a_field_that_separates_the_inputs(tmp_path: Path, tiny_model: str,
                                                                   capsys: pytest.CaptureFixture) -> None:
    wav, mp3 = song(tmp_path / "coll" / "song.wav"), tmp_path / "coll" / "song.flac"
    sf.write(str(mp3), sf.read(str(wav))[0], 44100)
    template = "{parent}/{track}/{stem}.{ext}"
    code, _, err = run(["separate", str(wav), str(mp3), "-o", str(tmp_path / "out"), "-m", tiny_model, "-q",
                        "--filename", template], capsys)
    assert code == 1 and "{ext_in}" in err and f'"{template}"' not in err, err
    code, _, err = run(["separate", str(wav), str(mp3), "-o", str(tmp_path / "out2"), "-m", tiny_model, "-q",
                        "--filename", "{ext_in}/{track}/{stem}.{ext}"], capsys)
    assert code == 0, err
    assert (tmp_path / "out2" / "wav" / "song" / "vocals.wav").is_file()
    assert (tmp_path / "out2" / "flac" / "song" / "vocals.wav").is_file()


def _skip_run(tmp_path: Path, tiny_model: str, inp: Path, capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    return run(["separate", str(inp), "-o", str(tmp_path / "out"), "-m", tiny_model, "--skip-existing", "-q"], capsys)


def test_skip_existing_does_not_skip_another_inputs_stems(tmp_path: Path, tiny_model: str,
                                                           capsys: pytest.CaptureFixture) -> None:
    a = song(tmp_path / "albA" / "01.wav", seed=0)
    b = song(tmp_path / "albB" / "01.wav", seed=1)
    assert _skip_run(tmp_path, tiny_model, a, capsys)[0] == 0
    code, out, err = _skip_run(tmp_path, tiny_model, a, capsys)
    assert code == 0 and "skipped" in out
    code, out, err = _skip_run(tmp_path, tiny_model, b, capsys)
    assert code == 1 and "skipped" not in out
    assert f"separated from {a.resolve()}" in err and "--overwrite" in err


def test_skip_existing_sees_a_replaced_song(tmp_path: Path, tiny_model: str, capsys: pytest.CaptureFixture) -> None:
    a = song(tmp_path / "01.wav", seed=0)
    assert _skip_run(tmp_path, tiny_model, a, capsys)[0] == 0
    song(a, seed=5)  # another song under the same name
    code, out, err = _skip_run(tmp_path, tiny_model, a, capsys)
    assert code == 1 and "has changed since" in err, err


def test_skip_existing_redoes_a_track_whose_stem_was_emptied_or_removed(tmp_path: Path, tiny_model: str,
                                                                         capsys: pytest.CaptureFixture) -> None:
    a = song(tmp_path / "01.wav")
    assert _skip_run(tmp_path, tiny_model, a, capsys)[0] == 0
    vocals = tmp_path / "out" / "01" / "vocals.wav"
    size = vocals.stat().st_size
    vocals.write_bytes(b"")
    code, out, err = _skip_run(tmp_path, tiny_model, a, capsys)
    assert code == 0 and "skipped" not in out, (out, err)
    assert vocals.stat().st_size == size
    (tmp_path / "out" / "01" / "bass.wav").unlink()
    code, out, err = _skip_run(tmp_path, tiny_model, a, capsys)
    assert code == 0 and "skipped" not in out and (tmp_path / "out" / "01" / "bass.wav").is_file()
    code, out, _ = _skip_run(tmp_path, tiny_model, a, capsys)
    assert code == 0 and "skipped" in out


def test_skip_existing_names_the_option_that_differs(tmp_path: Path, tiny_model: str,
                                                      capsys: pytest.CaptureFixture) -> None:
    a = song(tmp_path / "01.wav")
    assert _skip_run(tmp_path, tiny_model, a, capsys)[0] == 0
    code, _, err = run(["separate", str(a), "-o", str(tmp_path / "out"), "-m", tiny_model, "--skip-existing", "-q",
                        "--clip-mode", "clamp"], capsys)
    assert code == 1 and "clip_mode 'rescale', not 'clamp'" in err, err


def test_clip_mode_none_with_integer_wav_warns_and_records_the_clamp(tmp_path: Path, tiny_model: str,
                                                                      capsys: pytest.CaptureFixture) -> None:
    loud = song(tmp_path / "loud.wav", peak=3.0, subtype="FLOAT")  # vocals = 0.4 x mixture peaks at 1.2
    with pytest.warns(UserWarning, match="clamped in the wav files"):  # the CLI prints it as a warning: line
        code, out, err = run(["separate", str(loud), "-o", str(tmp_path / "out"), "-m", tiny_model, "--clip-mode",
                              "none", "--bit-depth", "24", "--json", "-q"], capsys)
    assert code == 0, err
    manifest = json.loads(Path(json.loads(out)["manifest"]).read_text())
    assert manifest["clip"]["action"] == "clamped by the format"
    assert all(p is None or p <= 0.0 for p in manifest["peaks"].values())
    # 32-bit float keeps them, and says so
    code, out, err = run(["separate", str(loud), "-o", str(tmp_path / "f32"), "-m", tiny_model, "--clip-mode", "none",
                          "--bit-depth", "32", "--json", "-q"], capsys)
    manifest = json.loads(Path(json.loads(out)["manifest"]).read_text())
    assert manifest["clip"]["action"] == "left over full scale"


def test_an_interrupted_overwrite_does_not_advise_skip_existing(tmp_path: Path, tiny_model: str,
                                                                 capsys: pytest.CaptureFixture,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    a = song(tmp_path / "01.wav")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("stemwright.api.Separator.separate_file", interrupted)
    code, _, err = run(["separate", str(a), "-o", str(tmp_path / "out"), "-m", tiny_model, "-q", "--overwrite"], capsys)
    assert code == 130 and "--skip-existing" not in err and "rerun the same command" in err, err
    code, _, err = run(["separate", str(a), "-o", str(tmp_path / "out"), "-m", tiny_model, "-q"], capsys)
    assert code == 130 and "--skip-existing" in err


def test_progress_off_a_terminal_is_one_plain_line_per_track(tmp_path: Path, tiny_model: str,
                                                              capsys: pytest.CaptureFixture) -> None:
    a, b = song(tmp_path / "a.wav"), song(tmp_path / "b.wav", seed=1)
    code, _, err = run(["separate", str(a), str(b), "-o", str(tmp_path / "out"), "-m", tiny_model], capsys)
    assert code == 0, err
    assert "\r" not in err
    assert err.splitlines() == [f"{a}: done", f"{b}: done"]
    import logging

    assert logging.getLogger("ray").level == logging.ERROR  # Ray's start-up notices only with -v


def test_progress_on_a_terminal_is_a_bar(tmp_path: Path, tiny_model: str, capsys: pytest.CaptureFixture,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("stemwright.cli.common.stderr_is_terminal", lambda: True)
    a = song(tmp_path / "a.wav")
    code, _, err = run(["separate", str(a), "-o", str(tmp_path / "out"), "-m", tiny_model], capsys)
    assert code == 0 and "100%" in err and f"{a}: done" not in err
