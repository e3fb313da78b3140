"""Stems to MIDI: one MIDI file per pitched stem at the song's tempo, plus a manifest (``transcription.json``).

The tempo is the one given, else the stems' own analysis (:func:`stemwright.analysis.analyze` on every stem of
the folder: drums and bass carry the beat). Notes keep their times in the stems (a MIDI file dropped at the start
of the song in a DAW plays with the audio); the file's tempo makes the DAW's beat grid the song's.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from stemwright import __version__
from stemwright.analysis.song import AnalysisError, analyze
from stemwright.atomic import atomic_write, atomic_write_text
from stemwright.errors import MixError, OutputExists, StemwrightError
from stemwright.mixer.stems import StemSet, as_stemset, load_stems
from stemwright.transcribe.model import MODEL, BasicPitch, ModelInfo, Note, NoteSettings

log = logging.getLogger(__name__)

MANIFEST = "transcription.json"
MANIFEST_VERSION = 1
UNPITCHED = ("drums",)  # basic-pitch transcribes pitched notes: drums are left out unless asked for
DEFAULT_TEMPO = 120.0  # only when the analysis finds no beat at all (silence): MIDI needs some tempo
# GM program each stem's track gets (a DAW plays the file with it); anything else: acoustic grand piano.
PROGRAMS = {"bass": 33, "vocals": 53, "guitar": 25, "piano": 0, "other": 0}
# Pitch range kept per stem (Hz): an electric bass reaches from E1 (41 Hz) to about G4, a singer from about C2 to C6.
# Set from these instrument ranges, then checked on the development songs (seed 2601), never on the held-out ones.
RANGES = {"bass": (30.0, 450.0), "vocals": (60.0, 1400.0)}
# Stems played one note at a time, where basic-pitch's extra notes are mostly the overtones of the note sounding
# (an octave, a twelfth, two octaves up): those are dropped (:func:`drop_overtones`). Chosen on seed 2601.
MONOPHONIC = ("bass",)
OVERTONES = (12, 19, 24)  # semitones above the sounding note
OVERTONE_OVERLAP = 0.5  # share of the upper note's length the lower one must sound with it


class TranscribeError(StemwrightError):
    """Bad input for a transcription: the message names the folder, stem or option and the reason."""


@dataclass(frozen=True, kw_only=True)
class StemNotes:
    """The notes of one stem and the GM program its MIDI track gets."""

    stem: str
    notes: tuple[Note, ...]
    program: int


@dataclass(frozen=True, kw_only=True)
class Transcription:
    """Notes per stem and the tempo the MIDI files are written at."""

    stems: tuple[StemNotes, ...]
    tempo_bpm: float
    tempo_source: str  # "given", "analysis", "analysis (no steady tempo: mean beat interval)", "default (no beats)"
    duration_s: float


def settings_for(stem: str) -> NoteSettings:
    """basic-pitch's defaults, with the pitch range of the stem's instrument where it has one."""
    low, high = RANGES.get(stem, (None, None))
    return NoteSettings(minimum_hz=low, maximum_hz=high)


def drop_overtones(notes: Sequence[Note]) -> tuple[Note, ...]:
    """``notes`` without those that sound mostly (:data:`OVERTONE_OVERLAP`) over a note an overtone interval
    (:data:`OVERTONES`) below them: in a one-note-at-a-time line they are the lower note's harmonics."""
    kept = []
    for n in notes:
        length = max(n.end - n.start, 1e-6)
        ghost = any(n.pitch - m.pitch in OVERTONES
                    and min(n.end, m.end) - max(n.start, m.start) >= OVERTONE_OVERLAP * length for m in notes)
        if not ghost:
            kept.append(n)
    return tuple(kept)


def stem_notes(model: BasicPitch, stem: str, audio: np.ndarray, samplerate: int) -> tuple[Note, ...]:
    """The notes of one stem ``(C, T)`` with that stem's settings (pitch range, overtones dropped)."""
    notes = model.notes(audio, samplerate, settings_for(stem))
    return drop_overtones(notes) if stem in MONOPHONIC else notes


def pitched_stems(names: Sequence[str]) -> list[str]:
    """The stems transcribed by default: all but the unpitched ones (drums) and ``no_*`` complements."""
    return [n for n in names if n not in UNPITCHED and not n.startswith("no_")]


def song_tempo(stems: StemSet) -> tuple[float, str]:
    """``(BPM, source)`` from the stems' analysis; its mean tempo where it finds no steady one."""
    try:
        result = analyze(stems)
    except AnalysisError as e:
        log.warning("no tempo from the analysis (%s); MIDI written at %g BPM", e, DEFAULT_TEMPO)
        return DEFAULT_TEMPO, "default (no beats)"
    if result.tempo_bpm is not None:
        return float(result.tempo_bpm), "analysis"
    return float(result.mean_bpm), "analysis (no steady tempo: mean beat interval)"


def transcribe_stems(stems: StemSet | Mapping[str, np.ndarray], samplerate: int | None = None, *,
                     names: Sequence[str] | None = None, tempo: float | None = None,
                     model: BasicPitch | None = None,
                     progress: Callable[[str, int, int], None] | None = None) -> Transcription:
    """Notes of each of ``names`` (default: the pitched stems) of ``stems`` (``{name: (C, T)}`` with
    ``samplerate``, or a :class:`StemSet`); ``tempo`` (BPM) or the stems' analysed tempo.
    ``progress(stem, index, count)`` is called before each stem."""
    s = as_stemset(stems, samplerate)
    chosen = list(dict.fromkeys(names)) if names else pitched_stems(s.names)
    missing = [n for n in chosen if n not in s.names]
    if missing:
        raise TranscribeError(f"{s.path or 'stems'}: no stem {missing[0]!r} (stems: {', '.join(s.names)})")
    if not chosen:
        raise TranscribeError(f"{s.path or 'stems'}: no pitched stem to transcribe (stems: {', '.join(s.names)}); "
                              "name the stems with --stems")
    if tempo is not None and not 20.0 <= tempo <= 400.0:
        raise TranscribeError(f"tempo: must be in [20, 400] BPM, got {tempo}")
    bpm, source = (float(tempo), "given") if tempo is not None else song_tempo(s)
    model = model or BasicPitch()
    out = []
    for i, name in enumerate(chosen):
        if progress is not None:
            progress(name, i, len(chosen))
        out.append(StemNotes(stem=name, notes=stem_notes(model, name, s[name], s.samplerate),
                             program=PROGRAMS.get(name, 0)))
    return Transcription(stems=tuple(out), tempo_bpm=round(bpm, 3), tempo_source=source, duration_s=s.duration)


def midi_bytes_writer(part: StemNotes, tempo_bpm: float) -> Callable[[Path], object]:
    """A writer of ``part`` as a one-track Standard MIDI File at ``tempo_bpm`` (for :func:`atomic_write`)."""
    import pretty_midi  # the [transcribe] extra (basic-pitch's own dependency)

    pm = pretty_midi.PrettyMIDI(resolution=960, initial_tempo=tempo_bpm)
    track = pretty_midi.Instrument(program=part.program, name=part.stem)
    track.notes = [pretty_midi.Note(velocity=n.velocity, pitch=n.pitch, start=n.start, end=n.end) for n in part.notes]
    pm.instruments.append(track)
    return lambda tmp: pm.write(str(tmp))


@dataclass(frozen=True, kw_only=True)
class TranscriptionResult:
    """What :func:`transcribe_folder` wrote: the MIDI file of each stem and the manifest."""

    transcription: Transcription
    midi_paths: dict[str, Path]
    manifest_path: Path
    seconds: float


def output_paths(outdir: Path, names: Sequence[str]) -> dict[str, Path]:
    return {n: outdir / f"{n}.mid" for n in names}


def _check_outputs(paths: Sequence[Path], overwrite: bool) -> None:
    for p in paths:
        if p.is_dir():
            raise OutputExists(p, "is a folder (expected a file path)")
        if p.exists() and not overwrite:
            raise OutputExists(p, "already exists (use --overwrite to replace it)")


@dataclass(frozen=True, kw_only=True)
class StemFile:
    """One stem's MIDI file in the manifest: its name (relative to the manifest), note count and GM program."""

    file: str
    notes: int
    program: int


@dataclass(frozen=True, kw_only=True)
class TranscriptionManifest:
    """``transcription.json``: what :func:`transcribe_folder` wrote, from what, with which model and tempo."""

    input: str | None
    tempo_bpm: float
    tempo_source: str
    duration_s: float
    seconds: float
    stems: dict[str, StemFile]
    model: ModelInfo = MODEL
    stemwright_version: str = __version__
    version: int = MANIFEST_VERSION

    @classmethod
    def of(cls, result: Transcription, source: Path | None, files: Mapping[str, Path],
           seconds: float) -> TranscriptionManifest:
        return cls(input=str(source) if source else None, tempo_bpm=result.tempo_bpm,
                   tempo_source=result.tempo_source, duration_s=round(result.duration_s, 4),
                   seconds=round(seconds, 3),
                   stems={p.stem: StemFile(file=files[p.stem].name, notes=len(p.notes), program=p.program)
                          for p in result.stems})

    def write(self, path: str | Path) -> Path:
        """Write as JSON, atomically."""
        return atomic_write_text(path, json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def read(cls, path: str | Path) -> TranscriptionManifest:
        """Read one written by :meth:`write`; :class:`TranscribeError` naming the file when it is not one."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            if data.get("version") != MANIFEST_VERSION:
                raise ValueError(f"version {data.get('version')!r} is not {MANIFEST_VERSION}")
            return cls(**{**data, "model": ModelInfo(**data["model"]),
                          "stems": {k: StemFile(**v) for k, v in data["stems"].items()}})
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as e:
            raise TranscribeError(f"{path}: not a transcription manifest ({e})") from None


def transcribe_folder(path: str | Path, outdir: str | Path, *, names: Sequence[str] | None = None,
                      tempo: float | None = None, overwrite: bool = False,
                      progress: Callable[[str, int, int], None] | None = None) -> TranscriptionResult:
    """``OUTDIR/<stem>.mid`` for each stem of the stems folder ``path`` (see :func:`transcribe_stems`), then
    ``OUTDIR/transcription.json``. Existing outputs are kept (:class:`OutputExists`) unless ``overwrite``; each file
    is written under a temporary name and renamed."""
    t0 = time.perf_counter()
    folder, out = Path(path), Path(outdir)
    try:
        stems = load_stems(folder)  # every stem: the analysis takes the beat from drums and bass
    except MixError as e:
        raise TranscribeError(str(e)) from None
    chosen = list(dict.fromkeys(names)) if names else pitched_stems(stems.names)
    files = output_paths(out, chosen)
    _check_outputs([*files.values(), out / MANIFEST], overwrite)  # before minutes of work
    result = transcribe_stems(stems, names=chosen, tempo=tempo, progress=progress)
    for part in result.stems:
        atomic_write(files[part.stem], midi_bytes_writer(part, result.tempo_bpm), suffix=".part.mid")
    seconds = time.perf_counter() - t0
    manifest = TranscriptionManifest.of(result, folder, files, seconds).write(out / MANIFEST)
    log.info("transcribed %d stems of %s in %.1f s", len(result.stems), folder, seconds)
    return TranscriptionResult(transcription=result, midi_paths=files, manifest_path=manifest, seconds=seconds)
