"""Diagnostics: bleed matrix on MUSDB references vs copies of the mixture, reconstruction, mono, clipping, plots."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

import stemwright
from stemwright.mixer.effects import MixError
from stemwright.mixer.inspect import levels, mono_compatibility

SR = 44100


@pytest.fixture(scope="module")
def musdb_report(musdb_track):
    return stemwright.inspect(musdb_track)


def test_bleed_is_near_diagonal_for_musdb_references(musdb_report):
    r = musdb_report
    assert r.stems == ["bass", "drums", "other", "vocals"]
    for band, matrix in r.bleed.items():
        m = np.array(matrix, dtype=float)
        assert np.allclose(np.diag(m), 1.0)
        off = m[~np.eye(4, dtype=bool)]
        assert off.max() < 0.3, band
        assert r.off_diagonal_mean(band) < 0.06, band


def test_bleed_is_full_for_a_mixture_copied_into_every_stem(musdb_track, tmp_path):
    for name in ("vocals", "drums", "bass", "other"):
        shutil.copy(musdb_track / "mixture.flac", tmp_path / f"{name}.flac")
    r = stemwright.inspect(tmp_path)
    for band in r.bleed:
        assert r.off_diagonal_mean(band) > 0.99, band


def test_reconstruction_uses_the_mixture_in_the_folder(musdb_report, musdb_track):
    rec = musdb_report.reconstruction
    assert rec["mixture"].endswith("mixture.flac")
    # MUSDB references do not sum exactly to the mixture (the mixture was mastered); about -31.6 dB here
    assert -40 < rec["error_db"] < -25


def test_reconstruction_of_separated_stems(separated, mixtures_dir):
    from .conftest import SPLEETER_MP3

    r = stemwright.inspect(separated, mixtures_dir / SPLEETER_MP3)
    assert r.reconstruction["error_db"] < -60  # the classic model's stems sum back to the mixture


def test_mono_compatibility():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(SR).astype(np.float32)
    centred = mono_compatibility(np.stack([x, x]))
    assert centred == {"correlation": 1.0, "mono_loss_db": 0.0}
    anti = mono_compatibility(np.stack([x, -x]))
    assert anti["correlation"] == -1.0 and anti["mono_loss_db"] is None  # -inf: cancels completely
    wide = mono_compatibility(np.stack([x, rng.standard_normal(SR).astype(np.float32)]))
    assert abs(wide["correlation"]) < 0.02 and wide["mono_loss_db"] == pytest.approx(-3.0, abs=0.1)


def test_levels_clipping_and_dc():
    x = np.zeros((2, 1000), np.float32)
    x[0, 100:110] = 1.0  # a clipped run of 10 samples
    x[1, 500] = 1.0  # one full-scale sample: a peak, not clipping
    lv = levels(x)
    assert lv["clipped_samples"] == 10 and lv["peak_dbfs"] == 0.0
    dc = levels(np.full((1, 1000), 0.1, np.float32))
    assert dc["dc_dbfs"] == pytest.approx(-20.0, abs=0.01) and dc["clipped_samples"] == 0


def test_report_json_text_and_plots(musdb_track, tmp_path):
    r = stemwright.inspect(musdb_track, plots=tmp_path / "plots")
    data = json.loads(r.to_json())
    assert set(data) >= {"reconstruction", "bleed", "bands", "mono", "levels", "plots"}
    assert [b["name"] for b in data["bands"]][0] == "all"
    names = sorted(p.split("/")[-1] for p in r.plots)
    assert names == ["bleed.png", "spectrogram-bass.png", "spectrogram-drums.png", "spectrogram-other.png",
                     "spectrogram-vocals.png", "waveforms.png"]
    for p in r.plots:
        with open(p, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    text = r.summary()
    assert "bleed" in text and "L/R corr" in text and "residual" in text
    with pytest.raises(MixError, match="already exists"):
        stemwright.inspect(musdb_track, plots=tmp_path / "plots")
