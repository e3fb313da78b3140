"""The studio's side of issue 14: song analysis stored once per separation, NI Stems download."""
from __future__ import annotations

import io
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import soundfile as sf

from stemwright.audio.io import read_audio, write_audio
from stemwright.audio.nistems import read_ni_stems
from stemwright.engine.progress import ProgressEvent
from tests.mixer.songs import make_song
from tests.server.conftest import upload, wait_status

SHARES = {"drums": 0.4, "bass": 0.3, "other": 0.2, "vocals": 0.1}


class FourStems:
    """drums/bass/other/vocals as fixed shares of the mixture (sums exactly to it)."""

    calls = 0

    def __init__(self, model, progress):
        self.progress = progress

    def separate_file(self, path, outdir, *, fmt, bit_depth, clip_mode, filename, overwrite, on_block=None):
        audio = read_audio(path)
        paths = {n: write_audio(Path(outdir) / f"{n}.wav", audio.samples * k, audio.samplerate, bit_depth=32,
                                overwrite=True) for n, k in SHARES.items()}
        self.progress(ProgressEvent(1.0, "write", 1, 1))
        return SimpleNamespace(stem_paths=paths, manifest=SimpleNamespace(samplerate=audio.samplerate))


def _song(tmp_path: Path) -> Path:
    stems = make_song(tmp_path / "parts", 120.0, 9, "minor", seconds=8.0, sr=22050)
    mix = sum(stems.values())
    return write_audio(tmp_path / "song.wav", mix, 22050, bit_depth=16)


def test_analysis_is_computed_once_and_stored(make_client, tmp_path, monkeypatch):
    """The separation job analyses the stems as its last step (issue 23, item 14): opening the mixer finds tempo
    and key stored, and nothing is computed on request."""
    calls = []
    import stemwright.analysis as analysis_pkg

    real = analysis_pkg.analyze
    monkeypatch.setattr(analysis_pkg, "analyze", lambda s: calls.append(1) or real(s))
    client = make_client(separator_factory=FourStems)
    song = upload(client, _song(tmp_path)).json()
    done = wait_status(client, song["id"])
    assert done["analysis"] in ("analysing", "done")
    first = client.get(f"/api/songs/{song['id']}/analysis")
    assert first.status_code == 200, first.text
    doc = first.json()
    assert abs(doc["tempo_bpm"] - 120.0) < 1.2 and doc["time_signature"] == "4/4" and doc["key"] == "A minor"
    assert doc["downbeats"] and doc["job_id"] == done["stems_job"]
    again = client.get(f"/api/songs/{song['id']}/analysis").json()
    assert again == doc and len(calls) == 1  # stored in the database, not recomputed
    assert client.get("/api/songs/" + "0" * 32 + "/analysis").status_code == 404


def test_a_done_song_always_shows_its_analysis_coming(make_client, tmp_path, monkeypatch):
    """From the moment a song's job is done, its analysis is "analysing" or "done", never null (null means "none
    will come", and the page then shows no tempo): the job used to announce the analysis only a moment after it
    was done, a gap a loaded machine widened until a poll fell into it (seen in a CI rehearsal)."""
    from stemwright.server import jobs

    real = jobs.JobRunner._drop_segments

    def slow(self, job_id, segments):
        time.sleep(1.0)  # widen the moment between the job's end and its analysis, as a loaded machine does
        real(self, job_id, segments)

    monkeypatch.setattr(jobs.JobRunner, "_drop_segments", slow)
    client = make_client(separator_factory=FourStems)
    song = upload(client, _song(tmp_path)).json()
    done = wait_status(client, song["id"])
    assert done["analysis"] in ("analysing", "done")
    assert wait_analysis(client, song["id"]) == "done"


def wait_analysis(client, song_id: str, timeout: float = 60.0) -> str | None:
    """The song's analysis state once it is no longer "analysing"."""
    end = time.time() + timeout
    while time.time() < end:
        state = client.get(f"/api/songs/{song_id}").json()["analysis"]
        if state != "analysing":
            return state
        time.sleep(0.05)
    raise AssertionError(f"song {song_id} still analysing after {timeout} s")


def test_ni_stems_download(make_client, tmp_path):
    client = make_client(separator_factory=FourStems)
    song = upload(client, _song(tmp_path)).json()
    wait_status(client, song["id"])
    r = client.get(f"/api/songs/{song['id']}/stems.stem.mp4")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "audio/mp4" and ".stem.mp4" in r.headers["content-disposition"]
    path = tmp_path / "down.stem.mp4"
    path.write_bytes(r.content)
    got = read_ni_stems(path)
    assert got.metadata.names == ("drums", "bass", "other", "vocals")
    n = min(got.mixture.shape[1], got.stems["drums"].shape[1])
    ratio = np.sum(got.stems["drums"][:, :n] ** 2) / np.sum(got.stems["vocals"][:, :n] ** 2)
    assert 10 < ratio < 22  # (0.4 / 0.1)^2 = 16: the stems are in their slots
    assert client.get(f"/api/songs/{song['id']}/stems.stem.mp4?codec=mp3").status_code == 400


def test_ni_stems_of_a_two_stem_song_is_refused_with_the_reason(make_client, short_wav):
    client = make_client()  # the default fake: vocals + other
    song = upload(client, short_wav).json()
    wait_status(client, song["id"])
    r = client.get(f"/api/songs/{song['id']}/stems.stem.mp4")
    assert r.status_code == 409 and "NI Stems needs four stems" in r.json()["error"]


def test_original_lines_up_with_the_stems(make_client, tmp_path):
    client = make_client(separator_factory=FourStems)
    song = upload(client, _song(tmp_path)).json()
    wait_status(client, song["id"])
    r = client.get(f"/api/songs/{song['id']}/original")
    assert r.status_code == 200 and r.headers["content-type"] == "audio/flac"
    original, rate = sf.read(io.BytesIO(r.content), always_2d=True)
    drums, _ = sf.read(io.BytesIO(client.get(f"/api/songs/{song['id']}/stems/drums?format=wav").content), always_2d=True)
    assert rate == 22050 and original.shape == drums.shape
    assert np.abs(original * SHARES["drums"] - drums).max() < 1e-4  # same samples: the stems are shares of it
    assert client.get("/api/songs/" + "0" * 32 + "/original").status_code == 404


def test_export_renders_speed_and_transpose(make_client, tmp_path):
    """The mix document's time_pitch (what the page's speed/transpose send): the export is duration / speed long
    and the pitch moves by 2^(st/12), whatever the speed; a version-1 document cannot carry it."""
    sr = 22050
    tone = 0.3 * np.sin(2 * np.pi * 440.0 * np.arange(3 * sr) / sr)
    path = write_audio(tmp_path / "tone.wav", np.stack([tone, tone]).astype(np.float32), sr, bit_depth=16)
    client = make_client(separator_factory=FourStems)
    song = upload(client, path).json()
    wait_status(client, song["id"])
    url = f"/api/songs/{song['id']}/export"
    for speed, semitones in ((1.25, -3.0), (0.6, 5.0)):
        doc = {"version": 2, "channels": [], "time_pitch": {"speed": speed, "semitones": semitones}}
        r = client.post(url, json={"format": "wav", "document": doc})
        assert r.status_code == 200, r.text
        audio, rate = sf.read(io.BytesIO(r.content), always_2d=True)
        assert rate == sr and audio.shape[0] == round(3 * sr / speed)
        middle = audio[audio.shape[0] // 4: 3 * audio.shape[0] // 4, 0]
        spec = np.abs(np.fft.rfft(middle * np.hanning(middle.size)))
        peak = np.argmax(spec) * sr / middle.size
        assert abs(peak / (440.0 * 2 ** (semitones / 12)) - 1) < 0.01
    bad = client.post(url, json={"format": "wav", "document": {"version": 1, "channels": [], "time_pitch": {"speed": 0.8}}})
    assert bad.status_code == 400 and "time_pitch: needs mix document version 2" in bad.json()["error"]
    bad = client.post(url, json={"format": "wav", "document": {"version": 2, "time_pitch": {"speed": 3}}})
    assert bad.status_code == 400 and "time_pitch.speed: must be in [0.5, 1.5]" in bad.json()["error"]


class TrueParts(FourStems):
    """A second "model" that returns the song's true parts (written by make_song): far less bleed than shares."""

    folder: Path | None = None

    def separate_file(self, path, outdir, *, fmt, bit_depth, clip_mode, filename, overwrite, on_block=None):
        result = super().separate_file(path, outdir, fmt=fmt, bit_depth=bit_depth, clip_mode=clip_mode,
                                       filename=filename, overwrite=overwrite)
        for name in SHARES:
            part = read_audio(self.folder / f"{name}.wav")
            write_audio(Path(outdir) / f"{name}.wav", part.samples, part.samplerate, bit_depth=32, overwrite=True)
        return result


def test_compare_two_models_on_one_song(make_client, tmp_path):
    """Model comparison: a second model's run keeps the first one's stems; both are listed, each stem of each
    run can be fetched, and each run has its own bleed figures (inspect's full-band bleed)."""
    TrueParts.folder = tmp_path / "parts"
    calls = []

    def factory(model, progress):
        calls.append(model)
        return (TrueParts if len(calls) > 1 else FourStems)(model, progress)

    client = make_client(separator_factory=factory)
    song = upload(client, _song(tmp_path)).json()
    first = wait_status(client, song["id"])["stems_job"]
    model = client.get("/api/models").json()["models"][0]["name"]
    r = client.post(f"/api/songs/{song['id']}/jobs", json={"model": model})
    assert r.status_code == 201, r.text
    second = r.json()["id"]
    assert wait_status(client, song["id"])["stems_job"] == second
    seps = client.get(f"/api/songs/{song['id']}/separations").json()["separations"]
    assert [s["job_id"] for s in seps] == [second, first] and seps[0]["stems"] == list(SHARES)
    a = sf.read(io.BytesIO(client.get(f"/api/songs/{song['id']}/stems/vocals?job={first}").content))[0]
    b = sf.read(io.BytesIO(client.get(f"/api/songs/{song['id']}/stems/vocals?job={second}").content))[0]
    true_vocals = read_audio(tmp_path / "parts" / "vocals.wav").samples.T
    assert np.abs(b - true_vocals).max() < 1e-4 and np.abs(a - true_vocals).max() > 0.01  # each run's own file
    bleed_a = client.get(f"/api/songs/{song['id']}/bleed?job={first}").json()
    bleed_b = client.get(f"/api/songs/{song['id']}/bleed?job={second}").json()
    assert bleed_a["stems"] == list(SHARES) and len(bleed_a["matrix"]) == 4 and bleed_b["job_id"] == second
    # the first run's stems are all the mixture scaled (bleed 1); the true parts share far less
    assert all(abs(v - 1) < 1e-3 for v in bleed_a["per_stem"].values())
    assert all(v < 0.8 for v in bleed_b["per_stem"].values()), bleed_b["per_stem"]
    assert client.get(f"/api/songs/{song['id']}/bleed?job={'0' * 32}").status_code == 404
    assert client.get(f"/api/songs/{song['id']}/stems/vocals?job={'0' * 32}").status_code == 404


def test_save_loop_as_sample(make_client, tmp_path):
    """"Save loop as sample": the mix over the loop, cut into the studio's sample library with the song's BPM, key
    and bar numbers, listed in its index and downloadable by that path only."""
    client = make_client(separator_factory=FourStems)
    song = upload(client, _song(tmp_path)).json()
    wait_status(client, song["id"])
    url = f"/api/songs/{song['id']}/samples"
    doc = {"version": 1, "channels": [{"stem": "drums", "mute": True}]}
    r = client.post(url, json={"document": doc, "start": 1.0, "end": 2.0})
    assert r.status_code == 409 and "not analysed yet" in r.json()["error"]
    analysis = client.get(f"/api/songs/{song['id']}/analysis").json()
    d = analysis["downbeats"]
    r = client.post(url, json={"document": doc, "start": d[1], "end": d[3]})
    assert r.status_code == 201, r.text
    entry = r.json()
    assert entry["kind"] == "loop" and entry["stem"] == "mix" and entry["bar"] == 2 and entry["bars"] == 2
    assert entry["key"] == analysis["key"] and f"{round(analysis['tempo_bpm'], 1):g}bpm" in entry["path"]
    assert abs(entry["duration_s"] - (d[3] - d[1])) < 0.005 and abs(entry["source_start_s"] - d[1]) < 0.0021
    audio, rate = sf.read(io.BytesIO(client.get(entry["href"]).content), always_2d=True)
    original, _ = sf.read(io.BytesIO(client.get(f"/api/songs/{song['id']}/original").content), always_2d=True)
    start = round(entry["source_start_s"] * rate)
    mid = slice(200, audio.shape[0] - 200)  # the 3 ms fades aside
    # the mix without drums; the index keeps the start to 0.1 ms, so the cut is within 3 samples of it
    errors = [np.abs(audio[mid] - original[start + k:start + k + audio.shape[0]][mid] * (1 - SHARES["drums"])).max()
              for k in range(-3, 4)]
    assert min(errors) < 1e-3
    assert audio[0].max() < 0.05 and np.abs(audio[-1]).max() < 0.05  # faded at both ends
    assert [e["path"] for e in client.get("/api/samples").json()["samples"]] == [entry["path"]]
    assert client.get("/api/samples/file?path=../studio.db").status_code == 404
    assert client.post(url, json={"document": doc, "start": 2.0, "end": 1.0}).status_code == 400
    assert client.post(url, json={"document": doc, "start": 0.0, "end": 100.0}).status_code == 400


def test_sample_library_is_bounded(make_client, tmp_path, monkeypatch):
    from stemwright.server import studio

    monkeypatch.setattr(studio, "MAX_STUDIO_SAMPLES", 1)
    client = make_client(separator_factory=FourStems)
    song = upload(client, _song(tmp_path)).json()
    wait_status(client, song["id"])
    d = client.get(f"/api/songs/{song['id']}/analysis").json()["downbeats"]
    url = f"/api/songs/{song['id']}/samples"
    doc = {"version": 1, "channels": []}
    assert client.post(url, json={"document": doc, "start": d[0], "end": d[1]}).status_code == 201
    r = client.post(url, json={"document": doc, "start": d[1], "end": d[2]})
    assert r.status_code == 409 and "the most it keeps" in r.json()["error"]
