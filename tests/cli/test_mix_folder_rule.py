"""``mix`` and ``export`` on a folder without ``stemwright.json``: the stems are the known stem names (or
``--stems``), never an earlier mix or a stray file; ``export`` writes only MP4 names (issue 22, items 4, 16)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from stemwright.cli.main import main


def run(args: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    """Four short stems named as a separation names them, no manifest."""
    rng = np.random.default_rng(3)
    d = tmp_path / "song"
    d.mkdir()
    for name in ("vocals", "drums", "bass", "other"):
        sf.write(str(d / f"{name}.wav"), (rng.standard_normal((22050, 2)) * 0.05).astype(np.float32), 44100)
    return d


def test_mixing_into_the_stems_folder_never_mixes_earlier_mixes_in(folder: Path, capsys: pytest.CaptureFixture) -> None:
    for preset in ("instrumental", "acapella"):
        code, out, err = run(["mix", str(folder), "-p", preset, "-o", str(folder / f"{preset}.wav")], capsys)
        assert code == 0, err
    code, out, err = run(["mix", str(folder), "-o", str(folder / "all.wav")], capsys)
    assert code == 0, err
    assert "stems playing: bass, drums, other, vocals" in out, out
    assert "not taken as stems" in err and "acapella.wav" in err and "instrumental.wav" in err


def test_mix_stems_option_picks_other_names(folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (folder / "vocals.wav").rename(folder / "lead.wav")
    code, out, err = run(["mix", str(folder), "--stems", "lead,drums", "-o", str(tmp_path / "m.wav")], capsys)
    assert code == 0, err
    assert "stems playing: lead, drums" in out
    code, _, err = run(["mix", str(folder), "--stems", "lead,flute", "-o", str(tmp_path / "n.wav")], capsys)
    assert code == 1 and "'flute'" in err


def test_a_folder_of_unknown_names_says_how_to_name_them(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    d = tmp_path / "odd"
    d.mkdir()
    sf.write(str(d / "take1.wav"), np.zeros((4410, 2), dtype=np.float32), 44100)
    code, _, err = run(["mix", str(d), "-o", str(tmp_path / "m.wav")], capsys)
    assert code == 1 and "take1.wav" in err and "--stems" in err


def test_export_leaves_stray_files_out_and_wants_an_mp4_name(folder: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture) -> None:
    sf.write(str(folder / "backup.wav"), np.ones((22050, 2), dtype=np.float32) * 0.5, 44100)
    code, _, err = run(["export", str(folder), "-f", "ni-stems", "-o", str(tmp_path / "ok.wav")], capsys)
    assert code == 2 and ".stem.mp4" in err and not (tmp_path / "ok.wav").exists()
    code, out, err = run(["export", str(folder), "-f", "ni-stems", "-o", str(tmp_path / "ok.stem.mp4"), "--json"],
                         capsys)
    assert code == 0, err
    assert "backup.wav" in err and "backup" not in out


def test_render_refuses_nan_stems() -> None:
    from stemwright.errors import MixError
    from stemwright.mixer.document import Mix
    from stemwright.mixer.render import render

    stems = {"vocals": np.zeros((2, 4410), dtype=np.float32), "drums": np.zeros((2, 4410), dtype=np.float32)}
    stems["drums"][0, 10] = np.nan
    with pytest.raises(MixError, match="non-finite"):
        render(Mix.from_stems(stems), stems, samplerate=44100)
