"""``stemwright live`` against a JACK server with the dummy driver: a player plays a generated song into it, a
recorder captures every stem port; the recording is the offline separation with the same chunking, delayed by
exactly the reported latency, with no xrun and no late block (real time: the dummy driver runs at the audio rate)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

STEMS = ("vocals", "drums", "bass", "other")
LATENCY = 2.0  # the command's default


def _song(seconds: float, impulse_at: int) -> np.ndarray:
    """Stereo: silence, a unit impulse at ``impulse_at``, then tones, beats and noise (fixed seed). Shape (2, T)."""
    rng = np.random.default_rng(24)
    t = np.arange(int(seconds * 44100)) / 44100
    song = 0.2 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 0.5 * t)) / 2
    song += 0.3 * np.exp(-30 * (t % 0.5)) * np.sin(2 * np.pi * 60 * t)  # a kick every 0.5 s
    song += 0.03 * rng.standard_normal(t.shape)
    stereo = np.stack([song, np.roll(song, 7) * 0.8]).astype(np.float32)
    stereo[:, : impulse_at + 1] = 0.0
    stereo[:, impulse_at] = [0.5, -0.25]
    return stereo


def test_live_equals_offline_at_the_reported_latency(jack_server) -> None:
    from stemwright.engine.live import plan_live
    from stemwright.engine.run import separate_tensor
    from stemwright.live_check import PERIOD, RATE, record_live
    from stemwright.pretrained.loading import load_model

    impulse_at = 10_000
    song = _song(4.0, impulse_at)
    model = load_model("classic", device="cpu")
    plan = plan_live(model, LATENCY, block_size=PERIOD)
    ports = [f"{s}_{c}" for s in STEMS for c in "LR"] + ["mix_L", "mix_R"]
    run = record_live(song, ports, song.shape[1] + plan.latency_samples, ["-m", "classic", "--mix"], timeout=120)
    assert run.returncode == 0, run.stderr
    assert f"latency {LATENCY:.3f} s ({plan.latency_samples} samples at {RATE} Hz)" in run.stdout
    stats = run.report
    assert (stats["xruns"], stats["late_blocks"], stats["dropped_blocks"]) == (0, 0, 0), stats
    assert run.xruns_while_playing == 0
    assert stats["latency_samples"] == plan.latency_samples and stats["segment_length"] == plan.segment_length
    assert "warning" not in run.stderr, run.stderr

    # the offline separation with the same chunking: the live chunk grid starts at the command's first block,
    # so the song sits after that much silence
    assert run.lead >= 0
    mix = np.concatenate([np.zeros((2, run.lead), np.float32), song], axis=1)
    torch.set_num_threads(1)
    offline = separate_tensor(model, torch.from_numpy(mix), segment=plan.segment, overlap=plan.overlap).numpy()
    offline = offline[..., run.lead :]
    # the end of a finite song changes its last chunks (shorter); live input never ends: compare before them
    n = song.shape[1] - 2 * plan.segment_length
    L = plan.latency_samples
    stems = run.recording[:8].reshape(4, 2, -1)
    assert np.abs(stems[..., :L]).max() == 0.0  # nothing before the delay
    np.testing.assert_allclose(stems[..., L : L + n], offline[..., :n], atol=1e-5, rtol=0)
    np.testing.assert_allclose(run.recording[8:, L : L + n], offline[..., :n].sum(0), atol=1e-5, rtol=0)
    # exact delay, from the impulse: the first sound out is the offline stems' first sound, L samples later
    first_offline = int(np.flatnonzero(np.abs(offline).max(axis=(0, 1)) > 0)[0])
    first_live = int(np.flatnonzero(np.abs(stems).max(axis=(0, 1)) > 0)[0])
    assert first_live - first_offline == L
    assert first_offline <= impulse_at


@pytest.mark.parametrize("args, code, message", [
    (["--latency", "0.3"], 2, "--latency: latency 0.3 s is too short for this model"),
    (["--stems", "vocals,kazoo"], 2, "--stems: kazoo not among the model's stems"),
    (["--connect-in", "nobody:out_1"], 1, "--connect-in: cannot connect JACK port 'nobody:out_1'"),
])
def test_bad_values_give_one_error_line(jack_server, capsys, args: list[str], code: int, message: str) -> None:
    from stemwright.cli.main import main

    assert main(["live", "-m", "classic", "--name", "swbad", "--duration", "0", *args]) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"error: {message}"), err


def test_without_a_server_it_says_so(monkeypatch, capsys) -> None:
    from tests.reference import require

    require("jack")
    from stemwright.cli.main import main

    monkeypatch.setenv("JACK_DEFAULT_SERVER", "stemwright-test-no-such-server")
    monkeypatch.setenv("JACK_NO_START_SERVER", "1")
    assert main(["live", "-m", "classic"]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == "error: no JACK server is running (start one: jackd -d alsa, or PipeWire's JACK layer)"
