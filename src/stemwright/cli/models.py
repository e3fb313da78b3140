"""``stemwright models``: list the models stemwright can run (registry + published checkpoints)."""
from __future__ import annotations

import json
import logging
import shutil
import sys
from dataclasses import dataclass
from importlib import resources
from typing import Any

import typer

log = logging.getLogger(__name__)

TABLE_COLUMNS = 120  # narrower terminals (and pipes) get one block per model instead of a table


@dataclass(frozen=True, kw_only=True)
class MeasuredSdr:
    """SDR figures stemwright measured for one model (``pretrained/measured_sdr.json``), with where they came from."""

    stems: dict[str, float]  # stem -> dB
    data: str  # what it was measured on (never data used to pick the checkpoint)
    metric: str
    source: str  # the benchmark command and date

    def short(self) -> str:
        """``vocals 8.5, accompaniment 12.1 (MIR-1K fdps)``-style text for the table."""
        figures = ", ".join(f"{stem} {value:.1f}" for stem, value in self.stems.items())
        return f"{figures} ({self.data.split(',')[0].split('(')[0].strip()})"


def measured_sdr() -> dict[str, MeasuredSdr]:
    """Model name -> the SDR stemwright measured (empty when the table is missing)."""
    try:
        doc = json.loads((resources.files("stemwright.pretrained") / "measured_sdr.json").read_text())
    except (FileNotFoundError, ValueError) as e:
        log.warning("measured SDR table unreadable (%s)", e)
        return {}
    return {
        name: MeasuredSdr(stems={k: float(v) for k, v in row["sdr_db"].items()}, data=row["data"],
                          metric=row["metric"], source=row["source"])
        for name, row in doc.get("models", {}).items()
    }


def _sdr_json(sdr: MeasuredSdr | None) -> dict[str, Any] | None:
    return None if sdr is None else {"sdr_db": sdr.stems, "data": sdr.data, "metric": sdr.metric, "source": sdr.source}


def registry_rows() -> list[dict[str, Any]]:
    """One dict per :data:`~stemwright.models.registry.MODELS` entry."""
    from stemwright.models.registry import DEFAULT_MODEL, MODELS

    sdr = measured_sdr()
    return [
        {
            "name": e.name,
            "kind": "built-in",
            "architecture": e.architecture,
            "sources": list(e.sources),
            "samplerate": e.samplerate,
            "parameters": e.parameters,
            "licence": e.licence,
            "description": e.description,
            "needs_references": e.needs_references,
            "default": e.name == DEFAULT_MODEL,
            "measured_sdr": _sdr_json(sdr.get(e.name)),
        }
        for e in MODELS.values()
    ]


def published_rows() -> tuple[list[dict[str, Any]] | None, str | None]:
    """Published checkpoints from :mod:`stemwright.pretrained.catalogue`, or ``(None, reason)`` if not installed."""
    try:
        from stemwright.pretrained.catalogue import list_published
    except ImportError as e:
        return None, f"published-model catalogue not available ({e})"
    rows = []
    sdr = measured_sdr()
    for item in list_published():
        rows.append({"kind": "published", **item, "sources": list(item.get("sources", ())),
                     "measured_sdr": _sdr_json(sdr.get(item.get("name", "")))})
    return rows, None


def command(
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """List the available models: name, stems, sample rate, size, licence, measured SDR (dB)."""
    builtin = registry_rows()
    published, why = published_rows()
    if as_json:
        print(json.dumps({"models": builtin, "published": published, "published_note": why}, indent=2))
        return
    sdr = measured_sdr()
    if not sys.stdout.isatty() or shutil.get_terminal_size().columns < TABLE_COLUMNS:
        _print_blocks(builtin, published, why, sdr)  # a narrow terminal or a pipe: nothing wrapped mid-word
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title="Models (use with -m NAME)", show_lines=False)
    table.add_column("name", no_wrap=True)
    for col in ("stems", "rate", "parameters", "licence", "SDR (dB)", "description"):
        table.add_column(col, overflow="fold")
    for r in builtin:
        params = f"{r['parameters']:,}" if r["parameters"] else "none"
        name = r["name"] + (" (default)" if r["default"] else "")
        table.add_row(name, ",".join(r["sources"]), str(r["samplerate"]), params, r["licence"],
                      _sdr_cell(sdr, r["name"]), r["description"])
    console.print(table)
    if published is None:
        console.print(f"Published models: {why}.")
        return
    pub = Table(title="Published checkpoints (downloaded on first use)")
    pub.add_column("name", no_wrap=True)
    for col in ("architecture", "stems", "rate", "licence", "on disk", "SDR (dB)", "description"):
        pub.add_column(col, overflow="fold")
    for r in published:
        pub.add_row(str(r.get("name")), str(r.get("architecture", "")), ",".join(r.get("sources", [])),
                    str(r.get("samplerate", "")), str(r.get("licence", "")), "yes" if r.get("on_disk") else "no",
                    _sdr_cell(sdr, str(r.get("name"))), str(r.get("description", "")))
    console.print(pub)
    if sdr:
        first = next(iter(sdr.values()))
        console.print(f"SDR: {first.metric}, measured by stemwright ('stemwright models --json' says on what data and "
                      "with which command); '–': not measured.")


def _print_blocks(builtin: list[dict[str, Any]], published: list[dict[str, Any]] | None, why: str | None,
                  sdr: dict[str, MeasuredSdr]) -> None:
    """One block per model, as ``pip show`` prints: the name on its own line, then indented ``field: value`` lines."""
    print("Models (use with -m NAME)\n")
    for r in builtin:
        params = f"{r['parameters']:,}" if r["parameters"] else "none"
        _block(r["name"] + (" (default)" if r["default"] else ""), {
            "stems": ",".join(r["sources"]), "rate": r["samplerate"], "parameters": params, "licence": r["licence"],
            "SDR (dB)": _sdr_cell(sdr, r["name"]), "description": r["description"]})
    if published is None:
        print(f"Published models: {why}.")
        return
    print("Published checkpoints (downloaded on first use)\n")
    for r in published:
        _block(str(r.get("name")), {
            "architecture": r.get("architecture", ""), "stems": ",".join(r.get("sources", [])),
            "rate": r.get("samplerate", ""), "licence": r.get("licence", ""),
            "on disk": "yes" if r.get("on_disk") else "no", "SDR (dB)": _sdr_cell(sdr, str(r.get("name"))),
            "description": r.get("description", "")})


def _block(name: str, fields: dict[str, Any]) -> None:
    print(name)
    for key, value in fields.items():
        print(f"    {key}: {value}")
    print()


def _sdr_cell(sdr: dict[str, MeasuredSdr], name: str) -> str:
    return sdr[name].short() if name in sdr else "–"
