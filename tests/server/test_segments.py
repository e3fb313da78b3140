"""Play while separating, the server side: a running job's stems as segments, then the finished stems on the
same endpoints (server/segments.py, GET /api/songs/{id}/stream[/{k}])."""
from __future__ import annotations

import time

import numpy as np
import pytest
import soundfile as sf

from stemwright.audio.io import write_audio
from tests.server.conftest import upload, wait_status
from tests.server.fake_serve import SlowScale, slow_factory


@pytest.fixture()
def six_seconds(tmp_path):
    rng = np.random.default_rng(1)
    x = (0.2 * rng.standard_normal((2, 6 * 22050))).astype(np.float32)
    return write_audio(tmp_path / "six.wav", x, 22050, bit_depth=32), x


def _planar(data: bytes, stems: int, channels: int) -> np.ndarray:
    """A segment as (stems, channels, frames)."""
    return np.frombuffer(data, "<f4").reshape(stems, channels, -1)


def test_segments_while_separating_then_finished(make_client, six_seconds, monkeypatch):
    monkeypatch.setattr(SlowScale, "delay", 0.15)
    path, x = six_seconds
    c = make_client(separator_factory=slow_factory)
    song_id = upload(c, path).json()["id"]
    base = f"/api/songs/{song_id}/stream"
    # the first segment is announced while the job still runs (the short first chunk: 0.5 s, 0.375 s final)
    end = time.monotonic() + 30
    while time.monotonic() < end:
        r = c.get(base)
        if r.status_code == 200 and r.json()["count"]:
            break
        assert r.status_code in (200, 409), r.text  # 409 queued; 200 and none: running without a segment yet
        time.sleep(0.02)
    index = r.json()
    assert index["done"] is False and c.get(f"/api/songs/{song_id}").json()["status"] == "running"
    assert index["stems"] == ["vocals", "other"] and index["channels"] == 2 and index["samplerate"] == 22050
    assert index["frames"] == x.shape[1]
    start, frames = index["segments"][0]
    assert start == 0 and 0 < frames < x.shape[1] // 2
    seg = c.get(f"{base}/0", params={"job": index["job_id"]})
    assert seg.status_code == 200 and (int(seg.headers["x-start"]), int(seg.headers["x-frames"])) == (0, frames)
    got = _planar(seg.content, 2, 2)
    np.testing.assert_allclose(got[0], 0.25 * x[:, :frames], atol=1e-6)
    np.testing.assert_allclose(got[1], 0.75 * x[:, :frames], atol=1e-6)
    # the job's live state says how far it has got (the page's library opens the mixer on it)
    assert c.get(base).json()["count"] >= 1

    song = wait_status(c, song_id)
    done = c.get(base).json()
    assert done["done"] is True and done["job_id"] == song["stems_job"] and done["frames"] == x.shape[1]
    parts = []
    for k, (start, frames) in enumerate(done["segments"]):
        r = c.get(f"{base}/{k}", params={"job": done["job_id"]})
        assert int(r.headers["x-start"]) == start
        parts.append(_planar(r.content, 2, 2))
    whole = np.concatenate(parts, axis=-1)
    vocals, _ = sf.read(str(next((c.app.state.studio.data_dir / "songs" / song_id / "jobs").glob("*/vocals.wav"))),
                        dtype="float32", always_2d=True)
    np.testing.assert_array_equal(whole[0], vocals.T)
    # the segment files are gone once the stems are recorded
    assert not list((c.app.state.studio.data_dir / "songs" / song_id / "jobs").glob("*.segments"))


def test_segment_requests_are_bounded(make_client, short_wav):
    c = make_client()
    song_id = upload(c, short_wav).json()["id"]
    song = wait_status(c, song_id)
    base = f"/api/songs/{song_id}/stream"
    index = c.get(base).json()
    assert index["count"] == 1 and index["segments"] == [[0, 22050]]
    job = song["stems_job"]
    assert c.get(f"{base}/1", params={"job": job}).status_code == 404
    assert c.get(f"{base}/100001", params={"job": job}).status_code == 404
    assert c.get(f"{base}/-1", params={"job": job}).status_code == 404
    assert c.get(f"{base}/0", params={"job": "../../etc"}).status_code == 404
    assert c.get(f"{base}/0").status_code in (400, 422)  # the job is required
    assert c.get(base, params={"first": -1}).status_code == 400
    other = upload(c, short_wav).json()["id"]
    wait_status(c, other)
    assert c.get(f"/api/songs/{other}/stream/0", params={"job": job}).status_code == 404  # another song's job
    assert c.get(f"{base}/0", params={"job": job}, headers={"host": "evil.example"}).status_code in (400, 403)
