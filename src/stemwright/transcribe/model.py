"""basic-pitch (Spotify, Apache-2.0) run through ONNX Runtime on arrays: audio in, notes out.

basic-pitch 0.4.0 ships its ICASSP-2022 model in the wheel as ONNX (``saved_models/icassp_2022/nmp.onnx``), but its
package metadata requires TensorFlow on Linux with Python 3.11, so it is installed with ``--no-deps``
(``scripts/requirements-transcribe.txt``) and the light packages it imports at inference come from the
``[transcribe]`` extra. Only its model file, its windowing/unwrapping and its note creation are used here; audio is
read and resampled by stemwright (soxr, as ``librosa.load`` does).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from stemwright.audio.resample import resample
from stemwright.errors import StemwrightError

log = logging.getLogger(__name__)

BASIC_PITCH_VERSION = "0.4.0"
INSTALL_HINT = (f"pip install 'stemwright[transcribe]' && pip install --no-deps basic-pitch=={BASIC_PITCH_VERSION} "
                "(--no-deps: its metadata asks for TensorFlow, which the ONNX model it ships does not need)")


class TranscribeUnavailable(StemwrightError):
    """basic-pitch, or a package it imports at inference, is not installed (exit status 1)."""


@dataclass(frozen=True, kw_only=True)
class ModelInfo:
    """What transcribes: written to the manifest and printed by ``stemwright transcribe``."""

    name: str
    version: str
    licence: str
    source: str

    def line(self) -> str:
        return f"{self.name} {self.version} ({self.licence}; {self.source})"


MODEL = ModelInfo(name="basic-pitch", version=BASIC_PITCH_VERSION, licence="Apache-2.0",
                  source="Spotify, ICASSP 2022 model shipped in the wheel, run with ONNX Runtime")


@dataclass(frozen=True, kw_only=True)
class NoteSettings:
    """basic-pitch's note-creation settings (its defaults) and the pitch range kept (Hz; None: all)."""

    onset_threshold: float = 0.5
    frame_threshold: float = 0.3
    minimum_note_ms: float = 127.7
    minimum_hz: float | None = None
    maximum_hz: float | None = None

    def __post_init__(self) -> None:
        for name in ("onset_threshold", "frame_threshold"):
            if not 0.0 < getattr(self, name) < 1.0:
                raise ValueError(f"{name}: must be in (0, 1), got {getattr(self, name)}")
        if self.minimum_note_ms < 0:
            raise ValueError(f"minimum_note_ms: must be >= 0, got {self.minimum_note_ms}")
        if self.minimum_hz is not None and self.maximum_hz is not None and self.minimum_hz >= self.maximum_hz:
            raise ValueError(f"minimum_hz: must be below maximum_hz ({self.minimum_hz} >= {self.maximum_hz})")


@dataclass(frozen=True)
class Note:
    """One transcribed note: seconds from the start of the stem, MIDI pitch, velocity 1..127."""

    start: float
    end: float
    pitch: int
    velocity: int


def _import_basic_pitch() -> tuple[Any, Any, Any]:
    """basic_pitch's inference module, note creation module and constants, or :class:`TranscribeUnavailable`."""
    quiet = logging.getLogger()  # basic_pitch warns on the root logger, at import, about every runtime it lacks
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        import basic_pitch  # optional: installed with --no-deps (scripts/requirements-transcribe.txt)
        from basic_pitch import constants, inference  # optional, as above
        from basic_pitch import note_creation  # optional, as above
    except ImportError as e:
        missing = e.name or "basic_pitch"
        raise TranscribeUnavailable(f"transcription needs the package {missing!r}: {INSTALL_HINT}") from None
    finally:
        quiet.setLevel(level)
    if not basic_pitch.ONNX_PRESENT:  # pragma: no cover - onnxruntime is in the [transcribe] extra
        raise TranscribeUnavailable(f"transcription needs the package 'onnxruntime': {INSTALL_HINT}")
    return inference, note_creation, constants


class BasicPitch:
    """The ICASSP-2022 basic-pitch model in an ONNX Runtime session (loaded once, used for every stem)."""

    def __init__(self) -> None:
        self._inference, self._notes, self._c = _import_basic_pitch()
        from basic_pitch import FilenameSuffix, build_icassp_2022_model_path  # optional, imported just above

        path = build_icassp_2022_model_path(FilenameSuffix.onnx)
        if not path.is_file():
            raise TranscribeUnavailable(f"{path}: basic-pitch's ONNX model is missing; reinstall: {INSTALL_HINT}")
        self._model = self._inference.Model(path)

    @property
    def samplerate(self) -> int:
        return int(self._c.AUDIO_SAMPLE_RATE)

    def activations(self, mono: np.ndarray) -> dict[str, np.ndarray]:
        """The model's ``note``/``onset`` ``(frames, 88)`` and ``contour`` ``(frames, 264)`` for ``mono`` ``(T,)`` at
        :attr:`samplerate`, exactly as basic-pitch's ``run_inference`` windows and unwraps a file."""
        n_overlap = 30  # basic-pitch's run_inference values
        overlap_len = n_overlap * self._c.FFT_HOP
        hop = self._c.AUDIO_N_SAMPLES - overlap_len
        padded = np.concatenate([np.zeros(overlap_len // 2, dtype=np.float32), mono.astype(np.float32)])
        out: dict[str, list[np.ndarray]] = {"note": [], "onset": [], "contour": []}
        for window, _ in self._inference.window_audio_file(padded, hop):
            for k, v in self._model.predict(window[np.newaxis]).items():
                out[k].append(v)
        return {k: self._inference.unwrap_output(np.concatenate(v), len(mono), n_overlap) for k, v in out.items()}

    def notes(self, audio: np.ndarray, samplerate: int, settings: NoteSettings = NoteSettings()) -> tuple[Note, ...]:
        """Notes of ``audio`` ``(C, T)`` or ``(T,)`` at ``samplerate`` (channels averaged), sorted by start."""
        mono = np.asarray(audio, dtype=np.float32)
        mono = mono.mean(axis=0) if mono.ndim == 2 else mono
        if samplerate != self.samplerate:
            mono = resample(mono[np.newaxis], samplerate, self.samplerate)[0]
        if not np.any(mono):
            return ()
        frames_per_s = self.samplerate / self._c.FFT_HOP
        _, events = self._notes.model_output_to_notes(
            self.activations(mono), onset_thresh=settings.onset_threshold, frame_thresh=settings.frame_threshold,
            min_note_len=int(np.round(settings.minimum_note_ms / 1000 * frames_per_s)),
            min_freq=settings.minimum_hz, max_freq=settings.maximum_hz, include_pitch_bends=False,
            melodia_trick=True)
        notes = [Note(round(float(s), 4), round(float(e), 4), int(p), int(np.clip(round(127 * float(a)), 1, 127)))
                 for s, e, p, a, *_ in events if e > s]
        return tuple(sorted(notes, key=lambda n: (n.start, n.pitch)))
