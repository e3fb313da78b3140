"""The synthetic multitrack generator: the done-means command, layout, JSON, determinism, errors."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pretty_midi
import pytest
import soundfile as sf

from stemwright.cli.main import main
from stemwright.synth import (
    MissingPackageError,
    SongExistsError,
    find_resources,
    generate_dataset,
    generate_song,
    song_name,
)
from stemwright.synth.resources import SOUNDFONTS

STEM_FILES = ("mixture", "drums", "bass", "other", "vocals")


@pytest.fixture(scope="module")
def done_means(tmp_path_factory, shared_data) -> Path:
    """Exactly the issue's done-means command: ``stemwright synth -o DIR --songs 3 --seconds 20``."""
    out = tmp_path_factory.mktemp("synth") / "s"
    assert main(["synth", "-o", str(out), "--songs", "3", "--seconds", "20", "-q"]) == 0
    return out


def _read(folder: Path) -> dict[str, np.ndarray]:
    out = {}
    for name in STEM_FILES:
        data, sr = sf.read(str(folder / f"{name}.wav"), dtype="float32", always_2d=True)
        info = sf.info(str(folder / f"{name}.wav"))
        assert (sr, info.channels, info.subtype) == (44100, 2, "FLOAT"), f"{folder.name}/{name}.wav: {info}"
        out[name] = data.T
    return out


def test_done_means_layout_and_exact_sum(done_means: Path) -> None:
    songs = sorted(p for p in done_means.iterdir())
    assert [p.name for p in songs] == [song_name(0, i) for i in range(3)]  # no temporary folders left behind
    for song in songs:
        assert sorted(f.name for f in song.iterdir()) == sorted([f"{n}.wav" for n in STEM_FILES] + ["song.json"])
        a = _read(song)
        for name, x in a.items():
            assert x.shape == (2, 20 * 44100), name
            assert np.isfinite(x).all()
        total = a["drums"] + a["bass"] + a["other"] + a["vocals"]
        assert np.abs(a["mixture"] - total).max() <= 1e-6
        assert 0.05 < np.abs(a["mixture"]).max() <= 1.0
        for name in ("drums", "bass", "other"):  # every instrument stem plays
            assert np.sqrt(np.mean(a[name] ** 2)) > 1e-3, f"{song.name}/{name} is silent"


def test_done_means_json(done_means: Path, shared_data: Path) -> None:
    styles = set()
    for song in sorted(done_means.iterdir()):
        meta = json.loads((song / "song.json").read_text())
        styles.add(meta["style"])
        for key in ("seed", "tempo_bpm", "key", "mode", "meter", "sections", "chords", "style", "stems", "mixing"):
            assert key in meta, key
        assert meta["dataset"]["index"] == int(song.name[-5:])
        assert meta["sections"] and meta["chords"]
        assert meta["sections"][0]["start_s"] == 0.0 and meta["sections"][-1]["end_s"] >= 20.0
        drums = meta["stems"]["drums"]["parts"][0]
        assert drums["source"] == "hydrogen-drumkits" and drums["kit"] and drums["licence"]
        for stem in ("bass", "other"):
            for part in meta["stems"][stem]["parts"]:
                assert 0 <= part["program"] < 128 and part["instrument"]
                assert part["soundfont"] in {f for s in SOUNDFONTS for f in s.filenames}
        for stem in ("drums", "bass", "other", "vocals"):
            assert isinstance(meta["stems"][stem]["effects"], list)
            assert {"type"} <= set(meta["stems"][stem]["effects"][0])
        vocals = meta["stems"]["vocals"]
        assert vocals["source"].startswith("mir1k-train")
        clips = [c for p in vocals["parts"] if p["role"] == "lead" for c in p["clips"]]
        train = {p.name for p in (shared_data / "mir1k" / "train").iterdir()}
        assert clips and all(c["clip"] in train for c in clips)  # never the dev clips
    assert len(styles) >= 2  # three seeds, not three copies of one style


def test_refuses_to_overwrite_then_skip_and_overwrite(done_means: Path) -> None:
    with pytest.raises(SongExistsError, match="already exist"):
        generate_dataset(done_means, 1, 20, seed=0, progress=False)
    assert main(["synth", "-o", str(done_means), "--songs", "1", "--seconds", "20", "-q"]) == 1
    assert generate_dataset(done_means, 3, 20, seed=0, skip_existing=True, progress=False) == []


def test_same_seed_same_song_in_a_fresh_process(tmp_path: Path) -> None:
    """Determinism per seed, whatever was rendered before in the process (FluidSynth state, caches)."""
    code = (
        "import hashlib,sys; from stemwright.synth import generate_song; s=generate_song(11, 3.0);"
        "h=hashlib.sha256(); [h.update(s.stems[k].tobytes()) for k in ('drums','bass','other','vocals')];"
        "sys.stdout.write(h.hexdigest())"
    )
    generate_song(5, 2.0)  # render something else first in this process
    song = generate_song(11, 3.0)
    h = hashlib.sha256()
    for k in ("drums", "bass", "other", "vocals"):
        h.update(song.stems[k].tobytes())
    fresh = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert fresh == h.hexdigest()
    again = generate_song(11, 3.0)
    assert again.metadata == song.metadata
    other = generate_song(12, 3.0)
    assert not np.array_equal(other.mixture, song.mixture)


def test_api_song_arrays_and_mixture() -> None:
    song = generate_song(3, 2.5, style="funk")
    assert set(song.stems) == {"drums", "bass", "other", "vocals"} and song.samplerate == 44100
    for x in song.stems.values():
        assert x.shape == (2, int(2.5 * 44100)) and x.dtype == np.float32
    assert np.array_equal(
        song.mixture, song.stems["drums"] + song.stems["bass"] + song.stems["other"] + song.stems["vocals"]
    )
    assert song.metadata["style"] == "funk"
    assert song.midi.instruments and any(i.is_drum for i in song.midi.instruments)


def test_without_mir1k_vocals_come_from_gm_voices(tmp_path: Path) -> None:
    song = generate_song(21, 6.0, mir1k_dir=tmp_path / "nowhere")
    vocals = song.metadata["stems"]["vocals"]
    assert vocals["source"] == "gm-voice-programs-only" and "not found" in vocals["note"]
    assert all(p["program"] in (52, 53, 54, 85) for p in vocals["parts"])
    assert song.metadata["licences"]["vocals"] is None


def test_dev_clips_are_refused(shared_data: Path) -> None:
    with pytest.raises(ValueError, match="dev"):
        generate_song(1, 2.0, mir1k_dir=shared_data / "mir1k" / "dev")


def test_missing_packages_are_named(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(MissingPackageError) as err:
        find_resources(soundfont_dirs=[empty], drumkit_dirs=[empty])
    msg = str(err.value)
    for pkg in ("fluid-soundfont-gm", "musescore-general-soundfont", "timgm6mb-soundfont", "hydrogen-drumkits"):
        assert pkg in msg
    assert "fluidsynth" not in err.value.packages  # the library itself is present
    with pytest.raises(MissingPackageError, match="apt-get install fluidsynth"):
        find_resources(fluidsynth=str(tmp_path / "libfluidsynth-missing.so"))


def test_cli_missing_package_message(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {**os.environ, "STEMWRIGHT_DRUMKIT_DIRS": str(empty)}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "stemwright.cli.main",
            "synth",
            "-o",
            str(tmp_path / "o"),
            "--songs",
            "1",
            "--seconds",
            "1",
            "-q",
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 1
    assert "hydrogen-drumkits" in proc.stderr and "apt-get install" in proc.stderr
    assert not (tmp_path / "o").exists()


def test_parallel_jobs_write_the_same_songs_as_the_api(tmp_path: Path) -> None:
    """--jobs uses a process pool; each song is still the one its (dataset seed, index) defines."""
    from stemwright.synth import song_seed

    seen = []
    results = generate_dataset(tmp_path, 2, 2.0, seed=5, jobs=2, progress=lambda d, t, s: seen.append((d, t)))
    assert [r["name"] for r in results] == [song_name(5, 0), song_name(5, 1)] and sorted(seen) == [(1, 2), (2, 2)]
    for i in range(2):
        expected = generate_song(song_seed(5, i), 2.0)
        written = _read(tmp_path / song_name(5, i))
        for k in ("drums", "bass", "other", "vocals"):
            assert np.array_equal(written[k], expected.stems[k]), k
        meta = json.loads((tmp_path / song_name(5, i) / "song.json").read_text())
        assert meta["seed"] == song_seed(5, i) and meta["chords"] == expected.metadata["chords"]
    # --overwrite replaces in place (atomically), leaving no temporary folders
    generate_dataset(tmp_path, 1, 2.0, seed=5, overwrite=True, midi=True, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == [song_name(5, 0), song_name(5, 1)]
    midi = pretty_midi.PrettyMIDI(str(tmp_path / song_name(5, 0) / "song.mid"))
    assert any(i.is_drum for i in midi.instruments) and len(midi.instruments) >= 4


def test_no_vocals_songs_have_instrument_stems_only(tmp_path: Path) -> None:
    """``vocals=False`` / ``--no-vocals``: drums, bass, other (no vocals.wav, no MIR-1K), mixture = their sum."""
    song = generate_song(31, 4.0, vocals=False)
    assert list(song.stems) == ["drums", "bass", "other"]
    assert np.array_equal(song.mixture, song.stems["drums"] + song.stems["bass"] + song.stems["other"])
    assert np.abs(song.stems["other"]).max() > 0 and np.abs(song.mixture).max() <= 1.0
    meta = song.metadata
    assert meta["vocals"] is False and "vocals" not in meta["stems"] and meta["licences"]["vocals"] is None
    assert not any(i.name.startswith("vocals/") for i in song.midi.instruments)
    assert generate_song(31, 4.0).metadata["vocals"] is True

    out = tmp_path / "nv"
    assert main(["synth", "-o", str(out), "--songs", "1", "--seconds", "2", "--no-vocals", "-q"]) == 0
    folder = out / song_name(0, 0)
    assert sorted(f.name for f in folder.iterdir()) == ["bass.wav", "drums.wav", "mixture.wav", "other.wav", "song.json"]
    written = {n: sf.read(str(folder / f"{n}.wav"), dtype="float32")[0].T for n in ("mixture", "drums", "bass", "other")}
    assert np.abs(written["mixture"] - (written["drums"] + written["bass"] + written["other"])).max() <= 1e-6
    # vocals options contradict --no-vocals: a usage error, nothing written
    assert main(["synth", "-o", str(tmp_path / "x"), "--songs", "1", "--no-vocals", "--no-mir1k", "-q"]) == 2
    assert not (tmp_path / "x").exists()


def test_six_stem_songs_write_guitar_and_piano_on_their_own(tmp_path: Path) -> None:
    """``split_instruments`` / ``--six-stems``: guitar (GM 24-30) and piano (GM 0-5) parts get stems of their own."""
    seen = set()
    for seed, style in ((4, "rock"), (5, "jazz"), (6, "ballad")):
        song = generate_song(seed, 4.0, style=style, split_instruments=True, vocals=False)
        assert list(song.stems) == ["drums", "bass", "guitar", "piano", "other"]
        total = song.stems["drums"] + song.stems["bass"] + song.stems["guitar"] + song.stems["piano"] + song.stems["other"]
        assert np.array_equal(song.mixture, total)
        parts = song.metadata["stems"]
        for stem, programs in (("guitar", range(24, 31)), ("piano", range(0, 6))):
            for part in parts[stem]["parts"]:
                assert part["program"] in programs, (stem, part["role"])
                seen.add(stem)
            if not parts[stem]["parts"]:
                assert not song.stems[stem].any()  # no such part: a silent stem
        assert not any(p["role"].split(":")[-1] in ("clean_guitar", "drive_guitar", "piano") for p in parts["other"]["parts"])
        if seed == 4:
            plain = generate_song(seed, 4.0, style=style, vocals=False)  # the same parts, only routed differently
            roles = sorted(p["role"] for s in ("guitar", "piano", "other") for p in parts[s]["parts"])
            assert roles == sorted(p["role"] for p in plain.metadata["stems"]["other"]["parts"])
    assert seen == {"guitar", "piano"}
    out = tmp_path / "six"
    assert main(["synth", "-o", str(out), "--songs", "1", "--seconds", "2", "--six-stems", "-q"]) == 0
    names = sorted(f.name for f in (out / song_name(0, 0)).iterdir())
    assert names == sorted([f"{n}.wav" for n in ("mixture", "drums", "bass", "guitar", "piano", "other", "vocals")] + ["song.json"])


def test_drum_hit_list_is_the_ground_truth_of_the_drum_stem() -> None:
    """song.json lists every drum hit played with its attack (stemwright.drums' evaluation): the drum stem is silent
    before the first attack and loud just after it, and the list matches the MIDI drum notes."""
    song = generate_song(3, 2.5, style="funk")
    hits = song.metadata["stems"]["drums"]["parts"][0]["hit_list"]
    drum_notes = [n for i in song.midi.instruments if i.is_drum for n in i.notes if n.start < 2.5]
    starts = {(round(n.start, 4), n.pitch) for n in drum_notes}
    assert {(round(h["time_s"], 4), h["note"]) for h in hits} <= starts  # notes the kit lacks are not played
    assert len(hits) >= 0.8 * len(drum_notes) > 4
    assert all(h["attack_s"] >= h["time_s"] and h["peak"] > 0 for h in hits)
    first = min(hits, key=lambda h: h["time_s"])
    env = np.abs(song.stems["drums"]).max(axis=0)
    start = int(first["time_s"] * song.samplerate)
    assert env[:start].max(initial=0.0) == 0.0
    assert env[int(first["attack_s"] * song.samplerate):int(first["attack_s"] * song.samplerate) + 200].max() > 0
