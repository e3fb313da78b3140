"""BSS Eval v4 against museval 0.4.1: its regression fixture on real music, and random signals."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from stemwright.metrics import bss_eval_v4, bss_sources_sdr, framing
from tests.metrics.museval_ref import import_museval
from tests.reference import require

STEMS = ("vocals", "drums", "bass", "other")
TRACK = "Music Delta - 80s Rock"


def _museval_v4(refs: np.ndarray, ests: np.ndarray, win: int, hop: int, filters_len: int = 512) -> np.ndarray:
    """museval.evaluate(mode="v4") (its body, with ``filters_len`` exposed to keep the tests fast)."""
    museval = import_museval()
    r, e = museval.pad_or_truncate(refs.transpose(0, 2, 1), ests.transpose(0, 2, 1))
    if filters_len == 512:
        return np.array(museval.evaluate(r, e, win=win, hop=hop, mode="v4", padding=True))
    out = museval.metrics.bss_eval(r, e, window=win, hop=hop, compute_permutation=False, filters_len=filters_len,
                                   framewise_filters=False, bsseval_sources_version=False)
    return np.array(out[:4])  # (4: SDR ISR SIR SAR, S, W)


def _ours(refs: np.ndarray, ests: np.ndarray, **kw) -> np.ndarray:
    r = bss_eval_v4(refs, ests, **kw)
    return np.array([r.sdr, r.isr, r.sir, r.sar])


@pytest.fixture(scope="module")
def fixture_case(musdb_excerpt):
    """The references and seeded estimates of ``make_flac_fixture.py``, and the fixture's scores (4, S, W)."""
    refs = np.stack([sf.read(musdb_excerpt / TRACK / f"{s}.flac", dtype="float64", always_2d=True)[0] for s in STEMS])
    mix = refs.sum(0)
    rng = np.random.default_rng(0)
    ests = np.stack([0.7 * r + 0.3 * mix / 4 + 0.01 * rng.standard_normal(r.shape) for r in refs])
    data = json.loads((musdb_excerpt / "museval-fixture-80s-rock-flac.json").read_text())
    assert [t["name"] for t in data["targets"]] == list(STEMS)
    expected = np.array([[[np.nan if f["metrics"][m] is None else f["metrics"][m] for f in t["frames"]]
                          for t in data["targets"]] for m in ("SDR", "ISR", "SIR", "SAR")])
    got = _ours(refs.transpose(0, 2, 1), ests.transpose(0, 2, 1), window=44100, hop=44100)
    return expected, got


def test_fixture_sdr_isr_sar_every_window(fixture_case):
    """SDR, ISR and SAR of every window of museval's FLAC fixture (4 stems x 6 windows) to 0.01 dB."""
    expected, got = fixture_case
    assert got.shape == expected.shape == (4, 4, 6)
    diff = np.abs(got - expected)
    assert diff[0].max() < 0.01, f"SDR max diff {diff[0].max():.4f} dB"
    assert diff[1].max() < 0.01, f"ISR max diff {diff[1].max():.4f} dB"
    assert diff[3].max() < 0.01, f"SAR max diff {diff[3].max():.4f} dB"


def test_fixture_sir_every_window(fixture_case):
    """SIR of every window within the fixture's own tolerance (0.1 dB).

    Why not 0.01 dB here: on this track the reference Gram matrix has a condition number of 3.4e15 (its smallest
    eigenvalues are the references' 24-bit quantisation noise), so every float64 factorisation leaves rounding noise
    in the interference projection. The fixture itself is up to 0.029 dB (9 of 24 windows above 0.01 dB) away from
    the exact solution of museval's own equations, computed in extended precision by
    ``tests/metrics/fixture_precision_study.py``; museval 0.4.1 reproduces it only with the data-prep machine's
    OpenBLAS kernel and thread count (see docs/evaluation.md).
    """
    expected, got = fixture_case
    diff = np.abs(got[2] - expected[2])
    assert diff.max() < 0.1, f"SIR max diff {diff.max():.4f} dB"


def test_fixture_scores_do_not_depend_on_blas_threads(musdb_excerpt, fixture_case):
    """The ill-conditioned solve runs on one BLAS thread whatever the caller's setting, so scores are reproducible
    bit for bit across core counts (museval's LU moves SIR by 0.03 dB between 1 and 2 threads on this input)."""
    threadpoolctl = require("threadpoolctl")
    _, got = fixture_case
    refs = np.stack([sf.read(musdb_excerpt / TRACK / f"{s}.flac", dtype="float64", always_2d=True)[0] for s in STEMS])
    mix = refs.sum(0)
    rng = np.random.default_rng(0)
    ests = np.stack([0.7 * r + 0.3 * mix / 4 + 0.01 * rng.standard_normal(r.shape) for r in refs])
    runs = []
    for threads in (1, 2):
        with threadpoolctl.threadpool_limits(limits=threads, user_api="blas"):
            runs.append(_ours(refs.transpose(0, 2, 1), ests.transpose(0, 2, 1), window=44100, hop=44100))
    np.testing.assert_array_equal(runs[0], runs[1])
    np.testing.assert_array_equal(runs[0], got)


@pytest.mark.parametrize(
    ("channels", "n", "win", "hop"),
    [(2, 3 * 4000 + 777, 4000, 4000), (1, 9000, 3000, 1500), (2, 5000, 8000, 8000)],
)
def test_matches_museval_on_random_signals(channels, n, win, hop):
    rng = np.random.default_rng(channels * n)
    s = 3
    refs = rng.standard_normal((s, channels, n))
    mixing = 0.2 * rng.standard_normal((s, s))
    ests = 0.6 * refs + np.einsum("ij,jct->ict", mixing, refs) + 0.3 * rng.standard_normal((s, channels, n))
    want = _museval_v4(refs, ests, win, hop, filters_len=64)
    got = _ours(refs, ests, window=win, hop=hop, filters_len=64)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_padding_and_truncation_like_museval():
    rng = np.random.default_rng(3)
    refs = rng.standard_normal((2, 1, 10000))  # full museval.evaluate (512 taps), kept small
    short = refs[..., :9000] + 0.1 * rng.standard_normal((2, 1, 9000))
    np.testing.assert_allclose(_ours(refs, short, window=4000, hop=4000), _museval_v4(refs, short, 4000, 4000), atol=1e-6)
    with pytest.raises(ValueError, match="same shape"):
        bss_eval_v4(refs, short, padding=False)


def test_silent_windows_are_nan_like_museval():
    rng = np.random.default_rng(5)
    refs = rng.standard_normal((2, 2, 4 * 3000))
    ests = refs + 0.2 * rng.standard_normal(refs.shape)
    refs[1, :, 3000:6000] = 0.0  # window 1: a reference is silent
    ests[0, :, 9000:12000] = 0.0  # window 3: an estimate is silent
    got = _ours(refs, ests, window=3000, hop=3000, filters_len=64)
    assert np.isnan(got[:, :, 1]).all() and np.isnan(got[:, :, 3]).all()
    assert np.isfinite(got[:, :, [0, 2]]).all()
    np.testing.assert_allclose(got, _museval_v4(refs, ests, 3000, 3000, 64), atol=1e-6, equal_nan=True)


def test_source_silent_over_whole_track_gives_nan_not_error():
    rng = np.random.default_rng(6)
    refs = rng.standard_normal((2, 2, 6000))
    ests = refs.copy()
    ests[1] = 0.0  # museval raises here; stemwright scores the other source and gives NaN for this one
    got = bss_eval_v4(refs, ests, window=3000, hop=3000)
    assert np.isnan(got.sdr).all()  # any silent source in a window makes the whole window NaN, as in museval


def test_framing_matches_museval():
    museval = import_museval()
    for n, win, hop in [(300032, 44100, 44100), (1000, 300, 100), (100, 300, 300), (44100, 44100, 44100)]:
        fr = museval.metrics.Framing(win, hop, n)
        want = [(sl.start, sl.stop) for sl in fr]
        assert framing(n, win, hop) == want


def test_perfect_estimate_gives_infinite_sdr():
    rng = np.random.default_rng(7)
    refs = rng.standard_normal((2, 1, 4000))
    res = bss_eval_v4(refs, refs.copy(), window=2000, hop=2000)
    assert np.isinf(res.sdr).all()


def test_bss_eval_sources_matches_museval():
    museval = import_museval()
    rng = np.random.default_rng(8)
    refs = rng.standard_normal((2, 6000))
    ests = np.stack([0.8 * refs[0] + 0.2 * refs[1], 0.7 * refs[1] + 0.1 * refs[0]]) + 0.1 * rng.standard_normal((2, 6000))
    sdr, _, sir, sar, _ = museval.metrics.bss_eval(
        refs[..., None], ests[..., None], window=np.inf, hop=np.inf, compute_permutation=False,
        framewise_filters=True, bsseval_sources_version=True,
    )
    got = bss_sources_sdr(refs, ests)
    np.testing.assert_allclose(got["SDR"], sdr[:, 0], atol=1e-6)
    np.testing.assert_allclose(got["SIR"], sir[:, 0], atol=1e-6)
    np.testing.assert_allclose(got["SAR"], sar[:, 0], atol=1e-6)


def test_rejects_bad_shapes():
    with pytest.raises(ValueError, match="shape"):
        bss_eval_v4(np.zeros((1, 1, 1, 5)), np.zeros((1, 1, 1, 5)))
    with pytest.raises(ValueError, match="non-finite"):
        bss_eval_v4(np.full((1, 1, 100), np.nan), np.zeros((1, 1, 100)))


@pytest.mark.slow
def test_fixture_input_matches_exact_solution_every_window(fixture_case):
    """All four metrics, every window, within 0.01 dB of the exact answer of museval's own equations.

    The reference is museval's ``G + eps I`` and ``D`` (built by its own functions) solved by iterative refinement
    with extended-precision residuals, each window scored by museval's own decomposition
    (``fixture_precision_study.py``). The fixture misses this exact answer by up to 0.029 dB SIR (float64 rounding in
    its LU on a system of condition number 3.4e15); stemwright's single-threaded Cholesky stays within 0.01 dB.
    """
    from tests.metrics import fixture_precision_study as study

    museval = import_museval()
    refs, ests, _ = study.load_case()
    system = study.museval_system(museval.metrics, refs, ests)
    exact = study.score(museval.metrics, refs, ests, study.refined_solve, system)
    _, got = fixture_case
    diff = np.abs(got - exact)
    for k, name in enumerate(("SDR", "ISR", "SIR", "SAR")):
        assert diff[k].max() < 0.01, f"{name} max diff to the exact solution {diff[k].max():.4f} dB"


def test_float32_input_scores_exactly_as_its_float64_copy() -> None:
    """The eval command passes float32 stems (issue 17: no whole-track float64 copies); the kernel casts block by
    block, so the scores are those of the float64 copy."""
    rng = np.random.default_rng(5)
    refs = (0.1 * rng.standard_normal((2, 2, 3 * 8000))).astype(np.float32)
    ests = (0.8 * refs + 0.05 * rng.standard_normal(refs.shape)).astype(np.float32)
    a = bss_eval_v4(refs, ests, window=8000, hop=8000)
    b = bss_eval_v4(refs.astype(np.float64), ests.astype(np.float64), window=8000, hop=8000)
    for x, y in zip(a.as_dict().values(), b.as_dict().values()):
        np.testing.assert_allclose(x, y, rtol=0, atol=1e-9)
