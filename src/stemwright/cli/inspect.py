"""``stemwright inspect``: diagnose separated stems (reconstruction, bleed, mono compatibility, clipping, plots)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from stemwright.cli.common import fail


def command(
    stems_dir: Path = typer.Argument(..., help="Folder of stems ('stemwright separate' output or one audio file per stem)."),
    mixture: Optional[Path] = typer.Option(None, "--mixture", help="The original mix (default: mixture.* in the folder)."),
    plots: Optional[Path] = typer.Option(None, "--plots", help="Write PNG plots (spectrograms, waveforms, bleed) to this folder."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing plot files."),
) -> None:
    """Diagnose separated stems: reconstruction error, bleed matrix, mono compatibility, clipping, DC, plots."""
    from stemwright.audio.io import AudioError
    from stemwright.mixer.effects import MixError
    from stemwright.mixer.inspect import inspect

    try:
        report = inspect(stems_dir, mixture, plots=plots, overwrite=overwrite)
    except (MixError, AudioError) as e:
        fail(str(e))
    print(report.to_json() if as_json else report.summary())
