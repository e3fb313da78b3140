"""The JACK side of ``stemwright live`` (stemwright.live), without a model: the shared-memory ring, and what the
client plays when the worker does not keep up (nothing consumes its input here), on a dummy JACK server."""
from __future__ import annotations

import logging
import time

import numpy as np
import pytest

from stemwright.engine.live import LivePlan
from tests.reference import require


def test_ring_is_first_in_first_out_and_bounded() -> None:
    require("jack")
    from stemwright.live import ShmRing

    ring = ShmRing((2, 3), capacity=2)
    try:
        other = ShmRing((2, 3), capacity=2, name=ring.name)  # the worker's side of the same memory
        out = np.zeros((2, 3), np.float32)
        assert not other.get(out)
        assert ring.put(np.full((2, 3), 1.0)) and ring.put(np.full((2, 3), 2.0))
        assert not ring.put(np.full((2, 3), 3.0)) and len(other) == 2  # full: nothing written
        assert other.get(out) and (out == 1.0).all()
        assert other.skip() and not other.skip()
        assert ring.put(np.full((2, 3), 4.0)) and other.get(out) and (out == 4.0).all()
        other.close()
    finally:
        ring.close()


def test_late_blocks_play_silence_on_stems_and_the_input_on_the_mix(jack_server, caplog) -> None:
    """No worker: the reserve of silence plays out, then every block is late (counted, stems silent, mix = the
    input), then the input ring fills and blocks are dropped; the session warns once."""
    require("jack")
    from stemwright.live import LiveClient, LiveSession, WorkerReady, WorkerSettings
    from stemwright.live_check import PERIOD, RATE, PlayRecord, wait_for_port

    plan = LivePlan(segment_length=4096, overlap=0.25, latency_samples=16 * PERIOD, block_size=PERIOD,
                    samplerate=RATE)  # (the dummy server's rate and block)
    ready = WorkerReady(plan, ("a", "b"), plan.latency_samples - plan.reserve_samples)
    song = np.random.default_rng(0).uniform(-0.5, 0.5, (2, 8 * PERIOD)).astype(np.float32)
    io = PlayRecord(song, play_to=2, record_from=4, record_frames=song.shape[1])
    client = LiveClient(ready, ["b"], mix=True, name="swlate")
    client.input.capacity = 3  # (the ring's memory is larger: a smaller bound is safe) so that it fills fast
    client.start()
    try:
        wait_for_port("swlate:mix_R")
        io.connect(["swlate:in_L", "swlate:in_R"], ["swlate:b_L", "swlate:b_R", "swlate:mix_L", "swlate:mix_R"])
        while client.stats().late_blocks == 0:  # the reserve of silence has played out
            time.sleep(0.01)
        recording = io.run(timeout=30)
        stats = client.stats()
        session = LiveSession.__new__(LiveSession)  # poll() of a session around this client, minus the process
        session.client, session.plan, session.warned, session.switched = client, plan, False, False
        session.settings = WorkerSettings(model="test", device="cpu", offline=True, latency=plan.latency,
                                          block_size=PERIOD)
        session.process = type("Alive", (), {"is_alive": staticmethod(lambda: True)})()
        with caplog.at_level(logging.WARNING, logger="stemwright.live"):
            session.poll()
            session.poll()
    finally:
        client.deactivate()
        client.close()
    reserve = plan.reserve_samples // PERIOD
    assert stats.late_blocks == stats.blocks - reserve > 0
    assert stats.dropped_blocks == stats.blocks - 3
    assert stats.xruns == 0
    assert np.abs(recording[:2]).max() == 0.0  # the stems: silence (the reserve is silent too)
    np.testing.assert_array_equal(recording[2:], song)  # the mix: the input, as it came
    assert [r.message.count("cannot keep up") for r in caplog.records] == [1]


def test_a_server_at_another_rate_is_refused(jack_server) -> None:
    require("jack")
    from stemwright.live import LiveClient, LiveError, WorkerReady
    from stemwright.live_check import PERIOD

    plan = LivePlan(segment_length=4096, overlap=0.25, latency_samples=16 * PERIOD, block_size=PERIOD,
                    samplerate=48000)
    with pytest.raises(LiveError, match="44100 Hz.*start JACK at 48000 Hz"):
        LiveClient(WorkerReady(plan, ("a",), plan.latency_samples - plan.reserve_samples), ["a"], name="swrate")


def test_gain_commands_set_the_mix_gains_or_say_why_not(jack_server) -> None:
    require("jack")
    from stemwright.live import LiveClient, LiveUsageError, WorkerReady
    from stemwright.live_check import PERIOD, RATE

    plan = LivePlan(segment_length=4096, overlap=0.25, latency_samples=16 * PERIOD, block_size=PERIOD,
                    samplerate=RATE)
    client = LiveClient(WorkerReady(plan, ("a", "b"), plan.latency_samples - plan.reserve_samples), ["a", "b"],
                        mix=True, name="swgain")
    try:
        assert client.command("b 0.25\n") == "b gain 0.25" and client.gains.tolist() == [1.0, 0.25]
        assert client.command("mute b") == "b muted" and client.gains[1] == 0.0
        assert client.command("mute b") == "b muted"  # twice: unmute still restores the gain before the first
        assert client.command("unmute b") == "b gain 0.25" and client.gains[1] == 0.25
        for line, message in [("b loud", "gain must be a number"), ("b 4.5", "from 0 to 4"), ("b nan", "from 0"),
                              ("c 1", "'c' is not an output stem"), ("mute", "expected 'STEM GAIN'")]:
            with pytest.raises(LiveUsageError, match=message):
                client.command(line)
        assert client.gains.tolist() == [1.0, 0.25]  # bad lines change nothing
    finally:
        client.close()
