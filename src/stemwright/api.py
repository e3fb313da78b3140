"""The Python API: :class:`Separator` separates arrays and files into stems.

```python
sep = stemwright.Separator(model="classic")
stems = sep.separate(audio, samplerate)            # dict[str, np.ndarray (C, T)] at the input rate
result = sep.separate_file("song.mp3", "out")      # writes out/song/{vocals,drums,bass,other}.wav + stemwright.json
```

Where the audio comes from and goes to lives here; the chunk loop is :func:`stemwright.engine.run.separate_tensor`.
"""
from __future__ import annotations

import json
import logging
import os
import string
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from stemwright import __version__
from stemwright.atomic import atomic_write_text
from stemwright.models.defaults import DEFAULT_MODEL
from stemwright.audio.io import CLIP_MODES, WRITE_FORMATS, AudioError, prepare_peaks_many, read_audio, write_audio
from stemwright.audio.resample import resample
from stemwright.engine.device import resolve_device
from stemwright.engine.progress import ProgressCallback, ProgressEvent, scaled
from stemwright.engine.run import separate_tensor
from stemwright.models.base import check_model

log = logging.getLogger(__name__)

MIN_SAMPLERATE, MAX_SAMPLERATE = 8000, 192000
MANIFEST_NAME = "stemwright.json"
MIN_INPUT_SECONDS = 0.05
FILENAME_FIELDS = ("track", "stem", "ext", "model")


class SeparationError(ValueError):
    """Bad input or options for a separation; the message names the field or file and the reason."""


@dataclass
class SeparationResult:
    """What :meth:`Separator.separate_file` wrote: the manifest (also saved as ``stemwright.json``) and the paths."""

    manifest: dict[str, Any]
    stem_paths: dict[str, Path]
    manifest_path: Path
    stems: dict[str, np.ndarray] = field(default_factory=dict, repr=False)


def track_name(path: str | Path) -> str:
    """Track name of an input file: its name without extension (``song.stem.mp4`` -> ``song``)."""
    name = Path(path).name
    lower = name.lower()
    if lower.endswith(".stem.mp4"):
        return name[: -len(".stem.mp4")]
    return Path(name).stem


def _as_float_array(audio: Any) -> np.ndarray:
    """A float32 copy of numpy/torch/list audio; never a view of the caller's buffer."""
    if isinstance(audio, torch.Tensor):
        return audio.detach().to("cpu", torch.float32).numpy().copy()
    return np.array(audio, dtype=np.float32, copy=True)


DEFAULT_OVERLAP = 0.25  # demucs' default: 25 % of a chunk crossfades with its neighbours


class Separator:
    """Separate songs into stems with a registered model, a checkpoint path, a published name or an ``nn.Module``.

    ``residual=STEM`` replaces that stem by the mixture minus the other stems, so the stems sum exactly to the
    mixture. ``progress`` receives :class:`~stemwright.engine.progress.ProgressEvent` (fraction, stage, chunk index);
    if it raises, the separation stops with that exception (used to cancel jobs).
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
    ) -> None:
        if overlap is not None and not 0.0 <= overlap < 1.0:
            raise SeparationError(f"overlap must be in [0, 1), got {overlap}")
        if segment is not None and segment <= 0:
            raise SeparationError(f"segment must be a positive number of seconds, got {segment}")
        if shifts < 0:
            raise SeparationError(f"shifts must be >= 0, got {shifts}")
        if batch_size < 1:
            raise SeparationError(f"batch_size must be >= 1, got {batch_size}")
        self.device = resolve_device(device)
        if isinstance(model, nn.Module):
            check_model(model)
            self.model = model.to(self.device).eval()
            self.model_name = getattr(model, "name", None) or type(model).__name__
        else:
            from stemwright.pretrained.loading import load_model

            self.model = load_model(model, device=self.device, offline=offline, progress=progress is None)
            check_model(self.model)
            self.model_name = str(model)
        if residual is not None and residual not in self.sources:
            raise SeparationError(f"residual stem {residual!r} is not one of the model's stems ({', '.join(self.sources)})")
        self.segment = segment
        # None: the overlap the model's publisher runs it with (RoFormer YAML ``num_overlap``), else 25 %.
        default = getattr(self.model, "default_overlap", None)
        self.overlap = overlap if overlap is not None else (default if default is not None else DEFAULT_OVERLAP)
        self.shifts = shifts
        self.batch_size = batch_size
        self.residual = residual
        self.progress = progress

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
        }

    # -- arrays ------------------------------------------------------------------------------------------
    def _check_audio(self, audio: Any, samplerate: int) -> np.ndarray:
        x = _as_float_array(audio)
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
        if not isinstance(samplerate, (int, np.integer)) or not MIN_SAMPLERATE <= samplerate <= MAX_SAMPLERATE:
            raise SeparationError(f"samplerate must be an integer in {MIN_SAMPLERATE}-{MAX_SAMPLERATE} Hz, got {samplerate!r}")
        if x.shape[0] > 2:
            msg = f"{x.shape[0]}-channel input downmixed to stereo (mean of all channels in both)"
            warnings.warn(msg, UserWarning, stacklevel=3)
            x = downmix(x)
        return x

    def separate(self, audio: Any, samplerate: int, progress: ProgressCallback | None = None) -> dict[str, np.ndarray]:
        """Separate one mixture.

        Mono input is separated as dual mono and returned mono; more than two channels are downmixed with a
        warning. The caller's array is not modified.

        Shape: ``(C, T)`` or ``(T,)`` numpy/torch at ``samplerate`` -> ``{stem: (C', T)}`` float32 at ``samplerate``
        (``C' = 1`` for mono input, else 2).
        """
        progress = progress or self.progress
        x = self._check_audio(audio, int(samplerate))
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
        )
        return out.numpy()

    # -- files -------------------------------------------------------------------------------------------
    def output_paths(
        self, path: str | Path, outdir: str | Path, stems: list[str], ext: str, filename: str
    ) -> tuple[dict[str, Path], Path]:
        """Where each stem and the manifest go (the manifest sits in the stems' common folder)."""
        fields = {name for _, name, _, _ in string.Formatter().parse(filename) if name}
        unknown = sorted(fields - set(FILENAME_FIELDS))
        if unknown:
            raise SeparationError(f"--filename: unknown field(s) {', '.join('{' + u + '}' for u in unknown)} "
                                  f"(use {', '.join('{' + f + '}' for f in FILENAME_FIELDS)})")
        if "stem" not in fields:
            raise SeparationError("--filename must contain {stem}, or every stem would go to the same file")
        outdir = Path(outdir)
        track = track_name(path)
        model = Path(self.model_name).name
        paths = {s: outdir / filename.format(track=track, stem=s, ext=ext, model=model) for s in stems}
        for s, p in paths.items():
            if outdir.resolve() not in p.resolve().parents:
                raise SeparationError(f"--filename puts stem {s!r} outside the output folder ({p})")
        common = Path(os.path.commonpath([str(p.parent) for p in paths.values()]))
        return paths, common / MANIFEST_NAME

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
        filename: str = "{track}/{stem}.{ext}",
        overwrite: bool = False,
        progress: ProgressCallback | None = None,
    ) -> SeparationResult:
        """Separate an audio file and write the stems plus ``stemwright.json`` (written last, atomically).

        Raises :class:`~stemwright.audio.io.AudioError` for unreadable input or unwritable output and
        :class:`SeparationError` for bad options. Existing outputs are left alone unless ``overwrite``.
        """
        progress = progress or self.progress
        fmt = fmt.lower()
        if fmt not in WRITE_FORMATS:
            raise SeparationError(f"format must be one of {', '.join(WRITE_FORMATS)}, got {fmt!r}")
        if clip_mode not in CLIP_MODES:
            raise SeparationError(f"clip mode must be one of {', '.join(CLIP_MODES)}, got {clip_mode!r}")
        names = self._selected(stems, two_stems)
        stem_paths, manifest_path = self.output_paths(path, outdir, names, fmt, filename)
        self._check_outputs([*stem_paths.values(), manifest_path], overwrite)

        t0 = time.perf_counter()
        _emit(progress, 0.0, "load", message=str(path))
        audio = read_audio(path)
        mix = audio.samples
        if audio.channels > 2:
            warnings.warn(f"{path}: {audio.channels}-channel input downmixed to stereo (mean of all channels in both)",
                          UserWarning, stacklevel=2)
            mix = downmix(mix)
        separated = self.separate(mix, audio.samplerate, progress=scaled(progress, 0.05, 0.9))
        out = self._select(separated, names, two_stems, mix)

        _emit(progress, 0.9, "write")
        # One gain for all stems, so that the written stems still sum to (a scaled copy of) the mixture.
        arrays, clip = prepare_peaks_many(list(out.values()), clip_mode)
        if clip_mode == "rescale":
            clip["scope"] = "one gain shared by all stems (they still sum to the scaled mixture)"
        out = dict(zip(out, arrays))
        for name, p in stem_paths.items():
            write_audio(p, out[name], audio.samplerate, fmt=fmt, bit_depth=bit_depth, mp3_bitrate=mp3_bitrate, overwrite=overwrite)
        seconds = time.perf_counter() - t0
        manifest = {
            "stemwright_version": __version__,
            "model": self.model_name,
            "model_samplerate": self.samplerate,
            "sources": list(self.sources),
            "parameters": {
                **self.parameters(),
                "format": fmt,
                "bit_depth": bit_depth if fmt != "mp3" else None,
                "mp3_bitrate": mp3_bitrate if fmt == "mp3" else None,
                "clip_mode": clip_mode,
                "stems": list(stems) if stems else None,
                "two_stems": two_stems,
                "filename": filename,
            },
            "input": {
                "path": str(Path(path).resolve()),
                "samplerate": audio.samplerate,
                "channels": audio.channels,
                "duration": audio.duration,
                "codec": audio.codec,
            },
            "samplerate": audio.samplerate,
            "channels": int(next(iter(out.values())).shape[0]),
            "duration": audio.duration,
            "stems": {n: os.path.relpath(p, manifest_path.parent) for n, p in stem_paths.items()},
            "clip": clip,
            "seconds": round(seconds, 4),
            "rtf": round(seconds / audio.duration, 5) if audio.duration > 0 else None,
            "peaks": {n: _peak_dbfs(v) for n, v in out.items()},
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        _write_json_atomic(manifest_path, manifest, overwrite)
        _emit(progress, 1.0, "done", message=str(manifest_path))
        return SeparationResult(manifest=manifest, stem_paths=stem_paths, manifest_path=manifest_path, stems=out)

    def _selected(self, stems: list[str] | tuple[str, ...] | None, two_stems: str | None) -> list[str]:
        if stems and two_stems:
            raise SeparationError("choose either stems or two_stems, not both")
        if two_stems is not None:
            if two_stems not in self.sources:
                raise SeparationError(f"two_stems: {two_stems!r} is not one of the model's stems ({', '.join(self.sources)})")
            return [two_stems, f"no_{two_stems}"]
        if stems:
            unknown = [s for s in stems if s not in self.sources]
            if unknown:
                raise SeparationError(f"stems: {', '.join(map(repr, unknown))} not among the model's stems ({', '.join(self.sources)})")
            return list(dict.fromkeys(stems))
        return list(self.sources)

    @staticmethod
    def _select(separated: dict[str, np.ndarray], names: list[str], two_stems: str | None, mix: np.ndarray) -> dict[str, np.ndarray]:
        if two_stems is None:
            return {n: separated[n] for n in names}
        stem = separated[two_stems]
        mix = mix if stem.shape[0] == mix.shape[0] else mix.mean(axis=0, keepdims=True)
        # no_X = mixture - X, so the two files always sum to the mixture.
        return {two_stems: stem, f"no_{two_stems}": (mix - stem).astype(np.float32)}

    @staticmethod
    def _check_outputs(paths: list[Path], overwrite: bool) -> None:
        """Fail before any work when an output exists (without overwrite) or its folder cannot be written."""
        for p in paths:
            if p.exists() and not overwrite:
                raise AudioError(p, "already exists (use --overwrite to replace it)")
        for folder in {p.parent for p in paths}:
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise AudioError(folder, f"cannot create output folder ({e.strerror or e})") from None
            if not os.access(folder, os.W_OK):
                raise AudioError(folder, "output folder is not writable")


def downmix(x: np.ndarray) -> np.ndarray:
    """More than two channels -> the mean of all of them in both channels. Shape: ``(C, T)`` -> ``(2, T)``."""
    return np.repeat(x.mean(axis=0, keepdims=True), 2, axis=0).astype(np.float32)


def _emit(progress: ProgressCallback | None, fraction: float, stage: str, message: str = "") -> None:
    if progress is not None:
        progress(ProgressEvent(fraction, stage, 0, 0, message))


def _fit_length(y: np.ndarray, length: int) -> np.ndarray:
    """Pad with zeros or trim the time axis to exactly ``length`` (resampling may be off by a sample)."""
    if y.shape[-1] == length:
        return y.astype(np.float32, copy=False)
    if y.shape[-1] > length:
        return np.ascontiguousarray(y[..., :length], dtype=np.float32)
    return np.pad(y, ((0, 0), (0, length - y.shape[-1]))).astype(np.float32)


def _peak_dbfs(x: np.ndarray) -> float | None:
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    return round(20 * np.log10(peak), 3) if peak > 0 else None


def _write_json_atomic(path: Path, data: dict[str, Any], overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise AudioError(path, "already exists (use --overwrite to replace it)")
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")
