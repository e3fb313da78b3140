"""Server-side export of a mix document, through the same mixer engine as ``stemwright mix``."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from stemwright.audio.io import write_audio
from stemwright.mixer.document import Mix
from stemwright.mixer.render import render
from stemwright.mixer.stems import load_stems


def render_to_file(document: dict[str, Any], stems: dict[str, Path], target: Path, fmt: str,
                   layers_dir: Path | None = None) -> Path:
    """Render ``document`` over the stems folder and write ``target`` (wav: 32-bit float; flac: 24-bit; mp3: 320k).
    Layer files are read from ``layers_dir`` (the song's uploaded layers; ``renders.validate_mix`` checked them).

    The stems folder is loaded exactly as ``stemwright mix STEMS_DIR`` loads it, so both give the same samples.
    """
    folders = {p.parent for p in stems.values()}
    if len(folders) != 1:
        raise ValueError("stems of one song must share a folder")
    stemset = load_stems(folders.pop())
    mix = Mix.from_dict(document)
    mix.base = layers_dir
    audio = render(mix, stemset)
    bit_depth = 32 if fmt == "wav" else 24
    return write_audio(target, audio, stemset.samplerate, fmt=fmt, bit_depth=bit_depth, mp3_bitrate=320, overwrite=True)
