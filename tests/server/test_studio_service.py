"""The studio server after issue 23: bounded JSON nesting, upload errors in the user's words, file names with
quotes, interrupted jobs, cancel of an ended job, the library's live events, the icon, the shape of the app."""
from __future__ import annotations

import ast
import inspect
import threading
from pathlib import Path

from stemwright.audio.io import write_audio
from stemwright.server import app as app_module
from stemwright.server.db import Library
from tests.server.conftest import FakeSeparator, sse_events, upload, wait_status


def _deep(levels: int) -> bytes:
    return b'{"document": ' + b"[" * levels + b"]" * levels + b"}"


def test_deeply_nested_json_is_refused_on_every_json_route(make_client, short_wav):
    c = make_client()
    sid = wait_status(c, upload(c, short_wav).json()["id"])["id"]
    for path in (f"/api/songs/{sid}/mixes", f"/api/songs/{sid}/export", f"/api/songs/{sid}/samples",
                 f"/api/songs/{sid}/jobs"):
        r = c.post(path, content=_deep(100_000), headers={"content-type": "application/json"})
        assert r.status_code == 400 and "nested" in r.json()["error"], (path, r.status_code, r.text[:200])
    # brackets inside strings are text, not nesting
    r = c.post(f"/api/songs/{sid}/mixes", json={"name": "[[[[" * 40, "document": {"version": 1, "channels": []}})
    assert r.status_code == 201, r.text


def test_openapi_describes_the_json_bodies(make_client):
    paths = make_client().get("/api/openapi.json").json()["paths"]
    body = paths["/api/songs/{song_id}/mixes"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert {"name", "document", "id"} <= set(body["properties"])
    export = paths["/api/songs/{song_id}/export"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert export["properties"]["format"]["enum"] == ["wav", "flac", "mp3"]


def test_upload_errors_name_the_file_never_a_server_path(make_client, tmp_path):
    c = make_client()
    notes = tmp_path / "notes.txt"
    notes.write_text("not audio at all\n" * 100)
    r = upload(c, notes)
    error = r.json()["error"]
    assert r.status_code == 415 and error.startswith("notes.txt: "), error
    assert "/" not in error and ".part" not in error and "Errno" not in error, error
    empty = tmp_path / "empty song.wav"
    empty.write_bytes(b"")
    r = upload(c, empty)
    assert r.status_code == 400 and r.json()["error"] == "empty song.wav: the file is empty (0 bytes)"


def test_truncated_file_is_refused_at_upload(make_client, mp3_path, tmp_path):
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(mp3_path.read_bytes()[: mp3_path.stat().st_size // 2])
    r = upload(make_client(), cut)
    assert r.status_code == 415, r.text
    assert r.json()["error"].startswith("cut.mp3: the file is cut off") and "/" not in r.json()["error"]


def test_source_found_unreadable_by_the_job_is_not_rerunnable(make_client, short_wav):
    """A file the bounded probe passed but that does not decode (found by the job): the error names the user's
    file, and the song says Re-run is pointless."""
    c = make_client()
    sid = wait_status(c, upload(c, short_wav).json()["id"])["id"]
    assert c.get(f"/api/songs/{sid}").json()["rerunnable"] is True
    source = Path(c.app.state.library.song(sid)["source_path"])
    source.write_bytes(source.read_bytes()[:100])  # damaged after upload
    assert c.post(f"/api/songs/{sid}/jobs", json={}).status_code == 201
    song = wait_status(c, sid, ("failed",))
    assert song["rerunnable"] is False
    assert song["jobs"][-1]["error"].startswith("short.wav: ") and str(source) not in song["jobs"][-1]["error"]
    r = c.post(f"/api/songs/{sid}/jobs", json={})
    assert r.status_code == 409 and "short.wav" in r.json()["error"]


def test_quotes_in_file_names_survive_upload_and_download(make_client, short_wav):
    c = make_client()
    data = short_wav.read_bytes()
    # Chromium (and curl) send '"' in a multipart file name as %22; the model field after the file keeps its name
    body = (b'--b\r\nContent-Disposition: form-data; name="file"; filename="my %22quoted%22 <song>.wav"\r\n'
            b"Content-Type: audio/wav\r\n\r\n" + data + b'\r\n--b\r\nContent-Disposition: form-data; name="model"'
            b"\r\n\r\nclassic\r\n--b--\r\n")
    r = c.post("/api/songs", content=body, headers={"content-type": "multipart/form-data; boundary=b"})
    assert r.status_code == 201, r.text
    song = r.json()
    assert song["title"] == 'my "quoted" <song>'
    wait_status(c, song["id"])
    got = c.get(f"/api/songs/{song['id']}/stems.zip")
    disposition = got.headers["content-disposition"]
    assert "<" not in disposition and ">" not in disposition
    assert disposition.count('"') == 2  # only the quotes around the ASCII fallback


def test_interrupted_job_says_what_it_was_doing(tmp_path):
    lib = Library(tmp_path / "db.sqlite3")
    sid = lib.add_song(title="t", original_name="t.wav", source_path="", samplerate=44100, channels=2,
                       duration=1.0, size_bytes=1)
    running, queued = lib.add_job(sid, "m", {}), lib.add_job(sid, "m", {})
    lib.update_job(running, status="running", progress=0.6)
    assert sorted(lib.mark_interrupted()) == sorted([running, queued])
    assert lib.job(running)["error"] == "the server stopped while this job was running (at 60 %)"
    assert "queued" in lib.job(queued)["error"] and "pending" not in lib.job(queued)["error"]


def test_cancel_of_an_ended_job_answers_with_the_row(make_client, short_wav):
    c = make_client()
    sid = wait_status(c, upload(c, short_wav).json()["id"])["id"]
    job = c.get(f"/api/songs/{sid}").json()["jobs"][-1]
    r = c.post(f"/api/jobs/{job['id']}/cancel")
    assert r.status_code == 409
    body = r.json()
    assert body["job"]["status"] == "done" and body["song"]["id"] == sid and body["song"]["status"] == "done"


def test_event_stream_tells_other_tabs_about_songs(make_client, short_wav):
    FakeSeparator.gate = threading.Event()
    c = make_client()
    with c.stream("GET", "/api/events?until_idle=true") as r:
        lines = r.iter_lines()
        assert next(lines) == "retry: 3000"
    sid = upload(c, short_wav).json()["id"]
    wait_status(c, sid, ("running",))
    FakeSeparator.gate.set()
    wait_status(c, sid)
    with c.stream("GET", "/api/events?until_idle=true") as r:
        events = sse_events(r.iter_lines())
    hello = events[0]
    assert hello[0] == "hello" and hello[2]["reset"] is True  # a first connection loads the library
    # reconnecting from before the upload: the missed changes are replayed, in order, with their ids
    boot = hello[2]["boot"]
    with c.stream("GET", "/api/events?until_idle=true", headers={"last-event-id": f"{boot}.0"}) as r:
        events = sse_events(r.iter_lines())
    assert events[0][0] == "hello" and events[0][2]["reset"] is False
    songs = [(e["action"], e["id"]) for name, _id, e in events if name == "song"]
    assert songs[0] == ("added", sid) and ("changed", sid) in songs
    ids = [int(i.split(".")[1]) for name, i, _e in events if name == "song"]
    assert ids == sorted(ids) and ids[0] == 1
    c.delete(f"/api/songs/{sid}")
    with c.stream("GET", "/api/events?until_idle=true", headers={"last-event-id": f"{boot}.{ids[-1]}"}) as r:
        events = sse_events(r.iter_lines())
    assert [(n, e) for n, _i, e in events if n == "song"] == [("song", {"action": "removed", "id": sid})]
    # a tab that was connected to another server start reloads
    with c.stream("GET", "/api/events?until_idle=true", headers={"last-event-id": "0123456789ab.3"}) as r:
        assert sse_events(r.iter_lines())[0][2]["reset"] is True


def test_favicon_and_deleted_song_message(make_client, short_wav):
    c = make_client()
    icon = c.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/x-icon"
    assert icon.content[:4] == b"\0\0\1\0"
    sid = upload(c, short_wav).json()["id"]
    wait_status(c, sid)
    c.delete(f"/api/songs/{sid}")
    r = c.get(f"/api/songs/{sid}/peaks")
    assert r.status_code == 404 and "deleted" in r.json()["error"] and sid not in r.json()["error"]


def test_analysis_runs_in_the_job(make_client, tmp_path):
    """The song view says "analysing" then "done": the page can show it instead of a silent wait."""
    from tests.mixer.songs import make_song

    stems = make_song(tmp_path / "parts", 120.0, 9, "minor", seconds=6.0, sr=22050)
    path = write_audio(tmp_path / "song.wav", sum(stems.values()), 22050, bit_depth=16)
    c = make_client()
    sid = upload(c, path).json()["id"]
    wait_status(c, sid)
    import time

    end = time.time() + 60
    while c.get(f"/api/songs/{sid}").json()["analysis"] == "analysing" and time.time() < end:
        time.sleep(0.1)
    song = c.get(f"/api/songs/{sid}").json()
    assert song["analysis"] == "done"
    job_id = song["stems_job"]
    assert c.app.state.library.analysis(job_id) is not None


def test_create_app_is_small_and_has_no_sql():
    source = inspect.getsource(app_module.create_app)
    assert len(source.splitlines()) < 80
    server = Path(app_module.__file__).parent
    for path in [server / "app.py", server / "web.py", *sorted((server / "routers").glob("*.py"))]:
        tree = ast.parse(path.read_text())
        strings = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
        assert not [s for s in strings if s.lstrip().upper().startswith(("SELECT ", "UPDATE ", "INSERT ", "DELETE FROM"))], path
