"""``stemwright transcribe`` end to end with the real basic-pitch model (its ONNX file ships in the wheel): MIDI per
pitched stem at the tempo, the manifest, outputs kept unless --overwrite, bad input, basic-pitch missing."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from stemwright.cli.main import main
from stemwright.transcribe import Note, StemFile, TranscribeError, TranscriptionManifest
from stemwright.transcribe.score import note_scores
from tests.transcribe.melody import BASS, BEAT, MELODY, write_stems


@pytest.fixture(scope="module")
def stems_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_stems(tmp_path_factory.mktemp("song") / "stems")


def _midi(path: Path):
    import pretty_midi

    return pretty_midi.PrettyMIDI(str(path))


def _f(midi, pitches: tuple[int, ...]) -> float:
    """Note F (onsets) of a written MIDI track against one note a beat of ``pitches``."""
    truth = [Note(i * BEAT, (i + 1) * BEAT - 0.04, p, 100) for i, p in enumerate(pitches)]
    got = [Note(n.start, n.end, n.pitch, n.velocity) for n in midi.instruments[0].notes]
    return note_scores(truth, got).f


def test_writes_one_midi_per_pitched_stem_at_the_tempo(stems_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "midi"
    before = {p.name: p.read_bytes() for p in stems_dir.iterdir()}
    assert main(["transcribe", str(stems_dir), "-o", str(out), "--tempo", "96"]) == 0
    text = capsys.readouterr()
    assert "basic-pitch 0.4.0 (Apache-2.0" in text.err and "transcribing bass (1/2)" in text.err
    assert "tempo 96.00 BPM (given)" in text.out
    assert sorted(p.name for p in out.iterdir()) == ["bass.mid", "other.mid", "transcription.json"]  # no drums, no temp
    bass, other = _midi(out / "bass.mid"), _midi(out / "other.mid")
    assert bass.get_tempo_changes()[1].tolist() == pytest.approx([96.0])
    assert bass.instruments[0].program == 33 and bass.instruments[0].name == "bass"
    assert _f(bass, BASS) >= 0.8 and _f(other, MELODY) >= 0.9  # the notes, at their times in the stems
    manifest = TranscriptionManifest.read(out / "transcription.json")
    assert manifest.model.licence == "Apache-2.0" and manifest.tempo_bpm == 96.0 and manifest.tempo_source == "given"
    assert manifest.stems["bass"] == StemFile(file="bass.mid", notes=len(bass.instruments[0].notes), program=33)
    assert manifest.input == str(stems_dir) and list(manifest.stems) == ["bass", "other"]
    assert {p.name: p.read_bytes() for p in stems_dir.iterdir()} == before  # inputs untouched


def test_tempo_from_the_analysis_and_chosen_stems(stems_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "midi"
    assert main(["transcribe", str(stems_dir), "-o", str(out), "--stems", "other"]) == 0
    manifest = TranscriptionManifest.read(out / "transcription.json")
    assert list(manifest.stems) == ["other"] and manifest.tempo_source.startswith("analysis")
    assert _midi(out / "other.mid").get_tempo_changes()[1][0] == pytest.approx(manifest.tempo_bpm, abs=1e-3)
    assert f"tempo {manifest.tempo_bpm:.2f} BPM" in capsys.readouterr().out


def test_existing_outputs_are_kept_unless_overwrite(stems_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "midi"
    out.mkdir()
    (out / "other.mid").write_bytes(b"mine")
    assert main(["transcribe", str(stems_dir), "-o", str(out), "--tempo", "120"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"error: {out / 'other.mid'}: already exists (use --overwrite to replace it)"
    assert (out / "other.mid").read_bytes() == b"mine" and sorted(p.name for p in out.iterdir()) == ["other.mid"]
    assert main(["transcribe", str(stems_dir), "-o", str(out), "--tempo", "120", "--overwrite"]) == 0
    assert _midi(out / "other.mid").instruments[0].notes


@pytest.mark.parametrize("args, code, message", [
    (["--stems", "vocals"], 1, "no stem 'vocals' (stems: bass, drums, other)"),
    (["--tempo", "5"], 2, "--tempo"),
])
def test_bad_options(stems_dir: Path, tmp_path: Path, capsys, args, code, message) -> None:
    assert main(["transcribe", str(stems_dir), "-o", str(tmp_path / "o"), *args]) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) - sum(line.startswith(("model:", "transcribing")) for line in err) == 1
    assert err[-1].startswith("error: ") and message in err[-1]
    assert not (tmp_path / "o").exists()


def test_bad_folders(tmp_path: Path, capsys) -> None:
    assert main(["transcribe", str(tmp_path / "nowhere"), "-o", str(tmp_path / "o")]) == 1
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'nowhere'}: not found"
    (tmp_path / "empty").mkdir()
    assert main(["transcribe", str(tmp_path / "empty"), "-o", str(tmp_path / "o")]) == 1
    assert "no audio files found" in capsys.readouterr().err
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "bass.wav").write_bytes(b"not audio")
    assert main(["transcribe", str(tmp_path / "bad"), "-o", str(tmp_path / "o")]) == 1
    assert "bass.wav" in capsys.readouterr().err.strip().splitlines()[-1]
    assert not (tmp_path / "o").exists()


def test_a_file_that_is_not_a_manifest_is_refused(tmp_path: Path) -> None:
    (tmp_path / "t.json").write_text('{"version": 99}')
    with pytest.raises(TranscribeError, match="t.json: not a transcription manifest"):
        TranscriptionManifest.read(tmp_path / "t.json")


def test_without_basic_pitch_says_how_to_install(stems_dir: Path, tmp_path: Path, capsys,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "basic_pitch", None)  # import basic_pitch -> ImportError
    assert main(["transcribe", str(stems_dir), "-o", str(tmp_path / "o"), "--tempo", "120"]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: transcription needs the package 'basic_pitch'")
    assert "pip install --no-deps basic-pitch==0.4.0" in err and "stemwright[transcribe]" in err
    assert not (tmp_path / "o").exists()
