"""The Python API: :class:`Separator` separates arrays and files into stems.

```python
sep = stemwright.Separator(model="classic")
stems = sep.separate(audio, samplerate)            # dict[str, np.ndarray (C, T)] at the input rate
result = sep.separate_file("song.mp3", "out")      # writes out/song/{vocals,drums,bass,other}.wav + stemwright.json
```

Where the audio comes from lives here; where it goes (templates, plans, atomic writes, cleanup) is
:mod:`stemwright.output`; the chunk loop is :func:`stemwright.engine.run.separate_tensor`.
"""
from __future__ import annotations

import logging
import os
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import torch
from torch import nn

from stemwright import __version__
from stemwright.audio.channels import downmix_description, downmix_to_stereo
from stemwright.audio.stream import StreamResampler, open_audio_stream
from stemwright.errors import AudioError, OtherRunExists, SeparationError
from stemwright.manifest import InputInfo, Manifest, ManifestError, SeparationOptions
# the output pipeline; names a caller may import from here too (track_name, select_outputs, ...) are re-exported
from stemwright.output import (DEFAULT_FILENAME, FILENAME_FIELDS, EarlierRun, OutputPlan, StemBlockCallback, _dbfs, _emit,  # noqa: F401
                               _file_size, _input_identity, _keeps_over_full_scale, _previous_run, _remove_empty_dirs,
                               _remove_files, _remove_stale_temporaries, check_filename, check_output_options,
                               check_outputs, plan_outputs, refuse_input_as_output, remove_leftovers, run_difference,
                               select_outputs, select_stems, track_name, write_stream)
from stemwright.models.defaults import DEFAULT_MODEL
from stemwright.audio.resample import resample
from stemwright.engine.device import resolve_device
from stemwright.engine.progress import ProgressCallback, ProgressEvent, scaled
from stemwright.engine.memory import retain_freed_memory
from stemwright.engine.precision import choose_precision, precision_context
from stemwright.engine.run import default_workers, separate_tensor
from stemwright.engine.live import LiveProcessor, plan_live
from stemwright.engine.stream import StreamEngine
from stemwright.models.base import check_model

log = logging.getLogger(__name__)

MIN_SAMPLERATE, MAX_SAMPLERATE = 8000, 192000
MIN_INPUT_SECONDS = 0.05
# Below half a second a chunk is mostly the context padding and crossfade around it: a 0.01 s segment took
# 66 s for an 11 s song (issue 17); 0.5 s keeps the overhead under ~2x the default's.
MIN_SEGMENT_SECONDS = 0.5


@dataclass(frozen=True)
class SeparationResult:
    """What :meth:`Separator.separate_file` wrote (or found already written: ``skipped``): the manifest (also
    saved as ``stemwright.json``) and the paths. ``stems`` stays empty: the file path streams, and never holds
    the song's stems in memory (read the files, or use :meth:`Separator.separate` on arrays)."""

    manifest: Manifest
    stem_paths: dict[str, Path]
    manifest_path: Path
    stems: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    skipped: bool = False


def as_float_audio(audio: Any) -> np.ndarray:
    """A float32 copy of numpy/torch/list audio; never a view of the caller's buffer.

    Integer samples are scaled to [-1, 1) as :func:`~stemwright.audio.io.read_audio` scales integer files:
    signed ``intN`` divided by ``2**(N-1)``, unsigned ``uintN`` centred on ``2**(N-1)`` first (so ``uint8``
    loses its DC offset). Booleans are refused.
    """
    if isinstance(audio, torch.Tensor):
        if audio.dtype.is_floating_point and audio.dtype not in (torch.float16, torch.float32, torch.float64):
            audio = audio.float()  # bfloat16 and float8 have no numpy type: widen them to float32 first
        audio = audio.detach().cpu().numpy()
    x = np.asarray(audio)
    if x.dtype == np.bool_:
        raise SeparationError("audio: boolean arrays are not audio (pass float or integer samples)")
    if np.issubdtype(x.dtype, np.signedinteger):
        return (x.astype(np.float64) / 2.0 ** (8 * x.dtype.itemsize - 1)).astype(np.float32)
    if np.issubdtype(x.dtype, np.unsignedinteger):
        half = 2.0 ** (8 * x.dtype.itemsize - 1)
        return ((x.astype(np.float64) - half) / half).astype(np.float32)
    if not (np.issubdtype(x.dtype, np.floating) or x.dtype == object):
        raise SeparationError(f"audio: samples of type {x.dtype} are not audio (pass float or integer samples)")
    try:
        return np.array(x, dtype=np.float32, copy=True)
    except (TypeError, ValueError) as e:
        raise SeparationError(f"audio: cannot be read as numbers ({e})") from None


def check_samplerate(samplerate: Any) -> int:
    """``samplerate`` as an ``int`` if it is an integer (Python or numpy, not bool) in 8-192 kHz, else
    :class:`SeparationError`: a string or a float (even 44100.0) is refused rather than converted or truncated."""
    if isinstance(samplerate, (bool, np.bool_)) or not isinstance(samplerate, (int, np.integer)):
        raise SeparationError(f"samplerate must be an integer number of Hz, got {samplerate!r} "
                              f"({type(samplerate).__name__})")
    if not MIN_SAMPLERATE <= samplerate <= MAX_SAMPLERATE:
        raise SeparationError(f"samplerate must be in {MIN_SAMPLERATE}-{MAX_SAMPLERATE} Hz, got {samplerate}")
    return int(samplerate)


def check_settings(segment: float | None = None, overlap: float | None = None, shifts: int = 0,
                   batch_size: int = 1) -> None:
    """:class:`SeparationError` for chunking settings out of range (checked by :class:`Separator` before the
    model loads; the CLI calls it before it even reads the inputs)."""
    if overlap is not None and not 0.0 <= overlap < 1.0:
        raise SeparationError(f"overlap must be in [0, 1), got {overlap}")
    if segment is not None and not segment >= MIN_SEGMENT_SECONDS:
        raise SeparationError(f"segment must be at least {MIN_SEGMENT_SECONDS} s, got {segment}")
    if shifts < 0:
        raise SeparationError(f"shifts must be >= 0, got {shifts}")
    if batch_size < 1:
        raise SeparationError(f"batch_size must be >= 1, got {batch_size}")


@dataclass(frozen=True, kw_only=True)
class ModelSettings:
    """Which model a :class:`Separator` loads and how it runs it: the one value that ``separate``, ``batch`` and
    every batch worker build their separator from (so a new model option is added here once)."""

    model: str = DEFAULT_MODEL
    device: str = "auto"
    segment: float | None = None
    overlap: float | None = None
    shifts: int = 0
    residual: str | None = None
    offline: bool = False
    fast: bool = False  # bfloat16 where the device runs it natively
    ensemble_method: str | None = None  # with an ensemble name ("a+b") only
    ensemble_weights: str | None = None

    def __post_init__(self) -> None:
        if not self.model:
            raise SeparationError("model: a model must be named")
        check_settings(self.segment, self.overlap, self.shifts)

    def separator(self, progress: ProgressCallback | None = None) -> "Separator":
        """A :class:`Separator` with these settings (loads the model)."""
        return Separator(model=self.model, device=self.device, segment=self.segment, overlap=self.overlap,
                         shifts=self.shifts, residual=self.residual, progress=progress, offline=self.offline,
                         fast=self.fast, ensemble_method=self.ensemble_method,
                         ensemble_weights=self.ensemble_weights)


DEFAULT_OVERLAP = 0.25  # demucs' default: 25 % of a chunk crossfades with its neighbours
# Models whose publisher runs the whole track in one call (Open-Unmix; models without a segment) do so up to this
# length and in chunks of it beyond, in both the array and the streaming path, so that a long file's memory stays
# bounded: 5 minutes covers nearly every song whole (as published), while a 2-hour set never sits in one call.
LONG_INPUT_SEGMENT = 300.0


class Separator:
    """Separate songs into stems with a registered model, a checkpoint path, a published name or an ``nn.Module``.

    ``residual=STEM`` replaces that stem by the mixture minus the other stems, so the stems sum exactly to the
    mixture. ``progress`` receives :class:`~stemwright.engine.progress.ProgressEvent` (fraction, stage, chunk index);
    if it raises, the separation stops with that exception (used to cancel jobs).

    ``fast=True`` computes in bfloat16 where the device has native bfloat16 kernels (AVX-512 BF16 or AMX CPUs: the
    linear layers and attention only; Ampere+ GPUs: autocast; elsewhere float32 with a logged warning), see
    :mod:`stemwright.engine.precision`.

    ``first_segment`` (seconds): the *short first chunk* rule (:class:`~stemwright.engine.chunking.ChunkGrid`): a
    first chunk that short, each next one 1.5 times as long up to the segment, so that a stream's first seconds are
    final after one short model call (the studio plays a song while it is separated); it changes the stems near
    the start a little (docs/studio.md measures how much). Chunked models only.

    ``workers=N`` runs N chunks at once in threads, each with 1/N of PyTorch's threads (default
    :func:`stemwright.engine.run.default_workers`: 2 on a CPU with 2+ threads, chosen by measurement); the stems are
    the same.

    ``model="a+b"`` is an ensemble of models (:mod:`stemwright.models.ensemble`), combined by ``ensemble_method``
    (default ``avg_wave``) with ``ensemble_weights`` (``"2,1"`` or ``"vocals=2,1;drums=1,3"``).
    """

    def __init__(
        self,
        model: str | Path | nn.Module = DEFAULT_MODEL,
        device: str | torch.device = "auto",
        segment: float | None = None,
        overlap: float | None = None,
        shifts: int = 0,
        batch_size: int = 1,
        residual: str | None = None,
        progress: ProgressCallback | None = None,
        offline: bool = False,
        fast: bool = False,
        ensemble_method: str | None = None,
        ensemble_weights: str | None = None,
        workers: int | None = None,
        first_segment: float | None = None,
    ) -> None:
        check_settings(segment, overlap, shifts, batch_size)
        if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
            raise SeparationError(f"workers must be an integer >= 1, got {workers!r}")
        if first_segment is not None and not first_segment >= MIN_SEGMENT_SECONDS:
            raise SeparationError(f"first_segment must be at least {MIN_SEGMENT_SECONDS} s, got {first_segment}")
        self.device = resolve_device(device)
        if isinstance(model, nn.Module):
            check_model(model)
            self.model = model.to(self.device).eval()
            self.model_name = getattr(model, "name", None) or type(model).__name__
        else:
            from stemwright.pretrained.loading import load_model

            ensemble = {k: v for k, v in (("ensemble_method", ensemble_method), ("ensemble_weights", ensemble_weights))
                        if v is not None}  # only an ensemble name ("a+b") takes them
            self.model = load_model(model, device=self.device, offline=offline, progress=progress is None, **ensemble)
            check_model(self.model)
            self.model_name = str(model)
        if residual is not None and residual not in self.sources:
            raise SeparationError(f"residual stem {residual!r} is not one of the model's stems ({', '.join(self.sources)})")
        self.segment = segment
        self.first_segment = first_segment
        # None: the overlap the model's publisher runs it with (RoFormer YAML ``num_overlap``), else 25 %.
        default = getattr(self.model, "default_overlap", None)
        self.overlap = overlap if overlap is not None else (default if default is not None else DEFAULT_OVERLAP)
        self.shifts = shifts
        self.batch_size = batch_size
        # chunks run at once in threads; the stems do not depend on it, so the manifest does not record it
        self.workers = workers if workers is not None else default_workers(self.device)
        self.residual = residual
        self.progress = progress
        # fast: bfloat16 where the device runs it natively, else float32 (stemwright.engine.precision)
        self.precision = choose_precision(self.device, fast)

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(self.model.sources)

    @property
    def samplerate(self) -> int:
        return int(self.model.samplerate)

    def parameters(self) -> dict[str, Any]:
        """The separation settings, as recorded in the manifest."""
        return {
            "segment": self.segment if self.segment is not None else getattr(self.model, "segment", None),
            "overlap": self.overlap,
            "shifts": self.shifts,
            "batch_size": self.batch_size,
            "residual": self.residual,
            "device": str(self.device),
            "first_segment": self.first_segment,
        }

    # -- arrays ------------------------------------------------------------------------------------------
    def _check_audio(self, audio: Any, samplerate: int, origin: str = "audio") -> np.ndarray:
        x = as_float_audio(audio)
        if x.ndim == 1:
            x = x[None]
        if x.ndim != 2:
            raise SeparationError(f"audio must be (channels, time) or (time,), got shape {x.shape}")
        if x.shape[0] > 64 and x.shape[1] <= 64:
            raise SeparationError(f"audio of shape {x.shape} looks like (time, channels); pass (channels, time)")
        if x.shape[0] == 0 or x.shape[1] == 0:
            raise SeparationError(f"audio has no samples (shape {x.shape})")
        if not np.isfinite(x).all():
            raise SeparationError(f"audio contains {int((~np.isfinite(x)).sum())} non-finite (NaN/inf) samples")
        if x.shape[0] > 2:
            warnings.warn(f"{origin}: {downmix_description(x.shape[0])}", UserWarning, stacklevel=3)
            x = downmix_to_stereo(x)
        return x

    def separate(self, audio: Any, samplerate: int, progress: ProgressCallback | None = None) -> dict[str, np.ndarray]:
        """Separate one mixture.

        Mono input is separated as dual mono and returned mono; more than two channels are downmixed with a
        warning (:mod:`stemwright.audio.channels`: ITU-R BS.775 for 5.0/5.1/7.1). Integer samples are scaled
        to [-1, 1) (see :func:`as_float_audio`). ``samplerate`` must be an ``int``. The caller's array is not
        modified.

        Shape: ``(C, T)`` or ``(T,)`` numpy/torch at ``samplerate`` -> ``{stem: (C', T)}`` float32 at ``samplerate``
        (``C' = 1`` for mono input, else 2).
        """
        progress = progress or self.progress
        samplerate = check_samplerate(samplerate)
        x = self._check_audio(audio, samplerate)
        channels, length = x.shape
        sr_model = self.samplerate
        _emit(progress, 0.0, "resample")
        # Very short inputs (a few samples) could resample to nothing: pad with silence, trim the stems after.
        min_len = int(np.ceil(MIN_INPUT_SECONDS * samplerate))
        padded = np.pad(x, ((0, 0), (0, min_len - length))) if length < min_len else x
        model_in = resample(padded, int(samplerate), sr_model)
        model_channels = int(self.model.audio_channels)
        if model_channels == 2 and model_in.shape[0] == 1:
            model_in = np.repeat(model_in, 2, axis=0)  # dual mono
        sub = scaled(progress, 0.05, 0.95)
        if model_channels == 1:
            # A mono model separates each channel on its own.
            parts = [self._run(model_in[c : c + 1], sub) for c in range(model_in.shape[0])]
            est = np.concatenate(parts, axis=1)  # (S, C, T)
        else:
            est = self._run(model_in, sub)
        _emit(progress, 0.95, "resample")
        stems: dict[str, np.ndarray] = {}
        for i, name in enumerate(self.sources):
            y = est[i]
            if channels == 1:
                y = y.mean(axis=0, keepdims=True)
            if int(samplerate) != sr_model:  # (no copy when the rates agree: memory is ~S x the song already)
                y = resample(y, sr_model, int(samplerate))
            stems[name] = _fit_length(y, length)
        if self.residual is not None:
            others = sum(v for k, v in stems.items() if k != self.residual)
            stems[self.residual] = (x - others).astype(np.float32)
        _emit(progress, 1.0, "done")
        return stems

    def _run(self, mix: np.ndarray, progress: ProgressCallback | None) -> np.ndarray:
        """Shape: ``(C, T)`` at the model rate -> ``(S, C, T)``, in the chosen precision."""
        with precision_context(self.precision, self.device):
            return self._run_chunks(mix, progress)

    def _run_chunks(self, mix: np.ndarray, progress: ProgressCallback | None) -> np.ndarray:
        """Shape: ``(C, T)`` at the model rate -> ``(S, C, T)``."""
        out = separate_tensor(
            self.model,
            torch.from_numpy(np.ascontiguousarray(mix)),
            segment=self.segment,
            overlap=self.overlap,
            batch_size=self.batch_size,
            shifts=self.shifts,
            device=self.device,
            progress=progress,
            long_segment=LONG_INPUT_SEGMENT,
            workers=self.workers,
            first_segment=self.first_segment,
        )
        return out.numpy()

    def live(self, latency: float = 2.0, block_size: int = 1024, channels: int = 2,
             threaded: bool = False) -> LiveProcessor:
        """A processor for live input at the model's rate: ``process(block (C, n)) -> {stem: (C, n)}`` gives the
        stems of the input ``.latency_samples`` (= ``round(latency * samplerate)``) earlier. The chunk is the longest
        that fits ``latency`` with room for a worker thread (``block_size``: the host's block), see
        :mod:`stemwright.engine.live`. ``threaded=True``: the host runs ``process`` on a worker thread and buffers
        ``plan.reserve_samples`` itself (the JACK client), so the processor's own delay is the rest."""
        plan = plan_live(self.model, latency, overlap=self.overlap, block_size=block_size)
        delay = plan.latency_samples - plan.reserve_samples if threaded else None
        return LiveProcessor(self.model, plan, channels=channels, device=self.device, delay=delay)

    # -- streams -----------------------------------------------------------------------------------------
    def separate_stream(self, blocks: Iterable[Any], samplerate: int, progress: ProgressCallback | None = None,
                        length_hint: int | None = None) -> Iterator[dict[str, np.ndarray]]:
        """Separate audio that arrives in blocks, in memory bounded by a few segments whatever its length.

        ``blocks``: ``(C, n)`` or ``(n,)`` arrays at ``samplerate`` (same channel count throughout, any sizes).
        Yields ``{stem: (C', m)}`` float32 blocks in order, as soon as they are final; together they equal what
        :meth:`separate` gives for the concatenated blocks (same model settings, to float rounding). Block sizes
        out follow the model's chunk grid, not the input's. ``length_hint`` (input samples expected) only sizes
        the progress fraction.
        """
        for _, stems in self._stream_pairs(blocks, samplerate, progress or self.progress, length_hint):
            yield stems

    def _stream_pairs(self, blocks: Iterable[Any], samplerate: int, progress: ProgressCallback | None,
                      length_hint: int | None = None, origin: str = "audio", warn_downmix: bool = True,
                      ) -> Iterator[tuple[np.ndarray, dict[str, np.ndarray]]]:
        """The streaming twin of :meth:`separate`: yields ``(mix block (C, m), {stem: (C', m)})`` aligned at the
        input rate (the mix after any downmix, for residual and two-stem outputs)."""
        # one song's chunks reuse freed memory instead of faulting it in again (stemwright.engine.memory)
        with retain_freed_memory():
            yield from self._stream_pairs_of(blocks, samplerate, progress, length_hint, origin, warn_downmix)

    def _stream_pairs_of(self, blocks: Iterable[Any], samplerate: int, progress: ProgressCallback | None,
                         length_hint: int | None, origin: str, warn_downmix: bool,
                         ) -> Iterator[tuple[np.ndarray, dict[str, np.ndarray]]]:
        """:meth:`_stream_pairs` without the memory setting around it."""
        samplerate = check_samplerate(samplerate)
        sr_model = self.samplerate
        model_channels = int(self.model.audio_channels)
        channels: int | None = None
        length = 0
        mix_fifo = _Fifo()
        stem_fifos: dict[str, _Fifo] = {n: _Fifo() for n in self.sources}
        ups: dict[str, StreamResampler] = {}
        down: StreamResampler | None = None
        engines: list[StreamEngine] = []
        hint = int(length_hint * sr_model / samplerate) if length_hint else None
        _emit(progress, 0.0, "resample")

        def feed(model_in: np.ndarray | None, last: bool) -> None:
            """Model-rate input -> engines -> stems at the input rate, into the fifos."""
            outs = []
            for c, engine in enumerate(engines):
                with precision_context(self.precision, self.device):  # as _run: the model calls in --fast's precision
                    if model_in is None:
                        outs.append(engine.finish())
                        continue
                    part = model_in[c : c + 1] if model_channels == 1 else model_in
                    if model_channels == 2 and part.shape[0] == 1:
                        part = np.repeat(part, 2, axis=0)  # dual mono
                    outs.append(engine.push(torch.from_numpy(np.ascontiguousarray(part))))
            if any(o is None for o in outs):  # nothing final yet (finish() always returns a tensor)
                return
            est = np.concatenate([o.numpy() for o in outs], axis=1) if len(outs) > 1 else outs[0].numpy()
            for i, name in enumerate(self.sources):
                y = est[i]
                if channels == 1:
                    y = y.mean(axis=0, keepdims=True)
                stem_fifos[name].push(ups[name](y, last=last))

        def pairs(final: bool) -> Iterator[tuple[np.ndarray, dict[str, np.ndarray]]]:
            k = min(len(mix_fifo), *(len(f) for f in stem_fifos.values()))
            if final:
                k = len(mix_fifo)
                for f in stem_fifos.values():
                    f.fit(k, channels)  # resampling may be off by a sample (as _fit_length)
            if k == 0:
                return
            x = mix_fifo.pop(k)
            stems = {n: f.pop(k) for n, f in stem_fifos.items()}
            if self.residual is not None:
                others = sum(v for n, v in stems.items() if n != self.residual)
                stems[self.residual] = (x - others).astype(np.float32)
            yield x, stems

        for raw in blocks:
            x = self._check_block(raw, origin, channels, warn=warn_downmix)
            if x.shape[1] == 0:
                continue
            if channels is None:
                channels = x.shape[0]
                down = StreamResampler(samplerate, sr_model, channels)
                ups.update({n: StreamResampler(sr_model, samplerate, channels) for n in self.sources})
                sub = scaled(progress, 0.05, 0.95)
                engines = [self._engine(sub if c == 0 else None, hint)
                           for c in range(channels if model_channels == 1 else 1)]
            length += x.shape[1]
            mix_fifo.push(x)
            # the loop checks the engines' output once per block: it is a few blocks behind the input
            feed(down(x), last=False)
            yield from pairs(final=False)
        if channels is None or down is None:
            raise SeparationError(f"{origin} has no samples")
        # Very short inputs are padded with silence before resampling, as separate() does; stems trimmed after.
        min_len = int(np.ceil(MIN_INPUT_SECONDS * samplerate))
        tail = np.zeros((channels, max(0, min_len - length)), dtype=np.float32)
        feed(down(tail, last=True), last=False)
        feed(None, last=True)
        _emit(progress, 0.95, "resample")
        yield from pairs(final=True)
        _emit(progress, 1.0, "done")

    def _engine(self, progress: ProgressCallback | None, length_hint: int | None) -> StreamEngine:
        return StreamEngine(self.model, segment=self.segment, overlap=self.overlap, batch_size=self.batch_size,
                            shifts=self.shifts, device=self.device, progress=progress, length_hint=length_hint,
                            long_segment=LONG_INPUT_SEGMENT, workers=self.workers,
                            first_segment=self.first_segment)

    def _check_block(self, raw: Any, origin: str, channels: int | None, warn: bool) -> np.ndarray:
        x = as_float_audio(raw)
        if x.ndim == 1:
            x = x[None]
        if x.ndim != 2:
            raise SeparationError(f"{origin}: blocks must be (channels, time) or (time,), got shape {x.shape}")
        if not np.isfinite(x).all():
            raise SeparationError(f"{origin} contains {int((~np.isfinite(x)).sum())} non-finite (NaN/inf) samples")
        if x.shape[0] > 2:
            if warn and channels is None:
                warnings.warn(f"{origin}: {downmix_description(x.shape[0])}", UserWarning, stacklevel=4)
            x = downmix_to_stereo(x)
        if channels is not None and x.shape[0] != channels and x.shape[1]:
            raise SeparationError(f"{origin}: a block has {x.shape[0]} channels after {channels}-channel blocks")
        return x

    # -- files -------------------------------------------------------------------------------------------
    def select_stems(self, stems: list[str] | tuple[str, ...] | None = None, two_stems: str | None = None) -> list[str]:
        """The stem names a separation writes; see :func:`select_stems`."""
        return select_stems(self.sources, stems, two_stems)

    def options(self, fmt: str = "wav", bit_depth: int = 24, mp3_bitrate: int = 320, clip_mode: str = "rescale",
                stems: list[str] | tuple[str, ...] | None = None, two_stems: str | None = None,
                filename: str = DEFAULT_FILENAME) -> SeparationOptions:
        """Check the output options (before any work) and return them as recorded in the manifest."""
        fmt = check_output_options(fmt, bit_depth, mp3_bitrate, clip_mode, filename)
        names = self.select_stems(stems, two_stems)
        p = self.parameters()
        return SeparationOptions(
            segment=p["segment"], overlap=p["overlap"], shifts=p["shifts"], batch_size=p["batch_size"],
            residual=p["residual"], device=p["device"], first_segment=p["first_segment"], format=fmt,
            bit_depth=bit_depth if fmt != "mp3" else None, mp3_bitrate=mp3_bitrate if fmt == "mp3" else None,
            clip_mode=clip_mode, stems=tuple(names) if stems else None, two_stems=two_stems, filename=filename,
        )

    def plan(self, path: str | Path, outdir: str | Path, options: SeparationOptions) -> OutputPlan:
        """Where the stems and the manifest of ``path`` go with these options (nothing is touched)."""
        names = self.select_stems(options.stems, options.two_stems)
        return plan_outputs(path, outdir, names, options.format, options.filename, Path(self.model_name).name)

    def existing_run(self, plan: OutputPlan, options: SeparationOptions) -> Manifest | None:
        """The manifest of a finished earlier run that wrote exactly what this one would (same input file, model
        and output options, every stem file as written), else ``None``."""
        earlier = self.earlier_run(plan, options)
        return earlier.manifest if earlier is not None and earlier.difference is None else None

    def earlier_run(self, plan: OutputPlan, options: SeparationOptions) -> EarlierRun | None:
        """The finished earlier run in ``plan``'s folder (``None`` when there is none, or its manifest cannot be
        read) and what differs between it and this one, named (see :func:`run_difference`)."""
        if not plan.manifest_path.is_file():
            return None
        try:
            old = Manifest.read(plan.manifest_path)
        except ManifestError as e:
            log.warning("%s; the track is separated again", e)
            return None
        return run_difference(old, self.model_name, options, plan)

    def separate_file(
        self,
        path: str | Path,
        outdir: str | Path,
        fmt: str = "wav",
        bit_depth: int = 24,
        mp3_bitrate: int = 320,
        clip_mode: str = "rescale",
        stems: list[str] | tuple[str, ...] | None = None,
        two_stems: str | None = None,
        filename: str = DEFAULT_FILENAME,
        overwrite: bool = False,
        progress: ProgressCallback | None = None,
        skip_existing: bool = False,
        options: SeparationOptions | None = None,
        on_block: StemBlockCallback | None = None,
    ) -> SeparationResult:
        """Separate an audio file and write the stems plus ``stemwright.json`` (written last, atomically).

        Existing outputs: by default any of them is an error. ``skip_existing`` returns the earlier result
        (``skipped=True``) when the track's manifest matches this model and these options, and redoes a track
        whose stems exist without a manifest (an interrupted run). ``overwrite`` replaces the outputs and removes
        the stems of the previous run of the track that this run does not write, so a folder never mixes two
        runs. Nothing is created for an input that fails, and stems written before a failure are removed.

        ``options``: the output options as :meth:`options` returned them (checked once by a caller that
        separates many files); they replace ``fmt`` ... ``filename`` and are checked again here.

        ``on_block``: called with each block of the stems as it becomes final, ``{stem: (C, m)}`` float32 in time
        order before the clip policy (what the studio plays while the rest is separated); if it raises, the
        separation stops with that exception.

        Raises :class:`~stemwright.errors.AudioError` for unreadable input or unwritable output (its subclasses
        :class:`~stemwright.errors.OutputExists`, :class:`~stemwright.errors.OtherRunExists`,
        :class:`~stemwright.errors.OutputIsInput` for outputs in the way) and :class:`SeparationError` for bad
        options.
        """
        progress = progress or self.progress
        if overwrite and skip_existing:
            raise SeparationError("choose either overwrite or skip_existing, not both")
        if options is not None:
            fmt, bit_depth, mp3_bitrate = options.format, options.bit_depth or 24, options.mp3_bitrate or 320
            clip_mode, two_stems, filename = options.clip_mode, options.two_stems, options.filename
            stems = list(options.stems) if options.stems else None
        options = self.options(fmt, bit_depth, mp3_bitrate, clip_mode, stems, two_stems, filename)
        plan = self.plan(path, outdir, options)
        refuse_input_as_output(plan, [Path(path)])
        redo = False
        if skip_existing:
            earlier = self.earlier_run(plan, options)
            if earlier is not None and earlier.difference is None:
                _emit(progress, 1.0, "done", message=f"{plan.manifest_path} (already done)")
                return SeparationResult(earlier.manifest, plan.stem_paths, plan.manifest_path, skipped=True)
            if earlier is not None and not earlier.damaged:
                raise OtherRunExists(plan.manifest_path, f"holds another run's stems ({earlier.difference}); they "
                                                         "are kept unless overwritten")
            if earlier is not None:  # same input and settings, a stem lost since: the track is done again
                log.info("%s: %s; separating it again", plan.manifest_path, earlier.difference)
                redo = True
        previous = _previous_run(plan) if overwrite else None
        # skip_existing redoes an interrupted track (stems, no manifest) or a damaged one; a finished run with
        # other settings is kept unless overwrite is given.
        replace = overwrite or redo or (skip_existing and not plan.manifest_path.exists())
        check_outputs(plan, replace)
        _remove_stale_temporaries(plan)

        t0 = time.perf_counter()
        _emit(progress, 0.0, "load", message=str(path))
        names = self.select_stems(options.stems, options.two_stems)
        with open_audio_stream(path) as audio:
            identity = _input_identity(path)  # the file opened: it exists and is readable
            notes: tuple[str, ...] = ()
            if audio.channels > 2:
                notes = (downmix_description(audio.channels),)
                warnings.warn(f"{path}: {notes[0]}", UserWarning, stacklevel=2)
            pairs = self._stream_pairs(audio.blocks(), audio.samplerate, scaled(progress, 0.05, 0.9),
                                       length_hint=audio.frames, origin=str(path), warn_downmix=False)
            try:
                clip, peaks, channels = write_stream(plan, names, pairs, audio.samplerate, options, replace,
                                                     progress, on_block)
            except BaseException:
                _remove_empty_dirs(plan)
                raise
        if clip_mode == "rescale":
            clip["scope"] = "one gain shared by all stems (they still sum to the scaled mixture)"
        if clip_mode == "none" and clip["peak"] > 1.0 and not _keeps_over_full_scale(options):
            # integer samples (and mp3) cannot hold them: the writer clamps, and the manifest says so
            clip["action"] = "clamped by the format"
            peaks = {n: min(v, 1.0) for n, v in peaks.items()}
            warnings.warn(f"{path}: the stems peak at {clip['peak_dbfs']:+.2f} dBFS and are clamped in the "
                          f"{options.format} files (clip mode none keeps them only in 32-bit float wav; use "
                          "rescale to keep the stems' sum)", UserWarning, stacklevel=2)
        seconds = time.perf_counter() - t0
        duration = audio.duration
        manifest = Manifest(
            stemwright_version=__version__, model=self.model_name, model_samplerate=self.samplerate,
            sources=tuple(self.sources), parameters=options,
            input=InputInfo(path=str(Path(path).resolve()), samplerate=audio.samplerate, channels=audio.channels,
                            duration=duration, codec=audio.codec, **identity),
            samplerate=audio.samplerate, channels=channels, duration=duration,
            stems={n: os.path.relpath(p, plan.manifest_path.parent) for n, p in plan.stem_paths.items()},
            clip=clip, seconds=round(seconds, 4), rtf=round(seconds / duration, 5) if duration > 0 else None,
            peaks={n: _dbfs(v) for n, v in peaks.items()},
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"), notes=notes,
            stem_bytes={n: _file_size(p) for n, p in plan.stem_paths.items()},
        )
        try:
            manifest.write(plan.manifest_path, overwrite=replace)
        except BaseException as e:
            _remove_files(plan.stem_paths.values())
            _remove_empty_dirs(plan)
            if isinstance(e, OSError):
                raise AudioError(plan.manifest_path, f"could not write ({e.strerror or e})") from None
            raise
        if previous is not None:
            new = set(plan.stem_paths.values())
            _remove_files(p for p in previous.stem_paths(plan.manifest_path.parent).values() if p not in new)
        _emit(progress, 1.0, "done", message=str(plan.manifest_path))
        return SeparationResult(manifest=manifest, stem_paths=plan.stem_paths, manifest_path=plan.manifest_path)


class _Fifo:
    """Samples ``(C, T)`` queued in blocks; pops exact lengths."""

    def __init__(self) -> None:
        self.parts: list[np.ndarray] = []
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def push(self, x: np.ndarray) -> None:
        if x.shape[-1]:
            self.parts.append(x)
            self.size += x.shape[-1]

    def pop(self, k: int) -> np.ndarray:
        cat = self.parts[0] if len(self.parts) == 1 else np.concatenate(self.parts, axis=-1)
        head, rest = cat[..., :k], cat[..., k:]
        self.parts = [rest] if rest.shape[-1] else []
        self.size -= k
        return np.ascontiguousarray(head, dtype=np.float32)

    def fit(self, length: int, channels: int | None = None) -> None:
        """Trim or zero-pad to ``length`` samples in all (as ``_fit_length``)."""
        if self.size > length:
            keep = self.pop(length) if length else None
            self.parts, self.size = ([keep] if keep is not None else []), length
        elif self.size < length:
            c = self.parts[0].shape[0] if self.parts else (channels or 1)
            self.push(np.zeros((c, length - self.size), dtype=np.float32))


def _fit_length(y: np.ndarray, length: int) -> np.ndarray:
    """Pad with zeros or trim the time axis to exactly ``length`` (resampling may be off by a sample)."""
    if y.shape[-1] == length:
        return y.astype(np.float32, copy=False)
    if y.shape[-1] > length:
        return np.ascontiguousarray(y[..., :length], dtype=np.float32)
    return np.pad(y, ((0, 0), (0, length - y.shape[-1]))).astype(np.float32)
