"""The output pipeline of a file separation: where the files go (templates, plans), whether an earlier run
already wrote them (:func:`run_difference`), and writing them (spooling, atomic renames, cleanup on any failure).

:class:`stemwright.api.Separator` drives it; nothing here runs a model.
"""
from __future__ import annotations

import contextlib
import logging
import os
import string
from dataclasses import dataclass
from glob import escape as glob_escape
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from stemwright.atomic import atomic_write, check_writable_folder, temporary_beside
from stemwright.audio.io import CLIP_MODES, _out_of_space, apply_clip, check_write_options, clip_report
from stemwright.audio.stream import BlockWriter, FloatSpool, open_audio_stream
from stemwright.engine.progress import ProgressCallback, ProgressEvent
from stemwright.errors import AudioError, OutputExists, OutputIsInput, SeparationError
from stemwright.manifest import MANIFEST_NAME, InputInfo, Manifest, ManifestError, SeparationOptions, input_fingerprint

# Told each block of the stems as it is written: {stem: (C, m) float32}, in time order.
StemBlockCallback = Callable[[dict[str, np.ndarray]], None]

log = logging.getLogger(__name__)

FILENAME_FIELDS = ("track", "stem", "ext", "model", "parent", "ext_in")
DEFAULT_FILENAME = "{track}/{stem}.{ext}"


def track_name(path: str | Path) -> str:
    """Track name of an input file: its name without extension (``song.stem.mp4`` -> ``song``)."""
    name = Path(path).name
    lower = name.lower()
    if lower.endswith(".stem.mp4"):
        return name[: -len(".stem.mp4")]
    return Path(name).stem


def check_output_options(fmt: str, bit_depth: int, mp3_bitrate: int, clip_mode: str, filename: str,
                         outdir: str | Path | None = None) -> str:
    """The output options that need no model: format (returned lower-case), bit depth, bitrate, clip mode and the
    filename template (and, with ``outdir``, that it stays inside it). :class:`SeparationError` otherwise."""
    fmt = fmt.lower()
    try:
        check_write_options(fmt, bit_depth, mp3_bitrate)
    except ValueError as e:
        raise SeparationError(str(e)) from None
    if clip_mode not in CLIP_MODES:
        raise SeparationError(f"clip mode must be one of {', '.join(CLIP_MODES)}, got {clip_mode!r}")
    check_filename(filename)
    if outdir is not None:
        plan_outputs(Path("track.wav"), outdir, ["stem"], fmt, filename, "model")
    return fmt


@dataclass(frozen=True)
class EarlierRun:
    """A finished run found in a track's folder: its manifest and what differs from the run asked for now
    (``None``: it wrote exactly what this run would). ``damaged``: only its stem files changed since (missing
    or of another size), same input and settings, so redoing the track loses nothing."""

    manifest: Manifest
    difference: str | None
    damaged: bool = False


def run_difference(old: Manifest, model: str, options: SeparationOptions, plan: OutputPlan) -> EarlierRun:
    """Compare a finished run's manifest with a run of ``model`` and ``options`` on ``plan.input``: model,
    compared options, stem paths, the input's identity (resolved path, size, modification time, fingerprint,
    rate, channels, duration), then each stem file's size. The first difference is named."""
    if old.model != model:
        return EarlierRun(old, f"separated with model {old.model!r}, not {model!r}")
    for key in SeparationOptions.COMPARED:
        was, now = getattr(old.parameters, key), getattr(options, key)
        if was != now:
            return EarlierRun(old, f"separated with {key} {was!r}, not {now!r}")
    if old.stem_paths(plan.manifest_path.parent) != plan.stem_paths:
        return EarlierRun(old, "its stems have other file names")
    changed = _input_change(old.input, plan.input)
    if changed is not None:
        return EarlierRun(old, changed)
    for name, p in plan.stem_paths.items():
        if not p.is_file():
            return EarlierRun(old, f"stem file {p} is missing", damaged=True)
        size, written = _file_size(p), old.stem_bytes.get(name)
        if written is not None and size != written:
            return EarlierRun(old, f"stem file {p} has {size} bytes, the run wrote {written}", damaged=True)
    return EarlierRun(old, None)


def _input_change(info: InputInfo, path: Path) -> str | None:
    """How the input differs from the one a manifest records (``None``: the same file, unchanged)."""
    resolved = str(path.resolve())
    if info.path != resolved:
        return f"separated from {info.path}, not {resolved}"
    if info.fingerprint is None:
        return "its manifest does not record which file was separated (written by an older stemwright)"
    try:
        now = _input_identity(path)
    except OSError as e:
        return f"its input cannot be read ({e.strerror or e})"
    for key, what in (("size", "size"), ("mtime", "modification time"), ("fingerprint", "content")):
        if getattr(info, key) != now[key]:
            return f"its input {path} has changed since (other {what})"
    try:
        with open_audio_stream(path) as audio:
            rate, channels, frames = audio.samplerate, audio.channels, audio.frames
    except AudioError as e:
        return f"its input cannot be read ({e.reason})"
    # the header's length is a hint (compressed files may not know it exactly): a tenth of a second's slack
    if (rate, channels) != (info.samplerate, info.channels) or (
            frames is not None and abs(frames / rate - info.duration) > 0.1):
        return f"its input {path} has changed since (rate, channels or duration)"
    return None


def _input_identity(path: str | Path) -> dict[str, Any]:
    """``size``, ``mtime`` and ``fingerprint`` of an input file, as recorded in :class:`InputInfo`."""
    st = os.stat(path)
    return {"size": st.st_size, "mtime": st.st_mtime, "fingerprint": input_fingerprint(path)}


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return -1


def _keeps_over_full_scale(options: SeparationOptions) -> bool:
    """Whether the output format stores samples over full scale (32-bit float wav); the others clamp them."""
    return options.format == "wav" and options.bit_depth == 32


def refuse_input_as_output(plan: OutputPlan, inputs: Iterable[Path]) -> None:
    """:class:`OutputIsInput` when an output of ``plan`` is one of ``inputs`` (the same path, a symlink to it or
    a hard link of it): an input is never replaced, not even when overwriting."""
    sources = [(Path(p), Path(p).resolve()) for p in inputs]
    for out in [*plan.stem_paths.values(), plan.manifest_path]:
        for src, resolved in sources:
            if out.resolve() == resolved or (out.exists() and src.exists() and os.path.samefile(out, src)):
                raise OutputIsInput(out, f"is the input {src}: an input is never replaced (choose another output "
                                         "folder or --filename)")


@dataclass(frozen=True)
class OutputPlan:
    """Where one input's outputs go: ``stem_paths`` and the manifest in their common folder; ``outdir`` is the
    run's output folder (folders below it that a failed run created are removed again)."""

    input: Path
    outdir: Path
    stem_paths: dict[str, Path]
    manifest_path: Path


def select_stems(sources: tuple[str, ...] | list[str], stems: list[str] | tuple[str, ...] | None = None,
                 two_stems: str | None = None) -> list[str]:
    """The stem names to write: all ``sources``, the chosen ``stems`` (in the given order, duplicates dropped),
    or ``[two_stems, "no_" + two_stems]``. Raises :class:`SeparationError` for names the model does not have."""
    if stems and two_stems:
        raise SeparationError("choose either stems or two_stems, not both")
    if two_stems is not None:
        if two_stems not in sources:
            raise SeparationError(f"two_stems: {two_stems!r} is not one of the model's stems ({', '.join(sources)})")
        return [two_stems, f"no_{two_stems}"]
    if stems:
        unknown = [s for s in stems if s not in sources]
        if unknown:
            raise SeparationError(f"stems: {', '.join(map(repr, unknown))} not among the model's stems ({', '.join(sources)})")
        return list(dict.fromkeys(stems))
    return list(sources)


def select_outputs(separated: dict[str, np.ndarray], names: list[str], two_stems: str | None,
                   mix: np.ndarray) -> dict[str, np.ndarray]:
    """The arrays to write, by name: the chosen stems, or ``X`` and ``no_X = mixture - X`` (so the two always
    sum to the mixture). Shapes: ``(C, T)`` each."""
    if two_stems is None:
        return {n: separated[n] for n in names}
    stem = separated[two_stems]
    mix = mix if stem.shape[0] == mix.shape[0] else mix.mean(axis=0, keepdims=True)
    return {two_stems: stem, f"no_{two_stems}": (mix - stem).astype(np.float32)}


def check_filename(filename: str) -> set[str]:
    """The fields of an output path template; :class:`SeparationError` for unknown fields, conversions
    (``{stem!r}``), format specs (``{stem:>10}``) or a template without ``{stem}``."""
    try:
        parsed = list(string.Formatter().parse(filename))
    except ValueError as e:
        raise SeparationError(f"filename template {filename!r}: {e}") from None
    fields = set()
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if conversion or spec:
            raise SeparationError(f"filename template {filename!r}: conversions and format specs are not allowed "
                                  f"(write plain {{{name}}})")
        fields.add(name)
    unknown = sorted(fields - set(FILENAME_FIELDS))
    if unknown:
        raise SeparationError(f"filename template: unknown field(s) {', '.join('{' + u + '}' for u in unknown)} "
                              f"(use {', '.join('{' + f + '}' for f in FILENAME_FIELDS)})")
    if "stem" not in fields:
        raise SeparationError("filename template must contain {stem}, or every stem would go to the same file")
    return fields


def plan_outputs(path: str | Path, outdir: str | Path, stems: list[str], ext: str, filename: str,
                 model: str) -> OutputPlan:
    """Fill the template: ``{track}`` (file name without extension), ``{parent}`` (the input's folder name, e.g.
    a MUSDB track folder holding ``mixture.wav``), ``{stem}``, ``{ext}``, ``{model}``, ``{ext_in}`` (the input's
    extension, e.g. ``wav`` or ``stem.mp4``: keeps ``song.wav`` and ``song.mp3`` apart). The manifest goes in the
    stems' common folder; every path must stay inside ``outdir``."""
    check_filename(filename)
    outdir = Path(outdir)
    source = Path(path)
    parent = source.resolve().parent.name or "root"
    ext_in = source.name[len(track_name(source)):].lstrip(".").lower() or "none"
    paths = {s: outdir / filename.format(track=track_name(source), stem=s, ext=ext, model=model, parent=parent,
                                         ext_in=ext_in) for s in stems}
    # by the template's text (not following an existing file's symlink: that is refuse_input_as_output's case)
    root = Path(os.path.abspath(outdir))
    for s, p in paths.items():
        if root not in Path(os.path.normpath(os.path.abspath(p))).parents:
            raise SeparationError(f"filename template puts stem {s!r} outside the output folder ({p})")
    common = Path(os.path.commonpath([str(p.parent) for p in paths.values()]))
    return OutputPlan(source, outdir, paths, common / MANIFEST_NAME)


def check_outputs(plan: OutputPlan, overwrite: bool) -> None:
    """Fail before any work when an output exists (without ``overwrite``) or its folder could not be created or
    written. Creates nothing: folders appear when the first file is written."""
    for p in [*plan.stem_paths.values(), plan.manifest_path]:
        if p.exists() and not overwrite:
            raise OutputExists(p, "already exists (choose to overwrite or skip existing outputs)")
    for folder in {p.parent for p in plan.stem_paths.values()}:
        check_writable_folder(folder)


def write_stream(plan: OutputPlan, names: list[str], pairs: Iterable[tuple[np.ndarray, dict[str, np.ndarray]]],
                 samplerate: int, options: SeparationOptions, overwrite: bool,
                 progress: ProgressCallback | None = None,
                 on_block: StemBlockCallback | None = None) -> tuple[dict, dict[str, float], int]:
    """Write the stems of a stream of ``(mix block, {stem: block})`` pairs, each to a temporary name beside its
    path, renamed when every stem is complete; on any failure (a truncated input found at its end, a full disk,
    a signal) the temporaries are removed and nothing is left. ``clip_mode`` ``rescale`` needs the song's peak
    first: the stems go to raw float spools, then a second streamed pass scales and encodes them.

    ``on_block`` sees each block of the written stems, ``{stem: (C, m)}``, before the clip policy.

    Returns the clip report, each written stem's peak (after the clip policy) and the channel count.
    """
    for p in plan.stem_paths.values():
        if p.exists() and not overwrite:
            raise OutputExists(p, "already exists (choose to overwrite or skip existing outputs)")
    mode = options.clip_mode
    paths = list(plan.stem_paths.items())
    state: dict[str, Any] = {"raw_peak": 0.0, "peaks": {n: 0.0 for n in names}, "channels": 0}

    def encode(tmps: list[Path]) -> None:
        two_pass = mode == "rescale"
        with contextlib.ExitStack() as stack:
            spools: dict[str, FloatSpool] = {}
            writers: dict[str, BlockWriter] = {}
            for (name, p), tmp in zip(paths, tmps):
                if two_pass:
                    spool_path = stack.enter_context(temporary_beside(p, suffix=".spool.f32"))
                    spools[name] = FloatSpool(spool_path, 0)
                    stack.callback(spools[name].close)
            for mix, stems in pairs:
                out = select_outputs(stems, names, options.two_stems, mix)
                if on_block is not None and next(iter(out.values())).shape[-1]:
                    on_block(out)
                if not state["channels"]:
                    state["channels"] = int(next(iter(out.values())).shape[0])
                    if two_pass:
                        for spool in spools.values():
                            spool.channels = state["channels"]
                    else:
                        for (name, _), tmp in zip(paths, tmps):
                            writers[name] = _writer(tmp, samplerate, state["channels"], options)
                            stack.callback(writers[name].close, False)
                for name, block in out.items():
                    peak = float(np.max(np.abs(block))) if block.size else 0.0
                    state["raw_peak"] = max(state["raw_peak"], peak)
                    with _write_errors(plan.stem_paths[name], block.nbytes):
                        if two_pass:
                            spools[name].write(block)
                        else:
                            block = apply_clip(block, peak, mode)  # clamp/none work sample by sample
                            state["peaks"][name] = max(state["peaks"][name], float(np.max(np.abs(block), initial=0.0)))
                            writers[name].write(block)
            if two_pass:
                _emit(progress, 0.9, "write")
                gain_peak = state["raw_peak"]
                for (name, p), tmp in zip(paths, tmps):
                    with _write_errors(p, spools[name].frames * 4 * max(1, state["channels"])):
                        w = _writer(tmp, samplerate, state["channels"], options)
                        try:
                            for block in spools[name].blocks():
                                block = apply_clip(block, gain_peak, mode)
                                state["peaks"][name] = max(state["peaks"][name],
                                                           float(np.max(np.abs(block), initial=0.0)))
                                w.write(block)
                        except BaseException:
                            w.close(flush=False)
                            raise
                        w.close()
            else:
                for name, w in writers.items():
                    with _write_errors(plan.stem_paths[name], 0):
                        w.close()
                writers.clear()
                stack.pop_all()

    try:
        _atomic_many([(p, f".part.{options.format}") for _, p in paths], encode)
    except OSError as e:  # creating a folder or a temporary name, or a rename
        raise AudioError(plan.manifest_path.parent, f"could not write stems ({e.strerror or e})") from None
    return clip_report(state["raw_peak"], mode), state["peaks"], state["channels"]


@contextlib.contextmanager
def _write_errors(path: Path, nbytes: int) -> Iterator[None]:
    """Writer failures as one :class:`AudioError` naming the stem (libsndfile reports a full disk as "System
    error." with no errno: the free space says it, as in ``write_audio``)."""
    try:
        yield
    except (AudioError, KeyboardInterrupt, SystemExit):
        raise
    except Exception as e:  # noqa: BLE001 - any writer failure is reported against the file
        if _out_of_space(e, path.parent if path.parent.exists() else Path("."), nbytes):
            raise AudioError(path, "could not write: no space left on device") from None
        raise AudioError(path, f"could not write ({type(e).__name__}: {e})") from None


def _writer(tmp: Path, samplerate: int, channels: int, options: SeparationOptions) -> BlockWriter:
    return BlockWriter(tmp, samplerate, channels, options.format, options.bit_depth or 24, options.mp3_bitrate or 320)


def _atomic_many(targets: list[tuple[Path, str]], write: Any) -> None:
    """``write(temporary paths)`` then rename each to its target (``atomic_write`` nested: every temporary is
    removed if anything fails, and by the signal handlers)."""
    def nest(i: int, tmps: list[Path]) -> None:
        if i == len(targets):
            write(tmps)
            return
        path, suffix = targets[i]
        atomic_write(path, lambda tmp: nest(i + 1, [*tmps, tmp]), suffix=suffix)

    nest(0, [])


def _dbfs(peak: float) -> float | None:
    return round(20 * np.log10(peak), 3) if peak > 0 else None


def _previous_run(plan: OutputPlan) -> Manifest | None:
    if not plan.manifest_path.is_file():
        return None
    try:
        return Manifest.read(plan.manifest_path)
    except ManifestError as e:
        log.warning("%s; its stems are not tracked", e)
        return None


def remove_leftovers(plan: OutputPlan) -> None:
    """What an interrupted separation of ``plan``'s input left (temporaries, spools, empty folders), removed:
    for a caller whose workers were stopped without running their own cleanup (``batch`` after Ctrl-C)."""
    _remove_stale_temporaries(plan)
    _remove_empty_dirs(plan)


def _remove_stale_temporaries(plan: OutputPlan) -> None:
    """Delete what a killed run (SIGKILL, out of memory, a lost node: no handler runs) left of this track's
    outputs: ``.<stem file>.XXXX.part.<ext>`` temporaries and ``.spool.f32`` spools. A track is separated by one
    run at a time, so these are nobody's work in progress."""
    for p in plan.stem_paths.values():
        if p.parent.is_dir():
            for leftover in p.parent.glob(f".{glob_escape(p.name)}.*"):
                if leftover.name.endswith((f".part{p.suffix}", ".spool.f32")):
                    log.info("removing %s, left by an interrupted run", leftover)
                    _remove_files([leftover])


def _remove_files(paths: Any) -> None:
    for p in paths:
        try:
            Path(p).unlink(missing_ok=True)
        except OSError as e:
            log.warning("could not remove %s: %s", p, e.strerror or e)


def _remove_empty_dirs(plan: OutputPlan) -> None:
    """Remove the (now empty) folders below the output folder that hold this plan's outputs."""
    root = plan.outdir.resolve()
    for folder in sorted({p.parent.resolve() for p in plan.stem_paths.values()}, key=lambda f: -len(f.parts)):
        while folder != root and root in folder.parents:
            try:
                folder.rmdir()
            except OSError:
                break  # not empty (another track's files) or already gone
            folder = folder.parent


def _emit(progress: ProgressCallback | None, fraction: float, stage: str, message: str = "") -> None:
    if progress is not None:
        progress(ProgressEvent(fraction, stage, 0, 0, message))
