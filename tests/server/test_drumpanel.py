"""Issue 27 in the studio's API: the drums panel (one-shots, installed kits, a replaced drums stem as a layer)."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from fastapi.testclient import TestClient

from stemwright.audio.io import read_audio, write_audio
from stemwright.drums import hydrogen_kits
from stemwright.server import drumpanel
from tests.server.conftest import upload, wait_status

RATE = 22050


def _kick(seconds: float = 0.08) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.8 * np.sin(2 * np.pi * 55 * t) * np.exp(-t / 0.03))[None].astype(np.float32)


class DrumsSeparator:
    """'drums' (a kick every 0.25 s) and 'other' (the song): a separation with a drums stem, without a model."""

    def __init__(self, model, progress):
        self.progress = progress

    def separate_file(self, path, outdir, *, fmt, bit_depth, clip_mode, filename, overwrite, on_block=None):
        audio = read_audio(path)
        drums = np.zeros_like(audio.samples)
        hit = np.resize(_kick(), (audio.samples.shape[0], _kick().shape[1]))
        for start in range(0, drums.shape[1] - hit.shape[1], audio.samplerate // 4):
            drums[:, start:start + hit.shape[1]] += hit
        paths = {name: write_audio(Path(outdir) / f"{name}.wav", x, audio.samplerate, bit_depth=32, overwrite=True)
                 for name, x in (("drums", drums), ("other", audio.samples * 0.5))}
        return SimpleNamespace(stem_paths=paths, manifest=SimpleNamespace(samplerate=audio.samplerate))


@pytest.fixture()
def drum_song(make_client, short_wav) -> tuple[TestClient, str]:
    c = make_client(separator_factory=DrumsSeparator)
    return c, wait_status(c, upload(c, short_wav).json()["id"])["id"]


def _post_sample(c, sid, path, headers=None):
    with open(path, "rb") as f:
        return c.post(f"/api/songs/{sid}/drums/samples", files={"file": (path.name, f, "audio/wav")},
                      headers=headers or {})


def test_replaced_drums_become_a_layer(drum_song, tmp_path):
    c, sid = drum_song
    shot = write_audio(tmp_path / "my kick.wav", np.tile(_kick(0.2), (2, 1)) * 0.5, RATE, bit_depth=24)
    r = _post_sample(c, sid, shot)
    assert r.status_code == 201, r.text
    sample = r.json()
    assert sample["name"] == "my kick.wav"
    assert c.get(f"/api/songs/{sid}/drums/samples").json()["samples"] == [sample]
    r = c.post(f"/api/songs/{sid}/drums", json={"kick": sample["sample"], "blend": 1.0})
    assert r.status_code == 201, r.text
    layer = r.json()
    assert layer["hits"].get("kick", 0) >= 3 and layer["drums"]["kick"] == sample["sample"]
    assert layer["kind"] == "audio" and layer["name"] == "drums (kick, blend 1.00)"
    assert layer["licences"] == {}  # the user's own one-shot claims no licence
    # the layer is the library's replacement of the song's drums stem, and differs from the original
    studio = c.app.state.studio
    paths = studio.stem_paths(sid)
    want = tmp_path / "want.wav"
    settings = drumpanel.DrumSettings(kit=None, kick=sample["sample"], snare=None, hat=None, blend=1.0)
    drumpanel.render_drums(paths, settings, drumpanel.samples_dir(studio, sid), want)
    got = read_audio(studio.layers_dir(sid) / layer["file"]).samples
    assert np.array_equal(got, read_audio(want).samples)
    original = read_audio(paths["drums"]).samples
    assert np.max(np.abs(got - original)) > 0.05
    listed = c.get(f"/api/songs/{sid}/layers").json()["layers"]
    assert [x["file"] for x in listed] == [layer["file"]] and listed[0]["drums"]["blend"] == 1.0
    # a mix with the drums channel muted and the layer playing: saved and exported like any layer
    doc = {"version": 3, "channels": [{"stem": "drums", "mute": True}, {"stem": "other"}],
           "layers": [{"file": layer["file"], "name": layer["name"], "offset_s": 0.0}]}
    assert c.post(f"/api/songs/{sid}/mixes", json={"name": "new drums", "document": doc}).status_code == 201
    assert c.post(f"/api/songs/{sid}/export", json={"format": "wav", "document": doc}).status_code == 200


@pytest.mark.skipif(not hydrogen_kits(), reason="no Hydrogen kit installed (apt install hydrogen-drumkits)")
def test_drums_from_an_installed_kit(drum_song):
    c, sid = drum_song
    kits = c.get("/api/drums/kits").json()["kits"]
    assert kits == list(hydrogen_kits())
    r = c.post(f"/api/songs/{sid}/drums", json={"kit": kits[0], "kick": "kit", "snare": "kit", "hat": "kit",
                                               "blend": 0.5})
    assert r.status_code == 201, r.text
    assert r.json()["drums"] == {"kit": kits[0], "kick": "kit", "snare": "kit", "hat": "kit", "blend": 0.5}
    # the kit's samples end up in the user's track: the answer says under which licence, per class
    licences = r.json()["licences"]
    assert set(licences) == {"kick", "snare", "hat"} and all("Hydrogen kit" in v for v in licences.values())


def test_drums_requests_are_checked(drum_song, make_client, short_wav, tmp_path):
    c, sid = drum_song
    bad = [({"kit": "no such kit", "kick": "kit"}, "kit"), ({"kick": "kit"}, "kick"),
           ({"kick": "0" * 32 + ".wav"}, "kick"), ({"snare": "../../library.sqlite3"}, "snare"),
           ({"blend": 1.0}, "choose a sample"), ({"kick": "kit", "kit": "x" * 300}, "kit"),
           ({"kick": "kit", "blend": 2}, "blend")]
    for body, word in bad:
        r = c.post(f"/api/songs/{sid}/drums", json=body)
        assert r.status_code in (400, 422) and word in r.text, (body, r.text)
    long = write_audio(tmp_path / "long.wav", np.zeros((1, 11 * RATE), np.float32) + 0.1, RATE, bit_depth=16)
    assert _post_sample(c, sid, long).status_code == 413
    (tmp_path / "x.wav").write_bytes(b"RIFF nothing")
    assert _post_sample(c, sid, tmp_path / "x.wav").status_code == 415
    silent = write_audio(tmp_path / "silent.wav", np.zeros((1, RATE // 10), np.float32), RATE, bit_depth=16)
    r = _post_sample(c, sid, silent)
    assert r.status_code == 415 and "silent" in r.json()["error"]
    shot = write_audio(tmp_path / "k.wav", _kick(), RATE, bit_depth=16)
    assert _post_sample(c, sid, shot, headers={"host": "evil.example"}).status_code == 403
    assert _post_sample(c, sid, shot, headers={"origin": "http://evil.example"}).status_code == 403
    r = c.post(f"/api/songs/{sid}/drums", json={"kick": "kit", "kit": "a"}, headers={"origin": "http://evil.example"})
    assert r.status_code == 403
    assert not (c.app.state.studio.layers_dir(sid)).exists()
    folder = drumpanel.samples_dir(c.app.state.studio, sid)
    assert not folder.exists() or not list(folder.glob("*.wav"))  # nothing refused was kept
    # a separation without drums
    plain = make_client(data_dir=tmp_path / "plain")
    other = wait_status(plain, upload(plain, short_wav).json()["id"])["id"]
    r = plain.post(f"/api/songs/{other}/drums", json={"kick": "kit", "kit": "a"})
    assert r.status_code == 409 and "no drums stem" in r.json()["error"]
