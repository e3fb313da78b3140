"""``stemwright eval``: score a separator on a dataset (BSS Eval v4 as museval, MDX SDR, MIR-1K NSDR/GNSDR).

    stemwright eval --dataset DIR [--format musdb|folder|mir1k] [--split test] -m MODEL [--protocol museval|mdx|all]
                  [-o REPORT_DIR] [--json]
    stemwright eval --references DIR --estimates DIR [...]      # score stems that already exist
"""
from __future__ import annotations

import json
import logging
import math
import sys
import time
from enum import Enum
from pathlib import Path
from typing import Any, Optional

import numpy as np
import typer

from stemwright.errors import StemwrightError

log = logging.getLogger(__name__)


class Format(str, Enum):
    musdb = "musdb"
    folder = "folder"
    mir1k = "mir1k"


class Protocol(str, Enum):
    museval = "museval"
    mdx = "mdx"
    all = "all"


class EvalInputError(StemwrightError):
    """Bad input for the evaluation (exit code 1, one line)."""


def command(
    dataset: Optional[Path] = typer.Option(None, "--dataset", help="Dataset root (MUSDB18 layout, folder of stems, MIR-1K)."),
    fmt: Format = typer.Option(Format.musdb, "--format", help="Dataset layout."),
    split: str = typer.Option("", "--split", help="Sub-folder to score (default: test; dev for mir1k)."),
    model: Optional[str] = typer.Option(None, "-m", "-n", "--model", help="Model name ('stemwright models'), oracle_*, or a checkpoint path."),
    protocol: Protocol = typer.Option(Protocol.all, "--protocol", help="museval (BSS Eval v4), mdx (global SDR) or all."),
    out: Optional[Path] = typer.Option(None, "-o", "--out", help="Report folder (default: eval-<model>)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON instead of a table."),
    references: Optional[Path] = typer.Option(None, "--references", help="Reference stems (dataset layout, see --format)."),
    estimates: Optional[Path] = typer.Option(None, "--estimates", help="Estimated stems: DIR/<track>/<stem>.<ext> (as 'stemwright separate' writes)."),
    device: str = typer.Option("auto", "-d", "--device", help="Where the model runs: auto, cpu, cuda, mps."),
    tracks: Optional[str] = typer.Option(None, "--tracks", help="Comma-separated track names to score (default: all)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing report folder's files."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Score a separator on a dataset: per-track JSON (museval layout), summary CSV/Markdown/JSON, plots."""
    from stemwright.atomic import check_writable_folder
    from stemwright.cli.common import USAGE_EXIT, fail, fail_from
    from stemwright.errors import OutputError
    from stemwright.datasets import DatasetError, open_dataset
    from stemwright.metrics.report import save_report, summarize, to_text

    if (dataset is None) == (references is None):
        fail("give either --dataset DIR -m MODEL, or --references DIR --estimates DIR", USAGE_EXIT)
    if references is not None and (estimates is None or model is not None):
        fail("--references needs --estimates (and no -m)", USAGE_EXIT)
    if dataset is not None and not model:
        fail("--dataset needs -m MODEL", USAGE_EXIT)
    split_name = split or ("dev" if fmt is Format.mir1k else "test")
    root = dataset if dataset is not None else references
    assert root is not None
    label = model if model else f"estimates:{estimates.name if estimates else ''}"
    report_dir = out or Path(f"eval-{Path(str(model)).stem if model else 'estimates'}")
    if (report_dir / "summary.json").exists() and not overwrite:
        fail(f"{report_dir}: a report already exists (use --overwrite or another -o)")
    try:
        check_writable_folder(report_dir)  # before the scoring, not after it
    except OutputError as e:
        fail(str(e))
    try:
        ds = open_dataset(root, fmt.value, split_name)
        selected = _select(ds, tracks)
        start = time.perf_counter()
        if dataset is not None:
            results = _eval_model(selected, model or "", fmt, protocol.value, device, quiet)
        else:
            assert estimates is not None
            results = _eval_estimates(selected, estimates, fmt, protocol.value, quiet)
        seconds = time.perf_counter() - start
    except (DatasetError, EvalInputError) as e:
        fail(str(e))
    except ValueError as e:  # model loading / audio errors: one line naming the culprit
        fail_from(e)
    meta: dict[str, Any] = {
        "model": label, "dataset": str(root), "format": fmt.value, "split": ds.split, "protocol": protocol.value,
        "seconds": round(seconds, 2),
    }
    title = f"{label} on {Path(root).name}" + (f"/{ds.split}" if ds.split else "")
    table = summarize(results)
    # the scores are printed before the report is written: a full or read-only disk does not lose them
    if as_json:
        print(json.dumps({**meta, "summary": table, "report": str(report_dir)}, indent=2, default=_nan_safe))
    else:
        print(f"\n{title} — {len(results)} track(s), {seconds:.1f} s")
        print(to_text(table))
    try:
        written = save_report(results, report_dir, title, meta)
    except OSError as e:
        fail(f"{report_dir}: could not write the report ({e.strerror or e}); the scores are printed above")
    if not as_json:
        print(f"\nreport: {report_dir}/ (summary.csv, summary.md, summary.json, "
              f"{', '.join(p.name for k, p in written.items() if k in ('boxplot', 'tracks'))}, per-track JSON)")


def _nan_safe(o: object) -> object:
    return None if isinstance(o, float) and not math.isfinite(o) else str(o)


def _select(ds, names: str | None):  # type: ignore[no-untyped-def]
    if not names:
        return list(ds)
    return [ds.by_name(n.strip()) for n in names.split(",") if n.strip()]


def _progress(items: list, quiet: bool, desc: str):  # type: ignore[no-untyped-def]
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="track", disable=quiet, file=sys.stderr, dynamic_ncols=True)


def _targets(track, produced: dict[str, np.ndarray], fmt: Format) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:  # type: ignore[no-untyped-def]
    """References and estimates of the stems both sides have; MIR-1K (or a dataset with an ``accompaniment`` stem
    the model lacks): accompaniment estimate = sum of the model's non-vocal stems (2-source evaluation)."""
    refs, ests = {}, {}
    for stem, ref in track.sources.items():
        if stem in produced:
            est = produced[stem]
        elif stem == "accompaniment" and "vocals" in produced:
            est = np.sum([v for k, v in produced.items() if k != "vocals"], axis=0)
        else:
            log.warning("track %r: the model gives no %r stem; not scored", track.name, stem)
            continue
        if est.shape != ref.shape:
            if est.shape[-1] != ref.shape[-1]:
                raise EvalInputError(f"track {track.name!r}: estimate of {stem!r} has {est.shape[-1]} samples, "
                                     f"reference {ref.shape[-1]}")
            est = np.broadcast_to(est.mean(axis=0, keepdims=True), ref.shape) if ref.shape[0] == 1 or est.shape[0] == 1 else est
        refs[stem], ests[stem] = ref, np.asarray(est, dtype=np.float32)
    if not refs:
        raise EvalInputError(f"track {track.name!r}: no stem in common between the dataset "
                             f"({', '.join(track.sources)}) and the estimates ({', '.join(produced)})")
    return refs, ests


def _eval_model(tracks: list, model: str, fmt: Format, protocol: str, device: str, quiet: bool) -> list:
    from stemwright.api import Separator
    from stemwright.metrics.report import score_track
    from stemwright.models.registry import MODELS
    from stemwright.pretrained.loading import load_model

    needs_refs = model in MODELS and MODELS[model].needs_references
    shared = None if needs_refs else Separator(model=model, device=device, progress=None)
    results = []
    for track in _progress(tracks, quiet, f"eval {model}"):
        if needs_refs:
            names = tuple(track.sources)
            oracle = load_model(model, references=track.sources, samplerate=track.samplerate, sources=names)
            sep = Separator(model=oracle, device=device)
        else:
            sep = shared
        produced = sep.separate(track.mixture, track.samplerate)
        refs, ests = _targets(track, produced, fmt)
        results.append(score_track(track.name, refs, ests, track.samplerate, protocol=protocol,
                                   mixture=track.mixture if fmt is Format.mir1k else None, subset=track.subset))
        track.unload()
    return results


def _eval_estimates(tracks: list, estimates: Path, fmt: Format, protocol: str, quiet: bool) -> list:
    from stemwright.datasets import DatasetError
    from stemwright.datasets.folder import folder_track
    from stemwright.metrics.report import score_track

    if not estimates.is_dir():
        raise EvalInputError(f"{estimates}: estimates folder not found")
    results = []
    for track in _progress(tracks, quiet, "eval"):
        folder = estimates / track.name
        if not folder.is_dir():
            raise EvalInputError(f"track {track.name!r}: no estimates folder {folder}")
        try:
            est_track = folder_track(folder)
        except DatasetError as e:
            raise EvalInputError(str(e)) from None
        if est_track.samplerate != track.samplerate:
            stem = est_track.source_names[0]  # the stem whose rate the folder's rate is (all must agree)
            raise EvalInputError(f"track {track.name!r}: estimate {stem!r} in {folder} is at {est_track.samplerate} "
                                 f"Hz, the references at {track.samplerate} Hz")
        try:
            produced = est_track.sources
        except DatasetError as e:
            raise EvalInputError(f"track {track.name!r}: estimates of the wrong length or shape ({e})") from None
        for stem, ref in track.sources.items():
            if stem in produced and produced[stem].shape[-1] != ref.shape[-1]:
                raise EvalInputError(f"track {track.name!r}: estimate {stem!r} has {produced[stem].shape[-1]} samples, "
                                     f"reference {ref.shape[-1]} (wrong length)")
        missing = [s for s in track.sources if s not in produced and not (s == "accompaniment" and "vocals" in produced)]
        if missing:
            raise EvalInputError(f"track {track.name!r}: estimates lack stem(s) {', '.join(missing)} in {folder}")
        refs, ests = _targets(track, produced, fmt)
        results.append(score_track(track.name, refs, ests, track.samplerate, protocol=protocol,
                                   mixture=track.mixture if fmt is Format.mir1k else None, subset=track.subset))
        track.unload()
    return results
