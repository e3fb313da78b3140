"""Outputs that cannot be written give one ``error:`` line and exit 1, found before the work where possible; a
missing input is reported before the model loads (issue 22, items 5, 12, 17). The tests run as root in CI, where
permission bits do not stop writes: an output path below an existing *file* stands in for a read-only folder."""
from __future__ import annotations

import errno
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from stemwright.cli.main import main
from tests.cli.eval_data import SR, STEMS, musdb as _musdb


def run(args: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> bool:
    lines = [line for line in err.splitlines() if line.strip()]
    return len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err


@pytest.fixture()
def blocker(tmp_path: Path) -> Path:
    f = tmp_path / "blocker"
    f.write_text("a file, not a folder")
    return f


def test_synth_into_a_file(blocker: Path, capsys: pytest.CaptureFixture) -> None:
    code, _, err = run(["synth", "-o", str(blocker), "-n", "1", "-s", "1", "--no-mir1k", "-q"], capsys)
    assert code == 1 and one_error_line(err) and "not a folder" in err, err


def test_train_out_below_a_file(blocker: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code, _, err = run(["train", "-c", str(tmp_path / "any.yaml"), "--out", str(blocker / "run")], capsys)
    assert code == 1 and one_error_line(err) and "not a folder" in err, err


def test_serve_data_dir_below_a_file(blocker: Path, capsys: pytest.CaptureFixture) -> None:
    code, _, err = run(["serve", "--data-dir", str(blocker / "lib"), "--port", "0"], capsys)
    assert code == 1 and one_error_line(err) and "--data-dir" in err, err


def _stems(folder: Path) -> Path:
    folder.mkdir()
    for name in ("vocals", "drums", "bass", "other"):
        sf.write(str(folder / f"{name}.wav"), np.zeros((4410, 2), dtype=np.float32), 44100)
    return folder


def test_export_below_a_file_and_on_a_full_disk(blocker: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    stems = _stems(tmp_path / "song")
    code, _, err = run(["export", str(stems), "-f", "ni-stems", "-o", str(blocker / "x.stem.mp4")], capsys)
    assert code == 1 and one_error_line(err) and "not a folder" in err, err

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("stemwright.mixer.export.write_ni_stems", full)
    code, _, err = run(["export", str(stems), "-f", "ni-stems", "-o", str(tmp_path / "x.stem.mp4")], capsys)
    assert code == 1 and one_error_line(err) and "No space left" in err, err
    assert not (tmp_path / "x.stem.mp4").exists()


def test_eval_checks_the_report_folder_first_and_prints_scores_before_writing(
        tmp_path: Path, blocker: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _musdb(tmp_path / "db", names=("only",), n=int(1.5 * SR))
    code, out, err = run(["eval", "--dataset", str(root), "-m", "oracle_irm", "-o", str(blocker / "r"), "-q"], capsys)
    assert code == 1 and one_error_line(err) and "not a folder" in err and not out

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("stemwright.metrics.report.save_report", full)
    code, out, err = run(["eval", "--dataset", str(root), "-m", "oracle_irm", "-o", str(tmp_path / "r"), "-q"],
                         capsys)
    assert code == 1 and one_error_line(err) and "scores are printed above" in err
    assert "vocals" in out  # the table was printed before the write failed


def test_eval_rate_mismatch_names_the_stem(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = _musdb(tmp_path / "db", names=("only",), n=int(1.5 * SR))
    est = tmp_path / "est" / "only"
    est.mkdir(parents=True)
    for s in STEMS:
        sf.write(str(est / f"{s}.wav"), np.zeros((int(0.75 * SR), 1), dtype=np.float32), SR // 2)
    code, _, err = run(["eval", "--references", str(root), "--estimates", str(tmp_path / "est"), "-q",
                        "-o", str(tmp_path / "r")], capsys)
    assert code == 1 and f"estimate '{sorted(STEMS)[0]}'" in err, err  # the first file of the folder


def test_a_missing_input_is_reported_before_the_model_loads(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    def no_loading(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr("stemwright.pretrained.loading.load_model", no_loading)
    code, _, err = run(["separate", str(tmp_path / "missing.wav"), "-o", str(tmp_path / "out"), "-m", "classic"],
                       capsys)
    assert code == 1 and "missing.wav: file not found" in err and "the model was loaded" not in err, err
    (tmp_path / "bad.wav").write_text("not audio")
    code, _, err = run(["separate", str(tmp_path / "bad.wav"), "-o", str(tmp_path / "out"), "-m", "classic"], capsys)
    assert code == 1 and "bad.wav" in err and "the model was loaded" not in err, err
