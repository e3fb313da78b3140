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
