"""``stemwright separate``: split songs (files or folders of files) into stems."""
from __future__ import annotations

import json
import logging
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import typer

from stemwright.cli import options
from stemwright.cli.common import INPUT_EXIT, USAGE_EXIT, fail, fail_from, name_list, progress_bar

log = logging.getLogger(__name__)

DEMO_RESOURCE = "data/demo.ogg"


@dataclass(frozen=True)
class Outcome:
    """The result of one input: a manifest on success (``skipped`` when an earlier run had already written it),
    a one-line reason on failure."""

    input: str
    ok: bool
    manifest: Any = None  # stemwright.manifest.Manifest
    manifest_path: str | None = None
    error: str | None = None
    skipped: bool = False

    def as_json(self) -> dict[str, Any]:
        if not self.ok:
            return {"input": self.input, "ok": False, "error": self.error}
        m = self.manifest
        folder = Path(self.manifest_path).parent if self.manifest_path else Path(".")
        return {
            "input": self.input, "ok": True, "skipped": self.skipped, "manifest": self.manifest_path,
            "model": m.model, "stems": {k: str(folder / v) for k, v in m.stems.items()},
            "samplerate": m.samplerate, "duration": m.duration, "seconds": m.seconds, "rtf": m.rtf,
            "peaks": dict(m.peaks), "clip": dict(m.clip),
        }


def demo_path() -> Path:
    """The bundled demo song (rendered by :mod:`stemwright.synth.demo`)."""
    return Path(str(resources.files("stemwright").joinpath(DEMO_RESOURCE)))


def collect_inputs(inputs: list[Path], exclude: Path | None = None) -> list[Path | Outcome]:
    """Expand folders into the audio files below them (sorted; hidden files and anything under ``exclude`` — the
    output folder — skipped, so earlier stems are not separated again), in the order given. A missing path or
    a folder without audio becomes a failed :class:`Outcome` in its place."""
    from stemwright.audio.io import is_audio_path

    skip = exclude.resolve() if exclude is not None else None

    def inside_output(f: Path) -> bool:
        return skip is not None and (skip == f.resolve() or skip in f.resolve().parents)

    items: list[Path | Outcome] = []
    seen: set[Path] = set()
    for p in inputs:
        if p.is_dir():
            audio = sorted(f for f in p.rglob("*") if f.is_file() and is_audio_path(f) and not f.name.startswith("."))
            found = [f for f in audio if not inside_output(f)]
            if not found:
                why = (f"{p}: its {len(audio)} audio file(s) are all inside the output folder {exclude} (skipped so "
                       "that stems are not separated again; choose another -o)") if audio else \
                    f"{p}: folder contains no audio files"
                items.append(Outcome(str(p), False, error=why))
            new = [f for f in found if f not in seen]
        elif p.exists():
            new = [p] if p not in seen else []
        else:
            items.append(Outcome(str(p), False, error=f"{p}: file not found"))
            continue
        seen.update(new)
        items.extend(new)
    return items


def command(
    inputs: list[Path] = typer.Argument(None, help="Audio files or folders (walked for audio files).", show_default=False),
    out: Path = typer.Option(Path("separated"), "-o", "--out", help="Output folder."),
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
    device: options.Device = typer.Option("auto", "-d", "--device", help="Where the model runs."),  # type: ignore[valid-type]
    segment: options.Segment = None,
    overlap: options.Overlap = None,
    shifts: options.Shifts = 0,
    residual: options.Residual = None,
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, help="Files separated in parallel."),
    filename: options.Filename = options.DEFAULT_FILENAME,
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs (and the previous run's other stems)."),
    skip_existing: bool = typer.Option(False, "--skip-existing",
                                       help="Skip tracks already separated from the same file with this model and these options; redo interrupted ones."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON result per input (one per line, in input order, as each is done)."),
    quiet: options.Quiet = False,
    clip_mode: options.ClipMode = "rescale",  # type: ignore[assignment]
    demo: bool = typer.Option(False, "--demo", help="Separate the bundled demo song and print where the stems went."),
    offline: options.Offline = False,
    fast: options.Fast = False,
    ensemble_method: options.EnsembleMethod = None,
    ensemble_weights: options.EnsembleWeights = None,
) -> None:
    """Split songs into stems: OUT/<track>/<stem>.<ext> plus OUT/<track>/stemwright.json."""
    from stemwright.api import ModelSettings

    inputs = list(inputs or [])
    if demo:
        inputs.insert(0, demo_path())
    if not inputs:
        fail("give at least one INPUT file or folder (or --demo)", USAGE_EXIT)
    if overwrite and skip_existing:
        fail("use either --overwrite or --skip-existing, not both", USAGE_EXIT)
    out_format = options.output_format(fmt.value if fmt else None, mp3, flac)
    depth = options.output_bit_depth(bit_depth, int24, float32)
    stem_list = name_list(stems)
    model = options.model_name(model, two_stems)
    # options, then inputs and the output folder, are checked before the model loads (seconds): a typo fails at once
    options.check_early(out, out_format, depth, mp3_bitrate, clip_mode.value, filename, segment, overlap, shifts,
                        device.value)
    items = probe_inputs(collect_inputs(inputs, exclude=out))
    sep = out_options = None
    if any(isinstance(i, Path) for i in items):  # else every input failed: no model is needed to say so
        try:
            sep = ModelSettings(model=model, device=device.value, segment=segment, overlap=overlap, shifts=shifts,
                                residual=residual, offline=offline, fast=fast, ensemble_method=ensemble_method,
                                ensemble_weights=ensemble_weights).separator()
            out_options = sep.options(out_format, depth, mp3_bitrate, clip_mode.value, stem_list, two_stems, filename)
            sep.plan(Path("track.wav"), out, out_options)  # a template that leaves the output folder is a usage error
        except (ValueError, TypeError) as e:  # typed: StemwrightError.exit_code says usage (2) or input (1)
            fail_from(e)
        items = refuse_collisions(sep, items, out, out_options)
    runner = _Runner(sep, out, out_options, overwrite=overwrite, skip_existing=skip_existing or (demo and not overwrite),
                     progress=not quiet)
    failures: list[Outcome] = []
    n_done = n_skipped = 0
    for o in runner.run(items, jobs):  # in input order, each as soon as it (and those before it) is done
        if not o.ok:
            failures.append(o)
        n_done += o.ok and not o.skipped
        n_skipped += o.skipped
        if as_json:
            print(json.dumps(o.as_json()), flush=True)
        elif o.ok and demo and Path(o.input) == demo_path():
            _print_demo(o)
        elif o.ok:
            _print_ok(o)
    if failures:
        done = f"{n_done} separated" + (f", {n_skipped} already done" if n_skipped else "")
        print(f"{len(failures)} input(s) failed, {done}:", file=sys.stderr)
        for f in failures:
            print(f"error: {f.error}", file=sys.stderr)
        raise typer.Exit(INPUT_EXIT)


def probe_inputs(items: list[Path | Outcome]) -> list[Path | Outcome]:
    """Each input file opened and its header read (no decoding): an unreadable one becomes a failed
    :class:`Outcome` in its place, before the model is loaded."""
    from stemwright.audio.stream import open_audio_stream
    from stemwright.errors import AudioError

    checked: list[Path | Outcome] = []
    for item in items:
        if isinstance(item, Path):
            try:
                with open_audio_stream(item):
                    pass
            except AudioError as e:
                item = Outcome(str(item), False, error=str(e))
        checked.append(item)
    return checked


def refuse_collisions(sep: Any, items: list[Path | Outcome], out: Path, options: Any) -> list[Path | Outcome]:
    """Inputs whose outputs would land on an earlier input's files (``A/01.wav`` and ``B/01.wav`` with the
    default layout) fail before any work: a run never overwrites its own output."""
    from stemwright.output import refuse_input_as_output
    from stemwright.errors import StemwrightError

    owner: dict[Path, Path] = {}
    checked: list[Path | Outcome] = []
    inputs = [i for i in items if isinstance(i, Path)]
    for item in items:
        if isinstance(item, Outcome):
            checked.append(item)
            continue
        try:
            plan = sep.plan(item, out, options)
            refuse_input_as_output(plan, inputs)  # any input of the run, not only this one
        except StemwrightError as e:
            checked.append(Outcome(str(item), False, error=str(e) if str(item) in str(e) else f"{item}: {e}"))
            continue
        targets = [*plan.stem_paths.values(), plan.manifest_path]
        clash = next((owner[t] for t in targets if t in owner), None)
        if clash is not None:
            checked.append(Outcome(str(item), False, error=(
                f"{item}: its stems would overwrite those of {clash} in this run (same track name); "
                + _collision_advice(sep, out, options, item, clash))))
            continue
        owner.update({t: item for t in targets})
        checked.append(item)
    return checked


def _collision_advice(sep: Any, out: Path, options: Any, a: Path, b: Path) -> str:
    """A ``--filename`` that keeps ``a`` and ``b`` apart (the current template with a folder field in front), or
    the news that no template field can."""
    from dataclasses import replace

    for field in ("{parent}", "{ext_in}"):
        if field in options.filename:
            continue
        candidate = replace(options, filename=f"{field}/{options.filename}")
        if sep.plan(a, out, candidate).manifest_path != sep.plan(b, out, candidate).manifest_path:
            return f"keep them apart with --filename \"{candidate.filename}\""
    return ("no --filename field keeps them apart (same folder, track name and extension): separate them in two "
            "runs with different -o folders")


class _Runner:
    """Separates the inputs (``jobs`` at a time) and yields their outcomes in input order."""

    def __init__(self, sep: Any, out: Path, options: Any, *, overwrite: bool, skip_existing: bool, progress: bool):
        self.sep, self.out, self.options = sep, out, options
        self.overwrite, self.skip_existing, self.progress = overwrite, skip_existing, progress
        self._slots: list[int] = []
        self._lock = threading.Lock()

    def run(self, items: list[Path | Outcome], jobs: int) -> Iterator[Outcome]:
        work: Callable[[Path | Outcome], Outcome] = lambda item: item if isinstance(item, Outcome) else self.one(item)
        if jobs <= 1 or len(items) <= 1:
            yield from map(work, items)
            return
        self._slots = list(range(jobs))
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            yield from pool.map(work, items)  # map yields in input order

    def one(self, path: Path) -> Outcome:
        from stemwright.output import track_name

        with self._lock:
            slot = self._slots.pop(0) if self._slots else None
        name = track_name(path)[:40]
        bar = progress_bar(1.0, f"{name} {'':<9}", enabled=self.progress, position=slot)
        stages: list[str] = []
        try:
            def on_progress(ev: Any) -> None:
                bar.n = round(ev.fraction, 3)
                bar.set_description_str(f"{name} {ev.stage:<9}", refresh=True)
                if bar.disable and (not stages or stages[-1] != ev.stage):
                    stages.append(ev.stage)
                    log.info("%s: %s", path, ev.stage)  # no terminal: one plain line per stage, with -v

            outcome = self._separate(path, on_progress)
            status = "skipped" if outcome.skipped else "done" if outcome.ok else "failed"
            bar.n = 1.0
            bar.set_description_str(f"{name} {status:<9}", refresh=True)
            if bar.disable and self.progress:  # no terminal: one plain line per track, never a carriage return
                print(f"{path}: {status}", file=sys.stderr, flush=True)
            return outcome
        finally:
            bar.close()
            if slot is not None:
                with self._lock:
                    self._slots.append(slot)

    def _separate(self, path: Path, progress: Any) -> Outcome:
        from stemwright.errors import OtherRunExists, OutputExists, StemwrightError

        try:
            result = self.sep.separate_file(path, self.out, progress=progress, overwrite=self.overwrite,
                                            skip_existing=self.skip_existing, options=self.options)
        except StemwrightError as e:  # the message says what and why; the library names no flags, the CLI does
            msg = str(e)
            if isinstance(e, OtherRunExists):
                msg = f"{msg} (use --overwrite to replace them)"
            elif isinstance(e, OutputExists):
                msg = f"{e.path}: already exists (use --overwrite to replace it, or --skip-existing)"
            return Outcome(str(path), False, error=msg if str(path) in msg else f"{path}: {msg}")
        except Exception as e:  # noqa: BLE001 - a batch goes on past any one file's failure
            log.debug("separation of %s failed", path, exc_info=True)
            return Outcome(str(path), False, error=f"{path}: {type(e).__name__}: {e}")
        return Outcome(str(path), True, manifest=result.manifest, manifest_path=str(result.manifest_path),
                       skipped=result.skipped)


def _print_demo(o: Outcome) -> None:
    folder = Path(o.manifest_path or ".").parent
    head = "The demo song was already separated" if o.skipped else "Separated the demo song"
    print(f"{head} with model '{o.manifest.model}'. Stems are in {folder}/:")
    for name, rel in o.manifest.stems.items():
        print(f"  {name:<10} {folder / rel}")
    print(f"  manifest   {o.manifest_path}")
    if o.skipped:
        print("(use --overwrite to separate it again)")


def _print_ok(o: Outcome) -> None:
    folder = Path(o.manifest_path or ".").parent
    stems = ", ".join(o.manifest.stems)
    if o.skipped:
        print(f"{o.input} -> {folder}/ [{stems}] already separated with these settings (skipped)")
        return
    print(f"{o.input} -> {folder}/ [{stems}] in {o.manifest.seconds:.1f} s "
          f"(real-time factor {o.manifest.rtf or 0:.3f})")
