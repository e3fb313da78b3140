"""Issue 27 in the studio's API: a strip's "clean" knob (the server-rendered debleed stem)."""
from __future__ import annotations

import numpy as np
import pytest

from stemwright.audio.io import read_audio
from stemwright.mixer.render import clean_stem
from stemwright.mixer.stems import load_stems
from stemwright.server import remix
from tests.server.conftest import upload, wait_status


@pytest.fixture()
def song(make_client, short_wav):
    c = make_client()
    sid = wait_status(c, upload(c, short_wav).json()["id"])["id"]
    return c, sid


def test_clean_stem_is_what_the_export_renders(song, tmp_path):
    c, sid = song
    r = c.get(f"/api/songs/{sid}/stems/vocals/clean?strength=0.5")
    assert r.status_code == 200 and r.headers["content-type"] == "audio/flac"
    got = tmp_path / "clean.flac"
    got.write_bytes(r.content)
    folder = next((c.app.state.studio.data_dir / "songs" / sid / "jobs").iterdir())
    stemset = load_stems(folder)
    want = clean_stem(stemset, "vocals", 0.5)
    audio = read_audio(got).samples
    assert audio.shape == want.shape
    assert np.max(np.abs(audio - want)) < 2e-7  # 24-bit FLAC: half a step
    # the fake separation's vocals are 0.25 x the song and "other" 0.75 x: cleaning takes them down
    assert np.sqrt(np.mean(audio ** 2)) < 0.9 * np.sqrt(np.mean(stemset["vocals"] ** 2))
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
    assert not list((c.app.state.studio.data_dir / "songs" / sid).rglob(".*.clean*.flac"))


def test_clean_refuses_unknown_stems_hosts_and_long_songs(song, monkeypatch):
    c, sid = song
    assert c.get(f"/api/songs/{sid}/stems/drums/clean?strength=0.5").status_code == 404
    assert c.get(f"/api/songs/{sid}/stems/..%2fvocals/clean?strength=0.5").status_code == 404
    assert c.get(f"/api/songs/{'0' * 32}/stems/vocals/clean?strength=0.5").status_code == 404
    assert c.get(f"/api/songs/{sid}/stems/vocals/clean?strength=0.5", headers={"host": "evil.example"}).status_code == 403
    monkeypatch.setattr(remix, "CLEAN_MAX_S", 0.1)
    r = c.get(f"/api/songs/{sid}/stems/vocals/clean?strength=0.5")
    assert r.status_code == 413 and "minutes" in r.json()["error"]
