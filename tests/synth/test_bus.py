"""Production across stems (synth/bus.py): each ingredient's rule for the stems' truth, seed stability, the CLI."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from stemwright.mixer.loudness import integrated_lufs, true_peak_db
from stemwright.synth import generate_song
from stemwright.synth.bus import BusOptionError, BusOptions, compressor_gain, shared_send
from stemwright.synth.song import generate_song_variants

SR = 44100
EVERY = BusOptions(parallel=True, sidechain=True, send=True, bus_comp=True, widen=True, master=True)


@pytest.fixture(scope="module")
def plain_and_produced():
    """One tiny song without and with every stem-level ingredient and the mastering (no codec), rendered once."""
    return generate_song_variants(5, 2.0, [BusOptions(), EVERY], style="electronic")


def test_variants_equal_songs_made_one_by_one(plain_and_produced) -> None:
    alone = generate_song(5, 2.0, style="electronic", bus_options=EVERY)
    np.testing.assert_array_equal(alone.mixture, plain_and_produced[1].mixture)
    assert alone.metadata == plain_and_produced[1].metadata


def test_ingredients_change_no_other_draw_and_keep_the_exact_sum(plain_and_produced) -> None:
    plain, produced = plain_and_produced
    for stem in plain.stems:
        assert produced.metadata["stems"][stem] == plain.metadata["stems"][stem], stem  # same parts and chains
    assert "bus" not in plain.metadata["mixing"]
    assert set(produced.metadata["mixing"]["bus"]) == {"parallel_compression", "sidechain", "shared_send",
                                                       "bus_compression", "widener", "master"}
    total = sum(produced.stems[k] for k in ("drums", "bass", "other", "vocals"))
    np.testing.assert_allclose(produced.mixture, total, atol=1e-6)
    assert not np.allclose(produced.stems["drums"], plain.stems["drums"])


def test_master_reaches_streaming_loudness_under_the_true_peak_ceiling(plain_and_produced) -> None:
    _, produced = plain_and_produced
    rec = produced.metadata["mixing"]["bus"]["master"]
    assert -14.0 <= rec["target_lufs"] <= -9.0
    assert true_peak_db(produced.mixture) <= -1.0 + 1e-3
    # the limiter only takes loudness away: at or below the target, and close to it (the fade-out costs a little)
    assert rec["target_lufs"] - 3.0 < integrated_lufs(produced.mixture, SR) <= rec["target_lufs"] + 0.1


def test_shared_send_tails_sum_to_the_shared_bus() -> None:
    """Each stem's truth carries its own send's tail; their sum is what one shared reverb/delay bus returns."""
    import pedalboard as pb  # the test rebuilds the shared bus from the recorded parameters

    rng = np.random.default_rng(0)
    stems = {k: (0.1 * rng.standard_normal((2, SR))).astype(np.float32) for k in ("drums", "bass", "other", "vocals")}
    out, rec = shared_send(stems, np.random.default_rng(1), SR, tempo=120.0)
    np.testing.assert_array_equal(out["bass"], stems["bass"])  # bass sends nothing
    send = sum(stems[k] * np.float32(10 ** (db / 20)) for k, db in rec["reverb_send_db"].items())
    dsend = sum(stems[k] * np.float32(10 ** (db / 20)) for k, db in rec["delay_send_db"].items())
    bus = pb.Pedalboard([pb.Reverb(dry_level=0.0, **rec["reverb"])])(send, SR, reset=True)
    bus += pb.Pedalboard([pb.Delay(mix=1.0, **rec["delay"])])(dsend, SR, reset=True)
    tails = sum(out[k] - stems[k] for k in stems)
    assert np.max(np.abs(tails - bus)) < 1e-4 * np.max(np.abs(bus))


def test_compressor_gain_static_curve_and_release() -> None:
    loud = np.concatenate([np.full(SR // 2, 0.5), np.full(SR // 2, 0.001)])  # -6 dBFS, then -60 dBFS
    g = compressor_gain(loud, SR, threshold_db=-20.0, ratio=4.0, attack_ms=1.0, release_ms=50.0)
    assert g.shape == loud.shape and g.dtype == np.float32
    assert 20 * np.log10(g[SR // 4]) == pytest.approx(-(14 * 0.75), abs=0.1)  # (level - threshold)(1 - 1/ratio)
    assert g[-1] == pytest.approx(1.0, abs=1e-3)  # released


def test_mp3_round_trip_touches_only_the_mixture() -> None:
    song = generate_song(5, 1.5, style="rock", bus_options=BusOptions(codec="mp3"))
    total = sum(song.stems[k] for k in ("drums", "bass", "other", "vocals"))
    err = song.mixture - total
    snr = 10 * np.log10(np.sum(total.astype(np.float64) ** 2) / np.sum(err.astype(np.float64) ** 2))
    assert 10 < snr < 60, snr  # coded (not exact), and aligned (a shifted decode would be near 0 dB)
    assert song.metadata["mixing"]["bus"]["codec"]["codec"] == "mp3"


def test_parse_and_cli_refusal(tmp_path: Path) -> None:
    assert BusOptions.parse("none") == BusOptions()
    assert BusOptions.parse("send, master,aac") == BusOptions(send=True, master=True, codec="aac")
    assert BusOptions.parse("all").codec == "mp3" and BusOptions.parse("all").widen
    with pytest.raises(BusOptionError, match="'reverb'"):
        BusOptions.parse("reverb")
    r = subprocess.run([sys.executable, "-m", "stemwright.cli.main", "synth", "-o", str(tmp_path / "o"),
                        "--production", "send,wobble"], capture_output=True, text=True)
    assert r.returncode == 2 and "error: --production: production ingredient 'wobble'" in r.stderr
    assert not (tmp_path / "o").exists()
