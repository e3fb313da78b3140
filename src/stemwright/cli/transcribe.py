"""``stemwright transcribe``: stems to MIDI (basic-pitch), one file per pitched stem at the song's tempo."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from stemwright.cli.common import fail, fail_from, name_list


def command(
    stems_dir: Path = typer.Argument(..., help="Folder of stems ('stemwright separate' output or one audio file per stem)."),
    out: Path = typer.Option(..., "-o", "--out", help="Output folder: OUT/<stem>.mid per stem and OUT/transcription.json."),
    stems: Optional[str] = typer.Option(None, "--stems", help="Comma-separated stems to transcribe (default: every stem but drums)."),
    tempo: Optional[float] = typer.Option(None, "--tempo", min=20.0, max=400.0, help="Tempo of the MIDI files in BPM (default: the stems' analysed tempo)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing MIDI files and manifest in OUT."),
) -> None:
    """Transcribe stems to MIDI with basic-pitch (Spotify, Apache-2.0; its ONNX model ships in its wheel): one
    MIDI file per stem, notes at their times in the stems, at the song's tempo (analysed from the stems unless
    --tempo), plus OUT/transcription.json. Needs the transcribe extra and basic-pitch installed without its
    dependencies (it asks for TensorFlow, which its ONNX model does not need): see docs/practice.md."""
    from stemwright.errors import StemwrightError
    from stemwright.transcribe import MODEL, transcribe_folder

    if not stems_dir.exists():
        fail(f"{stems_dir}: not found")
    if not stems_dir.is_dir():
        fail(f"{stems_dir}: not a folder (expected a folder of stems, e.g. one written by 'stemwright separate')")

    def progress(stem: str, index: int, count: int) -> None:
        print(f"transcribing {stem} ({index + 1}/{count})", file=sys.stderr, flush=True)

    print(f"model: {MODEL.line()}", file=sys.stderr)
    try:
        result = transcribe_folder(stems_dir, out, names=name_list(stems), tempo=tempo, overwrite=overwrite,
                                   progress=progress)
    except StemwrightError as e:
        fail_from(e)
    except OSError as e:  # a disk that fills up or turns read-only while writing
        fail(f"{out}: cannot write ({e.strerror or e})")
    t = result.transcription
    print(f"tempo {t.tempo_bpm:.2f} BPM ({t.tempo_source})")
    for part in t.stems:
        print(f"{part.stem:<8} {len(part.notes):5d} notes -> {result.midi_paths[part.stem]}")
    print(f"manifest -> {result.manifest_path} ({result.seconds:.1f} s)")
