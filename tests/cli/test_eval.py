"""``stemwright eval`` and ``stemwright bench`` on tiny generated datasets (fast)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from stemwright.cli.main import main

from tests.cli.eval_data import SR, STEMS, musdb as _musdb, song as _song


def test_eval_dataset_with_oracle_writes_report(tmp_path, capsys):
    root = _musdb(tmp_path / "db")
    out = tmp_path / "report"
    code = main(["eval", "--dataset", str(root), "-m", "oracle_irm", "-o", str(out), "--json", "-q"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["split"] == "test" and summary["model"] == "oracle_irm"
    table = summary["summary"]
    for s in STEMS:
        assert table[s]["SDR median"] > 8 and table[s]["MDX SDR"] > 8
    for f in ("summary.csv", "summary.md", "summary.json", "boxplot.png", "tracks.png"):
        assert (out / f).is_file(), f
    track = json.loads((out / "test" / "song a.json").read_text())
    assert [t["name"] for t in track["targets"]] == list(STEMS)
    frame = track["targets"][0]["frames"][1]
    assert frame["time"] == 1.0 and frame["duration"] == 1.0 and set(frame["metrics"]) == {"SDR", "SIR", "SAR", "ISR"}
    assert len(track["targets"][0]["frames"]) == 2  # floor((2.5 s - 1 s + 1 s) / 1 s)
    assert "| vocals |" in (out / "summary.md").read_text()
    # an existing report is not overwritten unless asked
    assert main(["eval", "--dataset", str(root), "-m", "oracle_irm", "-o", str(out), "-q", "--protocol", "mdx"]) == 1
    assert "already exists" in capsys.readouterr().err


def test_eval_estimates_folder_and_errors_name_the_track(tmp_path, capsys):
    root = _musdb(tmp_path / "db", names=("only",))
    est = tmp_path / "est" / "only"
    est.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for s in STEMS:
        x, _ = sf.read(root / "test" / "only" / f"{s}.wav", always_2d=True)
        sf.write(est / f"{s}.wav", x + 0.01 * rng.standard_normal(x.shape), SR, subtype="FLOAT")
    out = tmp_path / "r1"
    code = main(["eval", "--references", str(root), "--estimates", str(tmp_path / "est"), "--protocol", "mdx",
                 "-o", str(out), "-q"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "MDX SDR" in printed and "vocals" in printed
    csv_text = (out / "summary.csv").read_text().splitlines()
    assert csv_text[0].startswith("stem,") and len(csv_text) == 5
    # wrong length
    x, _ = sf.read(est / "bass.wav", always_2d=True)
    sf.write(est / "bass.wav", x[:-100], SR, subtype="FLOAT")
    assert main(["eval", "--references", str(root), "--estimates", str(tmp_path / "est"), "-o", str(tmp_path / "r2"), "-q"]) == 1
    err = capsys.readouterr().err
    assert "'only'" in err and "bass" in err and "wrong length" in err
    # missing stem
    (est / "bass.wav").unlink()
    assert main(["eval", "--references", str(root), "--estimates", str(tmp_path / "est"), "-o", str(tmp_path / "r3"), "-q"]) == 1
    err = capsys.readouterr().err
    assert "'only'" in err and "bass" in err


def test_eval_dataset_with_missing_stem_fails_naming_track(tmp_path, capsys):
    root = _musdb(tmp_path / "db", names=("broken",))
    (root / "test" / "broken" / "vocals.wav").unlink()
    assert main(["eval", "--dataset", str(root), "-m", "oracle_irm", "-o", str(tmp_path / "r"), "-q"]) == 1
    assert "'broken'" in capsys.readouterr().err


def test_eval_usage_errors(tmp_path, capsys):
    assert main(["eval", "-m", "classic"]) == 2
    assert main(["eval", "--dataset", str(tmp_path)]) == 2


def test_eval_mir1k_prints_gnsdr(tmp_path, capsys):
    rng = np.random.default_rng(2)
    dev = tmp_path / "mir" / "dev"
    dev.mkdir(parents=True)
    n = 16000
    for k, length in enumerate((n, 2 * n)):
        t = np.arange(length) / 16000
        acc = 0.2 * np.sin(2 * np.pi * 220 * t) + 0.01 * rng.standard_normal(length)
        voice = 0.2 * np.sin(2 * np.pi * 1500 * t) * (t % 0.5 < 0.3)
        sf.write(dev / f"singer_1_0{k}.wav", np.stack([acc, voice], axis=1), 16000, subtype="FLOAT")
    code = main(["eval", "--dataset", str(tmp_path / "mir"), "--format", "mir1k", "-m", "oracle_irm",
                 "-o", str(tmp_path / "r"), "--protocol", "mdx", "-q"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "GNSDR" in printed and "vocals" in printed and "accompaniment" in printed
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    g = summary["summary"]["vocals"]["GNSDR"]
    assert math.isfinite(g) and g > 5  # oracle on clean tones: large improvement over the mixture
    lengths = [t["length"] for t in summary["tracks"]]
    nsdrs = [t["nsdr"]["vocals"]["NSDR"] for t in summary["tracks"]]
    assert g == pytest.approx(np.average(nsdrs, weights=lengths))


def test_bench_json(capsys):
    assert main(["bench", "-m", "oracle_irm", "--seconds", "1", "--json", "--device", "cpu"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["audio_seconds"] == 1.0 and rep["seconds"] > 0 and rep["peak_rss_mb"] > 0
    # both figures are rounded (seconds to 4 decimals, rtf to 5): allow that rounding on very fast runs
    assert rep["rtf"] == pytest.approx(rep["seconds"] / rep["audio_seconds"], rel=0.01, abs=1e-4)
    assert main(["bench", "-m", "classic", "--input", "/nonexistent.wav"]) == 1
