"""``stemwright models``: list the models stemwright can run (registry + published checkpoints)."""
from __future__ import annotations

import json
import logging
from typing import Any

import typer

log = logging.getLogger(__name__)


def registry_rows() -> list[dict[str, Any]]:
    """One dict per :data:`~stemwright.models.registry.MODELS` entry."""
    from stemwright.models.registry import DEFAULT_MODEL, MODELS

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
    for item in list_published():
        rows.append({"kind": "published", **item, "sources": list(item.get("sources", ()))})
    return rows, None


def command(
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """List the available models: name, stems, sample rate, size, licence."""
    builtin = registry_rows()
    published, why = published_rows()
    if as_json:
        print(json.dumps({"models": builtin, "published": published, "published_note": why}, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title="Models (use with -m NAME)", show_lines=False)
    for col in ("name", "stems", "rate", "parameters", "licence", "description"):
        table.add_column(col, overflow="fold")
    for r in builtin:
        params = f"{r['parameters']:,}" if r["parameters"] else "none"
        name = r["name"] + (" (default)" if r["default"] else "")
        table.add_row(name, ",".join(r["sources"]), str(r["samplerate"]), params, r["licence"], r["description"])
    console.print(table)
    if published is None:
        console.print(f"Published models: {why}.")
        return
    pub = Table(title="Published checkpoints (downloaded on first use)")
    for col in ("name", "architecture", "stems", "rate", "licence", "on disk", "description"):
        pub.add_column(col, overflow="fold")
    for r in published:
        pub.add_row(str(r.get("name")), str(r.get("architecture", "")), ",".join(r.get("sources", [])),
                    str(r.get("samplerate", "")), str(r.get("licence", "")), "yes" if r.get("on_disk") else "no",
                    str(r.get("description", "")))
    console.print(pub)
