"""Sample libraries: loops on the bar lines of generated songs, click-free seams, drum one-shot classes, the index
and ``stemwright samples``."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import butter, sosfilt

from stemwright.cli.main import main
from stemwright.samples.library import LibraryError, add_loop_sample, build_library, filter_entries, read_index
from stemwright.samples.loops import cut_loops, fade_ends, nearest_zero_crossing
from stemwright.samples.oneshots import classify, dedupe_one_shots, extract_one_shots
from tests.mixer.songs import make_song

SR = 22050
TEMPO, LEAD_IN = 120.0, 0.25
BAR = 4 * 60 / TEMPO


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    folder = tmp_path_factory.mktemp("songs") / "demo"
    stems = make_song(folder, TEMPO, 9, "minor", seconds=12.0, sr=SR, lead_in=LEAD_IN)
    sf.write(folder / "piano.wav", np.zeros((len(stems["bass"][0]), 2), np.float32), SR)
    return folder


@pytest.fixture(scope="module")
def library(song, tmp_path_factory):
    lib = tmp_path_factory.mktemp("lib")
    entries = build_library(song, lib, one_shots=True)
    return lib, entries


def test_loops_start_on_the_bar_lines(library):
    _, entries = library
    loops = [e for e in entries if e.kind == "loop"]
    assert {e.bars for e in loops} == {1, 2, 4}
    for e in loops:
        t = e.source_start_s - LEAD_IN
        assert abs(t - round(t / BAR) * BAR) <= 0.010, e.path  # the 10 ms
        assert e.duration_s == pytest.approx(e.bars * 4 * 60 / e.bpm, abs=0.001)  # whole bars: loops stay in tempo
        assert e.bpm == pytest.approx(TEMPO, rel=0.01) and e.key == "A minor"
    assert not [e for e in loops if e.stem == "piano"]  # near-silent stems (a silent piano) give no loops
    name = next(e.path for e in loops if e.stem == "bass" and e.bars == 2)
    assert "demo_bass_120bpm_Am_bar" in name and name.endswith("_2bar.wav")
    # each loop carries the chords over it: one a bar (i-iv-V-i of A minor), so a 4-bar loop names 3 or 4
    four = [e for e in loops if e.bars == 4]
    assert four and all(set(e.chords.split()) <= {"Am", "Dm", "E"} and len(e.chords.split()) >= 3 for e in four)


def test_seams_are_no_louder_than_the_loops_own_transients(library):
    lib, entries = library
    for e in entries:
        if e.kind != "loop":
            continue
        x, _ = sf.read(lib / e.path, always_2d=True)
        steps = np.abs(np.diff(x, axis=0)).max(axis=0)
        seam = np.abs(x[0] - x[-1])
        assert np.all(seam <= steps + 1e-6), e.path


def test_zero_crossing_and_fades():
    x = np.sin(2 * np.pi * 100 * np.arange(1000) / 8000)
    assert nearest_zero_crossing(x, 45, 10) in (40, 41)
    assert nearest_zero_crossing(np.ones(100), 50, 10) == 50
    y = np.ones((2, 100), np.float32)
    faded = fade_ends(y, 10)
    assert faded[0, 0] < 0.05 and faded[0, -1] < 0.05 and faded[0, 50] == 1.0 and y[0, 0] == 1.0  # copy


def test_cut_loops_skips_silence_and_partial_bars():
    x = np.zeros((1, SR * 5), np.float32)
    x[:, SR:2 * SR] = np.sin(np.arange(SR) * 0.3)  # only the second bar (1 s bars) has sound
    loops = cut_loops(x, SR, np.arange(0.0, 4.0, 1.0), 1.0, 1)
    assert [lp.bar for lp in loops] == [2]
    assert cut_loops(x, SR, np.arange(0.0, 4.0, 1.0), 1.0, 4, first_bar=3)[0].bar == 3
    assert cut_loops(x, SR, np.array([3.5]), 1.0, 1) == []  # would run past the end


def _hit(kind: str, rng: np.random.Generator) -> np.ndarray:
    n = int(0.2 * SR)
    t = np.arange(n) / SR
    if kind == "kick":
        x = np.sin(2 * np.pi * 55 * t) * np.exp(-t / 0.08)
    elif kind == "snare":
        x = sosfilt(butter(4, [300, 2500], "bandpass", fs=SR, output="sos"), rng.standard_normal(n)) * np.exp(-t / 0.05)
        x += 0.3 * np.sin(2 * np.pi * 190 * t) * np.exp(-t / 0.05)
    else:
        x = sosfilt(butter(4, 6000, "highpass", fs=SR, output="sos"), rng.standard_normal(n)) * np.exp(-t / 0.02)
    return (x / np.abs(x).max()).astype(np.float32)


def test_one_shot_classes_and_duplicates():
    rng = np.random.default_rng(3)
    pattern = ["kick", "hat", "snare", "hat"] * 4
    drums = np.zeros(int(len(pattern) * 0.5 * SR + SR), np.float32)
    for i, kind in enumerate(pattern):
        hit = _hit(kind, rng) * (0.8 if i % 3 else 0.5)
        start = int((0.25 + i * 0.5) * SR)
        drums[start:start + len(hit)] += hit
    shots = extract_one_shots(np.stack([drums, drums]), SR, dedupe=False)
    assert [s.kind for s in shots] == pattern
    assert all(abs(s.start / SR - 0.25 - i * 0.5) < 0.02 for i, s in enumerate(shots))
    assert all(np.abs(s.audio).max() == pytest.approx(10 ** (-1 / 20), rel=1e-3) for s in shots)  # normalised
    assert all(s.audio.shape[1] < 0.5 * SR for s in shots)  # trimmed before the next hit
    kept = dedupe_one_shots(shots)
    assert sorted(s.kind for s in kept).count("kick") == 1  # the same kick at two levels is one sample
    assert {s.kind for s in kept} == {"kick", "snare", "hat"}
    assert classify(np.zeros(1000, np.float32), SR) == "other"


def test_index_and_filters(library, song, tmp_path):
    lib, entries = library
    assert read_index(lib) == entries
    shots = [e for e in entries if e.kind == "one-shot"]
    assert shots and {e.drum_class for e in shots} <= {"kick", "snare", "hat", "other"}
    assert all((lib / e.path).is_file() for e in entries)
    assert filter_entries(entries, bpm=60, key="Am", kind="loop") == [e for e in entries if e.kind == "loop"]
    assert filter_entries(entries, bpm=100) == [] and filter_entries(entries, key="C") == []
    assert filter_entries(entries, stem="bass", bars=4) == [e for e in entries if e.stem == "bass" and e.bars == 4]
    # a second song is added beside the first; the same song again replaces its own entries
    other = tmp_path / "lib"
    build_library(song, other, song="one", bars=(4,))
    build_library(song, other, song="two", bars=(4,))
    build_library(song, other, song="one", bars=(4,))
    assert sorted({e.song for e in read_index(other)}) == ["one", "two"]
    assert len(read_index(other)) == 2 * len([e for e in entries if e.bars == 4])
    with pytest.raises(LibraryError, match="bars"):
        build_library(song, other, bars=(3,))
    (other / "index.json").write_text("{")
    with pytest.raises(LibraryError, match="index.json: not a stemwright sample index"):
        read_index(other)


def test_cli(song, tmp_path, capsys):
    lib = tmp_path / "lib"
    assert main(["samples", str(song), "-o", str(lib), "--bars", "2", "--json"]) == 0
    made = json.loads(capsys.readouterr().out)
    assert made and {e["bars"] for e in made} == {2}
    assert main(["samples", "--list", str(lib), "--bpm", "120", "--key", "Am", "--stem", "drums", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed and {e["stem"] for e in listed} == {"drums"}
    assert main(["samples", "--list", str(lib), "--key", "Am"]) == 0
    assert f"{len(made)} sample(s)" in capsys.readouterr().out
    for args, code, message in (
        (["--list", str(lib), "--key", "H"], 2, "--key"),
        ([str(song), "-o", str(lib), "--bars", "3"], 2, "--bars"),
        ([str(song)], 2, "-o LIBRARY"),
        (["--list", str(tmp_path / "nope")], 1, "library folder not found"),
        ([str(tmp_path / "nope"), "-o", str(lib)], 1, "not found"),
    ):
        assert main(["samples", *args]) == code, args
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err


def test_add_loop_sample_cuts_fades_and_indexes(tmp_path):
    sr = 22050
    x = (0.5 * np.sin(2 * np.pi * 110.0 * np.arange(3 * sr) / sr)).astype(np.float32)[None].repeat(2, axis=0)
    before = x.copy()
    e = add_loop_sample(x, sr, tmp_path / "lib", song="My Song", stem="mix", start_s=0.5, end_s=1.5, bpm=120.0,
                        key="A minor", bar=2, bars=1)
    assert e.path == "loops/My-Song/My-Song_mix_120bpm_Am_bar002_1bar.wav" and e.bar == 2 and e.bars == 1
    y, rate = sf.read(tmp_path / "lib" / e.path, always_2d=True)
    assert rate == sr and abs(y.shape[0] - sr) <= 2 * int(0.002 * sr) and abs(e.source_start_s - 0.5) <= 0.002
    assert np.abs(y[0]).max() < 0.01 and np.abs(y[-1]).max() < 0.01  # zero crossing + fade at both ends
    again = add_loop_sample(x, sr, tmp_path / "lib", song="My Song", stem="mix", start_s=0.5, end_s=1.5, bpm=120.0,
                            key="A minor", bar=2, bars=1)
    assert read_index(tmp_path / "lib") == [again]  # the same name replaces its entry
    np.testing.assert_array_equal(x, before)
    for start, end, msg in ((1.0, 0.5, "before end"), (0.0, 61.0, "longer than 60"), (2.9, 2.9005, "too short")):
        with pytest.raises(LibraryError, match=msg):
            add_loop_sample(x, sr, tmp_path / "lib", song="s", stem="mix", start_s=start, end_s=end, bpm=120.0,
                            key="A minor")


def test_a_missing_drums_stem_fails_before_the_analysis_and_writes_nothing(tmp_path, monkeypatch, capsys):
    """Issue 22 item 8: it failed after 25 s of analysis and left 8 loops without index.json."""
    folder = tmp_path / "nodrums"
    folder.mkdir()
    sf.write(folder / "vocals.wav", np.zeros((SR, 2), np.float32), SR)

    def no_analysis(*args, **kwargs):
        raise AssertionError("analysed before the inputs were checked")

    monkeypatch.setattr("stemwright.samples.library.analyze", no_analysis)
    assert main(["samples", str(folder), "-o", str(tmp_path / "lib"), "--one-shots"]) == 1
    err = capsys.readouterr().err
    assert "no 'drums' stem" in err and "analysed" not in err
    assert not (tmp_path / "lib").exists()


def test_a_failure_half_way_leaves_an_index_of_what_was_written(song, tmp_path, monkeypatch):
    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("stemwright.samples.library.extract_one_shots", full_disk)
    with pytest.raises(OSError):
        build_library(song, tmp_path / "lib", one_shots=True, bars=(4,))
    entries = read_index(tmp_path / "lib")
    assert entries and all(e.kind == "loop" for e in entries)
    on_disk = {p.relative_to(tmp_path / "lib").as_posix() for p in (tmp_path / "lib").rglob("*.wav")}
    assert on_disk == {e.path for e in entries}
