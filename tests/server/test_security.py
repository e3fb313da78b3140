"""Issue 15, items 1-5: foreign Host and cross-origin requests, decompression bombs, bounded exports, token mode,
security headers and streamed body limits."""
from __future__ import annotations

import re
import socket
import threading
import time
import tracemalloc
from html.parser import HTMLParser

import pytest

from stemwright.server import renders
from stemwright.server.app import STATIC_DIR, ServerConfig
from stemwright.server.exports import ExportQueue
from tests.server.conftest import idle_factory, upload, wait_status

TOKEN = "s3cret-0123456789abcdef"


def _mix(stems=("vocals", "other"), **channel):
    return {"version": 1, "channels": [{"stem": s, "gain_db": 0, **channel} for s in stems]}


# -- 1. Host allow-list, origin check, JSON content type ----------------------------------------------------------
def test_foreign_host_is_refused(make_client, short_wav):
    c = make_client()
    sid = wait_status(c, upload(c, short_wav).json()["id"])["id"]
    for host in ("evil.example", "evil.example:8000", "127.0.0.1.nip.io", "localhost.evil.example", ""):
        r = c.get("/api/songs", headers={"host": host})
        assert r.status_code == 403 and "allowed hosts" in r.json()["error"], host
        assert c.get(f"/api/songs/{sid}/stems/vocals", headers={"host": host}).status_code == 403
        assert c.delete(f"/api/songs/{sid}", headers={"host": host}).status_code == 403
    assert c.get(f"/api/songs/{sid}").status_code == 200  # nothing was deleted
    for host in ("localhost", "localhost:8000", "127.0.0.1:8000", "[::1]:8000", "LOCALHOST"):
        assert c.get("/api/songs", headers={"host": host}).status_code == 200, host


def test_allow_host_and_bound_address(make_client):
    c = make_client(host="192.168.7.7", token=TOKEN, allow_hosts=("studio.lan",))
    auth = {"x-stemwright-token": TOKEN}
    assert c.get("/api/health", headers={**auth, "host": "studio.lan:8000"}).status_code == 200
    assert c.get("/api/health", headers={**auth, "host": "192.168.7.7:8000"}).status_code == 200
    assert c.get("/api/health", headers={**auth, "host": "other.lan"}).status_code == 403


def test_cross_origin_requests_are_refused(make_client, short_wav, tmp_path):
    c = make_client()
    sid = wait_status(c, upload(c, short_wav).json()["id"])["id"]
    foreign = {"origin": "http://localhost:18799"}
    # a no-cors multipart POST from another origin: refused, nothing stored
    r = upload(c, short_wav, headers=foreign)
    assert r.status_code == 403 and "cross-origin" in r.json()["error"]
    assert len(c.get("/api/songs").json()["songs"]) == 1
    # a form POST and text/plain bodies (no preflight needed) from another origin
    r = c.post(f"/api/songs/{sid}/jobs", data={"model": "classic"}, headers=foreign)
    assert r.status_code == 403
    for path in (f"/api/songs/{sid}/jobs", f"/api/songs/{sid}/export", f"/api/songs/{sid}/mixes"):
        r = c.post(path, content=b'{"model": "classic"}', headers={**foreign, "content-type": "text/plain"})
        assert r.status_code == 403, path
    # the same bodies without a JSON content type are refused even from the page's own origin
    same = {"origin": "http://localhost"}
    for path in (f"/api/songs/{sid}/jobs", f"/api/songs/{sid}/export"):
        r = c.post(path, content=b'{"model": "classic"}', headers={**same, "content-type": "text/plain"})
        assert r.status_code == 415 and "application/json" in r.json()["error"], path
    # opaque origins and browsers that say the request is cross-site
    assert c.post(f"/api/songs/{sid}/jobs", json={}, headers={"origin": "null"}).status_code == 403
    assert c.post(f"/api/songs/{sid}/jobs", json={}, headers={"sec-fetch-site": "cross-site"}).status_code == 403
    assert c.delete(f"/api/songs/{sid}", headers={"origin": "http://evil.example"}).status_code == 403
    assert c.post(f"/api/jobs/{'0' * 32}/cancel", headers={"sec-fetch-site": "same-site"}).status_code == 403
    assert [j["status"] for j in c.get(f"/api/songs/{sid}").json()["jobs"]] == ["done"]


def test_same_origin_page_works(make_client, short_wav):
    c = make_client()
    same = {"origin": "http://localhost", "sec-fetch-site": "same-origin"}
    r = upload(c, short_wav, headers=same)
    assert r.status_code == 201, r.text
    sid = wait_status(c, r.json()["id"])["id"]
    r = c.post(f"/api/songs/{sid}/mixes", json={"name": "a", "document": _mix()}, headers=same)
    assert r.status_code == 201, r.text
    assert c.post(f"/api/songs/{sid}/export", json={"format": "wav", "document": _mix()}, headers=same).status_code == 200
    assert c.delete(f"/api/songs/{sid}", headers=same).status_code == 200


# -- 2. decompression bombs ----------------------------------------------------------------------------------------
def _upload_peak(c, path, **kw):
    tracemalloc.start()
    try:
        r = upload(c, path, **kw)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return r, peak


def test_long_upload_refused_before_decoding(make_client, hour_of_silence, tmp_path):
    c = make_client(max_duration=1800, separator_factory=idle_factory)
    r, peak = _upload_peak(c, hour_of_silence)
    assert r.status_code == 413 and "1:00:00 long" in r.json()["error"] and "0:30:00" in r.json()["error"]
    assert r.json()["error"].startswith("hour.flac: ")
    assert peak < 48 * 2**20, f"peak {peak / 2**20:.0f} MB while checking a 600 KB upload"
    assert c.get("/api/songs").json()["songs"] == []
    assert not list((tmp_path / "studio" / "uploads").iterdir())


def test_long_upload_accepted_with_bounded_memory(make_client, hour_of_silence):
    c = make_client(separator_factory=idle_factory)  # default --max-duration: 2 h
    r, peak = _upload_peak(c, hour_of_silence)
    assert r.status_code == 201, r.text
    assert abs(r.json()["duration"] - 3600.0) < 0.01 and r.json()["samplerate"] == 44100
    assert peak < 48 * 2**20, f"peak {peak / 2**20:.0f} MB while checking a 600 KB upload"
    c.post(f"/api/jobs/{r.json()['jobs'][-1]['id']}/cancel")


def test_max_duration_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match="max_duration"):
        ServerConfig(data_dir=tmp_path, max_duration=0)


# -- 3. bounded exports --------------------------------------------------------------------------------------------
def test_export_limits(make_client, short_wav):
    c = make_client()
    sid = wait_status(c, upload(c, short_wav).json()["id"])["id"]
    eq = {"type": "peak", "cutoff_hz": 1000, "gain_db": 1, "q": 1}
    r = c.post(f"/api/songs/{sid}/export", json={"format": "wav", "document": _mix(effects=[eq] * 2000)})
    assert r.status_code == 400 and "at most 16 effects" in r.json()["error"]
    for offset in (3600, -3600, 60.5):
        r = c.post(f"/api/songs/{sid}/export", json={"format": "wav", "document": _mix(offset_s=offset)})
        assert r.status_code == 400 and "offset_s" in r.json()["error"], offset
    r = c.post(f"/api/songs/{sid}/mixes", json={"name": "x", "document": _mix(effects=[eq] * 17)})
    assert r.status_code == 400
    assert c.post(f"/api/songs/{sid}/export", json={"format": "wav", "document": _mix(effects=[eq] * 16, offset_s=2)}).status_code == 200


def test_export_files_removed_after_download_and_at_start(make_client, short_wav, tmp_path):
    c = make_client()
    sid = wait_status(c, upload(c, short_wav).json()["id"])["id"]
    exports = tmp_path / "studio" / "exports"
    r = c.post(f"/api/songs/{sid}/export", json={"format": "flac", "document": _mix()})
    assert r.status_code == 200 and r.content[:4] == b"fLaC"
    assert list(exports.iterdir()) == []
    stale = exports / "export-stale"
    stale.mkdir()
    (stale / "mix.wav").write_bytes(b"x" * 100)
    make_client()  # a restart removes whatever a download left
    assert list(exports.iterdir()) == []


def test_export_time_to_live(tmp_path):
    q = ExportQueue(tmp_path / "exports", ttl_s=60)
    q.clear()
    old, new = q.new_dir(), q.new_dir()
    (old / "mix.wav").write_bytes(b"x")
    import os

    os.utime(old, (time.time() - 120, time.time() - 120))
    assert q.sweep() == 1
    assert not old.exists() and new.exists()


def test_export_queue_answers_429(make_client, short_wav, monkeypatch):
    c = make_client(max_exports=1)
    sid = wait_status(c, upload(c, short_wav).json()["id"])["id"]
    release, entered = threading.Event(), threading.Event()
    real = renders.render_export

    def slow_render(*args):
        entered.set()
        release.wait(20)
        real(*args)

    monkeypatch.setattr(renders, "render_export", slow_render)
    results = []
    t = threading.Thread(target=lambda: results.append(
        c.post(f"/api/songs/{sid}/export", json={"format": "wav", "document": _mix()})))
    t.start()
    assert entered.wait(10)
    # another document (an identical one shares the running render: test_identical_export_shares_the_render)
    r = c.post(f"/api/songs/{sid}/export", json={"format": "wav", "document": _mix(pan=0.5)})
    assert r.status_code == 429 and "export queue is full" in r.json()["error"]
    release.set()
    t.join(20)
    assert results[0].status_code == 200
    assert c.post(f"/api/songs/{sid}/export", json={"format": "wav", "document": _mix()}).status_code == 200


def test_identical_export_shares_the_render(make_client, short_wav, monkeypatch):
    """A second click on Export while the first render runs waits for that render (issue 23, item 2): one render,
    two identical downloads, and the temporary folder is gone once both are sent."""
    c = make_client()
    sid = wait_status(c, upload(c, short_wav).json()["id"])["id"]
    release, entered, calls = threading.Event(), threading.Event(), []
    real = renders.render_export

    def slow_render(*args):
        calls.append(1)
        entered.set()
        release.wait(20)
        real(*args)

    monkeypatch.setattr(renders, "render_export", slow_render)
    results = []
    post = lambda: results.append(c.post(f"/api/songs/{sid}/export", json={"format": "wav", "document": _mix()}))  # noqa: E731
    threads = [threading.Thread(target=post) for _ in range(2)]
    threads[0].start()
    assert entered.wait(10)
    threads[1].start()
    time.sleep(0.5)  # the second request is waiting on the first render
    release.set()
    for t in threads:
        t.join(20)
    assert [r.status_code for r in results] == [200, 200] and results[0].content == results[1].content
    assert len(calls) == 1
    end = time.time() + 5
    while list((c.app.state.studio.data_dir / "exports").iterdir()) and time.time() < end:
        time.sleep(0.05)
    assert not list((c.app.state.studio.data_dir / "exports").iterdir())


# -- 4. token mode -------------------------------------------------------------------------------------------------
def test_token_required(make_client, short_wav):
    c = make_client(token=TOKEN)
    assert c.get("/api/songs").status_code == 401
    assert c.get("/api/songs", headers={"x-stemwright-token": "wrong"}).status_code == 401
    assert c.get("/").status_code == 401
    for scheme in ("Bearer", "bearer", "BEARER"):
        assert c.get("/api/songs", headers={"Authorization": f"{scheme} {TOKEN}"}).status_code == 200, scheme
    assert c.get("/api/songs", headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
    assert upload(c, short_wav, headers={"x-stemwright-token": TOKEN}).status_code == 201


def test_token_in_url_is_exchanged_for_a_cookie(make_client):
    c = make_client(token=TOKEN)
    r = c.get(f"/?token={TOKEN}", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"
    cookie = r.headers["set-cookie"]
    assert "stemwright_token=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    r = c.get(f"/api/songs?x=1&token={TOKEN}", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/api/songs?x=1"
    assert c.get("/").status_code == 200  # the client kept the cookie
    assert c.get(f"/?token=wrong-{TOKEN}", follow_redirects=False).status_code == 401


def test_non_ascii_token_is_401_not_500(make_client, caplog):
    c = make_client(token=TOKEN)
    assert c.get("/api/songs", headers={"x-stemwright-token": "tökén-ü-0123456789".encode()}).status_code == 401
    assert c.get("/api/songs", headers={"authorization": b"Bearer \xc3\xa9\xc3\xa9\xc3\xa9"}).status_code == 401
    assert c.get("/api/songs?token=%C3%A9t%C3%A9-0123456789abcdef", follow_redirects=False).status_code == 401
    assert c.get("/api/songs", headers={"cookie": ("stemwright_token=" + "é" * 20).encode()}).status_code == 401
    assert "Traceback" not in caplog.text and "unhandled" not in caplog.text


def test_token_minimum_length(tmp_path):
    from stemwright.cli.main import main

    with pytest.raises(ValueError, match="at least 16"):
        ServerConfig(data_dir=tmp_path, token="short")
    with pytest.raises(ValueError, match="printable ASCII"):
        ServerConfig(data_dir=tmp_path, token="with space 0123456789")
    assert main(["serve", "--token", "short", "--port", "0", "--data-dir", str(tmp_path)]) == 2


def test_printed_url_is_reachable():
    from stemwright.cli.serve import reachable_host, url_for

    for wildcard in ("0.0.0.0", "::"):
        host = reachable_host(wildcard)
        assert host not in ("0.0.0.0", "::", "")
    assert reachable_host("127.0.0.1") == "127.0.0.1"
    assert url_for("::1", 8000) == "http://[::1]:8000/"
    assert url_for("192.168.1.2", 80) == "http://192.168.1.2:80/"


# -- 5. headers, gzip, streamed body limit --------------------------------------------------------------------------
def test_security_headers(make_client):
    c = make_client()
    for path in ("/", "/static/main.js", "/api/songs", "/api/songs/" + "0" * 32):
        r = c.get(path)
        assert r.headers["x-content-type-options"] == "nosniff", path
        csp = r.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp, path
    assert c.get("/api/songs", headers={"host": "evil.example"}).headers["x-content-type-options"] == "nosniff"


def test_page_needs_no_inline_script_or_style():
    class Check(HTMLParser):
        problems: list[str] = []

        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            if tag == "script" and not a.get("src"):
                self.problems.append("inline <script>")
            self.problems += [f"{tag} {k}=" for k in a if k.startswith("on") or k == "style"]

    check = Check()
    check.feed((STATIC_DIR / "index.html").read_text())
    assert check.problems == []
    for module in STATIC_DIR.glob("*.js"):
        js = module.read_text()
        assert not re.search(r"style=[\"'$]", js), f"{module.name}: style attributes in HTML strings are blocked by the CSP"
        assert "eval(" not in js and "new Function" not in js, module.name


def test_page_modules_are_small_and_acyclic():
    """Issue 23: the page is ES modules of at most 300 lines each, importing one way (no cycles)."""
    graph = {}
    for module in STATIC_DIR.glob("*.js"):
        text = module.read_text()
        assert text.count("\n") <= 300, module.name
        assert "createScriptProcessor" not in text, f"{module.name}: the deprecated ScriptProcessorNode"
        graph[module.name] = set(re.findall(r'^import [^;]*? from "\./([\w.]+)";', text, re.M))
    assert "main.js" in graph and "app.js" not in graph
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"import cycle: {' -> '.join(path + (name,))}"
        if name in done:
            return
        for dep in graph.get(name, ()):
            visit(dep, path + (name,))
        done.add(name)

    for name in graph:
        visit(name, ())


def test_text_assets_are_gzipped(make_client, short_wav):
    c = make_client()
    for path in ("/", "/static/main.js", "/static/style.css"):
        r = c.get(path, headers={"accept-encoding": "gzip"})
        assert r.headers.get("content-encoding") == "gzip", path
    sid = wait_status(c, upload(c, short_wav).json()["id"])["id"]
    r = c.get(f"/api/songs/{sid}/stems/vocals", headers={"accept-encoding": "gzip"})
    assert "content-encoding" not in r.headers  # audio is not compressed (and ranges keep working)


def test_chunked_json_refused_while_streaming(server_process, tmp_path):
    """A chunked body has no Content-Length: the limit must hold while it streams. The server answers 413 before
    the client has sent the end of the body."""
    srv = server_process("--port", "0")
    host, port = re.match(r"http://([^:/]+):(\d+)/", srv.url).groups()
    sid = "0" * 32
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall((f"POST /api/songs/{sid}/mixes HTTP/1.1\r\nHost: {host}:{port}\r\n"
                   "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n").encode())
        chunk = b"[" + b" " * 16383
        sent = 0
        s.settimeout(0.05)
        answer = b""
        while sent < 4 * 2**20 and not answer:
            s.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            sent += len(chunk)
            try:
                answer = s.recv(4096)
            except socket.timeout:
                pass
        s.settimeout(10)
        while b"\r\n\r\n" not in answer:
            answer += s.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < 1 * 2**20, f"the server read {sent} bytes before refusing"


def test_probe_scans_boundedly_when_the_header_has_no_length(hour_of_silence, short_wav, monkeypatch):
    """Item 2, the other branch: a file whose header does not give its length is scanned block by block, and the
    scan stops just past the limit rather than at the end of the file."""
    import soundfile

    from stemwright.server import probe

    reads: list[int] = []

    class NoLength(soundfile.SoundFile):
        @property
        def frames(self):
            return 0  # as for a stream written without a length

        def read(self, frames=-1, *args, **kw):
            reads.append(frames)
            return super().read(frames, *args, **kw)

    monkeypatch.setattr(probe.sf, "SoundFile", NoLength)
    assert abs(probe.probe_audio(short_wav, 7200).duration - 1.0) < 1e-6
    reads.clear()
    with pytest.raises(probe.ProbeError, match="at most 0:01:00") as e:
        probe.probe_audio(hour_of_silence, 60)
    assert e.value.status == 413
    assert all(0 < n <= probe.BLOCK_FRAMES * 8 for n in reads)
    assert sum(reads) < 70 * 44100, "the scan went far past the limit"


def test_probe_refuses_non_audio_and_reads_compressed_headers(tmp_path, mixtures_dir):
    from stemwright.server.probe import ProbeError, probe_audio
    from tests.server.conftest import MP3

    junk = tmp_path / "junk.flac"
    junk.write_bytes(b"fLaC" + b"\0" * 2000)
    with pytest.raises(ProbeError) as e:
        probe_audio(junk, 7200)
    assert e.value.status == 415
    info = probe_audio(mixtures_dir / MP3, 7200)
    assert abs(info.duration - 10.9) < 0.2 and info.samplerate == 44100 and info.channels == 2
