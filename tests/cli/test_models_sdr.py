"""``stemwright models``: the measured-SDR column (data in pretrained/measured_sdr.json, with where it came from)."""
from __future__ import annotations

import json

import pytest

from stemwright.cli.main import main
from stemwright.cli.models import measured_sdr


def test_measured_sdr_table_names_real_models_and_says_where_from():
    from stemwright.models.registry import MODELS
    from stemwright.pretrained.catalogue import catalogue

    table = measured_sdr()
    assert "spleeter_2stems" in table and "classic" in table
    for name, row in table.items():
        assert name in MODELS or name in catalogue(), f"measured_sdr.json names an unknown model {name!r}"
        assert row.stems and all(-30 < v < 40 for v in row.stems.values())
        assert row.data and row.metric and "benchmarks/" in row.source


def test_models_json_and_table_show_the_column(capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "300")  # rich: one line per row
    assert main(["models", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    rows = {m["name"]: m for m in data["models"] + data["published"]}
    assert rows["spleeter_2stems"]["measured_sdr"]["sdr_db"]["vocals"] > rows["classic"]["measured_sdr"]["sdr_db"]["vocals"]
    assert "fdps" in rows["spleeter_2stems"]["measured_sdr"]["data"]
    assert rows["umxhq"]["measured_sdr"] is None  # not measured by stemwright
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "SDR (dB)" in out and "–" in out and "vocals 9.9" in out


def test_models_on_a_pipe_or_narrow_terminal_prints_one_block_per_model(capsys: pytest.CaptureFixture,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 22 item 13: a table at 80 columns broke names mid-word ('stemwrigh|t_4stem')."""
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["models", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    names = [m["name"] for m in data["models"]] + [m["name"] for m in data["published"]]
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    unindented = {line.removesuffix(" (default)") for line in lines if line and not line.startswith(" ")}
    assert set(names) <= unindented  # every name whole, on a line of its own
    assert "│" not in "".join(lines) and "|" not in "".join(lines)
