"""Issue 15, items 6-8: shutdown with open event streams, leftovers of a killed server, IPv6 loopback, and an event
loop that never waits on model loading."""
from __future__ import annotations

import json
import signal
import sqlite3
import threading
import time
import urllib.request
from pathlib import Path

from stemwright.server import renders
from tests.server.conftest import upload, wait_status


def _post_file(url: str, path: Path) -> dict:
    boundary = "----stemwright-test"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{path.name}\"\r\n"
            "Content-Type: audio/wav\r\n\r\n").encode() + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    req = urllib.request.Request(url + "api/songs", data=body, method="POST",
                                 headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def _wait_job(url: str, song_id: str, status: str, timeout: float = 30.0) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        song = _get(f"{url}api/songs/{song_id}")
        if song["jobs"][-1]["status"] == status:
            return song
        time.sleep(0.05)
    raise AssertionError(f"job of {song_id} never became {status}: {song}")


def _job_states(data_dir: Path) -> dict[str, str]:
    with sqlite3.connect(data_dir / "library.sqlite3") as db:
        return dict(db.execute("SELECT song_id, status FROM jobs").fetchall())


def test_sigterm_with_open_event_stream_exits_promptly(server_process, short_wav):
    srv = server_process("--port", "0")
    running = _post_file(srv.url, short_wav)["id"]
    _wait_job(srv.url, running, "running")
    queued = _post_file(srv.url, short_wav)["id"]
    cancelled = _post_file(srv.url, short_wav)["id"]
    cancel_id = _get(f"{srv.url}api/songs/{cancelled}")["jobs"][-1]["id"]
    urllib.request.urlopen(urllib.request.Request(f"{srv.url}api/jobs/{cancel_id}/cancel", method="POST"), timeout=10)
    # an open tab: the event stream stays open as long as the page does
    stream = urllib.request.urlopen(srv.url + "api/events", timeout=30)
    assert stream.readline().startswith(b"retry: ")  # the stream opens with its reconnection delay
    t0 = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    srv.proc.wait(timeout=15)
    elapsed = time.monotonic() - t0
    rest = stream.read()  # the server ended the stream rather than the process dying with it open
    stream.close()
    # uvicorn re-raises the signal once shut down, so the exit status says "terminated by SIGTERM"
    assert srv.proc.returncode in (0, -signal.SIGTERM), srv.proc.stdout.read()[-2000:]
    assert elapsed < 8.0, f"shutdown took {elapsed:.1f} s"
    assert isinstance(rest, bytes)
    states = _job_states(srv.data_dir)
    assert states == {running: "interrupted", queued: "interrupted", cancelled: "cancelled"}
    assert not list(srv.data_dir.glob("songs/*/jobs/*.part"))


def test_runner_stop_marks_interrupted_whatever_the_timing(make_client, short_wav):
    """The same outcome in-process, many times: a running job stopped by a shutdown is interrupted, never
    cancelled or failed."""
    from tests.server.fake_serve import idle_factory

    for _ in range(5):
        c = make_client(separator_factory=idle_factory)
        sid = upload(c, short_wav).json()["id"]
        wait_status(c, sid, ("running",))
        runner = c.app.state.runner
        c.app.state.begin_shutdown()
        runner.stop()
        assert c.app.state.library.jobs_for(sid)[-1]["status"] == "interrupted"
        c.app.state.library.delete_song(sid)


def test_leftovers_of_a_killed_server_are_removed(server_process, short_wav, tmp_path):
    data = tmp_path / "studio"
    srv = server_process("--port", "0", data_dir=data)
    sid = _post_file(srv.url, short_wav)["id"]
    _wait_job(srv.url, sid, "running")
    end = time.monotonic() + 20  # "running" is recorded just before the engine makes its folder
    while not (parts := list(data.glob("songs/*/jobs/*.part"))) and time.monotonic() < end:
        time.sleep(0.05)
    assert parts, "the running job has a .part folder"
    partial_upload = data / "uploads" / ".upload.abc123.part"
    partial_upload.write_bytes(b"\0" * 4096)
    srv.proc.kill()
    srv.proc.wait(10)
    again = server_process("--port", "0", data_dir=data)
    assert not any(p.exists() for p in parts)
    assert not partial_upload.exists()
    assert _get(f"{again.url}api/songs/{sid}")["status"] == "interrupted"


def test_ipv6_loopback_in_brackets(server_process, tmp_path):
    srv = server_process("serve", "--host", "[::1]", "--port", "0", "-m", "classic", module="stemwright.cli.main")
    assert srv.url.startswith("http://[::1]:")
    assert _get(srv.url + "api/health")["ok"] is True


def test_model_listing_does_not_block_the_event_loop(make_client, monkeypatch):
    """While the model registry loads (slow on first use: it imports torch), other requests are answered."""
    c = make_client()
    health_answered = threading.Event()
    real = renders.model_entries

    def slow_entries():
        health_answered.wait(10)  # returns at once if /api/health got through meanwhile
        return real()

    monkeypatch.setattr(renders, "model_entries", slow_entries)
    answers = {}
    t = threading.Thread(target=lambda: answers.setdefault("models", c.get("/api/models")))
    t.start()
    time.sleep(0.2)
    t0 = time.monotonic()
    assert c.get("/api/health").status_code == 200
    answers["health_s"] = time.monotonic() - t0
    health_answered.set()
    t.join(20)
    assert answers["models"].status_code == 200
    assert answers["health_s"] < 5.0, "the health check waited for the model listing"


class _WrappingSeparator:
    """An engine that turns the callback's exception into its own error on the way out."""

    def __init__(self, model, progress):
        from tests.server.fake_serve import IdleSeparator

        self.inner = IdleSeparator(model, progress)

    def separate_file(self, *args, **kw):
        try:
            return self.inner.separate_file(*args, **kw)
        except Exception as e:
            raise RuntimeError("separation aborted") from e


def test_outcome_does_not_depend_on_how_the_engine_stops(make_client, short_wav):
    c = make_client(separator_factory=_WrappingSeparator)
    cancelled = upload(c, short_wav).json()["id"]
    wait_status(c, cancelled, ("running",))
    job = c.get(f"/api/songs/{cancelled}").json()["jobs"][-1]["id"]
    c.post(f"/api/jobs/{job}/cancel")
    assert wait_status(c, cancelled, ("cancelled", "failed"))["status"] == "cancelled"
    running = upload(c, short_wav).json()["id"]
    wait_status(c, running, ("running",))
    c.app.state.begin_shutdown()
    c.app.state.runner.stop()
    assert c.app.state.library.jobs_for(running)[-1]["status"] == "interrupted"
