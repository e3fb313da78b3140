"""``stemwright batch`` on a local Ray: files, folders and a list; --json per track; batch.json; exit status."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from stemwright.cli.main import main
from tests.batch.catalogue import make_catalogue


def test_batch_command(local_ray, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    files = make_catalogue(tmp_path / "in", n=2, seconds=0.5)
    listing = tmp_path / "list.txt"
    listing.write_text("# the catalogue\n" + "\n".join(str(p) for p in files) + "\n")
    code = main(["batch", str(listing), "-o", str(tmp_path / "out"), "-m", "classic", "--workers", "2", "--json"])
    assert code == 1  # bad.wav failed; the others were separated
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert sorted(r["index"] for r in lines) == [0, 1, 2]
    assert {Path(r["input"]).name: r["status"] for r in lines} == {"bad.wav": "failed", "song0.wav": "done",
                                                                  "song1.wav": "done"}
    report = json.loads((tmp_path / "out" / "batch.json").read_text())
    assert (report["done"], report["failed"]) == (2, 1) and report["workers"] == 2
    code = main(["batch", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-m", "classic", "-q"])
    assert code == 1
    text = capsys.readouterr().out
    assert "0 separated, 2 already done, 1 failed" in text and "bad.wav" in text


def test_lists_of_paths(tmp_path: Path) -> None:
    from stemwright.cli.batch import expand_inputs, read_list

    (tmp_path / "a.csv").write_text("artist,path\nX,songs/one.wav\nY,/abs/two.flac\n")
    assert read_list(tmp_path / "a.csv") == [tmp_path / "songs" / "one.wav", Path("/abs/two.flac")]
    (tmp_path / "b.csv").write_text("songs/three.wav,120\n")
    assert read_list(tmp_path / "b.csv") == [tmp_path / "songs" / "three.wav"]
    (tmp_path / "c.txt").write_text("# comment\n\nfour.mp3\n")
    folder = tmp_path / "music"
    folder.mkdir()
    assert expand_inputs([tmp_path / "c.txt", folder]) == [tmp_path / "four.mp3", folder]


def test_inputs_that_fail_before_ray_are_in_every_report(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Issue 22 item 7: a missing path in a list was in neither --json nor batch.json ("0 failed")."""
    listing = tmp_path / "list.txt"
    listing.write_text("missing1.wav\nmissing2.wav\n")
    code = main(["batch", str(listing), "-o", str(tmp_path / "out"), "-m", "classic", "--json", "-q"])
    assert code == 1
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines() if line.startswith("{")]
    assert [(r["index"], Path(r["input"]).name, r["status"]) for r in lines] == [
        (0, "missing1.wav", "failed"), (1, "missing2.wav", "failed")]
    report = json.loads((tmp_path / "out" / "batch.json").read_text())
    assert report["failed"] == 2 and [t["input"] for t in report["tracks"]] == [r["input"] for r in lines]
    assert "2 failed" in captured.err and "file not found" in captured.err


def test_an_interrupted_batch_writes_what_finished_and_removes_leftovers(
        tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 22 item 9: after Ctrl-C, batch left .part.wav / .spool.f32 files and no batch.json."""
    import numpy as np
    import soundfile as sf

    from stemwright.batch import ray_runner

    songs = []
    for name in ("one", "two"):
        songs.append(tmp_path / f"{name}.wav")
        sf.write(str(songs[-1]), np.zeros((4410, 2), dtype=np.float32), 44100)

    class Interrupted:
        def __init__(self, *args, **kwargs):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return None

        def run(self, todo, on_result):
            on_result(ray_runner.TrackResult(index=0, input=todo[0], status="done", duration=0.1))
            leftover = tmp_path / "out" / "two" / ".vocals.wav.abc123.part.wav"  # a killed worker's temporary
            leftover.parent.mkdir(parents=True)
            leftover.write_bytes(b"partial")
            raise KeyboardInterrupt

    monkeypatch.setattr(ray_runner, "RayBatch", Interrupted)
    code = main(["batch", *map(str, songs), "-o", str(tmp_path / "out"), "-m", "classic", "-q"])
    assert code == 130
    report = json.loads((tmp_path / "out" / "batch.json").read_text())
    assert report["interrupted"] and [t["input"] for t in report["tracks"]] == [str(songs[0])]
    assert not (tmp_path / "out" / "two").exists()


def test_batch_takes_the_ensemble_options(local_ray, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """``batch -m a+b --ensemble-method ...`` reaches every worker's Separator; on one model it is a usage error,
    found before any worker starts."""
    files = [p for p in make_catalogue(tmp_path / "in", n=1, seconds=0.5) if p.name != "bad.wav"]
    out = tmp_path / "out"
    code = main(["batch", *map(str, files), "-o", str(out), "-m", "classic+classic", "--ensemble-method", "max_wave",
                 "--ensemble-weights", "1,2", "--workers", "1", "-q"])
    assert code == 0, capsys.readouterr().err
    manifest = json.loads((out / files[0].stem / "stemwright.json").read_text())
    assert manifest["model"] == "classic+classic"
    capsys.readouterr()
    assert main(["batch", *map(str, files), "-o", str(tmp_path / "o2"), "-m", "classic",
                 "--ensemble-method", "avg_fft", "-q"]) == 2
    assert "one model" in capsys.readouterr().err
