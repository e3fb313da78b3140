"""``stemwright batch``: separate a catalogue on Ray (``pip install 'stemwright[ray]'``), locally or on a cluster.

The same layout, manifests, skip rule and output options as ``stemwright separate`` (its option layer is reused);
the work is spread over Ray actors that each load the model once (:mod:`stemwright.batch.ray_runner`).
"""
from __future__ import annotations

import csv
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Optional

import typer

from stemwright.cli import options
from stemwright.cli.common import INPUT_EXIT, USAGE_EXIT, fail, fail_from, name_list, need_extra, progress_bar
from stemwright.cli.separate import Outcome, collect_inputs, probe_inputs, refuse_collisions

LIST_SUFFIXES = (".txt", ".csv", ".lst", ".m3u")


def read_list(path: Path) -> list[Path]:
    """Paths listed in a text file (one per line; ``#`` comments and blank lines skipped) or a CSV file (the
    ``path`` column if there is a header naming it, else the first column). Relative paths are relative to the
    list's folder."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: cannot read the list ({getattr(e, 'strerror', None) or e})") from None
    rows: list[str]
    if path.suffix.lower() == ".csv":
        table = [r for r in csv.reader(text.splitlines()) if r and any(c.strip() for c in r)]
        header = [c.strip().lower() for c in table[0]] if table else []
        col = header.index("path") if "path" in header else 0
        rows = [r[col] for r in (table[1:] if "path" in header else table) if len(r) > col]
    else:
        rows = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(path.parent / r.strip()) if not Path(r.strip()).is_absolute() else Path(r.strip()) for r in rows]


def expand_inputs(inputs: list[Path]) -> list[Path]:
    """Lists (``.txt``/``.csv``/``.lst``/``.m3u`` files) replaced by the paths they name; files and folders kept."""
    out: list[Path] = []
    for p in inputs:
        if p.is_file() and p.suffix.lower() in LIST_SUFFIXES:
            out.extend(read_list(p))
        else:
            out.append(p)
    return out


def command(
    inputs: list[Path] = typer.Argument(None, help="Audio files, folders, or .txt/.csv lists of paths (on storage every node sees).", show_default=False),
    out: Path = typer.Option(..., "-o", "--out", help="Output folder (on storage every node sees)."),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster: 'auto' or 'ray://host:10001' [default: start a local Ray here]."),
    workers: int = typer.Option(1, "--workers", min=1, help="Ray actors, each with the model loaded once (one CPU each)."),
    gpus_per_worker: float = typer.Option(0.0, "--gpus-per-worker", min=0.0, help="GPUs each actor asks Ray for (e.g. 0.5: two per GPU)."),
    retries: int = typer.Option(2, "--retries", min=0, help="Extra tries for a track whose worker died or failed unexpectedly (bad files are not retried)."),
    model: options.Model = None,
    stems: options.Stems = None,
    two_stems: options.TwoStems = None,
    fmt: options.Format = None,
    mp3: options.Mp3 = False,
    flac: options.Flac = False,
    bit_depth: options.BitDepth = None,
    int24: options.Int24 = False,
    float32: options.Float32 = False,
    mp3_bitrate: options.Mp3Bitrate = 320,
    device: options.Device = typer.Option("cpu", "-d", "--device", help="Where each worker runs the model."),  # type: ignore[valid-type]
    segment: options.Segment = None,
    overlap: options.Overlap = None,
    shifts: options.Shifts = 0,
    residual: options.Residual = None,
    filename: options.Filename = options.DEFAULT_FILENAME,
    overwrite: bool = typer.Option(False, "--overwrite", help="Separate every track again (default: skip tracks already done with these settings)."),
    clip_mode: options.ClipMode = "rescale",  # type: ignore[assignment]
    as_json: bool = typer.Option(False, "--json", help="Print one JSON result per track as it completes (with its input index)."),
    quiet: options.Quiet = False,
    offline: options.Offline = False,
    fast: options.Fast = False,
    ensemble_method: options.EnsembleMethod = None,
    ensemble_weights: options.EnsembleWeights = None,
) -> None:
    """Separate many files on Ray: OUT/<track>/<stem>.<ext> + stemwright.json each, and OUT/batch.json."""
    need_extra("ray", "ray", "stemwright batch")
    from stemwright.api import ModelSettings
    from stemwright.output import remove_leftovers
    from stemwright.batch.ray_runner import BatchSettings, RayBatch, TrackResult

    if not inputs:
        fail("give at least one INPUT file, folder or list", USAGE_EXIT)
    out_format = options.output_format(fmt.value if fmt else None, mp3, flac)
    depth = options.output_bit_depth(bit_depth, int24, float32)
    stem_list = name_list(stems)
    model = options.model_name(model, two_stems)
    options.check_early(out, out_format, depth, mp3_bitrate, clip_mode.value, filename, segment, overlap, shifts,
                        None)
    try:
        model_settings = ModelSettings(model=model, device=device.value, segment=segment, overlap=overlap,
                                       shifts=shifts, residual=residual, offline=offline, fast=fast,
                                       ensemble_method=ensemble_method, ensemble_weights=ensemble_weights)
        # checked here, before any worker starts: a wrong name or option fails once, not once per track
        sep = replace(model_settings, device="cpu", fast=False).separator()
        out_options = sep.options(out_format, depth, mp3_bitrate, clip_mode.value, stem_list, two_stems, filename)
    except (ValueError, TypeError) as e:  # typed: StemwrightError.exit_code says usage (2) or input (1)
        fail_from(e)
    try:
        paths = expand_inputs(list(inputs))
    except ValueError as e:
        fail(str(e), INPUT_EXIT)
    items = refuse_collisions(sep, probe_inputs(collect_inputs(paths, exclude=out)), out, out_options)
    # Every input is in the report at its position: those that failed before Ray (a missing path in a list, a
    # collision) as failed with no attempt; Ray's results are re-indexed from the list of the others.
    positions = [k for k, item in enumerate(items) if not isinstance(item, Outcome)]
    todo = [str(items[k]) for k in positions]
    plans = {p: sep.plan(Path(p), out, out_options) for p in todo}  # to clean up after an interrupt
    del sep
    finished = [TrackResult(index=k, input=o.input, status="failed", reason=(o.error or "").removeprefix(f"{o.input}: "),
                            attempts=0)
                for k, o in enumerate(items) if isinstance(o, Outcome)]
    settings = BatchSettings(model=model_settings, options=out_options, outdir=str(out), overwrite=overwrite)
    bar = progress_bar(len(todo), "tracks", enabled=not quiet and not as_json, unit="track")

    def on_result(r: TrackResult) -> None:
        r = replace(r, index=positions[r.index])
        finished.append(r)
        bar.update(1)
        if as_json:
            print(json.dumps(r.as_json()), flush=True)

    if as_json:
        for r in finished:
            print(json.dumps(r.as_json()), flush=True)
    t0 = time.perf_counter()
    ray_report = None
    try:
        if todo:
            with RayBatch(settings, workers=workers, address=address, gpus_per_worker=gpus_per_worker,
                          retries=retries) as batch:
                ray_report = batch.run(todo, on_result)
    except (ConnectionError, RuntimeError) as e:
        fail(f"Ray: {e}", INPUT_EXIT)
    except KeyboardInterrupt:
        # the workers are gone (RayBatch shut them down): remove what they left, and report what finished
        done = {r.input for r in finished}
        for p in todo:
            if p not in done:
                remove_leftovers(plans[p])
        _report(model, out, address, workers, time.perf_counter() - t0, 0, finished, interrupted=True)
        raise
    finally:
        bar.close()
    report = _report(model, out, address, workers, ray_report.seconds if ray_report else 0.0,
                     ray_report.workers_replaced if ray_report else 0, finished)
    print(report.summary(), file=sys.stderr if as_json else sys.stdout)
    if report.count("failed"):
        raise typer.Exit(INPUT_EXIT)


def _report(model: str, out: Path, address: str | None, workers: int, seconds: float, replaced: int,
            results: list[Any], interrupted: bool = False) -> Any:
    """Write ``OUT/batch.json`` with every input's result, in input order; returns the report."""
    from stemwright.batch.ray_runner import REPORT_NAME, BatchReport

    report = BatchReport(model=model, outdir=str(out), address=address, workers=workers, seconds=seconds,
                         workers_replaced=replaced, results=tuple(sorted(results, key=lambda r: r.index)),
                         interrupted=interrupted)
    report.write(out / REPORT_NAME)
    return report
