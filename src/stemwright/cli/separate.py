"""``stemwright separate``: split songs (files or folders of files) into stems."""
from __future__ import annotations

import json
import logging
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import Enum
from importlib import resources
from pathlib import Path
from typing import Any, Optional

import typer

from stemwright.models.defaults import DEFAULT_MODEL, DEFAULT_VOCALS_MODEL

log = logging.getLogger(__name__)

DEMO_RESOURCE = "data/demo.ogg"


class OutFormat(str, Enum):
    wav = "wav"
    flac = "flac"
    mp3 = "mp3"


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"
    mps = "mps"


class ClipMode(str, Enum):
    rescale = "rescale"
    clamp = "clamp"
    none = "none"


@dataclass
class Outcome:
    """The result of one input: a manifest on success, a one-line reason on failure."""

    input: str
    ok: bool
    manifest: dict[str, Any] | None = None
    manifest_path: str | None = None
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        if not self.ok:
            return {"input": self.input, "ok": False, "error": self.error}
        m = self.manifest or {}
        folder = Path(self.manifest_path).parent if self.manifest_path else None
        return {
            "input": self.input,
            "ok": True,
            "manifest": self.manifest_path,
            "stems": {k: str(folder / v) if folder else v for k, v in m.get("stems", {}).items()},
            "samplerate": m.get("samplerate"),
            "duration": m.get("duration"),
            "seconds": m.get("seconds"),
            "rtf": m.get("rtf"),
            "peaks": m.get("peaks"),
            "clip": m.get("clip"),
        }


def demo_path() -> Path:
    """The bundled demo song (rendered by :mod:`stemwright.synth.demo`)."""
    return Path(str(resources.files("stemwright").joinpath(DEMO_RESOURCE)))


def collect_inputs(inputs: list[Path], exclude: Path | None = None) -> tuple[list[Path], list[Outcome]]:
    """Expand folders into the audio files below them (sorted, hidden files and anything under ``exclude`` — the
    output folder — skipped, so earlier stems are not separated again); missing paths become failures."""
    from stemwright.audio.io import is_audio_path

    skip = exclude.resolve() if exclude is not None else None

    def wanted(f: Path) -> bool:
        if not f.is_file() or not is_audio_path(f) or f.name.startswith("."):
            return False
        return skip is None or skip not in f.resolve().parents

    files: list[Path] = []
    failures: list[Outcome] = []
    for p in inputs:
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if wanted(f))
            if not found:
                failures.append(Outcome(str(p), False, error=f"{p}: folder contains no audio files"))
            files.extend(found)
        elif p.exists():
            files.append(p)
        else:
            failures.append(Outcome(str(p), False, error=f"{p}: file not found"))
    return list(dict.fromkeys(files)), failures


def _usage_error(message: str) -> typer.BadParameter:
    return typer.BadParameter(message)


def command(
    inputs: list[Path] = typer.Argument(None, help="Audio files or folders (walked for audio files).", show_default=False),
    out: Path = typer.Option(Path("separated"), "-o", "--out", help="Output folder."),
    model: Optional[str] = typer.Option(None, "-m", "--model", show_default=False, help=f"Model name ('stemwright models'), or a checkpoint path [default: {DEFAULT_MODEL}; {DEFAULT_VOCALS_MODEL} with --two-stems vocals]."),
    stems: Optional[str] = typer.Option(None, "--stems", help="Comma-separated stems to write, e.g. vocals,drums."),
    two_stems: Optional[str] = typer.Option(None, "--two-stems", help="Write STEM and no_STEM (the rest)."),
    fmt: OutFormat = typer.Option(OutFormat.wav, "--format", help="Output format."),
    bit_depth: int = typer.Option(24, "--bit-depth", help="wav: 16, 24 or 32 (float); flac: 16 or 24."),
    mp3_bitrate: int = typer.Option(320, "--mp3-bitrate", help="mp3 bitrate in kbit/s (32-320)."),
    device: Device = typer.Option(Device.auto, "--device", help="Where the model runs."),
    segment: Optional[float] = typer.Option(None, "--segment", help="Chunk length in seconds (default: the model's)."),
    overlap: Optional[float] = typer.Option(None, "--overlap", help="Overlap between chunks, in [0, 1) (default: the model's publisher's, else 0.25)."),
    shifts: int = typer.Option(0, "--shifts", help="Average N randomly shifted passes (slower, slightly better)."),
    residual: Optional[str] = typer.Option(None, "--residual", help="Put mixture minus the other stems into STEM."),
    jobs: int = typer.Option(1, "--jobs", "-j", help="Files separated in parallel."),
    filename: str = typer.Option("{track}/{stem}.{ext}", "--filename", help="Output path template: {track} {stem} {ext} {model}."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON result per input (one per line)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    clip_mode: ClipMode = typer.Option(ClipMode.rescale, "--clip-mode", help="Peaks over full scale: rescale all stems, clamp, or keep (float wav)."),
    demo: bool = typer.Option(False, "--demo", help="Separate the bundled demo song and print where the stems went."),
    offline: bool = typer.Option(False, "--offline", help="Never download model weights."),
) -> None:
    """Split songs into stems: OUT/<track>/<stem>.<ext> plus OUT/<track>/stemwright.json."""
    from stemwright.api import Separator, SeparationError

    # Library warnings (e.g. a downmixed 6-channel file) as one plain line each on stderr.
    warnings.formatwarning = lambda message, category, *args, **kwargs: f"warning: {message}\n"
    inputs = list(inputs or [])
    if demo:
        inputs.insert(0, demo_path())
    if not inputs:
        raise _usage_error("give at least one INPUT file or folder (or --demo)")
    _check_options(fmt.value, bit_depth, mp3_bitrate, overlap, shifts, jobs, segment, stems, two_stems)
    stem_list = [s.strip() for s in stems.split(",") if s.strip()] if stems else None
    model = model or (DEFAULT_VOCALS_MODEL if two_stems == "vocals" else DEFAULT_MODEL)

    try:
        sep = Separator(model=model, device=device.value, segment=segment, overlap=overlap, shifts=shifts,
                        residual=residual, offline=offline)
    except (SeparationError, ValueError, TypeError) as e:
        raise _usage_error(str(e)) from None
    try:
        names = sep._selected(stem_list, two_stems)  # noqa: SLF001 - validate the selection before any work
        sep.output_paths(Path("track.wav"), out, names, fmt.value, filename)  # and the --filename template
    except SeparationError as e:
        raise _usage_error(str(e)) from None

    files, failures = collect_inputs(inputs, exclude=out)
    options = dict(fmt=fmt.value, bit_depth=bit_depth, mp3_bitrate=mp3_bitrate, clip_mode=clip_mode.value,
                   stems=stem_list, two_stems=two_stems, filename=filename, overwrite=overwrite)
    if demo and not overwrite:
        done = _existing_demo(sep, out, options)
        if done is not None:
            files = [f for f in files if f != demo_path()]
            _print_demo(done, already=True)
    outcomes = _run_all(sep, files, out, options, jobs=jobs, show_progress=not quiet)
    for o in outcomes:
        if as_json:
            print(json.dumps(o.as_json()), flush=True)
        elif o.ok:
            if demo and Path(o.input) == demo_path():
                _print_demo(Path(o.manifest_path or "."))
            else:
                _print_ok(o)
    failures += [o for o in outcomes if not o.ok]
    for f in failures:
        if as_json and f not in outcomes:
            print(json.dumps(f.as_json()), flush=True)
    if failures:
        n_ok = sum(o.ok for o in outcomes)
        print(f"{len(failures)} input(s) failed, {n_ok} separated:", file=sys.stderr)
        for f in failures:
            print(f"error: {f.error}", file=sys.stderr)
        raise typer.Exit(1)


def _check_options(fmt: str, bit_depth: int, mp3_bitrate: int, overlap: float | None, shifts: int, jobs: int,
                   segment: float | None, stems: str | None, two_stems: str | None) -> None:
    if fmt == "wav" and bit_depth not in (16, 24, 32):
        raise _usage_error(f"--bit-depth for wav must be 16, 24 or 32, got {bit_depth}")
    if fmt == "flac" and bit_depth not in (16, 24):
        raise _usage_error(f"--bit-depth for flac must be 16 or 24, got {bit_depth}")
    if not 32 <= mp3_bitrate <= 320:
        raise _usage_error(f"--mp3-bitrate must be 32-320 kbit/s, got {mp3_bitrate}")
    if overlap is not None and not 0 <= overlap < 1:
        raise _usage_error(f"--overlap must be in [0, 1), got {overlap}")
    if shifts < 0:
        raise _usage_error(f"--shifts must be >= 0, got {shifts}")
    if jobs < 1:
        raise _usage_error(f"--jobs must be >= 1, got {jobs}")
    if segment is not None and segment <= 0:
        raise _usage_error(f"--segment must be a positive number of seconds, got {segment}")
    if stems and two_stems:
        raise _usage_error("use either --stems or --two-stems, not both")


def _separate_one(sep: Any, path: Path, out: Path, options: dict[str, Any], progress: Any) -> Outcome:
    from stemwright.audio.io import AudioError

    try:
        result = sep.separate_file(path, out, progress=progress, **options)
    except (AudioError, ValueError) as e:
        msg = str(e)
        return Outcome(str(path), False, error=msg if str(path) in msg else f"{path}: {msg}")
    except Exception as e:  # noqa: BLE001 - a batch goes on past any one file's failure
        log.debug("separation of %s failed", path, exc_info=True)
        return Outcome(str(path), False, error=f"{path}: {type(e).__name__}: {e}")
    return Outcome(str(path), True, manifest=result.manifest, manifest_path=str(result.manifest_path))


def _run_all(sep: Any, files: list[Path], out: Path, options: dict[str, Any], *, jobs: int,
             show_progress: bool) -> list[Outcome]:
    if not files:
        return []
    if not show_progress:
        return _map(lambda f: _separate_one(sep, f, out, options, None), files, jobs)
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
               TextColumn("{task.fields[stage]}"), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        def work(path: Path) -> Outcome:
            from stemwright.api import track_name

            task = bar.add_task(track_name(path)[:40], total=1.0, stage="")

            def on_progress(ev: Any) -> None:
                bar.update(task, completed=ev.fraction, stage=ev.stage)

            outcome = _separate_one(sep, path, out, options, on_progress)
            bar.update(task, completed=1.0, stage="done" if outcome.ok else "failed")
            return outcome

        return _map(work, files, jobs)


def _map(fn: Any, items: list[Path], jobs: int) -> list[Outcome]:
    if jobs <= 1 or len(items) <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(fn, items))


def _existing_demo(sep: Any, out: Path, options: dict[str, Any]) -> Path | None:
    """The demo's manifest when a previous ``--demo`` run already wrote every output, else ``None``."""
    names = sep._selected(options["stems"], options["two_stems"])  # noqa: SLF001
    paths, manifest = sep.output_paths(demo_path(), out, names, options["fmt"], options["filename"])
    return manifest if manifest.exists() and all(p.exists() for p in paths.values()) else None


def _print_demo(manifest_path: Path, already: bool = False) -> None:
    data = json.loads(manifest_path.read_text())
    folder = manifest_path.parent
    head = "The demo song was already separated" if already else "Separated the demo song"
    print(f"{head} with model '{data.get('model')}'. Stems are in {folder}/:")
    for name, rel in data.get("stems", {}).items():
        print(f"  {name:<10} {folder / rel}")
    print(f"  manifest   {manifest_path}")
    if already:
        print("(use --overwrite to separate it again)")


def _print_ok(o: Outcome) -> None:
    m = o.manifest or {}
    folder = Path(o.manifest_path or ".").parent
    stems = ", ".join(m.get("stems", {}))
    print(f"{o.input} -> {folder}/ [{stems}] in {m.get('seconds', 0):.1f} s (real-time factor {m.get('rtf') or 0:.3f})")
