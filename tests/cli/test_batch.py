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
