"""Layers (mix document v3, issue 27): audio and MIDI files that are not stems, placed in seconds or on the bar
grid, looped, through a strip; documents v1/v2 still read; a mix without a folder never reads a layer file."""
from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import soundfile as sf

from stemwright.cli.main import main
from stemwright.mixer.analysis import Rhythm
from stemwright.mixer.document import Mix
from stemwright.mixer.effects import MixError
from stemwright.mixer.render import render
from tests.reference import require

SR = 22050


def _stems(seconds: float = 8.0) -> dict[str, np.ndarray]:
    """Drums: a click every beat at 120 bpm, the downbeats louder, from 0.25 s; bass: a quiet hum."""
    n = int(seconds * SR)
    drums = np.zeros(n, dtype=np.float32)
    t = np.arange(int(0.05 * SR)) / SR
    click = (np.sin(2 * np.pi * 60 * t) * np.exp(-t / 0.01)).astype(np.float32)
    for k, start in enumerate(range(int(0.25 * SR), n - click.size, SR // 2)):
        drums[start:start + click.size] += click * (1.0 if k % 4 == 0 else 0.5)
    bass = (0.01 * np.sin(2 * np.pi * 110 * np.arange(n) / SR)).astype(np.float32)
    return {"drums": drums[None], "bass": bass[None]}


@pytest.fixture()
def pad(tmp_path):
    x = (0.1 * np.sin(2 * np.pi * 440 * np.arange(SR // 2) / SR)).astype(np.float32)
    sf.write(str(tmp_path / "pad.wav"), x, SR, subtype="FLOAT")
    return tmp_path / "pad.wav", x


def test_document_v3_round_trip_and_older_versions(tmp_path, pad):
    mix = Mix.from_stems(["drums", "bass"])
    mix.add_layer("pad.wav", at="bar:2.3", gain_db=-6.0, pan=0.5, loop=2)
    doc = mix.to_dict()
    assert doc["version"] == 3 and doc["layers"][0] == {"file": "pad.wav", "gain_db": -6.0, "pan": 0.5, "mute": False,
                                                        "loop": 2, "effects": [], "at": "bar:2.3"}
    path = mix.save(tmp_path / "mix.json")
    again = Mix.load(path)
    assert again == mix and again.base == tmp_path.resolve()
    assert Mix.from_dict({"version": 1, "channels": [{"stem": "drums"}]}).to_dict()["version"] == 1
    assert Mix.from_dict({"version": 2, "channels": [], "time_pitch": {"speed": 0.8}}).to_dict()["version"] == 2
    for bad, message in [
        ({"version": 2, "layers": []}, "layers: needs mix document version 3"),
        ({"version": 3, "layers": [{"file": "a.wav", "gian_db": 1}]}, r"layers\[0\]: unknown field 'gian_db'"),
        ({"version": 3, "layers": [{"file": "a.wav", "at": "bar:0"}]}, r"layers\[0\]\.at: expected"),
        ({"version": 3, "layers": [{"file": "a.wav", "at": "bar:2", "offset_s": 1}]}, "not both"),
        ({"version": 3, "layers": [{"file": "a.wav", "loop": 0}]}, r"layers\[0\]\.loop"),
        ({"version": 3, "layers": [{"file": "a.wav", "program": 3}]}, "only a MIDI layer"),
        ({"version": 3, "layers": [{"file": "a.mid", "program": 300}]}, r"program: must be a General MIDI"),
        ({"version": 3, "layers": [{"file": "a.wav", "effects": [{"type": "debleed"}]}]}, "not a layer"),
    ]:
        with pytest.raises(MixError, match=message):
            Mix.from_dict(bad)


def test_audio_layer_placed_looped_and_mixed(tmp_path, pad):
    path, x = pad
    stems = _stems(2.0)
    mix = Mix.from_stems(stems)
    mix.base = tmp_path
    mix.add_layer("pad.wav", offset_s=0.5, gain_db=-6.0, loop=2)
    out = render(mix, stems, samplerate=SR)
    expected = stems["drums"] + stems["bass"]
    start = SR // 2
    expected[:, start:start + 2 * x.size] += np.tile(x, 2) * np.float32(10 ** (-6 / 20))
    assert out.shape == expected.shape and np.allclose(out, expected, atol=1e-6)
    mix.layers[0].mute = True
    assert np.array_equal(render(mix, stems, samplerate=SR), stems["drums"] + stems["bass"])


def test_layer_on_the_bar_grid(tmp_path, pad):
    stems = _stems()
    mix = Mix.from_stems(stems)
    mix.base = tmp_path
    mix.add_layer("pad.wav", at="bar:3")
    out = render(mix, stems, samplerate=SR)
    layer = out - (stems["drums"] + stems["bass"])
    start = np.argmax(np.abs(layer[0]) > 1e-4) / SR
    assert abs(start - (0.25 + 2 * 4 * 0.5)) < 0.03  # bar 3 = two 4/4 bars of 2 s after the first downbeat


def test_a_mix_without_a_folder_reads_no_layer(pad):
    stems = _stems(1.0)
    mix = Mix.from_dict({"version": 3, "channels": [], "layers": [{"file": str(pad[0])}]})  # as posted to a server
    with pytest.raises(MixError, match="no folder to read layer files from"):
        render(mix, stems, samplerate=SR)


def test_midi_layer_with_a_program(tmp_path):
    if shutil.which("fluidsynth") is None and not os.environ.get("CI"):
        pytest.skip("fluidsynth is not installed")
    mido = require("mido")
    midi = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    midi.tracks.append(track)
    track += [mido.Message("note_on", note=40, velocity=100, time=0), mido.Message("note_off", note=40, time=480)]
    midi.save(str(tmp_path / "bass.mid"))
    stems = _stems(2.0)
    mix = Mix.from_stems(stems)
    mix.base = tmp_path
    mix.add_layer("bass.mid", program=38, offset_s=0.5)
    layer = render(mix, stems, samplerate=SR) - np.broadcast_to(stems["drums"] + stems["bass"], (2, 2 * SR))
    level = np.abs(layer).max(axis=0)
    assert level[:int(0.49 * SR)].max() < 1e-4 and level[int(0.5 * SR):int(1.0 * SR)].max() > 0.01


def test_cli_layer_flag(tmp_path, pad):
    folder = tmp_path / "song"
    folder.mkdir()
    for name, x in _stems(2.0).items():
        sf.write(str(folder / f"{name}.wav"), x[0], SR, subtype="FLOAT")
    out, doc = tmp_path / "mix.wav", tmp_path / "mix.json"
    assert main(["mix", str(folder), "-o", str(out), "--layer", f"{pad[0]}@1.0:gain=-6,loop=2", "--save-mix", str(doc),
                 "--bit-depth", "32", "--clip-mode", "none"]) == 0
    y, _ = sf.read(str(out), always_2d=True, dtype="float32")
    stems = _stems(2.0)
    layer = y.T - (stems["drums"] + stems["bass"])
    assert np.abs(layer[:, :SR]).max() < 1e-6  # starts at 1 s
    assert np.allclose(layer[:, SR:], np.tile(pad[1], 2)[None] * np.float32(10 ** (-6 / 20)), atol=1e-5)  # looped, -6 dB
    assert Mix.load(doc).layers[0].loop == 2
    assert main(["mix", str(folder), "-o", str(tmp_path / "b.wav"), "--layer", "pad.wav@bar:x"]) == 2
    assert main(["mix", str(folder), "-o", str(tmp_path / "c.wav"), "--layer", "missing.wav"]) == 1


def _changing_grid() -> Rhythm:
    """A grid whose tempo changes: 8 beats at 120 BPM from 0.25 s, then 150 BPM."""
    beats = 0.25 + np.concatenate([0.5 * np.arange(8), 3.5 + 0.4 * np.arange(1, 17)])
    return Rhythm(130.0, beats, 0.25, 4, grid=beats)


def _woodblocks(path, beats: int, tempo_bpm: float = 90.0):
    """A MIDI file at its own tempo: a woodblock (GM percussion, channel 10) on every quarter note."""
    mido = require("mido")
    midi = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=int(60e6 / tempo_bpm), time=0)])
    for k in range(beats):
        track += [mido.Message("note_on", channel=9, note=76, velocity=110, time=0 if k == 0 else 420),
                  mido.Message("note_off", channel=9, note=76, velocity=0, time=60)]
    midi.tracks.append(track)
    midi.save(str(path))
    return path


def test_beat_times_on_a_changing_grid():
    r = _changing_grid()
    assert r.beat_time(0) == 0.25 and r.beat_time(7) == pytest.approx(3.75) and r.beat_time(8) == pytest.approx(4.15)
    assert r.beat_time(7.5) == pytest.approx(3.95) and r.beat_time(-1) == pytest.approx(-0.25)
    assert r.beat_time(25) == pytest.approx(r.grid[-1] + 2 * 0.4)  # past the end: the last interval
    steady = Rhythm(120.0, np.array([0.25, 0.75]), 0.25, 4)
    assert steady.beat_time(6) == pytest.approx(3.25)


def test_midi_on_the_grid_follows_its_tempo_changes(tmp_path):
    """The file's own tempo (90 BPM) is replaced by the grid's from the layer's beat: each quarter note, and each
    loop's, lands on its grid beat (the grid goes from 120 to 150 BPM), to the microsecond of MIDI tempo steps."""
    mido = require("mido")
    from stemwright.mixer.layers import GridPlacement, _on_grid

    grid = _changing_grid()
    midi = mido.MidiFile(str(_woodblocks(tmp_path / "wood.mid", 4)))
    _on_grid(midi, GridPlacement(grid, first_beat=4, loop=3), "layers[0]")
    seconds, hits = 0.0, []
    for m in midi:  # mido plays the tempo map: message times in seconds
        seconds += m.time
        if m.type == "note_on" and m.velocity:
            hits.append(seconds)
    want = [grid.beat_time(4 + q) - grid.beat_time(4) for q in range(12)]
    assert np.max(np.abs(np.array(hits) - want)) < 1e-5


def test_midi_layer_at_a_bar_plays_on_a_changing_grid(tmp_path):
    """End to end: stems whose tempo changes (a click every beat, 120 then 150 BPM), a MIDI layer at bar 2 whose
    file says 90 BPM: the export's woodblocks sound on the clicks in both tempos (the file's tempo map put them off
    by up to seconds, and a straight-line grid by a quarter of a beat)."""
    if shutil.which("fluidsynth") is None and not os.environ.get("CI"):
        pytest.skip("fluidsynth is not installed")
    clicks = _changing_grid().grid[:-1]
    n = int(10.0 * SR)
    drums = np.zeros(n, dtype=np.float32)
    t = np.arange(int(0.05 * SR)) / SR
    click = (np.sin(2 * np.pi * 60 * t) * np.exp(-t / 0.01)).astype(np.float32)
    for k, s in enumerate(clicks):
        drums[int(s * SR):int(s * SR) + click.size] += click * (1.0 if k % 4 == 0 else 0.5)
    stems = {"drums": drums[None], "bass": (0.01 * np.sin(2 * np.pi * 110 * np.arange(n) / SR)).astype(np.float32)[None]}
    _woodblocks(tmp_path / "wood.mid", 12)
    mix = Mix.from_stems(stems)
    mix.base = tmp_path
    mix.add_layer("wood.mid", at="bar:2")
    layer = render(mix, stems, samplerate=SR) - np.broadcast_to(stems["drums"] + stems["bass"], (2, n))
    level = np.abs(layer).max(axis=0)
    loud = level > 0.2 * level.max()
    onsets = np.flatnonzero(loud & ~np.concatenate([[False], loud[:-1]])) / SR
    onsets = onsets[np.concatenate([[True], np.diff(onsets) > 0.15])]  # one per woodblock
    want = clicks[4:16]  # bar 2 = the 5th beat, then 11 more
    assert len(onsets) == len(want), onsets
    assert np.max(np.abs(onsets - want)) < 0.04, onsets - want
