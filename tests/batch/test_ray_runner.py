"""Batches on a local Ray: a corrupt file, a worker killed mid-batch and a resumed run lose nothing and
separate nothing twice."""
from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from stemwright.api import ModelSettings, Separator
from stemwright.batch.ray_runner import BatchReport, BatchSettings, RayBatch, TrackResult
from stemwright.manifest import MANIFEST_NAME


def _settings(out: Path) -> BatchSettings:
    options = Separator("classic", device="cpu").options(fmt="wav", bit_depth=16)
    return BatchSettings(model=ModelSettings(model="classic", device="cpu"), options=options, outdir=str(out))


def _manifests(out: Path) -> dict[str, int]:
    return {p.parent.name: p.stat().st_mtime_ns for p in out.rglob(MANIFEST_NAME)}


def test_corrupt_file_killed_worker_and_resume(local_ray, catalogue: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    good = [p for p in catalogue if p.name != "bad.wav"]
    seen: list[TrackResult] = []
    with RayBatch(_settings(out), workers=2, retries=2) as batch:
        pids = batch.worker_pids()

        def kill_the_other(r: TrackResult) -> None:
            seen.append(r)
            if len(seen) == 1:  # the other worker is busy with its track (or gets the next one): kill it
                for pid in pids:
                    if pid != r.worker_pid:
                        os.kill(pid, signal.SIGKILL)

        report = batch.run([str(p) for p in catalogue], kill_the_other)
    assert report.workers_replaced >= 1
    by_input = {Path(r.input).name: r for r in report.results}
    assert [r.index for r in report.results] == list(range(len(catalogue)))
    assert sorted(r.index for r in seen) == list(range(len(catalogue)))  # each reported once
    bad = by_input["bad.wav"]
    assert bad.status == "failed" and bad.attempts == 1 and "bad.wav" in bad.reason and "not an audio file" in bad.reason
    assert all(by_input[p.name].status == "done" for p in good)
    assert set(_manifests(out)) == {p.stem for p in good}
    # what the killed worker was writing is removed when its track is retried
    assert not [p for p in out.rglob(".*")], "temporary files left"
    assert report.count("done") == len(good) and report.audio_hours == pytest.approx(len(good) / 3600, rel=1e-3)

    # A crash after one track's stems but before its manifest: the rerun redoes that one and skips the rest.
    before = _manifests(out)
    (out / "song2" / MANIFEST_NAME).unlink()
    with RayBatch(_settings(out), workers=1) as batch:
        again = batch.run([str(p) for p in catalogue])
    statuses = {Path(r.input).name: r.status for r in again.results}
    assert statuses == {**{p.name: "skipped" for p in good}, "song2.wav": "done", "bad.wav": "failed"}
    after = _manifests(out)
    assert {k: v for k, v in after.items() if k != "song2"} == {k: v for k, v in before.items() if k != "song2"}
    assert "song2" in after


def test_report_json(tmp_path: Path) -> None:
    r = BatchReport(model="classic", outdir="o", address=None, workers=2, seconds=30.0, workers_replaced=1,
                    results=(TrackResult(index=0, input="a.wav", status="done", duration=240.0),
                             TrackResult(index=1, input="b.wav", status="failed", reason="b.wav: corrupt", attempts=3)))
    d = json.loads(r.write(tmp_path / "batch.json").read_text())
    assert (d["done"], d["failed"], d["skipped"]) == (1, 1, 0)
    assert d["songs_per_minute"] == 2.0 and d["audio_hours"] == pytest.approx(240 / 3600, abs=1e-6)
    assert d["failures"] == [{"index": 1, "input": "b.wav", "reason": "b.wav: corrupt", "attempts": 3}]
    with pytest.raises(ValueError, match="status"):
        TrackResult(index=0, input="a", status="maybe")
