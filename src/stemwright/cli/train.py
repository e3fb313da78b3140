"""``stemwright train``: train a separation model from a YAML config (resumable)."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import typer


def command(
    config: Path = typer.Option(..., "--config", "-c", help="Training config (YAML); see configs/ for examples."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its latest checkpoint."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Run folder (default: the config's 'out', else runs/<config name>)."),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="Stop at this step (overrides optim.max_steps if lower)."),
    max_minutes: Optional[float] = typer.Option(None, "--max-minutes", help="Stop (with a checkpoint) after this many minutes."),
    init_from: Optional[Path] = typer.Option(None, "--init-from", help="Start a new run from the matching weights of this stemwright checkpoint."),
    export: Optional[Path] = typer.Option(None, "--export", help="Also export the best model to this path (NAME.safetensors + NAME.json + NAME.md); default: OUT/export/<export.name> when the config has an export section."),
    export_into_package: bool = typer.Option(False, "--export-into-package", help="Allow --export to write inside the installed stemwright package (replaces shipped weights)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log progress and validation results."),
) -> None:
    """Train a separation model from a YAML config; checkpoints go to OUT/checkpoints, logs to OUT/*.csv + curves.png."""
    from stemwright.train.config import ConfigError
    from stemwright.atomic import check_writable_folder
    from stemwright.cli.common import fail
    from stemwright.train.data import DataError
    from stemwright.train.loop import ExportPathError, train
    from stemwright.train.state import ResumeError

    logging.getLogger("stemwright").setLevel(logging.INFO if verbose else logging.WARNING)
    if verbose:
        logging.getLogger().setLevel(logging.INFO)
    try:
        if out is not None:
            check_writable_folder(out)  # before the data loads and the model builds
        folder = train(config, out=out, resume=resume, max_steps=max_steps, max_minutes=max_minutes, init_from=init_from,
                       export_path=export, allow_package_export=export_into_package)
    except (ExportPathError, ConfigError, DataError, ResumeError, ValueError) as e:
        fail(str(e))
    except OSError as e:  # a run folder or export path that cannot be written
        fail(f"{e.filename or out}: could not write ({e.strerror or e})")
    print(f"run folder: {folder}")
