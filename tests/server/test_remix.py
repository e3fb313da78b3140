"""Issue 27 in the studio's API: a strip's "clean" knob (the server-rendered debleed stem), layers dropped onto the
mixer."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

from stemwright.audio.io import read_audio, write_audio
from stemwright.errors import MixError
from stemwright.mixer.layers import Layer, load_layer_audio
from stemwright.mixer.render import apply_pan, clean_stem, layer_grid
from stemwright.mixer.stems import load_stems
from stemwright.server import layerfiles, remix
from tests.server.conftest import upload, wait_status


@pytest.fixture()
def song(make_client, short_wav):
    c = make_client()
    sid = wait_status(c, upload(c, short_wav).json()["id"])["id"]
    return c, sid


def test_clean_stem_is_what_the_export_renders(song, tmp_path):
    c, sid = song
    r = c.get(f"/api/songs/{sid}/stems/vocals/clean?strength=0.5")
    assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
    got = tmp_path / "clean.wav"
    got.write_bytes(r.content)
    folder = next((c.app.state.studio.data_dir / "songs" / sid / "jobs").iterdir())
    stemset = load_stems(folder)
    want = clean_stem(stemset, "vocals", 0.5)
    audio = read_audio(got).samples
    assert audio.shape == want.shape
    assert np.array_equal(audio, want)  # float WAV: the export's samples exactly
    # the fake separation's vocals are 0.25 x the song and "other" 0.75 x: every cell holds 10 % of the power in
    # vocals, above the vocals' bleed share, so the default clean keeps them (a gentle clean, not a thinning)
    from stemwright.mixer.debleed import tuning_for

    assert tuning_for("vocals").share < 0.1 and np.max(np.abs(audio - stemset["vocals"])) < 1e-3
    # cached per stem and strength: a second request renders nothing
    cached = remix.clean_target(folder / "vocals.wav", 10)
    mtime = cached.stat().st_mtime_ns
    assert c.get(f"/api/songs/{sid}/stems/vocals/clean?strength=0.5").content == r.content
    assert cached.stat().st_mtime_ns == mtime


@pytest.mark.parametrize("strength", ["0", "0.07", "1.05", "-0.5", "nan", "inf", "x"])
def test_clean_strength_is_bounded(song, strength):
    c, sid = song
    r = c.get(f"/api/songs/{sid}/stems/vocals/clean?strength={strength}")
    assert r.status_code in (400, 422) and "strength" in r.text, (strength, r.text)
    assert not list((c.app.state.studio.data_dir / "songs" / sid).rglob(".*.clean*"))


def test_clean_refuses_unknown_stems_hosts_and_long_songs(song, monkeypatch):
    c, sid = song
    assert c.get(f"/api/songs/{sid}/stems/drums/clean?strength=0.5").status_code == 404
    assert c.get(f"/api/songs/{sid}/stems/..%2fvocals/clean?strength=0.5").status_code == 404
    assert c.get(f"/api/songs/{'0' * 32}/stems/vocals/clean?strength=0.5").status_code == 404
    assert c.get(f"/api/songs/{sid}/stems/vocals/clean?strength=0.5", headers={"host": "evil.example"}).status_code == 403
    monkeypatch.setattr(remix, "CLEAN_MAX_S", 0.1)
    r = c.get(f"/api/songs/{sid}/stems/vocals/clean?strength=0.5")
    assert r.status_code == 413 and "minutes" in r.json()["error"]


# -- layers ---------------------------------------------------------------------------------------------------
def _post_layer(c, sid, path, headers=None):
    with open(path, "rb") as f:
        return c.post(f"/api/songs/{sid}/layers", files={"file": (path.name, f, "application/octet-stream")},
                      headers=headers or {})


@pytest.fixture()
def tone(tmp_path):
    t = np.arange(int(0.3 * 44100)) / 44100
    x = 0.3 * np.sin(2 * np.pi * 440 * t)[None].astype(np.float32)
    return write_audio(tmp_path / "pad.wav", x, 44100, bit_depth=16)


def _midi(path):
    import mido

    m = mido.MidiFile()
    track = mido.MidiTrack()
    m.tracks.append(track)
    for i in range(2):
        track.append(mido.Message("note_on", note=60 + 4 * i, velocity=100, time=0))
        track.append(mido.Message("note_off", note=60 + 4 * i, velocity=0, time=120))
    m.save(str(path))
    return path


def _layers_dir(c, sid):
    return c.app.state.studio.data_dir / "songs" / sid / "layers"


def test_a_layer_above_full_scale_plays_unclipped(song, tmp_path):
    """A layer peaking above 0 dBFS (a replaced drums stem can) is served as the export mixes it: not clipped at
    full scale (it was 24-bit FLAC, clamped), so the page and the export play the same; a layer stored before keeps
    only the old FLAC and gets its float WAV made again on request."""
    c, sid = song
    t = np.arange(int(0.3 * 22050)) / 22050
    loud = write_audio(tmp_path / "loud.wav", (1.7 * np.sin(2 * np.pi * 220 * t))[None].astype(np.float32), 22050,
                       bit_depth=32)
    layer = _post_layer(c, sid, loud).json()
    r = c.get(layer["href"])
    assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
    (tmp_path / "played.wav").write_bytes(r.content)
    played = read_audio(tmp_path / "played.wav").samples
    want = load_layer_audio(Layer(file=layer["file"]), _layers_dir(c, sid), 22050, "layer")
    assert np.max(np.abs(played)) > 1.6 and np.array_equal(played, want)
    layerfiles.play_path(_layers_dir(c, sid), layer["file"]).unlink()
    assert c.get(layer["href"]).content == r.content


def test_layer_and_one_shot_uploads_may_be_larger_than_a_json_body(song, tmp_path):
    """The guard bounds request bodies at MAX_JSON_BYTES except on upload routes: it refused every layer and drum
    one-shot over 256 KB (1.5 s of 24-bit stereo) before their own bound was reached."""
    from stemwright.server.web import MAX_JSON_BYTES

    c, sid = song
    t = np.arange(2 * 44100) / 44100
    big = write_audio(tmp_path / "big.wav", np.tile(0.3 * np.sin(2 * np.pi * 110 * t), (2, 1)).astype(np.float32),
                      44100, bit_depth=32)
    assert big.stat().st_size > 2 * MAX_JSON_BYTES
    assert _post_layer(c, sid, big).status_code == 201
    with open(big, "rb") as f:
        r = c.post(f"/api/songs/{sid}/drums/samples", files={"file": ("big.wav", f, "audio/wav")})
    assert r.status_code == 201, r.text
    # other routes keep the bound
    r = c.post(f"/api/songs/{sid}/mixes", content=b"x" * (MAX_JSON_BYTES + 1), headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_layer_upload_plays_and_exports_as_the_renderer_reads_it(song, tone, tmp_path):
    c, sid = song
    r = _post_layer(c, sid, tone)
    assert r.status_code == 201, r.text
    layer = r.json()
    assert re.fullmatch(r"[0-9a-f]{32}\.wav", layer["file"]) and layer["name"] == "pad.wav"
    assert layer["kind"] == "audio" and abs(layer["duration"] - 0.3) < 1e-3
    played = tmp_path / "played.wav"
    played.write_bytes(c.get(layer["href"]).content)
    folder = _layers_dir(c, sid)
    want = load_layer_audio(Layer(file=layer["file"]), folder, 22050, "layer")  # the song's stems are 22.05 kHz
    assert np.array_equal(read_audio(played).samples, want)
    # the export renders the layer from the song's stored file: with it, the mix gains exactly the placed layer
    channels = [{"stem": "vocals"}, {"stem": "other"}]
    plain = {"version": 1, "channels": channels}
    with_layer = {"version": 3, "channels": channels,
                  "layers": [{"file": layer["file"], "name": "pad.wav", "offset_s": 0.25, "gain_db": -6.0}]}
    a, b = (_export(c, sid, d, tmp_path / f"{i}.wav") for i, d in enumerate((plain, with_layer)))
    start = int(round(0.25 * 22050))
    placed = np.zeros_like(a)
    n = min(want.shape[1], a.shape[1] - start)
    placed[:, start:start + n] = apply_pan(want[:, :n] * np.float32(10 ** (-6 / 20)), 0.0)  # a mono layer, centred
    assert np.max(np.abs((b - a) - placed)) < 1e-5
    # saved in the mix document (version 3)
    saved = c.post(f"/api/songs/{sid}/mixes", json={"name": "layered", "document": with_layer})
    assert saved.status_code == 201 and saved.json()["document"]["layers"][0]["file"] == layer["file"]


def _export(c, sid, document, path) -> np.ndarray:
    r = c.post(f"/api/songs/{sid}/export", json={"format": "wav", "document": document})
    assert r.status_code == 200, r.text
    path.write_bytes(r.content)
    return read_audio(path).samples


@pytest.mark.parametrize("field", [
    {"file": "../../../etc/passwd"}, {"file": "/etc/hosts"}, {"file": "0" * 32 + ".wav"},
    {"soundfont": "/usr/share/sounds/sf2/FluidR3_GM.sf2"}, {"loop": 1000}, {"offset_s": 1e6},
])
def test_layers_in_a_document_name_only_the_songs_files(song, tone, field, monkeypatch):
    c, sid = song
    monkeypatch.setattr(layerfiles, "MAX_LAYER_S", 100.0)  # 1000 loops of the 0.3 s tone play 300 s
    file = _post_layer(c, sid, tone).json()["file"]
    layer = {"file": file, **field}
    if "soundfont" in field:
        mid = _post_layer(c, sid, _midi(tone.parent / "x.mid"))
        assert mid.status_code == 201, mid.text
        layer["file"] = mid.json()["file"]
    doc = {"version": 3, "channels": [], "layers": [layer]}
    for r in (c.post(f"/api/songs/{sid}/mixes", json={"name": "x", "document": doc}),
              c.post(f"/api/songs/{sid}/export", json={"format": "wav", "document": doc})):
        assert r.status_code == 400 and "layers[0]." in r.json()["error"], r.text


def test_midi_layer_is_rendered_or_says_what_is_missing(song, tmp_path, monkeypatch):
    c, sid = song
    mid = _midi(tmp_path / "bass.mid")
    r = _post_layer(c, sid, mid)
    assert r.status_code == 201, r.text
    assert r.json()["kind"] == "midi" and r.json()["file"].endswith(".mid") and r.json()["duration"] > 0.2
    import stemwright.mixer.layers as layers_module

    monkeypatch.setattr(layers_module.shutil, "which", lambda _name: None)
    r = _post_layer(c, sid, mid)
    assert r.status_code == 422 and "FluidSynth" in r.json()["error"] and "bass.mid" in r.json()["error"]
    assert len(list(_layers_dir(c, sid).glob("*.mid"))) == 1  # the refused one left nothing behind


def test_layer_uploads_are_checked(song, tmp_path, tone, monkeypatch):
    c, sid = song
    bad = {"notes.txt": b"hello", "fake.wav": b"RIFF0000WAVEnot audio at all", "fake.mid": b"MThd garbage"}
    for name, data in bad.items():
        (tmp_path / name).write_bytes(data)
        r = _post_layer(c, sid, tmp_path / name)
        assert r.status_code == 415 and name in r.json()["error"], (name, r.text)
    assert _post_layer(c, sid, tone, headers={"host": "evil.example"}).status_code == 403
    assert _post_layer(c, sid, tone, headers={"origin": "http://evil.example"}).status_code == 403
    assert _post_layer(c, "0" * 32, tone).status_code == 404
    monkeypatch.setattr(layerfiles, "MAX_LAYER_S", 0.1)
    r = _post_layer(c, sid, tone)
    assert r.status_code == 413 and "pad.wav" in r.json()["error"]
    assert c.get(f"/api/songs/{sid}/layers/{'0' * 32}.wav").status_code == 404
    assert c.get(f"/api/songs/{sid}/layers/..%2f..%2flibrary.sqlite3").status_code == 404
    assert not _layers_dir(c, sid).exists() or not any(_layers_dir(c, sid).iterdir())
    assert not list((c.app.state.studio.data_dir / "uploads").glob(".upload.*"))


def test_layer_grid_is_the_exports(song):
    c, sid = song
    r = c.get(f"/api/songs/{sid}/layers/grid")
    assert r.status_code == 200
    body = r.json()
    folder = next((c.app.state.studio.data_dir / "songs" / sid / "jobs").iterdir())
    try:
        rhythm = layer_grid(load_stems(folder))
    except MixError as e:
        assert body == {"grid": None, "reason": str(e)}
    else:
        beats = None if rhythm.grid is None else list(rhythm.grid)
        assert body["grid"] == {"tempo": rhythm.tempo, "downbeat": rhythm.downbeat, "beats_per_bar": rhythm.beats_per_bar,
                                "beats": beats}


def test_midi_layer_at_a_bar_plays_on_the_exports_grid(song, tmp_path):
    """A MIDI layer placed at a bar is served as rendered there on the song's grid (its tempo map follows the
    grid), one render per place (bounded); a malformed or far-off place is refused; audio ignores the place."""
    c, sid = song
    layer = _post_layer(c, sid, _midi(tmp_path / "keys.mid")).json()
    folder = _layers_dir(c, sid)
    stems = c.app.state.studio.stem_paths(sid)
    # a grid whose tempo changes, as the export would find it (the fake separation's stems have no clear beat)
    grid = {"tempo": 100.0, "downbeat": 0.1, "beats_per_bar": 4, "beats": [0.1 + 0.6 * k for k in range(6)] +
            [3.1 + 0.3 * k for k in range(1, 12)]}
    (next(iter(stems.values())).parent / ".layer-grid2.json").write_text(json.dumps({"grid": grid}))
    r = c.get(layer["href"], params={"at": "bar:1.3"})
    assert r.status_code == 200, r.text
    (tmp_path / "placed.wav").write_bytes(r.content)
    want = load_layer_audio(Layer(file=layer["file"], at="bar:1.3"), folder, 22050, "layer", remix.grid_rhythm(stems))
    assert np.array_equal(read_audio(tmp_path / "placed.wav").samples, want)
    own = tmp_path / "own.wav"
    own.write_bytes(c.get(layer["href"]).content)  # at its own tempo map (120 BPM: 0.5 s a beat)
    assert read_audio(own).samples.shape != want.shape  # on the grid from beat 3 a beat takes 0.6 s
    for at in ("bar:0", "bar:x", "bar:99999999", "bar:2.99"):
        assert c.get(layer["href"], params={"at": at}).status_code == 400, at
    for bar in range(2, 12):
        assert c.get(layer["href"], params={"at": f"bar:{bar}"}).status_code == 200
    assert len(layerfiles.grid_plays(folder, layer["file"])) == layerfiles.MAX_GRID_PLAYS
