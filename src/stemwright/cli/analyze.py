"""``stemwright analyze``: tempo, beats, downbeats, time signature and key of a song, from its stems."""
from __future__ import annotations

import json
from pathlib import Path

import typer

from stemwright.cli.common import fail


def command(
    path: Path = typer.Argument(..., help="Folder of stems ('stemwright separate' output or one audio file per stem), or one audio file."),
    as_json: bool = typer.Option(False, "--json", help="Print the analysis as JSON (beat and downbeat times included)."),
) -> None:
    """Analyse a song once: tempo, beat and downbeat times, time signature, key and mode, each with a confidence.
    Beats come from the drums and bass stems, the key from the harmonic stems, where the folder has them."""
    from stemwright.analysis import analyze_path
    from stemwright.audio.io import AudioError
    from stemwright.mixer.effects import MixError

    if not path.exists():
        fail(f"{path}: not found")
    try:
        result = analyze_path(path)
    except (MixError, AudioError) as e:
        fail(str(e))
    if as_json:
        print(json.dumps({"path": str(path), **result.to_dict()}, indent=2))
        return
    print(f"{path}")
    print(f"tempo   {result.tempo_bpm:.2f} BPM (confidence {result.tempo_confidence:.2f}; "
          f"{len(result.beats)} beats from {'+'.join(result.rhythm_stems)})")
    print(f"meter   {result.time_signature} (confidence {result.meter_confidence:.2f}); first downbeat "
          f"{result.first_downbeat:.3f} s (confidence {result.downbeat_confidence:.2f}), {len(result.downbeats)} bars")
    print(f"key     {result.key} (confidence {result.key_confidence:.2f}; from {'+'.join(result.harmonic_stems)})")
