"""``stemwright export``: write separated stems as one audio file for other software (NI Stems for DJs).

Not to be confused with ``stemwright export-onnx``, which writes a *model*."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from stemwright.cli.common import USAGE_EXIT, choices, fail, name_list

EXPORT_FORMATS = ("ni-stems",)
Format = choices("Format", EXPORT_FORMATS)
Codec = choices("Codec", ("aac", "alac"))


def command(
    stems_dir: Path = typer.Argument(..., help="Folder of stems ('stemwright separate' output or one audio file per stem)."),
    fmt: Format = typer.Option(..., "--format", "-f", help="ni-stems: a .stem.mp4 with the mixture and 4 stems (Traktor, Mixxx)."),  # type: ignore[valid-type]
    out: Path = typer.Option(..., "--out", "-o", help="Output file, e.g. SONG.stem.mp4."),
    codec: Codec = typer.Option("aac", "--codec", help="aac (lossy, what NI's releases use) or alac (lossless)."),  # type: ignore[valid-type]
    bitrate: int = typer.Option(256, "--bitrate", help="AAC bit rate in kbit/s."),
    mixture: Optional[Path] = typer.Option(None, "--mixture", help="The original song for the mixture track (default: mixture.* in the folder, else the sum of the stems)."),
    stem_names: Optional[str] = typer.Option(
        None, "--stems", help="Comma-separated stem files to use in a folder without stemwright.json (default: "
                              "the known stem names)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output file."),
) -> None:
    """Write separated stems as audio for other software: --format ni-stems makes an NI Stems .stem.mp4 (mixture +
    drums, bass, other, vocals; extra stems such as guitar and piano are folded into other). To export a model,
    use 'stemwright export-onnx'."""
    from stemwright.atomic import check_writable_folder
    from stemwright.audio.io import AudioError
    from stemwright.errors import OutputError
    from stemwright.mixer.effects import MixError
    from stemwright.mixer.export import export_ni_stems
    from stemwright.mixer.stems import load_stems

    if not 32 <= bitrate <= 512:
        fail(f"--bitrate must be in 32-512 kbit/s, got {bitrate}", USAGE_EXIT)
    if not out.name.lower().endswith(".mp4"):  # an NI Stems file is an MP4: a .wav name would lie about it
        fail(f"{out}: an NI Stems file must be named .stem.mp4 (or .mp4)", USAGE_EXIT)
    if out.exists() and not overwrite:
        fail(f"{out}: already exists (use --overwrite to replace it)")
    try:
        check_writable_folder(out.parent)
    except OutputError as e:
        fail(str(e))
    try:
        stems = load_stems(stems_dir, names=name_list(stem_names), exclude=[out])
        report = export_ni_stems(stems, out, mixture=mixture, codec=codec.value, bitrate=bitrate * 1000,
                                 overwrite=overwrite)
    except (MixError, AudioError, ValueError) as e:
        fail(str(e))
    except OSError as e:  # a read-only folder or a full disk (PyAV's av.error.OSError is one)
        fail(f"{out}: could not write ({e.strerror or e})")
    if as_json:
        print(json.dumps({"format": fmt.value, **report}, indent=2))
        return
    rate = report["samplerate"]
    print(f"wrote {out} (NI Stems, {codec.value}{f' {bitrate} kbit/s' if codec.value == 'aac' else ''}, "
          f"{report['samples'] / rate:.2f} s at {rate} Hz)")
    print("tracks: mixture (" + report["mixture"] + "), " + ", ".join(
        f"{slot}" + (f" (= {' + '.join(src)})" if list(src) != [slot] else "") for slot, src in report["groups"].items()))
