"""Why the engine routes CPU products through oneDNN: GFLOP/s of PyTorch's float32 paths against oneDNN's on this CPU.

For the shapes that dominate HT Demucs' transformer (a 4032 x 512 @ 512 x 2048 linear layer; one 8-head attention
over 2688 tokens of 64), prints the rate of ``F.linear`` (PyTorch's BLAS: MKL in the x86 wheels), of oneDNN's
``mkldnn::_linear_pointwise``, of numpy's BLAS for comparison, and the attention's time through PyTorch's fused
``scaled_dot_product_attention`` and through ``stemwright.engine.cpu_kernels`` (float32 and bfloat16 products), the
int8 dynamic linear of the CPU fast path (fbgemm), and what the engine's calibration chose on this CPU.
Also prints the CPU model, its flags, the ISA its kernels use and the thread count.

Times are process CPU seconds: with ``--threads 1`` the work done.

Usage::

    PYTHONPATH=src .venv/bin/python benchmarks/bench_cpu_kernels.py [--threads 1] [--repeat 10]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from stemwright.engine import cpu_kernels

sys.path.insert(0, os.path.dirname(__file__))
from bench_zoo import cpu_description, isa_description  # noqa: E402  (the same CPU lines as the model benchmark)


def seconds(fn: Callable[[], object], repeat: int) -> float:
    """Best of ``repeat`` calls after two warm-ups, in process CPU seconds (the work done: on a shared machine at
    load 17 wall time read 2 s for a 0.12 s product)."""
    for _ in range(2):
        fn()
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"# torch {torch.__version__}, {torch.get_num_threads()} threads, load {os.getloadavg()[0]:.1f}")
    print(f"# CPU: {cpu_description()}")
    print(f"# ISA: {isa_description()}")
    if not cpu_kernels.available():
        print("this PyTorch has no oneDNN operators: nothing to compare")
        return 1
    gen = torch.Generator().manual_seed(0)
    x, w, b = (torch.randn(*s, generator=gen) for s in ((4032, 512), (2048, 512), (2048,)))
    flop = 2 * 4032 * 512 * 2048
    with torch.inference_mode():
        rows = {
            "F.linear (PyTorch's BLAS)": seconds(lambda: F.linear(x, w, b), args.repeat),
            "oneDNN _linear_pointwise": seconds(lambda: cpu_kernels._linear(x, w, b), args.repeat),
        }
        if cpu_kernels.int8_available():
            packed = cpu_kernels._pack_int8(w, b)
            rows["int8 dynamic (fbgemm)"] = seconds(lambda: torch.ops.quantized.linear_dynamic(x, packed, True),
                                                    args.repeat)
        xn, wn = x.numpy(), np.ascontiguousarray(w.numpy().T)
        rows["numpy matmul (its BLAS)"] = seconds(lambda: xn @ wn, args.repeat)
        for name, t in rows.items():
            print(f"linear 4032x512 @ 512x2048  {name:28s} {t * 1e3:7.2f} ms  {flop / t / 1e9:6.1f} GFLOP/s")
        q, k, v = (torch.randn(1, 8, 2688, 64, generator=gen) for _ in range(3))
        fused = seconds(lambda: F.scaled_dot_product_attention(q, k, v), args.repeat)
        with cpu_kernels.OneDnnKernels():
            routed = seconds(lambda: F.scaled_dot_product_attention(q, k, v), args.repeat)
            with cpu_kernels.bfloat16_products():
                low = seconds(lambda: F.scaled_dot_product_attention(q, k, v), args.repeat)
        print(f"attention 8 heads x 2688 tokens x 64: fused SDPA {fused * 1e3:.1f} ms, oneDNN blocks {routed * 1e3:.1f} ms, "
              f"oneDNN bfloat16 {low * 1e3:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
