"""How far museval's FLAC fixture is from the exact BSS Eval v4 values (a study script, not a test).

Builds museval 0.4.1's own Gram matrix ``G + eps I`` and right-hand sides ``D`` for the fixture's input (with museval's
functions: ``scipy.fftpack`` FFTs of power-of-two size, ``toeplitz``), then solves them in several ways and scores
every window with museval's own decomposition (``_bss_decomp_mtifilt`` / ``_bss_crit``), so only the solve differs:

- ``LU``: ``np.linalg.solve`` (what museval does) with this machine's OpenBLAS, 1 and 2 threads;
- ``Cholesky``: ``scipy.linalg.cho_factor`` (what stemwright does, 1 thread);
- ``refined``: the same system solved to ~1e-5 relative accuracy in the filters by iterative refinement (float64
  Cholesky as preconditioner, residuals in ``np.longdouble``), i.e. the exact answer of museval's equations;
- ``stemwright``: ``bss_eval_v4`` itself.

Prints, per variant, the max |difference| per metric against the fixture and against ``refined``.
Run (about 3 minutes on 2 cores):  .venv/bin/python -m tests.metrics.fixture_precision_study
"""
from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path

import numpy as np
import scipy.fftpack
import scipy.linalg
import soundfile as sf
from threadpoolctl import threadpool_limits

from stemwright.metrics import bss_eval_v4
from tests.metrics.museval_ref import import_museval

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "musdb18-excerpts"
STEMS = ("vocals", "drums", "bass", "other")
TRACK = "Music Delta - 80s Rock"
L = 512


def load_case() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """refs, ests ``(S, T, C)`` as in make_flac_fixture.py, and the fixture ``(4, S, W)``."""
    refs = np.stack([sf.read(DATA / TRACK / f"{s}.flac", dtype="float64", always_2d=True)[0] for s in STEMS])
    mix = refs.sum(0)
    rng = np.random.default_rng(0)
    ests = np.stack([0.7 * r + 0.3 * mix / 4 + 0.01 * rng.standard_normal(r.shape) for r in refs])
    data = json.loads((DATA / "museval-fixture-80s-rock-flac.json").read_text())
    expected = np.array([[[np.nan if f["metrics"][m] is None else f["metrics"][m] for f in t["frames"]]
                          for t in data["targets"]] for m in ("SDR", "ISR", "SIR", "SAR")])
    return refs, ests, expected


def museval_system(m, refs: np.ndarray, ests: np.ndarray):
    """museval's ``G + eps I`` and ``D`` (all sources, and own source), built exactly as in its
    ``_compute_projection_filters`` (same FFT sizes and order of operations)."""
    nsrc, nsampl, nchan = refs.shape
    g, sfx = m._compute_reference_correlations(refs, L)
    eps = np.finfo(float).eps
    n_fft = int(2 ** np.ceil(np.log2(nsampl + L - 1.0)))

    def rhs(spec: np.ndarray, est: np.ndarray) -> np.ndarray:
        sef = scipy.fftpack.fft(m._zeropad(est.T, L - 1, axis=1), n=n_fft)
        d = np.zeros((spec.shape[0], nchan, L, nchan))
        for j, cj, c in itertools.product(range(spec.shape[0]), range(nchan), range(nchan)):
            ssef = np.real(scipy.fftpack.ifft(spec[j, cj] * np.conj(sef[c])))
            d[j, cj, :, c] = np.hstack((ssef[0], ssef[-1:-L:-1]))
        return d.reshape(-1, nchan)

    a_all = m._reshape_G(g) + eps * np.eye(nsrc * nchan * L)
    d_all = [rhs(sfx, ests[j]) for j in range(nsrc)]
    a_own = [m._reshape_G(g[j, j][None, None]) + eps * np.eye(nchan * L) for j in range(nsrc)]
    d_own = [rhs(sfx[j : j + 1], ests[j]) for j in range(nsrc)]
    return a_all, d_all, a_own, d_own


def refined_solve(a: np.ndarray, b: np.ndarray, iters: int = 8) -> np.ndarray:
    """``a x = b`` by iterative refinement: float64 Cholesky preconditioner, residuals in ``np.longdouble``."""
    a_ld, b_ld = a.astype(np.longdouble), b.astype(np.longdouble)
    factor = scipy.linalg.cho_factor(a)
    x = scipy.linalg.cho_solve(factor, b).astype(np.longdouble)
    for _ in range(iters):  # converges to ~1e-5 relative (cond ~3e15 x longdouble eps 5e-20)
        x = x + scipy.linalg.cho_solve(factor, (b_ld - a_ld @ x).astype(np.float64)).astype(np.longdouble)
    return x.astype(np.float64)


def score(m, refs, ests, solve, system) -> np.ndarray:
    """Every window scored by museval's decomposition with filters from ``solve``. -> ``(4, S, W)``."""
    a_all, d_all, a_own, d_own = system
    nsrc, nsampl, nchan = refs.shape
    c = [solve(a_all, d_all[j]).reshape(nsrc, nchan, L, nchan) for j in range(nsrc)]
    cj = [solve(a_own[j], d_own[j]).reshape(nchan, L, nchan) for j in range(nsrc)]
    framer = m.Framing(44100, 44100, nsampl)
    out = np.full((4, nsrc, framer.nwin), np.nan)
    for t, win in enumerate(framer):
        for j in range(nsrc):
            out[:, j, t] = m._bss_crit(*m._bss_decomp_mtifilt(refs[:, win], ests[j, win], j, c[j], cj[j]), False)
    return out


def main() -> int:
    museval = import_museval()
    m = museval.metrics
    refs, ests, expected = load_case()
    system = museval_system(m, refs, ests)
    cond = np.linalg.cond(system[0])
    print(f"condition number of museval's G + eps I: {cond:.3g}")
    variants = {}
    for threads in (1, 2):
        with threadpool_limits(threads, "blas"):
            variants[f"museval LU, {threads} BLAS thread(s)"] = score(m, refs, ests, np.linalg.solve, system)
    with threadpool_limits(1, "blas"):
        cho = lambda a, b: scipy.linalg.cho_solve(scipy.linalg.cho_factor(a), b)  # noqa: E731
        variants["Cholesky, 1 thread"] = score(m, refs, ests, cho, system)
    variants["refined (exact solution)"] = exact = score(m, refs, ests, refined_solve, system)
    ours = bss_eval_v4(refs.transpose(0, 2, 1), ests.transpose(0, 2, 1), window=44100, hop=44100)
    variants["stemwright bss_eval_v4"] = np.array([ours.sdr, ours.isr, ours.sir, ours.sar])
    print(f"{'variant':34s} | max |diff| vs fixture SDR/ISR/SIR/SAR | vs refined SDR/ISR/SIR/SAR")
    for name, got in variants.items():
        fx = np.nanmax(np.abs(got - expected), axis=(1, 2))
        ex = np.nanmax(np.abs(got - exact), axis=(1, 2))
        print(f"{name:34s} | " + " ".join(f"{v:.4f}" for v in fx) + " | " + " ".join(f"{v:.4f}" for v in ex))
    print("fixture - refined, SIR per stem x window (dB):")
    print(np.array2string(expected[2] - exact[2], precision=4, suppress_small=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
