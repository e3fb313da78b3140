"""The CPU speed benchmarks of issue 12 run end to end on tiny inputs, so they do not rot (their figures are for
people: docs/zoo.md; no timing is asserted)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from stemwright.engine import cpu_kernels

REPO = Path(__file__).resolve().parents[2]


def _run(*args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=600, env=env, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


@pytest.mark.skipif(not cpu_kernels.available(), reason="this PyTorch build has no oneDNN (MKLDNN) operators")
def test_bench_cpu_kernels_prints_both_paths() -> None:
    out = _run("benchmarks/bench_cpu_kernels.py", "--repeat", "1")
    assert "F.linear (PyTorch's BLAS)" in out and "oneDNN _linear_pointwise" in out and "GFLOP/s" in out
    assert "fused SDPA" in out and "oneDNN bfloat16" in out


def test_bench_zoo_umx_with_every_side() -> None:
    """umx on 2 s: reference (openunmix), the routing on and off, the fast path; the JSON row carries each figure."""
    import json

    out = _run("benchmarks/bench_zoo.py", "--only", "umx", "--seconds", "2", "--threads", "1", "--bf16",
               "--torch-kernels", "--json")
    row = json.loads(out.strip().splitlines()[-1])
    assert row["architecture"] == "umx" and row["cpu"] > 0 and row["torch_kernels_cpu"] > 0 and row["bf16_cpu"] > 0
    assert row["max_abs_diff"] < 1e-4 and row["torch_kernels_max_abs_diff"] < 1e-5
    assert row["speedup_cpu"] > 0 and 20 < row["bf16_snr_db"]


def _has_avx2() -> bool:
    try:
        return "avx2" in Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False


@pytest.mark.slow  # two child processes, each loading umx and openunmix
@pytest.mark.skipif(not _has_avx2(), reason="--isa avx2 caps an x86 CPU with AVX2")
def test_bench_zoo_isa_runs_one_child_per_level() -> None:
    """``--isa avx2,native``: a child per level, each with its ATen/oneDNN/MKL caps (set, then unset) and the
    CPU/ISA lines; the JSON rows come from the children."""
    import json

    out = _run("benchmarks/bench_zoo.py", "--only", "umx", "--seconds", "1", "--threads", "1", "--int8", "--json",
               "--isa", "avx2,native")
    avx2, native = out.split("## --isa native")
    assert avx2.startswith("## --isa avx2")
    assert "ATen AVX2; ATEN_CPU_CAPABILITY=avx2, ONEDNN_MAX_CPU_ISA=AVX2, MKL_ENABLE_INSTRUCTIONS=AVX2" in avx2
    assert "ATEN_CPU_CAPABILITY=(unset), ONEDNN_MAX_CPU_ISA=(unset), MKL_ENABLE_INSTRUCTIONS=(unset)" in native
    for part in (avx2, native):
        assert "# CPU: " in part and "flags: " in part
        row = json.loads(part.strip().splitlines()[-1])
        assert row["architecture"] == "umx" and row["int8_cpu"] > 0 and row["int8_snr_db"] > 20


def test_bench_isa_option_rejects_unknown_levels() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    for script in ("benchmarks/bench_zoo.py", "benchmarks/bench_default.py"):
        proc = subprocess.run([sys.executable, script, "--isa", "avx2,sse9"], capture_output=True, text=True,
                              env=env, cwd=REPO, timeout=120)
        assert proc.returncode == 2 and "sse9" in proc.stderr


@pytest.mark.slow  # two child processes, each importing stemwright
@pytest.mark.skipif(not _has_avx2(), reason="--isa avx2 caps an x86 CPU with AVX2")
def test_bench_default_speed_per_isa_level() -> None:
    """The speed child runs once per level with that level's caps (ATen reports AVX2 under ``--isa avx2``)."""
    import json

    out = _run("benchmarks/bench_default.py", "--models", "classic", "--no-musdb", "--no-mir1k", "--speed",
               "--speed-seconds", "2", "--threads", "1", "--isa", "avx2,native")
    assert out.startswith("# CPU: ")
    rows = [json.loads(line.split(" speed ", 1)[1]) for line in out.splitlines() if " speed " in line]
    assert [r["isa"] for r in rows] == ["avx2", "native"]
    assert rows[0]["aten_isa"] == "AVX2" and all(r["seconds"] > 0 and "kernels" in r for r in rows)


def test_six_stem_songs_score_other4_for_four_and_six_stem_models(tmp_path, monkeypatch) -> None:
    """bench_default/bench_6stem compare 4- and 6-stem models on `other4` = other + guitar + piano."""
    import numpy as np
    import soundfile as sf

    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import bench_default

    song = tmp_path / "s"
    song.mkdir()
    rng = np.random.default_rng(0)
    parts = {name: rng.standard_normal((1000, 2)).astype(np.float32) * 0.1 for name in ("drums", "guitar", "other")}
    parts["piano"] = np.zeros((1000, 2), np.float32)  # silent: not scored
    for name, x in parts.items():
        sf.write(song / f"{name}.wav", x, 44100, subtype="FLOAT")
    [(_, mix, _, refs)] = list(bench_default._tracks_synth(tmp_path))
    assert set(refs) == {"drums", "guitar", "other", "other4"}
    assert np.allclose(refs["other4"], (parts["guitar"] + parts["other"]).T, atol=1e-6)
    assert np.allclose(mix, sum(parts.values()).T, atol=1e-6)
    six = {"drums": 1.0, "guitar": 2.0, "piano": 4.0, "other": 8.0}
    assert bench_default._estimates(six, ["other4"])["other4"] == 14.0
    assert bench_default._estimates({"vocals": 1.0, "other": 8.0}, ["other4"])["other4"] == 8.0


@pytest.mark.slow  # a server, a Chromium and a separation: ~30 s on an idle 2-core machine
@pytest.mark.browser
def test_bench_first_sound_json() -> None:
    """The studio benchmark end to end on a 6 s song with `classic`: one JSON object with the issue's fields."""
    import json

    out = _run("benchmarks/bench_first_sound.py", "-m", "classic", "--seconds", "6", "--json", "--timeout", "300")
    row = json.loads(out.strip().splitlines()[-1])
    assert {"model", "song_s", "first_sound_s", "separated_s", "stalls"} <= set(row)
    assert row["model"] == "classic" and row["song_s"] == 6
    assert row["first_sound_s"] is not None and 0 < row["first_sound_s"] <= row["separated_s"] + 1
    assert row["stalls"] >= 0 and row["finished_mixer_load_s"] > 0
