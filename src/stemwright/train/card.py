"""Model cards (Markdown) for exported checkpoints, generated from the checkpoint's JSON.

``NAME.md`` beside ``NAME.json``: architecture, configuration, parameter count, training data and licences, steps,
validation figures. Text below the line ``<!-- measured -->`` in an existing card (benchmark figures written by a
person or a script) is kept when the card is regenerated.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from safetensors import safe_open

from stemwright.atomic import atomic_write_text
from stemwright.models.checkpoint import checkpoint_paths

MARKER = "<!-- measured -->"

# What each architecture is, for the card's first line (architectures not listed are named only).
DESCRIPTIONS = {
    "bsrnn": "band-split RNN, Luo & Yu 2023",
    "classic_refiner": "the weight-free `classic` separator plus a band-split RNN (Luo & Yu 2023) that predicts a "
    "complex correction per stem; untrained it is exactly `classic`",
}


def _fmt_metrics(metrics: dict[str, Any]) -> list[str]:
    sdr = metrics.get("validation_sdr") or {}
    if not sdr:
        return ["(none yet)"]
    lines = ["| set / source | SDR (dB) |", "|---|---:|"]
    lines += [f"| {k} | {v:.2f} |" for k, v in sdr.items() if isinstance(v, (int, float))]
    return lines


def render_card(doc: dict[str, Any], parameters: int | None, title: str) -> str:
    cfg = doc.get("config", {})
    tr = doc.get("training", {})
    lines = [
        f"# {title}", "",
        f"- Architecture: `{doc.get('architecture')}`"
        + (f" ({DESCRIPTIONS[doc['architecture']]})" if doc.get("architecture") in DESCRIPTIONS else ""),
        f"- Sources: {', '.join(doc.get('sources', []))}; {doc.get('samplerate')} Hz, {doc.get('audio_channels')} channels",
        f"- Learned parameters: {parameters:,}" if parameters else "- Learned parameters: unknown",
        f"- Licence of the weights: {doc.get('licence')}",
        f"- Training steps: {tr.get('steps')} (batch {tr.get('batch_size')} x {tr.get('segment_s')} s; EMA decay {tr.get('ema_decay')})",
        *([f"- Training history: {tr['lineage']}"] if tr.get("lineage") else []),
        f"- Training data: {tr.get('data', 'see the training config')}",
        f"- Training config: `{tr.get('config_file')}`"
        + (f" (warm start from `{tr['init_from']}`)" if tr.get("init_from") else ""),
        f"- Weights sha256: `{doc.get('sha256')}`",
        "", "## Configuration", "", "```yaml", yaml.safe_dump(cfg, default_flow_style=None, sort_keys=False, width=120).rstrip(), "```", "",
        "## Validation during training (global SDR, EMA weights)", "",
        *_fmt_metrics(doc.get("metrics", {})), "",
    ]
    return "\n".join(lines)


def write_model_card(path: str | Path, *, title: str | None = None) -> Path:
    """(Re)write ``NAME.md`` for the checkpoint ``NAME``; keeps the measured section of an existing card."""
    weights, meta = checkpoint_paths(path)
    doc = json.loads(meta.read_text())
    parameters = None
    try:
        with safe_open(str(weights), "pt") as f:
            parameters = sum(_prod(f.get_slice(k).get_shape()) for k in f.keys())
    except Exception:  # noqa: BLE001 - the card is informative; a count failure must not stop training
        parameters = None
    card = meta.with_suffix(".md")
    kept = ""
    if card.exists():
        text = card.read_text()
        if MARKER in text:
            kept = text[text.index(MARKER):]
    body = render_card(doc, parameters, title or meta.stem)
    text = body + "\n" + (kept or MARKER + "\n\n## Measured (benchmarks)\n\n(not measured yet)\n")
    return atomic_write_text(card, text)


def _prod(shape) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n
