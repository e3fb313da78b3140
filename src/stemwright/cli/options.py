"""The options ``separate`` and ``batch`` share, declared once (``Annotated`` aliases: a command writes
``stems: options.Stems = None``), and the one build-and-check of the output options from them.

The help texts live here only, so the two commands cannot drift apart; what differs between them (``--device``'s
default, ``--overwrite``'s meaning, ``--json``'s layout) stays in each command.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from stemwright.audio.io import CLIP_MODES, WRITE_FORMATS
from stemwright.cli.common import USAGE_EXIT, choices, fail
from stemwright.models.defaults import DEFAULT_MODEL, DEFAULT_VOCALS_MODEL

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")  # as stemwright.engine.device.DEVICE_CHOICES (no torch import here)
OutFormat = choices("OutFormat", WRITE_FORMATS)
ClipModeChoice = choices("ClipMode", CLIP_MODES)
Device = choices("Device", DEVICE_CHOICES)
DEFAULT_FILENAME = "{track}/{stem}.{ext}"  # as stemwright.api.DEFAULT_FILENAME (no torch import here)

Model = Annotated[Optional[str], typer.Option(
    "-m", "-n", "--model", "--name",
    help=f"Model name ('stemwright models'), or a checkpoint path (default: {DEFAULT_MODEL}; {DEFAULT_VOCALS_MODEL} "
         "with --two-stems vocals).")]
Stems = Annotated[Optional[str], typer.Option("--stems", help="Comma-separated stems to write, e.g. vocals,drums.")]
TwoStems = Annotated[Optional[str], typer.Option("--two-stems", help="Write STEM and no_STEM (the rest).")]
Format = Annotated[Optional[OutFormat], typer.Option("--format", help="Output format (default: wav).")]  # type: ignore[valid-type]
Mp3 = Annotated[bool, typer.Option("--mp3", help="Same as --format mp3.")]
Flac = Annotated[bool, typer.Option("--flac", help="Same as --format flac.")]
BitDepth = Annotated[Optional[int], typer.Option(
    "--bit-depth", help="wav: 16, 24 or 32 (float); flac: 16 or 24 (default: 24).")]
Int24 = Annotated[bool, typer.Option("--int24", help="Same as --bit-depth 24.")]
Float32 = Annotated[bool, typer.Option("--float32", help="Same as --bit-depth 32 (float wav).")]
Mp3Bitrate = Annotated[int, typer.Option("--mp3-bitrate", help="mp3 bitrate in kbit/s (32-320).")]
Segment = Annotated[Optional[float], typer.Option(
    "--segment", help="Chunk length in seconds, >= 0.5 (default: the model's).")]
Overlap = Annotated[Optional[float], typer.Option(
    "--overlap", help="Overlap between chunks, in [0, 1) (default: the model's publisher's, else 0.25).")]
Shifts = Annotated[int, typer.Option("--shifts", help="Average N randomly shifted passes (slower, slightly better).")]
Residual = Annotated[Optional[str], typer.Option("--residual", help="Put mixture minus the other stems into STEM.")]
Filename = Annotated[str, typer.Option(
    "--filename",
    help="Output path template with {track} {stem} {ext} {model} {parent} {ext_in}: '{model}/{track}/{stem}.{ext}' "
         "to compare models, '{parent}/{stem}.{ext}' for dataset folders (MUSDB's TRACK/mixture.wav).")]
ClipMode = Annotated[ClipModeChoice, typer.Option(  # type: ignore[valid-type]
    "--clip-mode", help="Peaks over full scale: rescale all stems, clamp, or keep (32-bit float wav only; other "
                        "formats clamp them, with a warning).")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]
Offline = Annotated[bool, typer.Option("--offline", help="Never download model weights.")]
Fast = Annotated[bool, typer.Option(
    "--fast", help="bfloat16 where the CPU/GPU runs it natively (AVX-512 BF16, AMX, Ampere+): faster, slightly "
                   "different stems; elsewhere no effect.")]

EnsembleMethod = Annotated[Optional[str], typer.Option(
    "--ensemble-method",
    help="With -m a+b (an ensemble of models): avg_wave (default), median_wave, min_wave, max_wave, avg_fft, "
         "median_fft, min_fft or max_fft, as MSST / audio-separator define them.")]
EnsembleWeights = Annotated[Optional[str], typer.Option(
    "--ensemble-weights",
    help="With -m a+b: one weight per model for every stem ('2,1') or per stem ('vocals=2,1;drums=1,3'); used by "
         "the avg_ methods.")]


def output_format(fmt: str | None, mp3: bool, flac: bool) -> str:
    """The one output format that ``--format``/``--mp3``/``--flac`` ask for (wav when none)."""
    chosen = {f for f, on in (("mp3", mp3), ("flac", flac)) if on} | ({fmt} if fmt else set())
    if len(chosen) > 1:
        fail(f"conflicting output formats: {', '.join(sorted(chosen))} (give one of --format, --mp3, --flac)", USAGE_EXIT)
    return chosen.pop() if chosen else "wav"


def output_bit_depth(bit_depth: int | None, int24: bool, float32: bool) -> int:
    """The one bit depth that ``--bit-depth``/``--int24``/``--float32`` ask for (24 when none)."""
    chosen = {d for d, on in ((24, int24), (32, float32)) if on} | ({bit_depth} if bit_depth is not None else set())
    if len(chosen) > 1:
        fail(f"conflicting bit depths: {', '.join(map(str, sorted(chosen)))} (give one of --bit-depth, --int24, "
             "--float32)", USAGE_EXIT)
    return chosen.pop() if chosen else 24


def model_name(model: str | None, two_stems: str | None) -> str:
    """``-m`` or the default model (the vocals model with ``--two-stems vocals``)."""
    return model or (DEFAULT_VOCALS_MODEL if two_stems == "vocals" else DEFAULT_MODEL)


def check_early(out: Path, fmt: str, bit_depth: int, mp3_bitrate: int, clip_mode: str, filename: str,
                segment: float | None, overlap: float | None, shifts: int, device: str | None) -> None:
    """The option checks that need no model (exit 2, or 1 for an output folder that cannot be written): before
    the inputs are read and the model is loaded. ``device`` ``None``: not checked here (``batch``'s workers may
    run on other machines)."""
    from stemwright.api import check_settings
    from stemwright.output import check_output_options
    from stemwright.atomic import check_writable_folder
    from stemwright.cli.common import fail_from
    from stemwright.engine.device import resolve_device
    from stemwright.errors import StemwrightError

    try:
        check_settings(segment, overlap, shifts)
        check_output_options(fmt, bit_depth, mp3_bitrate, clip_mode, filename, out)
        if device is not None:
            resolve_device(device)
        check_writable_folder(out)
    except StemwrightError as e:
        fail_from(e)


# -- the one audio file that mix and mashup write ----------------------------------------------------------------
FileFormat = Annotated[Optional[str], typer.Option(
    "--format", "-f", help="wav, flac or mp3 (default: from the output name).")]
FileBitDepth = Annotated[int, typer.Option("--bit-depth", help="wav: 16, 24 or 32 (float); flac: 16 or 24.")]
FileClipMode = Annotated[ClipModeChoice, typer.Option(  # type: ignore[valid-type]
    "--clip-mode", help="Peaks over full scale: one gain for the whole mix (rescale), clamp, or keep (32-bit float "
                        "wav only; other formats clamp them, with a warning).")]
FileOverwrite = Annotated[bool, typer.Option("--overwrite", help="Replace an existing output file.")]
